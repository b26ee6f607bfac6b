"""`mldhb cli` displays: aligned tables from `<get>`. The MLD displays run against the live MLD
runtime in namespaces (a kernel host joins groups) and must show the rows `<get>` reports; the
others show configured entries with their state columns."""

import os
import re
import subprocess

from cli_helpers import SCENARIOS, batch, cli, ok
from conftest import BIN
from netns import require_root
from test_interfaces_netns import NsAgent, wait_for
from test_mld_netns import NS_MLD, Topology, group, groups_seen, join_sockets


def rows(table_text):
    """The rows of an aligned table, split on runs of two or more blanks."""
    lines = table_text.splitlines()
    assert set(lines[1]) == {"-"}, table_text
    return [re.split(r"\s{2,}", l.strip()) for l in lines[2:] if l.strip()]


def test_config_displays_without_runtimes(agent):
    ok(batch(agent, "system-view\n" + SCENARIOS["etrunk-master-backup-A"][1]() + "commit\n"))
    out = ok(cli(agent, "-c", "display remote-backup-service"))
    assert out.splitlines()[0].split()[:4] == ["Name", "Peer", "Source", "Port"]
    assert rows(out)[0][:4] == ["rbs1", "2001:db8:10::2", "2001:db8:10::1", "1025"]
    out = ok(cli(agent, "-c", "display remote-backup-profile rbp1"))
    r = rows(out)[0]
    assert r[:6] == ["rbp1", "10", "rbs1", "e-trunk 1 eth-trunk 1", "master-backup", "master-only"]
    assert r[-1] == "Eth-Trunk1"
    out = ok(cli(agent, "-c", "display e-trunk 1"))
    assert rows(out.split("\n\n")[0])[0][:2] == ["1", "10"]
    assert rows(out.split("\n\n")[1])[0][:3] == ["Eth-Trunk1", "1", "auto"]
    assert "No remote backup service named nope" in ok(cli(agent, "-c", "display remote-backup-service nope"))


def test_vrrp6_displays_configured_groups(agent):
    ok(batch(agent, "system-view\n" + SCENARIOS["vrrp6-active-active-A"][1]() + "commit\n"))
    out = ok(cli(agent, "-c", "display vrrp6 brief"))
    (r,) = rows(out)
    assert r[:5] == ["eth1", "1", "-", "200", "100"]
    assert sorted(r[5].split(",")) == ["2001:db8:1::100", "fe80::1"]
    out = ok(cli(agent, "-c", "display vrrp6"))
    assert "eth1 | Virtual Router 1" in out and "Preempt" in out and "enabled, delay 10 s" in out


def cli_in(ns, agent, workdir, command):
    pw = os.path.join(workdir, "pw")
    with open(pw, "w") as f:
        f.write("admin\n")
    p = subprocess.run(
        ["ip", "netns", "exec", ns.name, BIN, "cli", "--port", str(agent.port), "--user", "admin",
         "--password-file", pw, "--known-hosts", os.path.join(workdir, "known_hosts"), "-c", command],
        capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_mld_displays_match_get(workdir):
    require_root()
    topo = Topology(f"cli{os.getpid()}")
    agent = NsAgent(topo.r, workdir)
    m = agent.start()
    try:
        cli_in(topo.r, agent, workdir,
               "system-view; multicast ipv6 routing-enable; interface rd; mld enable; commit")
        joined = [group(i, base=0x7000) for i in range(5)]
        sock = join_sockets(topo.h, joined)
        try:
            assert wait_for(lambda: set(joined) <= groups_seen(m)[0], 20)
            seen, data = groups_seen(m)
            out = cli_in(topo.r, agent, workdir, "display mld group")
            shown = {r[1]: r for r in rows(out)}
            ns = {"mld": NS_MLD}
            for g in data.xpath("//mld:mld/mld:group", namespaces=ns):
                addr = g.findtext(f"{{{NS_MLD}}}address")
                r = shown[addr]
                assert r[0] == "rd"
                assert r[2] == g.findtext(f"{{{NS_MLD}}}filter-mode")
                assert r[3] == g.findtext(f"{{{NS_MLD}}}version")
                assert r[4] == g.findtext(f"{{{NS_MLD}}}origin")
                assert r[5] == g.findtext(f"{{{NS_MLD}}}last-reporter")
            assert set(shown) == set(seen)
            out = cli_in(topo.r, agent, workdir, "display mld interface")
            (r,) = rows(out)
            mld = data.xpath("//mld:mld", namespaces=ns)[0]
            assert r[:2] == ["rd", mld.findtext(f"{{{NS_MLD}}}oper-status")]
            assert r[3] == mld.findtext(f"{{{NS_MLD}}}querier")
            assert int(r[5]) >= len(joined)
            out = cli_in(topo.r, agent, workdir, "display mld interface verbose")
            assert "Interface rd" in out and "Queries sent" in out
        finally:
            sock.close()
    finally:
        m.close_session()
        agent.kill9()
        topo.delete()
