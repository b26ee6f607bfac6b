"""edit-config error cases, error-option and test-option against the real agent with ncclient.

Each error is checked for its exact error-type, error-tag, error-path or error-info, and the
target datastore is checked to be unchanged (or, with continue-on-error, to hold exactly the
valid edits).
"""

import pytest
from conftest import (
    NS_BASE,
    NS_IF,
    NS_MLD,
    NS_RBS,
    assert_ok,
    canonical,
    config,
    dispatch,
    edit,
    get_config,
    iface_names,
    interface,
    interfaces,
    one_error,
    rbs_service,
    remote_backup,
    rpc_errors,
    service_ports,
)

SEED = config(
    interfaces(interface("dn1", "downstream one", [("2001:db8:1::1", 64)]), interface("up1", "uplink")),
    remote_backup(rbs_service("rbs1", 2046)),
)

RBS_PORT_PATH = "/mldhb-rbs:remote-backup/mldhb-rbs:service[mldhb-rbs:name='{}']/mldhb-rbs:port"


@pytest.fixture
def m(agent):
    with agent.quiet() as mgr:
        assert_ok(mgr.edit_config(target="running", config=SEED))
        yield mgr


def snapshot(m):
    return canonical(get_config(m, "running")), canonical(get_config(m, "candidate"))


def mld(query_interval, max_response_time):
    return (
        f'<mld xmlns="{NS_MLD}"><enable>true</enable><query-interval>{query_interval}</query-interval>'
        f"<max-response-time>{max_response_time}</max-response-time></mld>"
    )


# An interface whose MLD max-response-time is not shorter than its query interval: every value
# has the right type, but the must statement of mldhb-mld is violated.
MUST_VIOLATION = config(interfaces(interface("dn1", extra=mld(5, 10))))
MLD_PATH = "/ietf-interfaces:interfaces/ietf-interfaces:interface[ietf-interfaces:name='dn1']/mldhb-mld:mld"


# ---------------------------------------------------------------- invalid values


@pytest.mark.parametrize("target", ["running", "candidate"])
def test_out_of_range_port_is_invalid_value(m, target):
    before = snapshot(m)
    e = one_error(m.edit_config(target=target, config=config(remote_backup(rbs_service("rbs1", port=80)))))
    assert (e["type"], e["tag"]) == ("application", "invalid-value")
    assert e["path"] == RBS_PORT_PATH.format("rbs1")
    assert snapshot(m) == before


def test_wrong_type_value_is_invalid_value(m):
    before = snapshot(m)
    cfg = config(remote_backup(rbs_service("rbs2", peer="not-an-address")))
    e = one_error(m.edit_config(target="running", config=cfg))
    assert (e["type"], e["tag"]) == ("application", "invalid-value")
    assert e["path"] == "/mldhb-rbs:remote-backup/mldhb-rbs:service[mldhb-rbs:name='rbs2']/mldhb-rbs:peer-ipv6"
    assert snapshot(m) == before


def test_out_of_range_prefix_length_is_invalid_value(m):
    before = snapshot(m)
    e = one_error(m.edit_config(target="running", config=config(interfaces(interface("dn1", addresses=[("2001:db8:9::1", 129)])))))
    assert (e["type"], e["tag"]) == ("application", "invalid-value")
    assert e["path"].endswith("/ietf-ip:address[ietf-ip:ip='2001:db8:9::1']/ietf-ip:prefix-length")
    assert snapshot(m) == before


def test_must_violation_is_operation_failed_with_app_tag(m):
    before = snapshot(m)
    e = one_error(m.edit_config(target="running", config=MUST_VIOLATION))
    assert (e["type"], e["tag"], e["app_tag"]) == ("application", "operation-failed", "must-violation")
    assert e["path"] == MLD_PATH
    assert e["message"] == "The MLD max-response-time must be shorter than the query interval."
    assert snapshot(m) == before


def test_state_data_cannot_be_configured(m):
    cfg = config(remote_backup(f"<service><name>rbs1</name><state>up</state></service>"))
    e = one_error(m.edit_config(target="running", config=cfg))
    assert e["tag"] == "invalid-value"
    assert e["path"] == "/mldhb-rbs:remote-backup/mldhb-rbs:service[mldhb-rbs:name='rbs1']/mldhb-rbs:state"


# ---------------------------------------------------------------- unknown elements and namespaces


def test_unknown_element_names_bad_element(m):
    before = snapshot(m)
    cfg = config(remote_backup("<service><name>rbs1</name><colour>blue</colour></service>"))
    e = one_error(m.edit_config(target="running", config=cfg))
    assert (e["type"], e["tag"]) == ("application", "unknown-element")
    assert e["info"] == {"bad-element": "colour"}
    assert e["path"] == "/mldhb-rbs:remote-backup/mldhb-rbs:service[mldhb-rbs:name='rbs1']"
    assert snapshot(m) == before


