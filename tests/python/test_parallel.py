"""Many sessions at once (50), each taking locks, editing and committing: no deadlock, no lost
update, every lock released, the final configuration exactly what the sessions wrote."""

import threading
import time

from conftest import (
    NS_BASE,
    assert_ok,
    config,
    data_of,
    dispatch,
    get_config,
    iface_names,
    interface,
    interfaces,
    rpc_errors,
)

SESSIONS = 50


def names(prefix, count=SESSIONS):
    return [f"{prefix}{i:02d}" for i in range(count)]


def lock_retrying(m, target):
    deadline = time.time() + 240
    while True:
        errs = rpc_errors(m.lock(target=target))
        if not errs:
            return
        assert errs[0]["tag"] == "lock-denied", errs
        assert time.time() < deadline, "never got the lock"
        time.sleep(0.01)


def run_parallel(agent, count, body):
    """Runs body(m, i) in `count` sessions opened first and released together."""
    errors = []
    start = threading.Barrier(count + 1)

    def worker(i):
        try:
            with agent.quiet() as m:
                start.wait(timeout=180)
                body(m, i)
        except Exception as e:  # reported by the main thread
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    start.wait(timeout=180)
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a session never finished (deadlock?)"
    return errors


def no_locks_left(agent):
    with agent.quiet() as m:
        assert_ok(m.lock(target="candidate"))
        assert_ok(m.lock(target="running"))


def test_fifty_sessions_lock_edit_commit(agent):
    def body(m, i):
        lock_retrying(m, "candidate")
        assert_ok(m.edit_config(target="candidate", config=config(interfaces(interface(f"par{i:02d}", f"session {i}")))))
        assert_ok(m.commit())
        assert_ok(m.unlock(target="candidate"))

    assert run_parallel(agent, SESSIONS, body) == []
    with agent.quiet() as m:
        assert iface_names(get_config(m)) == names("par")
        assert iface_names(get_config(m, "candidate")) == names("par")
    no_locks_left(agent)


def test_fifty_sessions_on_running_directly(agent):
    def body(m, i):
        lock_retrying(m, "running")
        assert_ok(m.edit_config(target="running", config=config(interfaces(interface(f"run{i:02d}")))))
        assert_ok(m.unlock(target="running"))

    assert run_parallel(agent, SESSIONS, body) == []
    with agent.quiet() as m:
        assert iface_names(get_config(m)) == names("run")
    no_locks_left(agent)


def test_fifty_sessions_confirmed_commits(agent):
    def body(m, i):
        lock_retrying(m, "candidate")
        assert_ok(m.edit_config(target="candidate", config=config(interfaces(interface(f"cc{i:02d}")))))
        assert_ok(dispatch(m, f'<commit xmlns="{NS_BASE}"><confirmed/><confirm-timeout>600</confirm-timeout></commit>'))
        assert_ok(m.commit())
        assert_ok(m.unlock(target="candidate"))

    assert run_parallel(agent, SESSIONS, body) == []
    with agent.quiet() as m:
        assert iface_names(get_config(m)) == names("cc")
        # Every confirmed commit was confirmed: nothing is pending.
        err = rpc_errors(dispatch(m, f'<cancel-commit xmlns="{NS_BASE}"/>'))
        assert [e["tag"] for e in err] == ["operation-failed"]


def test_fifty_sessions_race_for_one_lock(agent):
    winners, holders = [], []

    def body(m, i):
        errs = rpc_errors(m.lock(target="candidate"))
        if errs:
            assert [e["tag"] for e in errs] == ["lock-denied"]
            holders.append(errs[0]["info"]["session-id"])
        else:
            winners.append(m.session_id)
            # Hold it until every other session has tried.
            deadline = time.time() + 240
            while len(holders) < SESSIONS - 1 and time.time() < deadline:
                time.sleep(0.05)

    assert run_parallel(agent, SESSIONS, body) == []
    assert len(winners) == 1
    assert len(holders) == SESSIONS - 1
    assert set(holders) == set(winners)
    no_locks_left(agent)


def test_readers_and_writers_together(agent):
    def body(m, i):
        if i % 2:
            for _ in range(5):
                data = data_of(m.get_config(source="running"))
                # Readers only ever see whole commits: every entry has its description.
                for e in data.iter("{*}interface"):
                    assert e.findtext("{*}description") == "rw"
        else:
            lock_retrying(m, "candidate")
            assert_ok(m.edit_config(target="candidate", config=config(interfaces(interface(f"rw{i:02d}", "rw")))))
            assert_ok(m.commit())
            assert_ok(m.unlock(target="candidate"))

    assert run_parallel(agent, SESSIONS, body) == []
    with agent.quiet() as m:
        assert iface_names(get_config(m)) == [f"rw{i:02d}" for i in range(0, SESSIONS, 2)]
    no_locks_left(agent)


def test_sessions_dropping_while_holding_the_lock(agent):
    def body(m, i):
        lock_retrying(m, "candidate")
        assert_ok(m.edit_config(target="candidate", config=config(interfaces(interface(f"drop{i:02d}")))))
        if i % 5 == 0:
            # Gone without commit or unlock: the lock goes, and so do its candidate changes.
            m._session.close()
            return
        assert_ok(m.commit())
        assert_ok(m.unlock(target="candidate"))

    errors = run_parallel(agent, SESSIONS, body)
    # A dropped session's manager fails on its own close-session; nothing else may fail.
    assert all(i % 5 == 0 for i, _ in errors), errors
    with agent.quiet() as m:
        expected = [f"drop{i:02d}" for i in range(SESSIONS) if i % 5]
        assert iface_names(get_config(m)) == expected
    no_locks_left(agent)
