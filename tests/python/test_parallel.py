"""Many sessions at once, each locking the candidate, editing, committing and unlocking."""

import threading
import time

from conftest import assert_ok, config, get_config, iface_names, interface, interfaces, rpc_errors

SESSIONS = 50


def worker(agent, i, errors, start):
    name = f"par{i:02d}"
    try:
        with agent.quiet() as m:
            start.wait(timeout=120)
            deadline = time.time() + 240
            while True:
                reply = m.lock(target="candidate")
                errs = rpc_errors(reply)
                if not errs:
                    break
                assert errs[0]["tag"] == "lock-denied", errs
                assert time.time() < deadline, "never got the candidate lock"
                time.sleep(0.01)
            assert_ok(m.edit_config(target="candidate", config=config(interfaces(interface(name, f"session {i}")))))
            assert_ok(m.commit())
            assert_ok(m.unlock(target="candidate"))
    except Exception as e:  # reported by the main thread
        errors.append((i, repr(e)))


def run_parallel(agent, count):
    errors = []
    start = threading.Barrier(count + 1)
    threads = [threading.Thread(target=worker, args=(agent, i, errors, start)) for i in range(count)]
    for t in threads:
        t.start()
    start.wait(timeout=180)
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a session never finished (deadlock?)"
    return errors


def test_fifty_sessions_lock_edit_commit(agent):
    errors = run_parallel(agent, SESSIONS)
    assert errors == []
    with agent.quiet() as m:
        assert iface_names(get_config(m)) == [f"par{i:02d}" for i in range(SESSIONS)]
        assert iface_names(get_config(m, "candidate")) == [f"par{i:02d}" for i in range(SESSIONS)]
        # No lock is left behind.
        assert_ok(m.lock(target="candidate"))
        assert_ok(m.lock(target="running"))
