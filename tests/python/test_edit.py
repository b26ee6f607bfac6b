"""edit-config: every edit operation and default-operation, with their error cases.

Drives the real agent over SSH with ncclient.
"""

from conftest import NS_BASE, NS_IP, assert_ok, canonical, config, dispatch, edit, get_config, iface_names, interface, interfaces, one_error, rbs_service, remote_backup, service_ports, xp, addresses, descriptions


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


# ---------------------------------------------------------------- ncclient idioms


def test_ncclient_idiom_unqualified_config_and_filter(m):
    """The idiom of ncclient's examples and most published scripts: `<config xmlns:xc=...>`
    (no namespace of its own) for edit-config, and a `<filter>` string without one for
    get-config. ncclient puts both under its qualified operation as written."""
    cfg = f'<config xmlns:xc="{NS_BASE}">{interfaces(interface("idiom1", "from a script"))}</config>'
    assert_ok(m.edit_config(target="candidate", config=cfg))
    assert_ok(m.commit())
    assert "idiom1" in iface_names(get_config(m))
    deleted = (
        f'<config xmlns:xc="{NS_BASE}">'
        + interfaces(interface("idiom1", extra="").replace("<interface>", '<interface xc:operation="delete">'))
        + "</config>"
    )
    assert_ok(m.edit_config(target="running", config=deleted))
    assert "idiom1" not in iface_names(get_config(m))
    assert_ok(m.edit_config(target="running", config=cfg))
    only = (
        '<filter type="subtree">'
        + interfaces("<interface><name>idiom1</name></interface>")
        + "</filter>"
    )
    data = m.get_config(source="running", filter=only).data_ele
    assert iface_names(data) == ["idiom1"]
