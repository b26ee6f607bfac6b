"""Session limits: the maximum number of sessions (refused at SSH channel open with a logged
reason) and the idle timeout (0 turns it off)."""

import time

import pytest
from conftest import NS_BASE, assert_ok, data_of, dispatch, eventually


def refused(agent):
    """Opens one more session and returns the exception it fails with."""
    with pytest.raises(Exception) as exc:
        m = agent.connect()
        m.close_session()
    return exc.value


def log_of(agent):
    return open(agent.log, errors="replace").read()


def test_sessions_beyond_the_maximum_are_refused(agent_factory):
    agent = agent_factory("max_sessions = 2")
    a, b = agent.connect(), agent.connect()
    refused(agent)
    assert a.connected and b.connected
    data_of(a.get_config(source="running"))
    a.close_session()
    b.close_session()


def test_refusal_is_logged_with_its_reason(agent_factory):
    agent = agent_factory("max_sessions = 1")
    with agent.connect():
        refused(agent)
        assert eventually(lambda: "the session limit is reached" in log_of(agent))
    assert "max_sessions=1" in log_of(agent)


def test_a_closed_session_frees_its_slot(agent_factory):
    agent = agent_factory("max_sessions = 1")
    for _ in range(3):
        m = agent.connect()
        m.close_session()
        # The slot is given back when the server side of the session has ended.
        assert eventually(lambda: try_connect(agent), timeout=30)


def try_connect(agent):
    try:
        agent.connect().close_session()
        return True
    except Exception:
        return False


def test_kill_session_frees_a_slot(agent_factory):
    agent = agent_factory("max_sessions = 2")
    a, b = agent.quiet(), agent.quiet()
    refused(agent)
    assert_ok(dispatch(a, f'<kill-session xmlns="{NS_BASE}"><session-id>{b.session_id}</session-id></kill-session>'))
    c = eventually(lambda: try_connect(agent), timeout=30)
    assert c
    a.close_session()


def test_default_maximum_allows_many_sessions(agent):
    ms = [agent.connect() for _ in range(10)]
    assert all(m.connected for m in ms)
    for m in ms:
        m.close_session()


def test_idle_session_is_closed(agent_factory):
    agent = agent_factory("idle_timeout_secs = 2")
    m = agent.connect()
    start = time.time()
    assert eventually(lambda: not m.connected, timeout=60)
    assert time.time() - start > 1.0
    assert eventually(lambda: "closing an idle session" in log_of(agent))


def test_busy_session_is_not_idle(agent_factory):
    agent = agent_factory("idle_timeout_secs = 3")
    with agent.connect() as m:
        end = time.time() + 6
        while time.time() < end:
            m.get_config(source="running")
            time.sleep(0.5)
        assert m.connected


def test_idle_timeout_zero_is_off(agent_factory):
    agent = agent_factory("idle_timeout_secs = 0")
    with agent.connect() as m:
        time.sleep(4)
        assert m.connected
        data_of(m.get_config(source="running"))


def test_idle_close_releases_locks(agent_factory):
    agent = agent_factory("idle_timeout_secs = 2")
    idle = agent.quiet()
    assert_ok(idle.lock(target="candidate"))
    assert eventually(lambda: not idle.connected, timeout=60)
    with agent.quiet() as m:
        assert_ok(m.lock(target="candidate"))
