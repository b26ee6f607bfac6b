"""Every NETCONF operation and edit operation against the real agent over SSH with ncclient.

Covers get, get-config, edit-config (merge, replace, create, delete, remove; default-operation
merge/replace/none), copy-config, delete-config, lock, unlock, commit, discard-changes, validate,
close-session, kill-session and get-schema; locks across sessions; the shared candidate; subtree
and XPath filters; ietf-netconf-monitoring and the YANG library.
"""

import re

import pytest
from conftest import (
    NS_BASE,
    NS_IF,
    NS_IP,
    NS_NCM,
    NS_RBS,
    NS_YL,
    assert_ok,
    canonical,
    config,
    data_of,
    dispatch,
    edit,
    eventually,
    get_config,
    iface_names,
    interface,
    interfaces,
    is_ok,
    one_error,
    rbs_service,
    remote_backup,
    service_ports,
    xp,
)

BASE_CONFIG = config(
    interfaces(
        interface("dn1", "downstream one", [("2001:db8:1::1", 64)]),
        interface("dn2", "downstream two", [("2001:db8:2::1", 64), ("2001:db8:2::2", 64)]),
        interface("up1", "uplink"),
    ),
    remote_backup(rbs_service("rbs1", 2046), rbs_service("rbs2", 2047, peer="2001:db8::3")),
)


@pytest.fixture
def m(agent):
    with agent.quiet() as mgr:
        yield mgr


@pytest.fixture
def seeded(agent, m):
    """An agent whose running (and candidate) hold BASE_CONFIG."""
    assert_ok(m.edit_config(target="running", config=BASE_CONFIG))
    return m


def descriptions(data):
    return {
        i.findtext(f"{{{NS_IF}}}name"): i.findtext(f"{{{NS_IF}}}description")
        for i in xp(data, "//if:interfaces/if:interface")
    }


def addresses(data, name):
    return sorted(xp(data, f"//if:interface[if:name='{name}']/ip:ipv6/ip:address/ip:ip/text()"))


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


# ---------------------------------------------------------------- edit-config operations


def test_merge_adds_and_changes_leaves(seeded):
    cfg = config(interfaces(interface("dn1", "changed", [("2001:db8:1::9", 80)]), interface("dn3")))
    assert_ok(seeded.edit_config(target="running", config=cfg))
    data = get_config(seeded)
    assert descriptions(data) == {"dn1": "changed", "dn2": "downstream two", "dn3": None, "up1": "uplink"}
    assert addresses(data, "dn1") == ["2001:db8:1::1", "2001:db8:1::9"]
    assert xp(data, "//if:interface[if:name='dn1']/ip:ipv6/ip:address[ip:ip='2001:db8:1::9']/ip:prefix-length/text()") == ["80"]


def test_replace_on_a_list_entry_drops_unlisted_children(seeded):
    cfg = config(interfaces(interface("dn2", addresses=[("2001:db8:2::7", 64)], operation="replace")))
    assert_ok(seeded.edit_config(target="running", config=cfg))
    data = get_config(seeded)
    assert descriptions(data)["dn2"] is None
    assert addresses(data, "dn2") == ["2001:db8:2::7"]
    # Siblings of the replaced entry are untouched.
    assert descriptions(data)["dn1"] == "downstream one"
    assert addresses(data, "dn1") == ["2001:db8:1::1"]


def test_create_new_entry_and_data_exists(seeded):
    assert_ok(seeded.edit_config(target="running", config=config(remote_backup(rbs_service("rbs3", 3000, operation="create")))))
    assert service_ports(get_config(seeded))["rbs3"] == "3000"
    before = canonical(get_config(seeded))
    r = seeded.edit_config(target="running", config=config(remote_backup(rbs_service("rbs1", 4000, operation="create"))))
    e = one_error(r)
    assert (e["type"], e["tag"]) == ("application", "data-exists")
    assert e["path"] == "/mldhb-rbs:remote-backup/mldhb-rbs:service[mldhb-rbs:name='rbs1']"
    assert canonical(get_config(seeded)) == before


def test_delete_existing_entry_and_data_missing(seeded):
    cfg = config(interfaces(f'<interface xmlns:nc="{NS_BASE}" nc:operation="delete"><name>up1</name></interface>'))
    assert_ok(seeded.edit_config(target="running", config=cfg))
    assert iface_names(get_config(seeded)) == ["dn1", "dn2"]
    before = canonical(get_config(seeded))
    e = one_error(seeded.edit_config(target="running", config=cfg))
    assert (e["type"], e["tag"]) == ("application", "data-missing")
    assert e["path"] == "/ietf-interfaces:interfaces/ietf-interfaces:interface[ietf-interfaces:name='up1']"
    assert canonical(get_config(seeded)) == before