def test_unknown_top_level_element_in_known_namespace(m):
    e = one_error(m.edit_config(target="running", config=config(f'<no-such-container xmlns="{NS_RBS}"/>')))
    assert (e["tag"], e["info"]) == ("unknown-element", {"bad-element": "no-such-container"})


def test_unknown_namespace_names_element_and_namespace(m):
    before = snapshot(m)
    cfg = config('<interfaces xmlns="urn:example:not-a-module"><interface><name>x</name></interface></interfaces>')
    e = one_error(m.edit_config(target="running", config=cfg))
    assert (e["type"], e["tag"]) == ("application", "unknown-namespace")
    assert e["info"] == {"bad-element": "interfaces", "bad-namespace": "urn:example:not-a-module"}
    assert snapshot(m) == before


def test_element_of_a_known_module_in_the_wrong_place(m):
    cfg = config(interfaces(f'<interface><name>dn1</name><service xmlns="{NS_RBS}"/></interface>'))
    e = one_error(m.edit_config(target="running", config=cfg))
    assert (e["tag"], e["info"]) == ("unknown-element", {"bad-element": "service"})


def test_missing_list_key(m):
    cfg = config(interfaces("<interface><description>no name</description></interface>"))
    e = one_error(m.edit_config(target="running", config=cfg))
    assert (e["type"], e["tag"]) == ("protocol", "missing-element")
    assert e["info"] == {"bad-element": "name"}


# ---------------------------------------------------------------- error-option

# Two valid new interfaces around three faulty edits.
MIXED = config(
    interfaces(
        interface("new1", "first"),
        interface("dn1", operation="create"),  # data-exists
        f'<interface xmlns:nc="{NS_BASE}" nc:operation="delete"><name>ghost</name></interface>',  # data-missing
        interface("new2", extra="<colour>red</colour>"),  # unknown-element
        interface("new3", "third"),
    )
)


@pytest.mark.parametrize("error_option", [None, "stop-on-error", "rollback-on-error"])
@pytest.mark.parametrize("target", ["running", "candidate"])
def test_stop_and_rollback_leave_the_target_unchanged(m, target, error_option):
    before = snapshot(m)
    r = dispatch(m, edit(target, MIXED, error_option=error_option))
    errs = rpc_errors(r)
    assert [e["tag"] for e in errs] == ["data-exists"]
    assert snapshot(m) == before


@pytest.mark.parametrize("error_option", ["stop-on-error", "rollback-on-error"])
def test_stop_and_rollback_on_invalid_value(m, error_option):
    before = snapshot(m)
    cfg = config(remote_backup(rbs_service("rbs5", 3000), rbs_service("rbs6", port=70000)))
    e = one_error(dispatch(m, edit("running", cfg, error_option=error_option)))
    assert (e["tag"], e["path"]) == ("invalid-value", RBS_PORT_PATH.format("rbs6"))
    assert snapshot(m) == before


@pytest.mark.parametrize("target", ["running", "candidate"])
def test_continue_on_error_applies_valid_edits_and_reports_every_error(m, target):
    r = dispatch(m, edit(target, MIXED, error_option="continue-on-error"))
    errs = rpc_errors(r)
    assert [(e["tag"], e["info"].get("bad-element")) for e in errs] == [
        ("data-exists", None),
        ("data-missing", None),
        ("unknown-element", "colour"),
    ]
    assert errs[0]["path"] == "/ietf-interfaces:interfaces/ietf-interfaces:interface[ietf-interfaces:name='dn1']"
    assert errs[1]["path"] == "/ietf-interfaces:interfaces/ietf-interfaces:interface[ietf-interfaces:name='ghost']"
    data = get_config(m, target)
    # new2 is created from its valid part; its unknown child is not.
    assert iface_names(data) == ["dn1", "new1", "new2", "new3", "up1"]
    descr = {n: data.xpath(f"//if:interface[if:name='{n}']/if:description/text()", namespaces={"if": NS_IF}) for n in ("new1", "new3", "dn1")}
    assert descr == {"new1": ["first"], "new3": ["third"], "dn1": ["downstream one"]}


