"""VRRPv3 for IPv6 against keepalived (Debian package) as the other router, each in a network
namespace of the test's own on one veth segment. The agent is configured only through
ietf-vrrp over NETCONF; keepalived with its own configuration file, in the foreground, its state
read from its log. Every test asserts both routers' states and who holds the virtual addresses.
Advertisements every second (100 cs) keep skew and master-down intervals far apart."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest
from lxml import etree

from conftest import NS_BASE, NS_IANAIFT, NS_IF, NS_IP
from netns import Netns, require_root
from test_interfaces_netns import NsAgent

NS_VRRP = "urn:ietf:params:xml:ns:yang:ietf-vrrp"
VRID = 51
VIP_LL = "fe80::51"
VIP = "2001:db8:51::100"
AGENT_IF, KA_IF = "va", "vk"


def skew(priority, interval=1.0):
    return (256 - priority) * interval / 256


def master_down(priority, interval=1.0):
    return 3 * interval + skew(priority, interval)


def vrrp_config(priority, accept=True, hold=0, extra=""):
    return (
        f'<config xmlns="{NS_BASE}"><interfaces xmlns="{NS_IF}" xmlns:t="{NS_IANAIFT}">'
        f"<interface><name>{AGENT_IF}</name><type>t:ethernetCsmacd</type>"
        f'<ipv6 xmlns="{NS_IP}"><address><ip>2001:db8:51::1</ip><prefix-length>64</prefix-length></address>'
        f'<vrrp xmlns="{NS_VRRP}" xmlns:vrrp="{NS_VRRP}"><vrrp-instance>'
        f"<vrid>{VRID}</vrid><version>vrrp:vrrp-v3</version><priority>{priority}</priority>"
        f"<preempt><enabled>true</enabled><hold-time>{hold}</hold-time></preempt>"
        f"<accept-mode>{'true' if accept else 'false'}</accept-mode>"
        f"<advertise-interval-centi-sec>100</advertise-interval-centi-sec>"
        f"<virtual-ipv6-addresses>"
        f"<virtual-ipv6-address><ipv6-address>{VIP_LL}</ipv6-address></virtual-ipv6-address>"
        f"<virtual-ipv6-address><ipv6-address>{VIP}</ipv6-address></virtual-ipv6-address>"
        f"</virtual-ipv6-addresses>{extra}</vrrp-instance></vrrp></ipv6></interface></interfaces></config>"
    )


class Agent(NsAgent):
    """The agent in its namespace, managing interfaces (so VRRP6 runs), without multicast."""

    def __init__(self, ns, workdir):
        super().__init__(ns, workdir)
        with open(self.config, "w") as f:
            f.write(
                f'listen = "127.0.0.1:{self.port}"\ndatastore = "{workdir}/ds"\n'
                "manage_interfaces = true\nmanage_multicast = false\n"
                '[[users]]\nname = "admin"\npassword = "admin"\ngroups = ["admin"]\n'
            )

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)


class Keepalived:
    """keepalived's VRRP process alone, in the foreground, with its own files."""

    def __init__(self, ns, workdir, priority, preempt=True):
        self.ns = ns
        self.dir = os.path.join(workdir, "keepalived")
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "keepalived.conf")
        self.logpath = os.path.join(self.dir, "log")
        nopreempt = "" if preempt else "  nopreempt\n"
        with open(self.conf, "w") as f:
            f.write(
                "global_defs {\n  router_id ka\n  vrrp_version 3\n"
                "  enable_script_security\n  script_user root\n"
                "  vrrp_garp_master_repeat 1\n}\n"
                "vrrp_instance V6 {\n  state BACKUP\n"
                f"  interface {KA_IF}\n  virtual_router_id {VRID}\n  priority {priority}\n"
                "  advert_int 1\n  native_ipv6\n"
                f"{nopreempt}"
                f"  virtual_ipaddress {{\n    {VIP_LL}/64\n    {VIP}/128\n  }}\n}}\n"
            )
        self.proc = None

    def start(self):
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns.name, "keepalived", "-n", "-l", "-D", "-G", "-P",
             "-f", self.conf, "-p", os.path.join(self.dir, "ka.pid"),
             "-r", os.path.join(self.dir, "vrrp.pid")],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        return self

    def state(self):
        """The state keepalived last entered, from its log ('MASTER', 'BACKUP', 'FAULT')."""
        with open(self.logpath, errors="replace") as f:
            found = re.findall(r"\(V6\) Entering (\w+) STATE", f.read())
        return found[-1] if found else None

    def vrrp_pid(self):
        with open(os.path.join(self.dir, "vrrp.pid")) as f:
            return int(f.read().strip())

    def kill9(self):
        """Both keepalived processes die at once: no priority 0, addresses left behind."""
        vrrp = self.vrrp_pid()
        os.kill(vrrp, signal.SIGKILL)
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Lab:
    """agent (va) ── (vk) keepalived, one segment."""

    def __init__(self, tag, workdir):
        self.a = Netns(f"mldhb-va-{tag}")
        self.k = Netns(f"mldhb-vk-{tag}")
        for ns in (self.a, self.k):
            for key in ("all.accept_dad", "default.accept_dad"):
                ns.run("sysctl", "-qw", f"net.ipv6.conf.{key}=0")
            ns.run("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        self.a.run("ip", "link", "add", AGENT_IF, "type", "veth", "peer", "name", KA_IF,
                   "netns", self.k.name)
        self.k.run("ip", "addr", "add", "2001:db8:51::2/64", "dev", KA_IF, "nodad")
        for ns, dev in ((self.a, AGENT_IF), (self.k, KA_IF)):
            ns.run("ip", "link", "set", dev, "up")
        for ns, dev in ((self.a, AGENT_IF), (self.k, KA_IF)):
            assert wait(lambda: "fe80" in ns.run("ip", "-6", "addr", "show", "dev", dev)
                        and "tentative" not in ns.run("ip", "-6", "addr", "show", "dev", dev))
        self.workdir = workdir
        self.agent = Agent(self.a, workdir)
        self.ka = None
        self.m = None

    def start_agent(self):
        self.m = self.agent.start()
        return self.m

    def start_keepalived(self, priority, preempt=True):
        self.ka = Keepalived(self.k, self.workdir, priority, preempt).start()
        return self.ka

    def agent_state(self):
        data = self.m.get(filter=("subtree", f'<interfaces xmlns="{NS_IF}"/>')).data
        ns = {"if": NS_IF, "v": NS_VRRP}
        inst = data.xpath(f"//if:interface[if:name='{AGENT_IF}']//v:vrrp-instance[v:vrid='{VRID}']",
                          namespaces=ns)
        if not inst:
            return None, None
        state = inst[0].findtext(f"{{{NS_VRRP}}}state") or ""
        return state.split(":")[-1], inst[0]

    def holds(self, ns, dev):
        """Which virtual addresses the namespace's interface carries."""
        out = ns.run("ip", "-6", "-o", "addr", "show", "dev", dev, check=False)
        return {a for a in (VIP_LL, VIP) if f" {a}/" in out}

    def delete(self):
        if self.m is not None:
            try:
                self.m.close_session()
            except Exception:
                pass
        if self.agent.proc and self.agent.proc.poll() is None:
            self.agent.kill9()
        if self.ka:
            self.ka.stop()
        self.a.delete()
        self.k.delete()


