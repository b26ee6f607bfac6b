"""E-Trunk and Eth-Trunk between two agents, each in its namespace, with Open vSwitch as the
customer edge in a third: a user-space (netdev) bridge with an LACP bond (lacp=active,
lacp-time=fast) over one port to each agent's eth1. OVS is a real LACP partner: the tests read
which members it put in its link aggregation from `ovs-appctl bond/show`, and read the agents'
E-Trunk and member state over NETCONF. tshark decodes the agents' LACPDUs."""

import os
import shutil
import signal
import subprocess
import time

import pytest
from lxml import etree

from conftest import NS_BASE, NS_IANAIFT, NS_IF, NS_IP, data_of, eventually
from netns import Netns, require_root
from ovs import Ovs
from test_interfaces_netns import NsAgent

NS_ET = "urn:mldhb:yang:mldhb-etrunk"
SHARED_SYSID = "00:e0:fc:12:34:56"


class Agent(NsAgent):
    """The agent in its namespace, managing interfaces (E-Trunk runs), without multicast."""

    def __init__(self, ns, workdir):
        os.makedirs(workdir, exist_ok=True)
        super().__init__(ns, workdir)
        with open(self.config, "w") as f:
            f.write(
                f'listen = "127.0.0.1:{self.port}"\ndatastore = "{workdir}/ds"\n'
                "manage_interfaces = true\nmanage_multicast = false\n"
                '[[users]]\nname = "admin"\npassword = "admin"\ngroups = ["admin"]\n'
            )


def etrunk_config(me, peer, priority, mode="auto"):
    return (
        f'<config xmlns="{NS_BASE}">'
        f'<lacp xmlns="{NS_ET}"><e-trunk-system-id>{SHARED_SYSID}</e-trunk-system-id>'
        f"<e-trunk-priority>1</e-trunk-priority></lacp>"
        f'<e-trunk xmlns="{NS_ET}"><id>1</id><priority>{priority}</priority>'
        f"<peer-ipv6>2001:db8:10::{peer}</peer-ipv6><source-ipv6>2001:db8:10::{me}</source-ipv6>"
        f"<hello-interval>10</hello-interval><hold-on-failure-multiplier>3</hold-on-failure-multiplier>"
        f"<security-key><key>mldhb-example-key</key></security-key></e-trunk>"
        f'<interfaces xmlns="{NS_IF}" xmlns:t="{NS_IANAIFT}">'
        f"<interface><name>eth2</name><type>t:ethernetCsmacd</type>"
        f'<ipv6 xmlns="{NS_IP}"><address><ip>2001:db8:10::{me}</ip><prefix-length>64</prefix-length>'
        f"</address></ipv6></interface>"
        f"<interface><name>eth1</name><type>t:ethernetCsmacd</type>"
        f'<member-of-eth-trunk xmlns="{NS_ET}">1</member-of-eth-trunk></interface>'
        f"<interface><name>Eth-Trunk1</name><type>t:ieee8023adLag</type>"
        f'<eth-trunk xmlns="{NS_ET}"><trunk-id>1</trunk-id><mode>lacp-static</mode>'
        f"<e-trunk>1</e-trunk><e-trunk-mode>{mode}</e-trunk-mode></eth-trunk>"
        f'<ipv6 xmlns="{NS_IP}"><address><ip>2001:db8:1::{me}</ip><prefix-length>64</prefix-length>'
        f"</address></ipv6></interface>"
        f"</interfaces></config>"
    )