def test_continue_on_error_with_invalid_values(m):
    cfg = config(
        interfaces(
            interface("dn1", "changed"),
            interface("new1", extra=f'<mld xmlns="{NS_MLD}"><enable>true</enable><robust-count>9</robust-count></mld>'),
            interface("up1", extra="<enabled>maybe</enabled>"),
        ),
        remote_backup(rbs_service("rbs5", 3000)),
    )
    errs = rpc_errors(dispatch(m, edit("running", cfg, error_option="continue-on-error")))
    iface = "/ietf-interfaces:interfaces/ietf-interfaces:interface[ietf-interfaces:name='{}']"
    assert [(e["type"], e["tag"], e["path"]) for e in errs] == [
        ("application", "invalid-value", iface.format("new1") + "/mldhb-mld:mld/mldhb-mld:robust-count"),
        ("application", "invalid-value", iface.format("up1") + "/ietf-interfaces:enabled"),
    ]
    data = get_config(m)
    ns = {"if": NS_IF, "mld": NS_MLD}
    assert data.xpath("//if:interface[if:name='dn1']/if:description/text()", namespaces=ns) == ["changed"]
    assert data.xpath("//if:interface[if:name='new1']/mld:mld/mld:enable/text()", namespaces=ns) == ["true"]
    assert data.xpath("//mld:robust-count", namespaces=ns) == []
    assert data.xpath("//if:interface[if:name='up1']/if:enabled", namespaces=ns) == []
    assert service_ports(data) == {"rbs1": "2046", "rbs5": "3000"}


def test_unknown_error_option_value(m):
    e = one_error(dispatch(m, edit("running", MIXED, error_option="ignore-everything")))
    assert (e["type"], e["tag"], e["info"]) == ("protocol", "invalid-value", {"bad-element": "error-option"})


# ---------------------------------------------------------------- test-option


@pytest.mark.parametrize("target", ["running", "candidate"])
def test_test_only_changes_nothing(m, target):
    before = snapshot(m)
    cfg = config(remote_backup(rbs_service("rbs8", 8000)))
    assert_ok(dispatch(m, edit(target, cfg, test_option="test-only")))
    assert snapshot(m) == before
    e = one_error(dispatch(m, edit(target, MUST_VIOLATION, test_option="test-only")))
    assert (e["tag"], e["app_tag"]) == ("operation-failed", "must-violation")
    assert snapshot(m) == before


@pytest.mark.parametrize("target", ["running", "candidate"])
def test_test_then_set_rejects_invalid_config(m, target):
    before = snapshot(m)
    e = one_error(dispatch(m, edit(target, MUST_VIOLATION, test_option="test-then-set")))
    assert (e["tag"], e["app_tag"], e["path"]) == ("operation-failed", "must-violation", MLD_PATH)
    assert snapshot(m) == before
    assert_ok(dispatch(m, edit(target, config(interfaces(interface("dn1", extra=mld(125, 10)))), test_option="test-then-set")))
    assert get_config(m, target).xpath("//mld:mld/mld:query-interval/text()", namespaces={"mld": NS_MLD}) == ["125"]


def test_set_on_candidate_defers_validation_to_validate_and_commit(m):
    running_before = canonical(get_config(m, "running"))
    assert_ok(dispatch(m, edit("candidate", MUST_VIOLATION, test_option="set")))
    cand = get_config(m, "candidate")
    assert cand.xpath("//mld:mld/mld:max-response-time/text()", namespaces={"mld": NS_MLD}) == ["10"]
    for reply in (m.validate(source="candidate"), m.commit()):
        e = one_error(reply)
        assert (e["type"], e["tag"], e["app_tag"]) == ("application", "operation-failed", "must-violation")
        assert e["path"] == MLD_PATH
    assert canonical(get_config(m, "running")) == running_before
    # Fixing the candidate makes it committable.
    assert_ok(dispatch(m, edit("candidate", config(interfaces(interface("dn1", extra=mld(125, 10)))), test_option="set")))
    assert_ok(m.validate(source="candidate"))
    assert_ok(m.commit())
    running = get_config(m, "running")
    assert running.xpath("//mld:mld/mld:query-interval/text()", namespaces={"mld": NS_MLD}) == ["125"]


def test_set_on_running_still_validates(m):
    before = snapshot(m)
    e = one_error(dispatch(m, edit("running", MUST_VIOLATION, test_option="set")))
    assert (e["tag"], e["app_tag"]) == ("operation-failed", "must-violation")
    assert snapshot(m) == before


def test_unknown_test_option_value(m):
    e = one_error(dispatch(m, edit("running", MUST_VIOLATION, test_option="maybe")))
    assert (e["type"], e["tag"], e["info"]) == ("protocol", "invalid-value", {"bad-element": "test-option"})


def test_service_ports_unchanged_after_failed_edits(m):
    for port in (0, 1023, 55536):
        one_error(m.edit_config(target="running", config=config(remote_backup(rbs_service("rbs1", port)))))
    assert service_ports(get_config(m)) == {"rbs1": "2046"}
    assert_ok(m.edit_config(target="running", config=config(remote_backup(rbs_service("rbs1", 55535)))))
    assert service_ports(get_config(m)) == {"rbs1": "55535"}
