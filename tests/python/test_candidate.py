"""The shared candidate and locks: commit, discard-changes and validate across sessions,
lock-denied, locks released by close, disconnect and kill-session.

Drives the real agent over SSH with ncclient.
"""

import re

from conftest import NS_BASE, assert_ok, canonical, config, data_of, dispatch, eventually, get_config, iface_names, interface, interfaces, is_ok, one_error, rbs_service, remote_backup, service_ports, xp, descriptions


# ---------------------------------------------------------------- candidate, commit, discard, validate


def test_candidate_commit_and_discard_across_two_sessions(agent, seeded):
    with agent.quiet() as b:
        assert_ok(seeded.edit_config(target="candidate", config=config(interfaces(interface("dn1", "from A")))))
        # B sees A's change in the shared candidate, not in running.
        assert descriptions(get_config(b, "candidate"))["dn1"] == "from A"
        assert descriptions(get_config(b, "running"))["dn1"] == "downstream one"
        # B commits: A's change is published.
        assert_ok(b.commit())
        assert descriptions(get_config(seeded, "running"))["dn1"] == "from A"
        # A changes the candidate again; B discards: the candidate is running again.
        assert_ok(seeded.edit_config(target="candidate", config=config(remote_backup(rbs_service("rbs9", 5000)))))
        assert "rbs9" in service_ports(get_config(b, "candidate"))
        assert_ok(b.discard_changes())
        assert canonical(get_config(seeded, "candidate")) == canonical(get_config(seeded, "running"))
        assert "rbs9" not in service_ports(get_config(seeded, "running"))


def test_validate_datastores_and_inline_config(seeded):
    assert_ok(seeded.validate(source="running"))
    assert_ok(seeded.validate(source="candidate"))
    good = config(remote_backup(rbs_service("v1", 2000)))
    assert_ok(dispatch(seeded, f'<validate xmlns="{NS_BASE}"><source>{good}</source></validate>'))
    bad = config(remote_backup(rbs_service("v1", 60000)))
    e = one_error(dispatch(seeded, f'<validate xmlns="{NS_BASE}"><source>{bad}</source></validate>'))
    assert (e["type"], e["tag"]) == ("application", "invalid-value")
    assert e["path"] == "/mldhb-rbs:remote-backup/mldhb-rbs:service[mldhb-rbs:name='v1']/mldhb-rbs:port"


def test_commit_of_unchanged_candidate_is_ok(seeded):
    before = canonical(get_config(seeded))
    assert_ok(seeded.commit())
    assert canonical(get_config(seeded)) == before


# ---------------------------------------------------------------- locks


def test_lock_unlock_and_lock_denied_with_holder_session_id(agent, m):
    with agent.quiet() as b:
        assert_ok(m.lock("running"))
        e = one_error(b.lock("running"))
        assert (e["type"], e["tag"]) == ("protocol", "lock-denied")
        assert e["info"] == {"session-id": str(m.session_id)}
        # The holder may write; the other session gets in-use.
        assert_ok(m.edit_config(target="running", config=config(interfaces(interface("mine")))))
        e = one_error(b.edit_config(target="running", config=config(interfaces(interface("theirs")))))
        assert (e["type"], e["tag"]) == ("protocol", "in-use")
        assert e["info"] == {"session-id": str(m.session_id)}
        assert iface_names(get_config(b)) == ["mine"]
        # Only the holder may unlock.
        e = one_error(b.unlock("running"))
        assert e["tag"] == "operation-failed"
        assert_ok(m.unlock("running"))
        assert_ok(b.lock("running"))
        e = one_error(m.lock("running"))
        assert e["info"] == {"session-id": str(b.session_id)}


def test_lock_of_candidate_blocks_commit_and_discard_of_others(agent, seeded):
    with agent.quiet() as b:
        assert_ok(seeded.lock("candidate"))
        for reply in (
            b.commit(),
            b.discard_changes(),
            b.edit_config(target="candidate", config=config(interfaces(interface("x")))),
        ):
            e = one_error(reply)
            assert (e["tag"], e["info"]) == ("in-use", {"session-id": str(seeded.session_id)})
        assert_ok(seeded.unlock("candidate"))


def test_lock_refused_on_candidate_modified_by_another_session(agent, seeded):
    with agent.quiet() as b:
        assert_ok(seeded.edit_config(target="candidate", config=config(interfaces(interface("dn1", "pending")))))
        e = one_error(b.lock("candidate"))
        assert (e["type"], e["tag"]) == ("protocol", "lock-denied")
        assert "session-id" in e["info"]
        assert descriptions(get_config(b, "candidate"))["dn1"] == "pending"
        assert_ok(seeded.discard_changes())
        assert_ok(b.lock("candidate"))


def test_lock_released_by_close_session(agent, m):
    a = agent.quiet()
    assert_ok(a.lock("running"))
    assert_ok(a.lock("candidate"))
    holder = a.session_id
    assert one_error(m.lock("running"))["info"] == {"session-id": holder}
    a.close_session()
    assert eventually(lambda: is_ok(m.lock("running")))
    assert_ok(m.lock("candidate"))


def test_lock_released_when_holder_disconnects_abruptly(agent, m):
    raw = agent.raw()
    raw.send_hello()
    sid = re.search(r"<session-id>(\d+)</session-id>", raw.server_hello).group(1)
    assert "<ok/>" in raw.rpc(f'<lock><target><running/></target></lock>')
    assert one_error(m.lock("running"))["info"] == {"session-id": sid}
    raw.close()  # the TCP connection goes away without close-session
    assert eventually(lambda: is_ok(m.lock("running")))


def test_kill_session_releases_locks_and_ends_the_session(agent, m):
    victim = agent.quiet()
    assert_ok(victim.lock("running"))
    assert_ok(m.kill_session(victim.session_id))
    # Locks are released by the time kill-session answers.
    assert_ok(m.lock("running"))
    assert eventually(lambda: not victim.connected)

    def session_ids():
        return xp(data_of(m.get()), "//ncm:sessions/ncm:session/ncm:session-id/text()")

    assert eventually(lambda: session_ids() == [m.session_id])


def test_kill_session_errors(m):
    e = one_error(m.kill_session(m.session_id))
    assert (e["tag"], e["info"]) == ("invalid-value", {"bad-element": "session-id"})
    e = one_error(m.kill_session("4242"))
    assert (e["tag"], e["info"]) == ("invalid-value", {"bad-element": "session-id"})


def test_close_session_ends_the_session(agent, m):
    other = agent.quiet()
    sid = other.session_id
    assert_ok(other.close_session())
    assert eventually(lambda: sid not in xp(data_of(m.get()), "//ncm:session/ncm:session-id/text()"))
