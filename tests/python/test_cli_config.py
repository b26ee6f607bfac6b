"""`mldhb cli` configuration against the real agent: each scenario's configuration made over
NETCONF is shown by `display current-configuration`, fed back in batch mode into a fresh agent
and compared as XML; each scenario's text from SCENARIOS.md yields the same running
configuration as the equivalent NETCONF edit."""

import pytest

from cli_helpers import SCENARIOS, batch, cli, edit_running, ok, running_xml


def wrap(text):
    return "system-view\n" + text + "commit\n"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_display_round_trips_into_a_fresh_agent(agent_factory, name):
    xml, _ = SCENARIOS[name]
    a = agent_factory(name="a")
    b = agent_factory(name="b")
    with a.quiet() as m:
        edit_running(m, xml())
        want = running_xml(m)
    shown = ok(cli(a, "-c", "display current-configuration"))
    # Everything but the NACM rules is expressed as commands.
    comments = [l for l in shown.splitlines() if l.startswith("#  ")]
    assert comments and all("ietf-netconf-acm:nacm" in l for l in comments), shown
    # Keys are shown only as cipher text.
    assert "mldhb-rbs-key" not in shown and "security-key cipher %^%#" in shown, shown
    ok(batch(b, wrap(shown)))
    with b.quiet() as m:
        assert running_xml(m) == want, shown
    # The fresh agent shows the same text.
    assert ok(cli(b, "-c", "display current-configuration")) == shown


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_text_equals_the_netconf_edit(agent_factory, name):
    xml, text = SCENARIOS[name]
    a = agent_factory(name="a")
    b = agent_factory(name="b")
    with a.quiet() as m:
        edit_running(m, xml())
        want = running_xml(m)
    script = b.workdir + "/scenario.txt"
    with open(script, "w") as f:
        f.write(wrap(text()))
    ok(cli(b, script))
    with b.quiet() as m:
        assert running_xml(m) == want
        assert running_xml(m, "candidate") == want


def test_sysname_sets_the_prompt_and_round_trips(agent):
    ok(cli(agent, "-c", "system-view; sysname edge-A; commit"))
    shown = ok(cli(agent, "-c", "display current-configuration"))
    assert shown.startswith("#\nsysname edge-A\n"), shown


def test_undo_removes_and_deletes(agent):
    ok(batch(agent, wrap(SCENARIOS["vrrp6-master-backup-A"][1]())))
    ok(batch(agent, wrap(
        "interface eth1\n"
        " undo vrrp6 vrid 1 priority\n"
        " undo vrrp6 vrid 1 virtual-ip 2001:db8:1::100\n"
        " undo mld enable\n"
        " description downstream to H\n"
        " shutdown\n"
        "remote-backup-service rbs1\n"
        " undo security-key\n"
    )))
    shown = ok(cli(agent, "-c", "display current-configuration"))
    assert " vrrp6 vrid 1 priority" not in shown
    assert "virtual-ip 2001:db8:1::100" not in shown
    assert "virtual-ip fe80::1 link-local" in shown
    assert " mld enable" not in shown and " multicast ipv6 track vrrp6 vrid 1" in shown
    assert " description downstream to H\n" in shown and " shutdown\n" in shown
    assert "security-key" not in shown
    ok(batch(agent, wrap("interface eth1\n undo shutdown\n undo description\n")))
    shown = ok(cli(agent, "-c", "display current-configuration"))
    assert "shutdown" not in shown and "description" not in shown


def test_display_this_shows_the_view(agent):
    ok(batch(agent, wrap(SCENARIOS["etrunk-active-active-A"][1]())))
    out = ok(cli(agent, "-c", "system-view; interface Eth-Trunk1; display this"))
    assert out == (
        "#\ninterface Eth-Trunk1\n mode lacp-static\n e-trunk 1\n e-trunk mode force-master\n"
        " ipv6 address 2001:db8:1::1/64\n mld enable\n remote-backup-profile rbp1\n#\n"
    ), out
    out = ok(cli(agent, "-c", "system-view; e-trunk 1; display this"))
    assert " priority 10\n" in out and "timer hold-on-failure multiplier 3" in out


def test_cipher_key_input_keeps_a_simple_key_simple(agent_factory):
    a = agent_factory(name="a")
    ok(batch(a, wrap("remote-backup-service s\n peer-ipv6 2001:db8::2 source-ipv6 2001:db8::1 port 2000\n"
                     " security-key simple k3y\n")))
    shown = ok(cli(a, "-c", "display current-configuration"))
    line = [l for l in shown.splitlines() if "security-key" in l][0]
    b = agent_factory(name="b")
    ok(batch(b, wrap("remote-backup-service s\n peer-ipv6 2001:db8::2 source-ipv6 2001:db8::1 port 2000\n"
                     + line + "\n")))
    with a.quiet() as ma, b.quiet() as mb:
        assert running_xml(ma) == running_xml(mb)
