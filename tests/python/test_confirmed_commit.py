"""Confirmed commit (RFC 6241 §8.4, :confirmed-commit:1.1) against the real agent over SSH.

Timeout runout, confirming commit, follow-up confirmed commit, cancel-commit, persist across a
restart, rollback when the issuing session ends (and at restart), wrong session, wrong persist-id.
Timing checks only use generous bounds.
"""

import time

from conftest import (
    NS_BASE,
    assert_ok,
    config,
    dispatch,
    edit,
    eventually,
    get_config,
    iface_names,
    interface,
    interfaces,
    one_error,
)

CAP = "urn:ietf:params:netconf:capability:confirmed-commit:1.1"


def commit(m, confirmed=False, timeout=None, persist=None, persist_id=None):
    body = ""
    if confirmed:
        body += "<confirmed/>"
    if timeout is not None:
        body += f"<confirm-timeout>{timeout}</confirm-timeout>"
    if persist is not None:
        body += f"<persist>{persist}</persist>"
    if persist_id is not None:
        body += f"<persist-id>{persist_id}</persist-id>"
    return dispatch(m, f'<commit xmlns="{NS_BASE}">{body}</commit>')


def cancel(m, persist_id=None):
    body = f"<persist-id>{persist_id}</persist-id>" if persist_id is not None else ""
    return dispatch(m, f'<cancel-commit xmlns="{NS_BASE}">{body}</cancel-commit>')


def add(m, name):
    assert_ok(dispatch(m, edit("candidate", config(interfaces(interface(name))))))


def running(m):
    return iface_names(get_config(m))


def seed(m):
    add(m, "base")
    assert_ok(commit(m))


def test_capability_announced(agent):
    with agent.quiet() as m:
        assert CAP in m.server_capabilities


def test_timeout_runout_rolls_back(agent):
    with agent.quiet() as m:
        seed(m)
        add(m, "tmp")
        assert_ok(commit(m, confirmed=True, timeout=2))
        assert running(m) == ["base", "tmp"]
        start = time.time()
        assert eventually(lambda: running(m) == ["base"], timeout=60)
        # Not before the timeout (generous lower bound), and the candidate follows running.
        assert time.time() - start > 1.0
        assert iface_names(get_config(m, "candidate")) == ["base"]


def test_confirming_commit_makes_it_permanent(agent):
    with agent.quiet() as m:
        seed(m)
        add(m, "keep")
        assert_ok(commit(m, confirmed=True, timeout=2))
        assert_ok(commit(m))
        time.sleep(3)
        assert running(m) == ["base", "keep"]
        # Nothing is pending any more.
        err = one_error(cancel(m))
        assert (err["type"], err["tag"]) == ("protocol", "operation-failed")


def test_default_timeout_is_long(agent):
    with agent.quiet() as m:
        seed(m)
        add(m, "x")
        assert_ok(commit(m, confirmed=True))
        time.sleep(2)
        assert running(m) == ["base", "x"]
        assert_ok(cancel(m))
        assert running(m) == ["base"]


def test_follow_up_confirmed_commit_adds_and_extends(agent):
    with agent.quiet() as m:
        seed(m)
        add(m, "one")
        assert_ok(commit(m, confirmed=True, timeout=2))
        add(m, "two")
        assert_ok(commit(m, confirmed=True, timeout=600))
        assert running(m) == ["base", "one", "two"]
        time.sleep(3)
        # The first timeout was replaced by the second.
        assert running(m) == ["base", "one", "two"]
        # A rollback returns to before the first confirmed commit.
        assert_ok(cancel(m))
        assert running(m) == ["base"]


def test_cancel_commit_rolls_back(agent):
    with agent.quiet() as m:
        seed(m)
        add(m, "gone")
        assert_ok(commit(m, confirmed=True, timeout=600))
        assert_ok(cancel(m))
        assert running(m) == ["base"]
        assert iface_names(get_config(m, "candidate")) == ["base"]


def test_cancel_without_pending(agent):
    with agent.quiet() as m:
        err = one_error(cancel(m))
        assert (err["type"], err["tag"]) == ("protocol", "operation-failed")


def test_rollback_when_issuing_session_ends(agent):
    with agent.quiet() as other:
        seed(other)
        with agent.quiet() as m:
            add(m, "session-bound")
            assert_ok(commit(m, confirmed=True, timeout=600))
            assert running(other) == ["base", "session-bound"]
        assert eventually(lambda: running(other) == ["base"], timeout=30)


def test_rollback_when_issuing_session_is_killed(agent):
    with agent.quiet() as other:
        seed(other)
        m = agent.quiet()
        add(m, "killed")
        assert_ok(commit(m, confirmed=True, timeout=600))
        assert_ok(dispatch(other, f'<kill-session xmlns="{NS_BASE}"><session-id>{m.session_id}</session-id></kill-session>'))
        assert running(other) == ["base"]


