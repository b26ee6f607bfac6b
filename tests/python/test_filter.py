"""Subtree (RFC 6241 §6) and XPath filters on get and get-config.

Drives the real agent over SSH with ncclient.
"""

from conftest import NS_IF, NS_IP, NS_NCM, NS_RBS, assert_ok, config, data_of, get_config, iface_names, interface, interfaces, one_error, rbs_service, remote_backup, service_ports, xp, addresses, descriptions


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
