"""NETCONF access control (RFC 8341) against the real agent: the seeded admin and operator
groups, read pruning, write and exec denials, rules taking effect on commit, enable-nacm, the
recovery user and the denial counters."""

import pytest
from conftest import (
    NS_BASE,
    NS_RBS,
    assert_ok,
    canonical,
    config,
    data_of,
    dispatch,
    edit,
    get_config,
    iface_names,
    interface,
    interfaces,
    one_error,
    rbs_service,
    remote_backup,
    service_ports,
    xp,
)

NS_ACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"

USERS = """
recovery_user = "rescue"
[[users]]
name = "operator"
password = "operator"
groups = ["operator"]
[[users]]
name = "guest"
password = "guest"
groups = ["guests"]
[[users]]
name = "rescue"
password = "rescue"
"""

BASE = config(
    interfaces(interface("dn1", "downstream one"), interface("dn2", "downstream two")),
    remote_backup(rbs_service("rbs1", 2046)),
)


def rule(name, action, ops="*", module=None, rpc=None, path=None):
    r = f"<rule><name>{name}</name>"
    if module:
        r += f"<module-name>{module}</module-name>"
    if rpc:
        r += f"<rpc-name>{rpc}</rpc-name>"
    if path:
        r += f"<path>{path}</path>"
    return r + f"<access-operations>{ops}</access-operations><action>{action}</action></rule>"


def nacm(*content):
    return config(f'<nacm xmlns="{NS_ACM}">' + "".join(content) + "</nacm>")


def guest_rules(*rules):
    return nacm("<rule-list><name>guests</name><group>guests</group>" + "".join(rules) + "</rule-list>")


def counters(m):
    d = data_of(m.get(filter=("subtree", f'<nacm xmlns="{NS_ACM}"/>')))
    return {
        name: int(nsmap_xp(d, f"//acm:nacm/acm:{name}/text()")[0])
        for name in ("denied-operations", "denied-data-writes", "denied-notifications")
    }


def nsmap_xp(node, path):
    return node.xpath(path, namespaces={"acm": NS_ACM, "if": "urn:ietf:params:xml:ns:yang:ietf-interfaces"})


@pytest.fixture
def nacm_agent(agent_factory):
    a = agent_factory(USERS)
    with a.quiet() as m:
        assert_ok(m.edit_config(target="running", config=BASE))
    return a


def test_operator_reads_everything_but_nacm(nacm_agent):
    with nacm_agent.quiet(user="operator", password="operator") as op:
        running = get_config(op)
        assert iface_names(running) == ["dn1", "dn2"]
        assert service_ports(running) == {"rbs1": "2046"}
        assert not running.xpath("//*[local-name()='nacm']")
        state = data_of(op.get())
        assert iface_names(state) == ["dn1", "dn2"]
        assert not state.xpath("//*[local-name()='nacm']")
        assert state.xpath("//*[local-name()='netconf-state']")
    with nacm_agent.quiet() as admin:
        assert get_config(admin).xpath("//*[local-name()='nacm']")


def test_operator_edit_config_denied_and_nothing_changed(nacm_agent):
    with nacm_agent.quiet() as admin:
        before = canonical(get_config(admin))
    with nacm_agent.quiet(user="operator", password="operator") as op:
        for target in ("running", "candidate"):
            e = one_error(dispatch(op, edit(target, config(interfaces(interface("dn1", "hacked"))))))
            assert (e["tag"], e["type"]) == ("access-denied", "protocol")
        e = one_error(dispatch(op, f'<commit xmlns="{NS_BASE}"/>'))
        assert e["tag"] == "access-denied"
        e = one_error(op.copy_config(source="running", target="startup"))
        assert e["tag"] == "access-denied"
        e = one_error(op.lock(target="running"))
        assert e["tag"] == "access-denied"
        # Read-only operations still work.
        assert_ok(dispatch(op, f'<validate xmlns="{NS_BASE}"><source><running/></source></validate>'))
    with nacm_agent.quiet() as admin:
        assert canonical(get_config(admin)) == before
        assert canonical(get_config(admin, "candidate")) == before