def wait(pred, timeout=15, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


@pytest.fixture
def lab(workdir):
    require_root()
    if not shutil.which("keepalived"):
        pytest.fail("keepalived is missing: scripts/setup installs it")
    lab = Lab(os.getpid(), workdir)
    yield lab
    lab.delete()


def agent_is(lab, state):
    return lab.agent_state()[0] == state


def test_keepalived_master_agent_backup_then_agent_preempts(lab):
    lab.start_keepalived(150)
    assert wait(lambda: lab.ka.state() == "MASTER", 20), "keepalived did not become master"
    m = lab.start_agent()
    m.edit_config(target="running", config=vrrp_config(100))
    assert wait(lambda: agent_is(lab, "backup"))
    # A backup for longer than its master-down interval: it hears keepalived.
    time.sleep(master_down(100) + 1)
    state, inst = lab.agent_state()
    assert state == "backup"
    assert lab.ka.state() == "MASTER"
    assert lab.holds(lab.k, KA_IF) == {VIP_LL, VIP}
    assert lab.holds(lab.a, AGENT_IF) == set()
    ka_ll = lab.k.run("ip", "-6", "-o", "addr", "show", "dev", KA_IF, "scope", "link")
    assert inst.findtext(f"{{{NS_VRRP}}}last-adv-source") in ka_ll
    assert inst.findtext(f"{{{NS_VRRP}}}master-down-interval") == str(int(master_down(100) * 100))
    assert int(inst.findtext(f"{{{NS_VRRP}}}statistics/{{{NS_VRRP}}}advertisement-rcvd")) >= 3

    # Higher priority: the agent preempts (discarding keepalived's advertisements, it takes
    # over when its master-down interval runs out) and keepalived steps back.
    t0 = time.time()
    m.edit_config(target="running", config=vrrp_config(200))
    assert wait(lambda: agent_is(lab, "master"), master_down(200) + 3)
    took = time.time() - t0
    assert took <= master_down(200) + 1.5, took
    assert wait(lambda: lab.ka.state() == "BACKUP", 5)
    assert wait(lambda: lab.holds(lab.a, AGENT_IF) == {VIP_LL, VIP})
    assert wait(lambda: lab.holds(lab.k, KA_IF) == set())
    state, inst = lab.agent_state()
    assert inst.findtext(f"{{{NS_VRRP}}}new-master-reason") == "preempted"


def test_keepalived_killed_agent_takes_over_within_master_down(lab):
    lab.start_keepalived(150)
    assert wait(lambda: lab.ka.state() == "MASTER", 20)
    m = lab.start_agent()
    m.edit_config(target="running", config=vrrp_config(100))
    assert wait(lambda: agent_is(lab, "backup"))
    time.sleep(2)
    assert lab.holds(lab.a, AGENT_IF) == set()
    listener = lab.agent.connect()
    listener.create_subscription()
    t0 = time.time()
    lab.ka.kill9()
    assert wait(lambda: agent_is(lab, "master"), master_down(100) + 3), "agent did not take over"
    took = time.time() - t0
    assert took <= master_down(100) + 1, f"takeover after {took:.2f} s"
    # Not sooner than the master-down interval less the time since keepalived's last one.
    assert took >= master_down(100) - 1 - 0.2, f"takeover after only {took:.2f} s"
    assert wait(lambda: lab.holds(lab.a, AGENT_IF) == {VIP_LL, VIP})
    state, inst = lab.agent_state()
    assert inst.findtext(f"{{{NS_VRRP}}}new-master-reason") == "no-response"
    # keepalived is gone; what it held stays where it died.
    assert lab.ka.proc.poll() is not None
    # Subscribers hear of the new master: this router's link-local address, and why.
    ll = lab.a.run("ip", "-6", "-o", "addr", "show", "dev", AGENT_IF, "scope", "link")
    n = listener.take_notification(timeout=5)
    assert n is not None, "no vrrp-new-master-event"
    ev = etree.fromstring(n.notification_xml.encode()).find(f"{{{NS_VRRP}}}vrrp-new-master-event")
    assert ev is not None, n.notification_xml
    assert ev.findtext(f"{{{NS_VRRP}}}new-master-reason") == "no-response"
    assert f" {ev.findtext(f'{{{NS_VRRP}}}master-ip-address')}/64" in ll
    listener.close_session()


def test_agent_killed_restarts_at_lower_priority_as_backup_without_addresses(lab):
    lab.start_keepalived(150, preempt=False)
    m = lab.start_agent()
    m.edit_config(target="running", config=vrrp_config(200))
    assert wait(lambda: agent_is(lab, "master"), 20)
    assert wait(lambda: lab.ka.state() == "BACKUP", 20)
    assert wait(lambda: lab.holds(lab.a, AGENT_IF) == {VIP_LL, VIP})
    # Lower than keepalived's, which does not preempt: the agent stays master.
    m.edit_config(target="running", config=vrrp_config(120))
    time.sleep(2)
    assert agent_is(lab, "master")
    lab.agent.kill9()
    lab.m = None
    # The addresses stay behind the dead process; keepalived takes over on silence.
    assert lab.holds(lab.a, AGENT_IF) == {VIP_LL, VIP}
    assert wait(lambda: lab.ka.state() == "MASTER", master_down(150) + 3)
    lab.start_agent()
    assert wait(lambda: agent_is(lab, "backup"), 10)
    assert wait(lambda: lab.holds(lab.a, AGENT_IF) == set(), 5), lab.a.run("ip", "-6", "addr")
    time.sleep(master_down(120) + 1)
    assert agent_is(lab, "backup")
    assert lab.holds(lab.a, AGENT_IF) == set()
    assert lab.ka.state() == "MASTER"
    assert lab.holds(lab.k, KA_IF) == {VIP_LL, VIP}


def test_agent_stopped_cleanly_keepalived_takes_over_at_skew_time(lab):
    lab.start_keepalived(150)
    m = lab.start_agent()
    m.edit_config(target="running", config=vrrp_config(200))
    assert wait(lambda: agent_is(lab, "master"), 20)
    assert wait(lambda: lab.ka.state() == "BACKUP", 20)
    assert wait(lambda: lab.holds(lab.a, AGENT_IF) == {VIP_LL, VIP})
    assert wait(lambda: lab.holds(lab.k, KA_IF) == set())
    m.close_session()
    lab.m = None
    t0 = time.time()
    lab.agent.proc.send_signal(signal.SIGTERM)
    assert wait(lambda: lab.holds(lab.k, KA_IF) == {VIP_LL, VIP}, master_down(150) + 3)
    took = time.time() - t0
    # Priority 0 makes keepalived wait only its skew time (0.41 s), far below 3.41 s.
    assert took < master_down(150) - 1, f"keepalived took over after {took:.2f} s"
    assert lab.ka.state() == "MASTER"
    lab.agent.proc.wait(timeout=20)
    assert lab.agent.proc.returncode == 0
    # The agent removed its virtual addresses on the way out.
    assert lab.holds(lab.a, AGENT_IF) == set()


def test_tracked_upstream_failure_hands_over_to_keepalived(lab):
    # The upstream link: a veth whose far end going down takes the carrier away.
    lab.a.run("ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
    lab.a.run("ip", "link", "set", "up1", "up")
    lab.start_keepalived(150)
    m = lab.start_agent()
    upstream = (
        f'<interface><name>up0</name><type>t:ethernetCsmacd</type><ipv6 xmlns="{NS_IP}"/></interface>'
    )
    track = (
        "<track><interfaces><interface><interface>up0</interface>"
        "<priority-decrement>120</priority-decrement></interface></interfaces></track>"
    )
    cfg = vrrp_config(200, extra=track).replace("</interfaces></config>", upstream + "</interfaces></config>")
    m.edit_config(target="running", config=cfg)
    assert wait(lambda: agent_is(lab, "master"), 20)
    assert wait(lambda: lab.ka.state() == "BACKUP", 20)
    # The upstream link fails: 200 - 120 = 80 < 150, announced at once; keepalived preempts.
    t0 = time.time()
    lab.a.run("ip", "link", "set", "up1", "down")
    assert wait(lambda: lab.ka.state() == "MASTER", master_down(150) + 3)
    assert time.time() - t0 <= master_down(150) + 2
    assert wait(lambda: agent_is(lab, "backup"), 5)
    assert wait(lambda: lab.holds(lab.k, KA_IF) == {VIP_LL, VIP})
    assert wait(lambda: lab.holds(lab.a, AGENT_IF) == set())
    # It comes back: the agent preempts again.
    lab.a.run("ip", "link", "set", "up1", "up")
    assert wait(lambda: agent_is(lab, "master"), master_down(200) + 4)
    assert wait(lambda: lab.ka.state() == "BACKUP", 5)
    assert wait(lambda: lab.holds(lab.a, AGENT_IF) == {VIP_LL, VIP})
    assert wait(lambda: lab.holds(lab.k, KA_IF) == set())


def tcp_answer(ns, addr, port=9):
    """'refused' when the address's owner answers a TCP connection with a reset, else what
    happened instead."""
    with ns.entered():
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(4)
    try:
        s.connect((addr, port))
        return "connected"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()


def test_virtual_mac_without_accept_mode(lab):
    """With the virtual MAC and accept mode off, the master answers Neighbor Solicitations for
    the virtual addresses with 00:00:5e:00:02:VRID (a macvlan, proxy entries) but does not take
    packets addressed to them; accept mode on makes them its own addresses."""
    m = lab.start_agent()
    vmac = '<virtual-mac xmlns="urn:mldhb:yang:mldhb-vrrp">true</virtual-mac>'
    m.edit_config(target="running", config=vrrp_config(200, accept=False, extra=vmac))
    assert wait(lambda: agent_is(lab, "master"), 20)
    mac = f"00:00:5e:00:02:{VRID:02x}"
    links = lab.a.run("ip", "-o", "link", "show")
    vlink = [line for line in links.splitlines() if mac in line]
    assert len(vlink) == 1, links
    name = vlink[0].split(":")[1].strip().split("@")[0]
    assert lab.holds(lab.a, name) == set() and lab.holds(lab.a, AGENT_IF) == set()
    proxies = lab.a.run("ip", "-6", "neigh", "show", "proxy")
    assert VIP in proxies and VIP_LL in proxies, proxies
    # The neighbour on the segment resolves the virtual address to the virtual MAC, and the
    # master does not take its connection (no reset: nothing there accepts it).
    assert tcp_answer(lab.k, VIP) != "refused"
    neigh = lab.k.run("ip", "-6", "neigh", "show", VIP)
    assert mac in neigh, neigh
    # Accept mode on: the addresses are the master's own, on the macvlan; ping is answered.
    m.edit_config(target="running", config=vrrp_config(200, accept=True, extra=vmac))
    assert wait(lambda: agent_is(lab, "master"), 20)
    assert wait(lambda: lab.holds(lab.a, name) == {VIP_LL, VIP}, 10), lab.a.run("ip", "-6", "addr")
    assert VIP not in lab.a.run("ip", "-6", "neigh", "show", "proxy")
    assert wait(lambda: tcp_answer(lab.k, VIP) == "refused", 10)
    assert mac in lab.k.run("ip", "-6", "neigh", "show", VIP)
    # A clean stop removes the macvlan.
    m.close_session()
    lab.m = None
    lab.agent.terminate()
    assert mac not in lab.a.run("ip", "-o", "link", "show")
