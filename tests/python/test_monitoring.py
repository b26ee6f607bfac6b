"""ietf-netconf-monitoring, get-schema and the YANG library.

Drives the real agent over SSH with ncclient.
"""

import re

from conftest import NS_NCM, NS_RBS, NS_YL, assert_ok, data_of, interfaces, one_error, xp


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


# ---------------------------------------------------------------- YANG library


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