def test_write_default_deny_is_an_application_error_with_path(nacm_agent):
    with nacm_agent.quiet() as admin:
        before = canonical(get_config(admin))
    with nacm_agent.quiet(user="guest", password="guest") as g:
        e = one_error(dispatch(g, edit("running", config(interfaces(interface("dn1", "hacked"))))))
        assert (e["tag"], e["type"]) == ("access-denied", "application")
        assert "interface" in e["path"]
        # continue-on-error applies nothing either when access is denied.
        e = one_error(
            dispatch(
                g,
                edit(
                    "running",
                    config(interfaces(interface("dn9", "new"))),
                    error_option="continue-on-error",
                ),
            )
        )
        assert e["tag"] == "access-denied"
    with nacm_agent.quiet() as admin:
        assert canonical(get_config(admin)) == before


def test_kill_session_needs_an_explicit_permit(nacm_agent):
    with nacm_agent.quiet() as admin:
        for user in ("operator", "guest"):
            with nacm_agent.quiet(user=user, password=user) as other:
                e = one_error(other.kill_session(admin.session_id))
                assert (e["tag"], e["type"]) == ("access-denied", "protocol")
                e = one_error(other.delete_config(target="startup"))
                assert e["tag"] == "access-denied"
        assert get_config(admin) is not None  # admin's session survived


def test_admin_has_full_access(nacm_agent):
    victim = nacm_agent.quiet(user="operator", password="operator")
    with nacm_agent.quiet() as admin:
        assert_ok(dispatch(admin, edit("candidate", config(interfaces(interface("dn3", "three"))))))
        assert_ok(admin.commit())
        assert "dn3" in iface_names(get_config(admin))
        assert_ok(admin.lock(target="running"))
        assert_ok(admin.unlock(target="running"))
        assert_ok(admin.copy_config(source="running", target="startup"))
        assert_ok(admin.delete_config(target="startup"))
        assert_ok(admin.kill_session(victim.session_id))


def test_read_rule_hides_a_subtree_from_a_group(nacm_agent):
    with nacm_agent.quiet() as admin:
        assert_ok(
            admin.edit_config(
                target="running",
                config=guest_rules(
                    rule("hide-dn2", "deny", "read", path="/if:interfaces/if:interface[if:name='dn2']"),
                    rule("hide-rbs", "deny", "read", module="mldhb-rbs"),
                ),
            )
        )
    with nacm_agent.quiet(user="guest", password="guest") as g:
        assert iface_names(get_config(g)) == ["dn1"]
        assert service_ports(get_config(g)) == {}
        assert iface_names(data_of(g.get())) == ["dn1"]
        # Filters cannot reach hidden nodes either.
        by_xpath = data_of(g.get_config(source="running", filter=("xpath", "//*[local-name()='name']")))
        assert "dn2" not in [n.text for n in by_xpath.iter()]
    with nacm_agent.quiet(user="operator", password="operator") as op:
        assert iface_names(get_config(op)) == ["dn1", "dn2"]


def test_write_rule_permits_one_subtree(nacm_agent):
    with nacm_agent.quiet() as admin:
        assert_ok(
            admin.edit_config(
                target="running",
                config=guest_rules(rule("rbs-write", "permit", "create update delete", path="/rbs:remote-backup")),
            )
        )
    with nacm_agent.quiet(user="guest", password="guest") as g:
        assert_ok(g.edit_config(target="running", config=config(remote_backup(rbs_service("rbs1", 3000)))))
        assert service_ports(get_config(g)) == {"rbs1": "3000"}
        e = one_error(dispatch(g, edit("running", config(interfaces(interface("dn1", "x"))))))
        assert e["tag"] == "access-denied"
        # One denied node in an edit denies the whole edit.
        mixed = config(
            remote_backup(rbs_service("rbs1", 3001)), interfaces(interface("dn1", "x"))
        )
        e = one_error(dispatch(g, edit("running", mixed)))
        assert e["tag"] == "access-denied"
        assert service_ports(get_config(g)) == {"rbs1": "3000"}


