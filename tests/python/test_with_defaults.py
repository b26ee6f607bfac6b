""":with-defaults (RFC 6243) on get, get-config and copy-config: basic mode explicit, and
report-all, report-all-tagged and trim. Defaults come from the YANG modules (ietf-interfaces
`enabled` defaults to true, ietf-netconf-acm `write-default` to deny, ...)."""

import pytest
from conftest import (
    NS_BASE,
    NS_IF,
    assert_ok,
    config,
    data_of,
    dispatch,
    edit,
    interface,
    interfaces,
    one_error,
)

NS_WD = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
NS_WD_ATTR = "urn:ietf:params:xml:ns:netconf:default:1.0"
NS_NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
NS = {"if": NS_IF, "nacm": NS_NACM}
CAP = (
    "urn:ietf:params:netconf:capability:with-defaults:1.0"
    "?basic-mode=explicit&also-supported=report-all,report-all-tagged,trim"
)
TAG = f"{{{NS_WD_ATTR}}}default"


def wd(mode):
    return f'<with-defaults xmlns="{NS_WD}">{mode}</with-defaults>'


def get_config(m, mode=None, source="running", flt=""):
    param = wd(mode) if mode else ""
    return data_of(dispatch(m, f'<get-config xmlns="{NS_BASE}"><source><{source}/></source>{flt}{param}</get-config>'))


def get(m, mode=None, flt=""):
    param = wd(mode) if mode else ""
    return data_of(dispatch(m, f'<get xmlns="{NS_BASE}">{flt}{param}</get>'))


def enabled(data, name):
    """The <enabled> elements of interface `name`."""
    return data.xpath(f"//if:interface[if:name='{name}']/if:enabled", namespaces=NS)


@pytest.fixture
def m(agent):
    with agent.quiet() as m:
        # e0: enabled not set; e1: set to its default; e2: set to another value.
        assert_ok(dispatch(m, edit("running", config(interfaces(
            interface("e0"),
            interface("e1", extra="<enabled>true</enabled>"),
            interface("e2", extra="<enabled>false</enabled>"),
        )))))
        yield m


def test_capability_announced(m):
    assert CAP in m.server_capabilities


def test_explicit_reports_what_was_set(m):
    for data in (get_config(m), get_config(m, "explicit")):
        assert enabled(data, "e0") == []
        assert [e.text for e in enabled(data, "e1")] == ["true"]
        assert [e.text for e in enabled(data, "e2")] == ["false"]
        # The seeded access rules are there, but not the defaults nobody set.
        assert data.xpath("//nacm:nacm/nacm:rule-list", namespaces=NS)
        assert data.xpath("//nacm:nacm/nacm:write-default", namespaces=NS) == []


def test_report_all_adds_defaults(m):
    data = get_config(m, "report-all")
    assert [e.text for e in enabled(data, "e0")] == ["true"]
    assert [e.text for e in enabled(data, "e1")] == ["true"]
    assert [e.text for e in enabled(data, "e2")] == ["false"]
    # Defaults in non-presence containers that hold nothing else.
    assert data.xpath("nacm:nacm/nacm:write-default/text()", namespaces=NS) == ["deny"]
    assert not any(TAG in e.attrib for e in data.iter())


def test_report_all_tagged_marks_defaults(m):
    data = get_config(m, "report-all-tagged")
    e0, e1, e2 = (enabled(data, n)[0] for n in ("e0", "e1", "e2"))
    # Added, and set-to-default, leaves are tagged; a non-default value is not.
    assert (e0.text, e0.get(TAG)) == ("true", "true")
    assert (e1.text, e1.get(TAG)) == ("true", "true")
    assert (e2.text, e2.get(TAG)) == ("false", None)
    wdef = data.xpath("//nacm:write-default", namespaces=NS)[0]
    assert (wdef.text, wdef.get(TAG)) == ("deny", "true")
    # Keys and other explicit values are never tagged.
    names = data.xpath("//if:interface/if:name", namespaces=NS)
    assert [n.get(TAG) for n in names] == [None, None, None]


