"""Operations other than edit-config: get, get-config, copy-config, delete-config,
close-session, kill-session.

Drives the real agent over SSH with ncclient.
"""

from conftest import NS_BASE, assert_ok, canonical, config, data_of, dispatch, edit, get_config, iface_names, interface, interfaces, one_error, rbs_service, remote_backup, service_ports, xp, addresses


# ---------------------------------------------------------------- get-config / get


def test_get_config_of_each_datastore(seeded):
    running = get_config(seeded, "running")
    assert iface_names(running) == ["dn1", "dn2", "up1"]
    assert addresses(running, "dn2") == ["2001:db8:2::1", "2001:db8:2::2"]
    assert service_ports(running) == {"rbs1": "2046", "rbs2": "2047"}
    assert canonical(get_config(seeded, "candidate")) == canonical(running)
    assert len(get_config(seeded, "startup")) == 0


def test_get_returns_config_and_state(seeded):
    data = data_of(seeded.get())
    assert iface_names(data) == ["dn1", "dn2", "up1"]
    assert service_ports(data) == {"rbs1": "2046", "rbs2": "2047"}
    ids = xp(data, "ncm:netconf-state/ncm:sessions/ncm:session/ncm:session-id/text()")
    assert str(seeded.session_id) in ids
    # get-config never carries state.
    assert xp(get_config(seeded), "//ncm:netconf-state") == []


def test_get_config_unknown_datastore(m):
    e = one_error(dispatch(m, f'<get-config xmlns="{NS_BASE}"><source><nosuch/></source></get-config>'))
    assert (e["type"], e["tag"]) == ("protocol", "bad-element")
    assert e["info"] == {"bad-element": "source"}


def test_get_config_without_source(m):
    e = one_error(dispatch(m, f'<get-config xmlns="{NS_BASE}"/>'))
    assert (e["type"], e["tag"]) == ("protocol", "missing-element")
    assert e["info"] == {"bad-element": "source"}


def test_unsupported_operation(m):
    e = one_error(dispatch(m, '<frobnicate xmlns="urn:example:ops"/>'))
    assert (e["type"], e["tag"]) == ("protocol", "operation-not-supported")
    assert e["info"] == {"bad-element": "frobnicate"}


# ---------------------------------------------------------------- copy-config / delete-config


def test_copy_running_to_startup_and_delete_startup(seeded):
    assert_ok(seeded.copy_config(source="running", target="startup"))
    assert canonical(get_config(seeded, "startup")) == canonical(get_config(seeded, "running"))
    assert_ok(seeded.delete_config(target="startup"))
    assert len(get_config(seeded, "startup")) == 0
    # running is untouched by delete-config of startup
    assert iface_names(get_config(seeded)) == ["dn1", "dn2", "up1"]


def test_copy_inline_config_to_candidate_then_commit(seeded):
    inline = config(interfaces(interface("copied", "from inline")))
    r = dispatch(seeded, f'<copy-config xmlns="{NS_BASE}"><target><candidate/></target><source>{inline}</source></copy-config>')
    assert_ok(r)
    assert iface_names(get_config(seeded, "candidate")) == ["copied"]
    assert iface_names(get_config(seeded, "running")) == ["dn1", "dn2", "up1"]
    assert_ok(seeded.commit())
    data = get_config(seeded)
    assert iface_names(data) == ["copied"]
    assert service_ports(data) == {}


def test_copy_startup_to_running(seeded):
    assert_ok(seeded.copy_config(source="running", target="startup"))
    assert_ok(dispatch(seeded, edit("running", config(interfaces(interface("extra"))))))
    assert_ok(seeded.copy_config(source="startup", target="running"))
    assert iface_names(get_config(seeded)) == ["dn1", "dn2", "up1"]


def test_copy_invalid_inline_config_to_running_is_refused(seeded):
    inline = config(remote_backup(rbs_service("bad", port=80)))
    r = dispatch(seeded, f'<copy-config xmlns="{NS_BASE}"><target><running/></target><source>{inline}</source></copy-config>')
    e = one_error(r)
    assert (e["type"], e["tag"]) == ("application", "invalid-value")
    assert iface_names(get_config(seeded)) == ["dn1", "dn2", "up1"]


def test_delete_config_of_running_is_refused(seeded):
    e = one_error(dispatch(seeded, f'<delete-config xmlns="{NS_BASE}"><target><running/></target></delete-config>'))
    assert (e["type"], e["tag"]) == ("protocol", "operation-not-supported")
    assert e["info"] == {"bad-element": "target"}
    assert iface_names(get_config(seeded)) == ["dn1", "dn2", "up1"]