def test_delete_a_leaf_and_a_nested_list_entry(seeded):
    cfg = config(
        interfaces(
            f'<interface xmlns:nc="{NS_BASE}"><name>dn2</name><description nc:operation="delete"/>'
            f'<ipv6 xmlns="{NS_IP}"><address nc:operation="delete"><ip>2001:db8:2::1</ip></address></ipv6>'
            "</interface>"
        )
    )
    assert_ok(seeded.edit_config(target="running", config=cfg))
    data = get_config(seeded)
    assert descriptions(data)["dn2"] is None
    assert addresses(data, "dn2") == ["2001:db8:2::2"]


def test_remove_is_silent_when_absent(seeded):
    cfg = config(remote_backup(f'<service xmlns:nc="{NS_BASE}" nc:operation="remove"><name>rbs2</name></service>'))
    assert_ok(seeded.edit_config(target="running", config=cfg))
    assert service_ports(get_config(seeded)) == {"rbs1": "2046"}
    assert_ok(seeded.edit_config(target="running", config=cfg))
    assert service_ports(get_config(seeded)) == {"rbs1": "2046"}


def test_default_operation_merge_is_the_default(seeded):
    r = dispatch(seeded, edit("running", config(interfaces(interface("dn4", "four"))), default_operation="merge"))
    assert_ok(r)
    assert iface_names(get_config(seeded)) == ["dn1", "dn2", "dn4", "up1"]


def test_default_operation_replace_replaces_the_datastore(seeded):
    r = dispatch(seeded, edit("running", config(interfaces(interface("only", "alone"))), default_operation="replace"))
    assert_ok(r)
    data = get_config(seeded)
    assert iface_names(data) == ["only"]
    assert service_ports(data) == {}


def test_default_operation_none_changes_only_explicit_operations(seeded):
    cfg = config(
        interfaces(
            interface("dn1", "not applied"),
            interface("new1", "created", operation="create"),
            interface("ghost", "not created"),
        )
    )
    assert_ok(dispatch(seeded, edit("running", cfg, default_operation="none")))
    data = get_config(seeded)
    assert iface_names(data) == ["dn1", "dn2", "new1", "up1"]
    assert descriptions(data)["dn1"] == "downstream one"
    assert descriptions(data)["new1"] == "created"


def test_default_operation_none_delete_of_missing_node(seeded):
    cfg = config(remote_backup(f'<service xmlns:nc="{NS_BASE}" nc:operation="delete"><name>nope</name></service>'))
    e = one_error(dispatch(seeded, edit("running", cfg, default_operation="none")))
    assert e["tag"] == "data-missing"


def test_bad_default_operation_value(m):
    e = one_error(dispatch(m, edit("running", config(interfaces(interface("x"))), default_operation="frob")))
    assert (e["type"], e["tag"]) == ("protocol", "invalid-value")
    assert e["info"] == {"bad-element": "default-operation"}


def test_bad_operation_attribute(seeded):
    e = one_error(seeded.edit_config(target="running", config=config(interfaces(interface("dn1", operation="frob")))))
    assert (e["type"], e["tag"]) == ("protocol", "bad-attribute")
    assert e["info"] == {"bad-attribute": "operation", "bad-element": "interface"}


def test_edit_startup_is_refused(m):
    e = one_error(dispatch(m, edit("startup", config(interfaces(interface("x"))))))
    assert (e["type"], e["tag"]) == ("protocol", "operation-not-supported")


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


# ---------------------------------------------------------------- get-schema


def test_get_schema_of_project_and_ietf_modules(m):
    r = m.get_schema("mldhb-rbs")
    assert r.ok
    assert "module mldhb-rbs {" in r.data
    assert "list service {" in r.data
    r = m.get_schema("ietf-interfaces", version="2018-02-20", format="yang")
    assert r.ok and "module ietf-interfaces {" in r.data


def test_get_schema_errors(m):
    e = one_error(m.get_schema("no-such-module"))
    assert (e["tag"], e["info"]) == ("invalid-value", {"bad-element": "identifier"})
    e = one_error(m.get_schema("mldhb-rbs", version="1999-01-01"))
    assert e["tag"] == "invalid-value"
    e = one_error(m.get_schema("mldhb-rbs", format="yin"))
    assert (e["tag"], e["info"]) == ("invalid-value", {"bad-element": "format"})


# ---------------------------------------------------------------- subtree filters


def sub(m, f, source="running"):
    return get_config(m, source, filter=("subtree", f))