def test_trim_removes_default_values(m):
    data = get_config(m, "trim")
    assert enabled(data, "e0") == []
    assert enabled(data, "e1") == []
    assert [e.text for e in enabled(data, "e2")] == ["false"]
    assert data.xpath("//nacm:nacm/nacm:write-default", namespaces=NS) == []
    assert data.xpath("//nacm:nacm/nacm:enable-nacm", namespaces=NS) == []


def test_get_honours_with_defaults(m):
    data = get(m, "report-all-tagged")
    e0 = enabled(data, "e0")[0]
    assert (e0.text, e0.get(TAG)) == ("true", "true")
    # State data is still there.
    assert data.xpath("//*[local-name()='netconf-state']")
    assert enabled(get(m, "trim"), "e1") == []
    assert enabled(get(m), "e0") == []


def test_with_defaults_and_subtree_filter(m):
    flt = (f'<filter type="subtree"><interfaces xmlns="{NS_IF}"><interface><name>e0</name>'
           "<enabled/></interface></interfaces></filter>")
    data = get_config(m, "report-all-tagged", flt=flt)
    e = enabled(data, "e0")
    assert [(x.text, x.get(TAG)) for x in e] == [("true", "true")]
    assert get_config(m, "explicit", flt=flt).xpath("//if:enabled", namespaces=NS) == []


def test_with_defaults_and_xpath_filter(m):
    flt = f'<filter type="xpath" xmlns:if="{NS_IF}" select="/if:interfaces/if:interface/if:enabled"/>'
    data = get_config(m, "report-all", flt=flt)
    assert sorted(data.xpath("//if:enabled/text()", namespaces=NS)) == ["false", "true", "true"]
    data = get_config(m, "trim", flt=flt)
    assert data.xpath("//if:enabled/text()", namespaces=NS) == ["false"]


def test_candidate_with_defaults(m):
    assert_ok(dispatch(m, edit("candidate", config(interfaces(interface("c0"))))))
    data = get_config(m, "report-all", source="candidate")
    assert [e.text for e in enabled(data, "c0")] == ["true"]
    assert enabled(get_config(m, source="candidate"), "c0") == []


def copy(m, mode, source="running", target="startup"):
    return dispatch(m, f'<copy-config xmlns="{NS_BASE}"><target><{target}/></target>'
                       f"<source><{source}/></source>{wd(mode)}</copy-config>")


def test_copy_config_report_all_stores_defaults(m):
    assert_ok(copy(m, "report-all"))
    data = get_config(m, source="startup")
    assert [e.text for e in enabled(data, "e0")] == ["true"]
    assert data.xpath("//nacm:write-default/text()", namespaces=NS) == ["deny"]


def test_copy_config_trim_drops_defaults(m):
    assert_ok(copy(m, "trim"))
    data = get_config(m, source="startup")
    assert enabled(data, "e1") == []
    assert [e.text for e in enabled(data, "e2")] == ["false"]


def test_copy_config_explicit_copies_as_is(m):
    assert_ok(copy(m, "explicit"))
    data = get_config(m, source="startup")
    assert enabled(data, "e0") == []
    assert [e.text for e in enabled(data, "e1")] == ["true"]


@pytest.mark.parametrize("op", ["get", "get-config", "copy-config"])
def test_unknown_mode_is_invalid_value(m, op):
    if op == "get":
        reply = dispatch(m, f'<get xmlns="{NS_BASE}">{wd("all")}</get>')
    elif op == "get-config":
        reply = dispatch(m, f'<get-config xmlns="{NS_BASE}"><source><running/></source>{wd("all")}</get-config>')
    else:
        reply = copy(m, "all")
    err = one_error(reply)
    assert (err["type"], err["tag"]) == ("protocol", "invalid-value")
    assert err["info"]["bad-element"] == "with-defaults"