def test_other_session_cannot_confirm_or_cancel(agent):
    with agent.quiet() as m, agent.quiet() as other:
        seed(m)
        add(m, "mine")
        assert_ok(commit(m, confirmed=True, timeout=600))
        for reply in (commit(other), cancel(other), commit(other, confirmed=True, timeout=5)):
            err = one_error(reply)
            assert (err["type"], err["tag"]) == ("protocol", "in-use")
            assert err["info"]["session-id"] == m.session_id
        assert running(m) == ["base", "mine"]
        assert_ok(commit(m))
        assert running(m) == ["base", "mine"]


def test_persist_id_confirms_from_another_session(agent):
    with agent.quiet() as m:
        seed(m)
        add(m, "p")
        assert_ok(commit(m, confirmed=True, timeout=600, persist="tok-1"))
    # The issuing session is gone but the commit persists.
    with agent.quiet() as other:
        time.sleep(1)
        assert running(other) == ["base", "p"]
        assert_ok(commit(other, persist_id="tok-1"))
        assert running(other) == ["base", "p"]
        err = one_error(cancel(other, persist_id="tok-1"))
        assert (err["type"], err["tag"]) == ("protocol", "operation-failed")


def test_wrong_persist_id(agent):
    with agent.quiet() as m, agent.quiet() as other:
        seed(m)
        add(m, "p")
        assert_ok(commit(m, confirmed=True, timeout=600, persist="right"))
        for reply in (commit(other, persist_id="wrong"), cancel(other, persist_id="wrong")):
            err = one_error(reply)
            assert (err["type"], err["tag"]) == ("protocol", "invalid-value")
            assert err["info"]["bad-element"] == "persist-id"
        # Without a persist-id, even the issuing session is refused.
        err = one_error(cancel(m))
        assert (err["type"], err["tag"]) == ("protocol", "invalid-value")
        assert_ok(cancel(other, persist_id="right"))
        assert running(m) == ["base"]


def test_persist_id_without_pending(agent):
    with agent.quiet() as m:
        err = one_error(commit(m, persist_id="nothing"))
        assert (err["type"], err["tag"]) == ("protocol", "invalid-value")
        assert err["info"]["bad-element"] == "persist-id"


def test_invalid_confirm_timeout(agent):
    with agent.quiet() as m:
        for bad in ("0", "-1", "abc", "4294967296"):
            err = one_error(commit(m, confirmed=True, timeout=bad))
            assert (err["type"], err["tag"]) == ("protocol", "invalid-value")
            assert err["info"]["bad-element"] == "confirm-timeout"
        err = one_error(commit(m, timeout=5))
        assert (err["type"], err["tag"]) == ("protocol", "invalid-value")


def test_persistent_commit_survives_restart_and_times_out(agent):
    with agent.quiet() as m:
        seed(m)
        add(m, "p")
        assert_ok(commit(m, confirmed=True, timeout=8, persist="across"))
        committed = time.time()
    agent.stop()
    agent.start()
    with agent.quiet() as m:
        names = running(m)
        if time.time() - committed < 6:
            # Still pending when the restart was quick enough to tell (no flaky bound).
            assert names == ["base", "p"]
        # Rolled back once the remaining time has run out, not a whole new timeout later.
        assert eventually(lambda: running(m) == ["base"], timeout=60)
        assert time.time() - committed < 60


def test_persistent_commit_confirmed_after_restart(agent):
    with agent.quiet() as m:
        seed(m)
        add(m, "p")
        assert_ok(commit(m, confirmed=True, timeout=600, persist="after"))
    agent.kill9()
    agent.start()
    with agent.quiet() as m:
        assert running(m) == ["base", "p"]
        assert_ok(commit(m, persist_id="after"))
    agent.stop()
    agent.start()
    with agent.quiet() as m:
        assert running(m) == ["base", "p"]
        err = one_error(cancel(m, persist_id="after"))
        assert err["tag"] == "operation-failed"


def test_session_bound_commit_rolled_back_at_restart(agent):
    m = agent.quiet()
    seed(m)
    add(m, "lost")
    assert_ok(commit(m, confirmed=True, timeout=600))
    # The agent dies with the issuing session still open: nothing ended it gracefully.
    agent.kill9()
    agent.start()
    with agent.quiet() as m:
        assert running(m) == ["base"]


def test_ncclient_confirmed_commit_api(agent):
    with agent.connect() as m:
        m.edit_config(target="candidate", config=config(interfaces(interface("api"))))
        m.commit(confirmed=True, timeout="600", persist="nc")
        assert running(m) == ["api"]
        m.cancel_commit(persist_id="nc")
        assert running(m) == []


def test_failed_confirmed_commit_leaves_nothing_pending(agent):
    with agent.quiet() as m:
        seed(m)
        # No <type>: invalid, accepted into the candidate only with test-option set.
        bad = config('<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"><interface><name>bad</name></interface></interfaces>')
        assert_ok(dispatch(m, edit("candidate", bad, test_option="set")))
        err = one_error(commit(m, confirmed=True, timeout=600))
        assert err["type"] == "application"
        assert running(m) == ["base"]
        err = one_error(cancel(m))
        assert (err["type"], err["tag"]) == ("protocol", "operation-failed")
    agent.stop()
    agent.start()
    with agent.quiet() as m:
        assert running(m) == ["base"]
        err = one_error(cancel(m))
        assert err["tag"] == "operation-failed"