def test_exec_rule_denies_an_rpc(nacm_agent):
    with nacm_agent.quiet() as admin:
        assert_ok(
            admin.edit_config(
                target="running",
                config=guest_rules(
                    rule("no-get-schema", "deny", "exec", module="ietf-netconf-monitoring", rpc="get-schema"),
                    rule("no-validate", "deny", "exec", module="ietf-netconf", rpc="validate"),
                ),
            )
        )
    with nacm_agent.quiet(user="guest", password="guest") as g:
        e = one_error(g.get_schema("ietf-interfaces"))
        assert (e["tag"], e["type"]) == ("access-denied", "protocol")
        e = one_error(dispatch(g, f'<validate xmlns="{NS_BASE}"><source><running/></source></validate>'))
        assert e["tag"] == "access-denied"
        assert get_config(g) is not None
    with nacm_agent.quiet(user="operator", password="operator") as op:
        assert "module" in op.get_schema("ietf-interfaces").xml


def test_rules_take_effect_when_committed(nacm_agent):
    with nacm_agent.quiet() as admin, nacm_agent.quiet(user="guest", password="guest") as g:
        hide = guest_rules(rule("hide-ifs", "deny", "read", module="ietf-interfaces"))
        assert_ok(admin.edit_config(target="candidate", config=hide))
        assert iface_names(get_config(g)) == ["dn1", "dn2"]
        assert_ok(admin.commit())
        assert iface_names(get_config(g)) == []


def test_enable_nacm_false_turns_access_control_off(nacm_agent):
    victim = nacm_agent.quiet()
    assert_ok(victim.edit_config(target="running", config=nacm("<enable-nacm>false</enable-nacm>")))
    with nacm_agent.quiet(user="guest", password="guest") as g:
        assert_ok(g.edit_config(target="running", config=config(interfaces(interface("dn1", "guest was here")))))
        assert get_config(g).xpath("//*[local-name()='nacm']")
        assert_ok(g.kill_session(victim.session_id))
        assert_ok(g.edit_config(target="running", config=nacm("<enable-nacm>true</enable-nacm>")))
        e = one_error(dispatch(g, edit("running", config(interfaces(interface("dn1", "again"))))))
        assert e["tag"] == "access-denied"


def test_recovery_user_bypasses_nacm(nacm_agent):
    with nacm_agent.quiet() as admin:
        # Lock everyone out, admin included.
        assert_ok(
            admin.edit_config(
                target="running",
                config=nacm(
                    "<rule-list><name>admin</name><group>admin</group>"
                    + rule("permit-all", "deny")
                    + "</rule-list>"
                ),
            )
        )
        e = one_error(dispatch(admin, edit("running", config(interfaces(interface("dn1", "x"))))))
        assert e["tag"] == "access-denied"
    with nacm_agent.quiet(user="rescue", password="rescue") as r:
        assert get_config(r).xpath("//*[local-name()='nacm']")
        assert_ok(
            r.edit_config(
                target="running",
                config=nacm(
                    "<rule-list><name>admin</name><group>admin</group>"
                    + rule("permit-all", "permit")
                    + "</rule-list>"
                ),
            )
        )
    with nacm_agent.quiet() as admin:
        assert_ok(admin.edit_config(target="running", config=config(interfaces(interface("dn1", "back")))))


def test_denials_are_counted(nacm_agent):
    with nacm_agent.quiet() as admin:
        before = counters(admin)
        with nacm_agent.quiet(user="operator", password="operator") as op:
            one_error(dispatch(op, edit("running", config(interfaces(interface("dn1", "x"))))))
            one_error(op.kill_session(admin.session_id))
            # Counters are under /nacm, which the operator cannot read.
            assert not data_of(op.get()).xpath("//*[local-name()='denied-operations']")
        with nacm_agent.quiet(user="guest", password="guest") as g:
            one_error(dispatch(g, edit("running", config(interfaces(interface("dn1", "x"))))))
        after = counters(admin)
        assert after["denied-operations"] == before["denied-operations"] + 2
        assert after["denied-data-writes"] == before["denied-data-writes"] + 1
        assert after["denied-notifications"] == before["denied-notifications"]