def test_subtree_selection_of_a_top_level_container(seeded):
    data = sub(seeded, f'<remote-backup xmlns="{NS_RBS}"/>')
    assert [c.tag for c in data] == [f"{{{NS_RBS}}}remote-backup"]
    assert service_ports(data) == {"rbs1": "2046", "rbs2": "2047"}


def test_subtree_containment_and_selection_nodes(seeded):
    data = sub(seeded, f'<interfaces xmlns="{NS_IF}"><interface><name/><description/></interface></interfaces>')
    assert descriptions(data) == {"dn1": "downstream one", "dn2": "downstream two", "up1": "uplink"}
    for entry in xp(data, "//if:interface"):
        assert sorted(c.tag for c in entry) == [f"{{{NS_IF}}}description", f"{{{NS_IF}}}name"]


def test_subtree_content_match_on_key_returns_whole_entry(seeded):
    data = sub(seeded, f'<interfaces xmlns="{NS_IF}"><interface><name>dn2</name></interface></interfaces>')
    assert iface_names(data) == ["dn2"]
    assert descriptions(data) == {"dn2": "downstream two"}
    assert addresses(data, "dn2") == ["2001:db8:2::1", "2001:db8:2::2"]
    assert len(xp(data, "//if:interface/if:type")) == 1


def test_subtree_content_match_on_non_key_with_selection(seeded):
    data = sub(seeded, f'<remote-backup xmlns="{NS_RBS}"><service><port>2047</port><name/></service></remote-backup>')
    services = xp(data, "//rbs:service")
    assert len(services) == 1
    assert sorted(c.tag.split("}")[1] for c in services[0]) == ["name", "port"]
    assert service_ports(data) == {"rbs2": "2047"}


def test_subtree_content_match_without_a_match_is_empty(seeded):
    data = sub(seeded, f'<interfaces xmlns="{NS_IF}"><interface><name>nosuch</name></interface></interfaces>')
    assert len(data) == 0


def test_subtree_augmented_namespace(seeded):
    f = f'<interfaces xmlns="{NS_IF}"><interface><name>dn1</name><ipv6 xmlns="{NS_IP}"/></interface></interfaces>'
    data = sub(seeded, f)
    entry = xp(data, "//if:interface")
    assert len(entry) == 1
    assert sorted(c.tag for c in entry[0]) == sorted([f"{{{NS_IP}}}ipv6", f"{{{NS_IF}}}name"])
    assert addresses(data, "dn1") == ["2001:db8:1::1"]


def test_subtree_namespace_mismatch_selects_nothing(seeded):
    assert len(sub(seeded, '<interfaces xmlns="urn:example:not-interfaces"/>')) == 0
    f = f'<interfaces xmlns="{NS_IF}"><interface><name>dn1</name><ipv6 xmlns="{NS_RBS}"/></interface></interfaces>'
    assert len(xp(sub(seeded, f), "//ip:ipv6")) == 0


def test_subtree_filter_on_candidate(seeded):
    assert_ok(seeded.edit_config(target="candidate", config=config(remote_backup(rbs_service("rbs7", 7000)))))
    data = sub(seeded, f'<remote-backup xmlns="{NS_RBS}"><service><name>rbs7</name></service></remote-backup>', "candidate")
    assert service_ports(data) == {"rbs7": "7000"}


def test_subtree_filter_on_get_for_monitoring_sessions(agent, m):
    with agent.quiet() as b:
        f = f'<netconf-state xmlns="{NS_NCM}"><sessions><session><session-id/><username/></session></sessions></netconf-state>'
        data = data_of(m.get(filter=("subtree", f)))
        assert [c.tag for c in data] == [f"{{{NS_NCM}}}netconf-state"]
        ids = sorted(int(i) for i in xp(data, "//ncm:session/ncm:session-id/text()"))
        assert ids == sorted([int(m.session_id), int(b.session_id)])
        assert xp(data, "//ncm:session/ncm:username/text()") == ["admin", "admin"]
        assert xp(data, "//ncm:session/ncm:in-rpcs") == []


# ---------------------------------------------------------------- XPath filters


def test_xpath_filter_on_get_config_with_bound_prefixes(seeded):
    f = ("xpath", ({"if": NS_IF}, "/if:interfaces/if:interface[if:name='dn2']/if:description"))
    data = get_config(seeded, filter=f)
    assert xp(data, "//if:interface/if:name/text()") == ["dn2"]
    assert xp(data, "//if:interface/if:description/text()") == ["downstream two"]
    assert xp(data, "//if:interface/if:type") == []
    assert xp(data, "//rbs:remote-backup") == []


def test_xpath_filter_with_module_name_prefixes_and_predicates(seeded):
    data = get_config(seeded, filter=("xpath", "/mldhb-rbs:remote-backup/mldhb-rbs:service[mldhb-rbs:port > 2046]"))
    assert service_ports(data) == {"rbs2": "2047"}