class Pair:
    """Devices A and B, and the customer edge CE with OVS."""

    def __init__(self, tag, workdir):
        self.a, self.b, self.ce = (Netns(f"{n}{tag}") for n in ("eta", "etb", "etc"))
        self.workdir = workdir
        sh = subprocess.run
        for dev, port in ((self.a, "pa"), (self.b, "pb")):
            sh(["ip", "link", "add", "eth1", "netns", dev.name, "type", "veth", "peer",
                "name", port, "netns", self.ce.name], check=True)
            dev.run("ip", "link", "set", "eth1", "up")
            self.ce.run("ip", "link", "set", port, "up")
        sh(["ip", "link", "add", "eth2", "netns", self.a.name, "type", "veth", "peer",
            "name", "eth2", "netns", self.b.name], check=True)
        for dev in (self.a, self.b):
            dev.run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
            dev.run("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
            dev.run("sysctl", "-qw", "net.ipv6.conf.eth2.accept_dad=0")
            dev.run("ip", "link", "set", "eth2", "up")
        self.ovs = Ovs(self.ce.name, os.path.join(workdir, "ovs"))
        self.ovs.start()
        self.ovs.vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev")
        self.ovs.vsctl("add-bond", "br0", "bond0", "pa", "pb", "lacp=active",
                       "bond_mode=balance-slb", "other_config:lacp-time=fast")
        self.agents = {}
        self.sessions = {}

    def start(self, which):
        ns = self.a if which == "a" else self.b
        agent = Agent(ns, os.path.join(self.workdir, which))
        self.agents[which] = agent
        self.sessions[which] = agent.start()
        return self.sessions[which]

    def configure(self, mode="auto"):
        for which, me, peer, prio in (("a", 1, 2, 10), ("b", 2, 1, 20)):
            m = self.sessions.get(which) or self.start(which)
            m.edit_config(target="running", config=etrunk_config(me, peer, prio, mode))

    def state(self, which):
        """(E-Trunk state, cause, member selected) as the agent reports them."""
        m = self.sessions[which]
        flt = (f'<filter type="subtree"><e-trunk xmlns="{NS_ET}"/>'
               f'<interfaces xmlns="{NS_IF}"/></filter>')
        d = data_of(m.get(flt))
        ns = {"et": NS_ET, "if": NS_IF}
        st = d.xpath("//et:e-trunk/et:state/text()", namespaces=ns)
        cause = d.xpath("//et:e-trunk/et:cause/text()", namespaces=ns)
        sel = d.xpath("//et:member[et:name='eth1']/et:selected/text()", namespaces=ns)
        return (st[0] if st else None, cause[0] if cause else None,
                sel[0] == "true" if sel else None)

    def close(self):
        for m in self.sessions.values():
            try:
                m.close_session()
            except Exception:
                pass
        for agent in self.agents.values():
            if agent.proc and agent.proc.poll() is None:
                agent.proc.kill()
                agent.proc.wait()
        self.ovs.stop()
        for ns in (self.a, self.b, self.ce):
            ns.delete()


@pytest.fixture
def pair(workdir):
    require_root()
    for tool in ("ovs-vswitchd", "ovsdb-server", "ovsdb-tool"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: scripts/setup installs openvswitch-switch")
    p = Pair(str(os.getpid() % 100000), workdir)
    yield p
    p.close()


def test_master_member_in_the_lag_backup_out_and_member_failure_moves_it(pair):
    pair.configure()
    assert eventually(lambda: pair.state("a")[:1] == ("master",) and pair.state("b")[:1] == ("backup",), 30), \
        (pair.state("a"), pair.state("b"))
    assert eventually(lambda: pair.ovs.enabled_members() == {"pa"}, 20), pair.ovs.appctl("bond/show", "bond0")
    assert pair.state("a")[2] is True and pair.state("b")[2] is False
    lacp = pair.ovs.appctl("lacp/show", "bond0")
    # OVS sees one partner system: the shared LACP system ID.
    assert lacp.count(f"partner sys_id: {SHARED_SYSID}") == 2, lacp
    # A's member link fails: B becomes master, its member joins the aggregation.
    pair.a.run("ip", "link", "set", "eth1", "down")
    assert eventually(lambda: pair.state("b")[:2] == ("master", "peer-eth-trunk-down"), 15), pair.state("b")
    assert pair.state("a")[:2] == ("backup", "local-eth-trunk-down")
    assert eventually(lambda: pair.ovs.enabled_members() == {"pb"}, 15), pair.ovs.appctl("bond/show", "bond0")
    # A's link returns: after the revert delay (default 120 s) A would take over; until then B serves.
    pair.a.run("ip", "link", "set", "eth1", "up")
    time.sleep(5)
    assert pair.state("b")[0] == "master"
    assert pair.ovs.enabled_members() == {"pb"}
    assert pair.state("a")[0] == "backup"


def test_kill_of_the_master_hands_the_lag_to_the_backup(pair):
    pair.configure()
    assert eventually(lambda: pair.ovs.enabled_members() == {"pa"}, 30), pair.ovs.appctl("bond/show", "bond0")
    pair.agents["a"].proc.send_signal(signal.SIGKILL)
    pair.agents["a"].proc.wait()
    # The hold time is 1 s x 3; OVS drops A's member after its 3 s LACP timeout.
    assert eventually(lambda: pair.state("b")[:2] == ("master", "peer-timeout"), 15), pair.state("b")
    assert eventually(lambda: pair.ovs.enabled_members() == {"pb"}, 15), pair.ovs.appctl("bond/show", "bond0")


def test_force_master_on_both_puts_both_in_the_lag(pair):
    pair.configure(mode="force-master")
    assert eventually(lambda: pair.ovs.enabled_members() == {"pa", "pb"}, 30), pair.ovs.appctl("bond/show", "bond0")
    assert pair.state("a")[2] is True and pair.state("b")[2] is True


def test_tshark_decodes_the_lacpdus(pair, workdir):
    if not shutil.which("tshark"):
        pytest.fail("tshark is missing: scripts/setup installs it")
    pcap = os.path.join(workdir, "lacp.pcap")
    caps = []
    for port in ("pa", "pb"):
        cap = subprocess.Popen(
            ["ip", "netns", "exec", pair.ce.name, "tshark", "-q", "-n", "-i", port, "-w",
             f"{pcap}.{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        line = b""
        deadline = time.time() + 20
        while time.time() < deadline and b"Capturing on" not in line:
            line = cap.stderr.readline()
        assert b"Capturing on" in line, "tshark did not start"
        caps.append(cap)
    try:
        pair.configure()
        assert eventually(lambda: pair.ovs.enabled_members() == {"pa"}, 30)
        time.sleep(3)
    finally:
        for cap in caps:
            cap.terminate()
            cap.wait()
    fields = ["eth.src", "lacp.actor.sysid", "lacp.actor.sys_priority", "lacp.actor.key",
              "lacp.actor.state.synchronization", "lacp.actor.state.timeout", "_ws.expert"]
    last = {}
    for port in ("pa", "pb"):
        out = subprocess.run(
            ["tshark", "-n", "-r", f"{pcap}.{port}", "-Y", "lacp", "-T", "fields", "-E",
             "separator=|"] + sum((["-e", f] for f in fields), []),
            check=True, capture_output=True, text=True).stdout
        rows = [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]
        # The agents' LACPDUs, not the ones OVS sends out of the same port.
        ours = [r for r in rows if r["lacp.actor.sysid"] == SHARED_SYSID]
        assert len(ours) >= 3, out
        for r in ours:
            assert r["lacp.actor.sys_priority"] == "1", r
            assert r["lacp.actor.key"] == "2", r
            assert r["lacp.actor.state.timeout"] in ("1", "True"), r
            assert r["_ws.expert"] == "", r
        last[port] = ours[-1]["lacp.actor.state.synchronization"] in ("1", "True")
    # The master's member is in sync, the backup's is not.
    assert last == {"pa": True, "pb": False}, last