def test_seed_lists_config_users_in_groups(nacm_agent):
    with nacm_agent.quiet() as admin:
        d = get_config(admin)
        admins = nsmap_xp(d, "//acm:group[acm:name='admin']/acm:user-name/text()")
        operators = nsmap_xp(d, "//acm:group[acm:name='operator']/acm:user-name/text()")
        assert admins == ["admin"]
        assert operators == ["operator"]
        assert NS_RBS  # the modules are all loaded


def test_seeded_rules_apply_while_running_has_no_nacm(nacm_agent):
    with nacm_agent.quiet() as admin:
        assert_ok(dispatch(admin, edit("running", BASE, default_operation="replace")))
        assert not get_config(admin).xpath("//*[local-name()='nacm']")
        assert_ok(admin.edit_config(target="running", config=config(interfaces(interface("dn1", "still admin")))))
    with nacm_agent.quiet(user="operator", password="operator") as op:
        e = one_error(dispatch(op, edit("running", config(interfaces(interface("dn1", "x"))))))
        assert e["tag"] == "access-denied"
        assert iface_names(get_config(op)) == ["dn1", "dn2"]


def test_notification_rule_hides_events_from_a_group(nacm_agent):
    """A deny rule on netconf-config-change keeps those events from the group's subscribers,
    live and replayed, while other events still arrive."""
    with nacm_agent.quiet() as admin:
        assert_ok(
            admin.edit_config(
                target="running",
                config=nacm(
                    "<rule-list><name>guests</name><group>guests</group>"
                    "<rule><name>no-config-events</name>"
                    "<module-name>ietf-netconf-notifications</module-name>"
                    "<notification-name>netconf-config-change</notification-name>"
                    "<access-operations>read</access-operations><action>deny</action></rule>"
                    "</rule-list>"
                ),
            )
        )
    before = None
    with nacm_agent.quiet() as admin:
        before = counters(admin)["denied-notifications"]
    with nacm_agent.quiet(user="guest", password="guest") as g, nacm_agent.quiet() as admin:
        g.create_subscription(start_time="2000-01-01T00:00:00Z")
        assert_ok(admin.edit_config(target="running", config=config(interfaces(interface("dn3", "three")))))
        seen = []
        while True:
            n = g.take_notification(timeout=3)
            if n is None:
                break
            seen.append(n.notification_xml)
        assert any("replayComplete" in x for x in seen)
        assert any("netconf-session-start" in x for x in seen), seen
        assert not any("netconf-config-change" in x for x in seen), seen
        assert counters(admin)["denied-notifications"] > before


def test_config_change_events_hide_targets_the_receiver_may_not_read(nacm_agent):
    """An operator's netconf-config-change events, live and replayed, carry the edits of data
    the operator can read and none under /nacm (default-deny-all), which get-config hides."""
    change = config(
        interfaces(interface("dn7", "seven")),
        f"<nacm xmlns='{NS_ACM}'><rule-list><name>extra</name><group>guests</group></rule-list></nacm>",
    )

    def events(session):
        seen = []
        while True:
            n = session.take_notification(timeout=3)
            if n is None:
                return seen
            if "netconf-config-change" in n.notification_xml:
                seen.append(n.notification_xml)

    with nacm_agent.quiet(user="operator", password="operator") as op, nacm_agent.quiet() as admin:
        op.create_subscription()
        assert_ok(admin.edit_config(target="running", config=change))
        live = events(op)
    assert live, "the operator saw no config change"
    assert all("ietf-netconf-acm:nacm" not in x for x in live), live
    assert any("interface[ietf-interfaces:name='dn7']" in x for x in live), live
    with nacm_agent.quiet(user="operator", password="operator") as op:
        op.create_subscription(start_time="2000-01-01T00:00:00Z")
        replayed = events(op)
    assert any("dn7" in x for x in replayed), replayed
    assert all("ietf-netconf-acm:nacm" not in x for x in replayed), replayed
    with nacm_agent.quiet() as admin:
        admin.create_subscription(start_time="2000-01-01T00:00:00Z")
        assert any("ietf-netconf-acm:nacm" in x for x in events(admin)), "the admin sees them"