def test_xpath_filter_matching_nothing(seeded):
    data = get_config(seeded, filter=("xpath", ({"if": NS_IF}, "/if:interfaces/if:interface[if:name='zz']")))
    assert len(data) == 0


def test_xpath_filter_with_unknown_prefix(seeded):
    e = one_error(seeded.get_config(source="running", filter=("xpath", ({"q": "urn:example:unknown"}, "/q:x"))))
    assert e["tag"] == "invalid-value"
    assert e["info"] == {"bad-element": "filter"}


def test_xpath_filter_on_get_for_monitoring_sessions(agent, m):
    with agent.quiet() as b:
        data = data_of(m.get(filter=("xpath", ({"ncm": NS_NCM}, "/ncm:netconf-state/ncm:sessions"))))
        ids = sorted(int(i) for i in xp(data, "ncm:netconf-state/ncm:sessions/ncm:session/ncm:session-id/text()"))
        assert ids == sorted([int(m.session_id), int(b.session_id)])
        assert xp(data, "//ncm:datastores") == []


def module_set_id_capability(m):
    for c in m.server_capabilities:
        if c.startswith("urn:ietf:params:netconf:capability:yang-library:1.0?"):
            return re.search(r"module-set-id=([^&]+)", c).group(1)
    raise AssertionError("no yang-library capability")


def test_modules_state_module_set_id_matches_capability(m):
    cap_id = module_set_id_capability(m)
    data = data_of(m.get(filter=("xpath", ({"yl": NS_YL}, "/yl:modules-state/yl:module-set-id"))))
    assert xp(data, "yl:modules-state/yl:module-set-id/text()") == [cap_id]
    data = data_of(m.get(filter=("subtree", f'<modules-state xmlns="{NS_YL}"><module><name>mldhb-rbs</name></module></modules-state>')))
    assert xp(data, "//yl:module/yl:name/text()") == ["mldhb-rbs"]
    assert xp(data, "//yl:module/yl:namespace/text()") == [NS_RBS]


def test_yang_library_lists_project_modules(m):
    cap_id = module_set_id_capability(m)
    data = data_of(m.get(filter=("subtree", f'<yang-library xmlns="{NS_YL}"/>')))
    names = xp(data, "yl:yang-library/yl:module-set/yl:module/yl:name/text()")
    for name in ("mldhb-rbs", "mldhb-mld", "ietf-interfaces", "ietf-ip", "ietf-netconf-monitoring"):
        assert name in names
    assert xp(data, "yl:yang-library/yl:content-id/text()") == [cap_id]
    ns = xp(data, "//yl:module-set/yl:module[yl:name='mldhb-rbs']/yl:namespace/text()")
    assert ns == [NS_RBS]


# ---------------------------------------------------------------- monitoring


def test_monitoring_shows_locks_and_sessions(agent, m):
    with agent.quiet() as b:
        assert_ok(b.lock("running"))
        f = f'<netconf-state xmlns="{NS_NCM}"><datastores/></netconf-state>'
        data = data_of(m.get(filter=("subtree", f)))
        holder = xp(data, "//ncm:datastore[ncm:name='running']/ncm:locks/ncm:global-lock/ncm:locked-by-session/text()")
        assert holder == [b.session_id]
        assert xp(data, "//ncm:datastore[ncm:name='candidate']/ncm:locks") == []
        assert_ok(b.unlock("running"))
        data = data_of(m.get(filter=("subtree", f)))
        assert xp(data, "//ncm:datastore/ncm:locks") == []
        f = f'<netconf-state xmlns="{NS_NCM}"><sessions><session><session-id>{b.session_id}</session-id></session></sessions></netconf-state>'
        data = data_of(m.get(filter=("subtree", f)))
        sess = xp(data, "//ncm:session")
        assert len(sess) == 1
        assert sess[0].findtext(f"{{{NS_NCM}}}username") == "admin"
        assert sess[0].findtext(f"{{{NS_NCM}}}source-host") == "127.0.0.1"
        assert int(sess[0].findtext(f"{{{NS_NCM}}}in-rpcs")) == 2


def test_monitoring_lists_schemas(m):
    f = f'<netconf-state xmlns="{NS_NCM}"><schemas><schema><identifier>mldhb-rbs</identifier></schema></schemas></netconf-state>'
    data = data_of(m.get(filter=("subtree", f)))
    assert xp(data, "//ncm:schema/ncm:namespace/text()") == [NS_RBS]
    assert xp(data, "//ncm:schema/ncm:location/text()") == ["NETCONF"]
