"""The forwarding data plane seen from outside the router, on each backend: what arrives on the
receiver's link (source MAC, hop limit, nothing that must not be forwarded, nothing twice), the
per-entry counters in <get>, a router killed with -9 forwarding nothing, and an agent whose
chosen backend cannot run on this kernel staying up with MLD working."""

import socket
import struct
import threading
import time

import pytest

from lab import BACKENDS, kernel_has_ip6mr, require_backend
from test_interfaces_netns import NsAgent, wait_for
from test_mld_netns import (
    NS_MC,
    Topology,
    backend_of,
    fwd_table,
    groups_seen,
    join_sockets,
    mld_config,
)
from netns import require_root

import os

PORT = 5600
JOINED = ["ff0e::db8:a:1", "ff0e::db8:a:2"]
UNJOINED = "ff0e::db8:a:99"
LINK_SCOPE = "ff02::db8:a:1"
SRC = "2001:db8:2::2"
# An address of the downstream subnet, put on the source's link: its route (RPF) points at the
# router's downstream interface, so packets from it arriving upstream come in the wrong way.
WRONG_WAY_SRC = "2001:db8:1::99"
ETH_P_ALL = 0x0003
NS_VRRP = "urn:ietf:params:xml:ns:yang:ietf-vrrp"
VRRP_ALONE = (
    f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
    f'<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" '
    f'xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>ru</name>'
    f'<type>t:ethernetCsmacd</type><ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip">'
    f'<vrrp xmlns="{NS_VRRP}"><vrrp-instance><vrid>7</vrid><version>vrrp-v3</version>'
    f"<advertise-interval-centi-sec>10</advertise-interval-centi-sec>"
    f"<virtual-ipv6-addresses><virtual-ipv6-address><ipv6-address>fe80::7</ipv6-address>"
    f"</virtual-ipv6-address></virtual-ipv6-addresses></vrrp-instance></vrrp></ipv6>"
    f"</interface></interfaces></config>"
)


def vrrp_state(m):
    data = m.get(filter=("subtree", f'<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces">'
                                    f'<interface><name>ru</name></interface></interfaces>')).data
    s = data.xpath("//*[local-name()='vrrp-instance']/*[local-name()='state']/text()")
    return s[0].split(":")[-1] if s else None


@pytest.fixture
def topo():
    require_root()
    t = Topology(f"fw{os.getpid()}")
    yield t
    t.delete()


class Capture(threading.Thread):
    """Every IPv6/UDP frame to PORT arriving on the host's link: (src MAC, hop limit, source,
    group, payload)."""

    def __init__(self, ns, ifname):
        super().__init__(daemon=True)
        with ns.entered():
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock.bind((ifname, 0))
        self.sock.settimeout(0.2)
        self.frames = []
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                f, addr = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            if addr[2] == socket.PACKET_OUTGOING or len(f) < 62 or f[12:14] != b"\x86\xdd":
                continue
            if f[20] != 17 or struct.unpack("!H", f[56:58])[0] != PORT:
                continue
            self.frames.append((
                f[6:12].hex(":"), f[21],
                socket.inet_ntop(socket.AF_INET6, f[22:38]),
                socket.inet_ntop(socket.AF_INET6, f[38:54]),
                f[62:].decode(errors="replace"),
            ))

    def finish(self):
        self.stop = True
        self.join()
        self.sock.close()
        return self.frames


def sender(ns, ifname, hops, bind=(SRC, 0)):
    with ns.entered():
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex(ifname))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
        if bind:
            s.bind(bind)
    return s


def mac_of(ns, ifname):
    return ns.run("cat", f"/sys/class/net/{ifname}/address").strip()


def start_forwarding(topo, workdir, backend):
    """An agent on the router forwarding the joined groups to the host; returns (agent,
    session, host socket)."""
    agent = NsAgent(topo.r, workdir)
    m = agent.start()
    try:
        m.edit_config(target="running", config=mld_config(backend=backend))
        assert wait_for(lambda: backend_of(m)[:2] == (backend, "up"), 10), backend_of(m)
        sock = join_sockets(topo.h, JOINED)
        assert wait_for(lambda: set(JOINED) <= groups_seen(m)[0], 20), groups_seen(m)[0]
        # First datagrams make the entries (upcall, RPF, install); then they flow.
        s = sender(topo.s, "su", 64)
        for _ in range(40):
            for g in JOINED:
                s.sendto(b"warm", (g, PORT))
            if all(fwd_table(m).get((g, SRC), {}).get("rd") == "active" for g in JOINED):
                break
            time.sleep(0.25)
        s.close()
        assert all(fwd_table(m).get((g, SRC), {}).get("rd") == "active" for g in JOINED), fwd_table(m)
    except BaseException:
        agent.kill9()
        raise
    return agent, m, sock


@pytest.mark.parametrize("backend", BACKENDS)
def test_what_arrives_on_the_receivers_link(topo, workdir, backend):
    require_backend(backend)
    topo.s.run("ip", "addr", "add", f"{WRONG_WAY_SRC}/128", "dev", "su", "nodad")
    agent, m, sock = start_forwarding(topo, workdir, backend)
    try:
        time.sleep(1)
        cap = Capture(topo.h, "hd")
        cap.start()
        time.sleep(0.3)
        good = sender(topo.s, "su", 64)
        wrong_way = sender(topo.s, "su", 64, bind=(WRONG_WAY_SRC, 0))
        last_hop = sender(topo.s, "su", 1)
        su_ll = [a for a in topo.s.run("ip", "-6", "-o", "addr", "show", "dev", "su").split()
                 if a.startswith("fe80")][0].split("/")[0]
        with topo.s.entered():
            link_local = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            ifindex = socket.if_nametoindex("su")
            link_local.bind((su_ll, 0, 0, ifindex))
            link_local.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            link_local.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 64)
        for i in range(20):
            for g in JOINED:
                good.sendto(f"good {g} {i}".encode(), (g, PORT))
                wrong_way.sendto(f"wrong-way {g} {i}".encode(), (g, PORT))
                last_hop.sendto(f"hop-limit-1 {g} {i}".encode(), (g, PORT))
                link_local.sendto(f"link-local-source {g} {i}".encode(), (g, PORT, 0, ifindex))
            good.sendto(f"unjoined {i}".encode(), (UNJOINED, PORT))
            good.sendto(f"link-scope {i}".encode(), (LINK_SCOPE, PORT, 0, ifindex))
            time.sleep(0.02)
        time.sleep(1)
        frames = cap.finish()
        for s in (good, wrong_way, last_hop, link_local):
            s.close()
        router_mac = mac_of(topo.r, "rd")
        payloads = [f[4] for f in frames]
        got = [p for p in payloads if p.startswith("good ")]
        assert sorted(got) == sorted(f"good {g} {i}" for g in JOINED for i in range(20)), (
            f"{len(got)} of {2 * 20} forwarded datagrams arrived")
        assert len(set(payloads)) == len(payloads), "a datagram arrived twice"
        for mac, hops, src, dst, payload in frames:
            assert (mac, hops, src) == (router_mac, 63, SRC), (mac, hops, src, dst, payload)
        kinds = {p.split()[0] for p in payloads}
        assert kinds == {"good"}, kinds
        # The wrong-way packets are counted on their entries' RPF check; counters moved.
        table = fwd_table(m)
        assert table[(JOINED[0], SRC)]["rd"] == "active"
        data = m.get(filter=("subtree", f'<multicast xmlns="{NS_MC}"/>')).data
        ns = {"mc": NS_MC}
        pkts = data.xpath(f"//mc:entry[mc:group='{JOINED[0]}'][mc:source='{SRC}']/mc:packets/text()",
                          namespaces=ns)
        assert pkts and int(pkts[0]) >= 20, pkts
    finally:
        sock.close()
        m.close_session()
        agent.kill9()


@pytest.mark.parametrize("backend", BACKENDS)
def test_counters_move_and_a_killed_agent_forwards_nothing(topo, workdir, backend):
    require_backend(backend)
    agent, m, sock = start_forwarding(topo, workdir, backend)
    ns = {"mc": NS_MC}

    def packets():
        data = m.get(filter=("subtree", f'<multicast xmlns="{NS_MC}"/>')).data
        v = data.xpath(f"//mc:entry[mc:group='{JOINED[0]}'][mc:source='{SRC}']/mc:packets/text()",
                       namespaces=ns)
        return int(v[0]) if v else None

    try:
        before = packets()
        s = sender(topo.s, "su", 64)
        for i in range(30):
            s.sendto(b"count", (JOINED[0], PORT))
        time.sleep(0.5)
        after = packets()
        assert before is not None and after >= before + 30, (before, after)
        m.close_session()
        agent.kill9()
        if backend == "nftables":
            assert "mldhb" not in topo.r.run("nft", "list", "tables"), "the agent's table outlived it"
        cap = Capture(topo.h, "hd")
        cap.start()
        time.sleep(0.3)
        for i in range(30):
            s.sendto(f"after-kill {i}".encode(), (JOINED[0], PORT))
            time.sleep(0.01)
        time.sleep(0.5)
        s.close()
        frames = cap.finish()
        assert not [f for f in frames if f[4].startswith("after-kill")], "forwarded after kill -9"
    finally:
        sock.close()
        if agent.proc.poll() is None:
            agent.kill9()


def test_a_backend_that_cannot_run_leaves_the_agent_up(topo, workdir):
    """ip6mr forced on a kernel without it (or nftables where ip6mr exists, forced to ip6mr as
    well so the case is the same): the agent answers, <get> says the data plane is down and
    why, MLD still learns, the commit is <ok/>, and the other runtimes run."""
    if kernel_has_ip6mr():
        pytest.skip("this kernel has IPv6 multicast routing: ip6mr can run here")
    agent = NsAgent(topo.r, workdir)
    m = agent.start()
    try:
        reply = m.edit_config(target="running", config=mld_config(backend="ip6mr"))
        assert reply.ok
        assert wait_for(lambda: backend_of(m)[1] == "down", 10), backend_of(m)
        backend, state, reason = backend_of(m)
        assert (backend, state) == ("none", "down")
        assert "CONFIG_IPV6_MROUTE" in reason, reason
        sock = join_sockets(topo.h, JOINED)
        try:
            assert wait_for(lambda: set(JOINED) <= groups_seen(m)[0], 20), groups_seen(m)[0]
        finally:
            sock.close()
        assert "ip6mr" in m.get_config(source="running").data_xml
        data = m.get(filter=("subtree", '<system xmlns="urn:mldhb:yang:mldhb-system"/>')).data
        states = dict(zip(data.xpath("//*[local-name()='runtime']/*[local-name()='name']/text()"),
                          data.xpath("//*[local-name()='runtime']/*[local-name()='state']/text()")))
        assert states.get("vrrp6") == "up" and states.get("mld") == "up", states
        # VRRP6 runs: an instance alone on its link becomes master.
        m.edit_config(target="running", config=VRRP_ALONE)
        assert wait_for(lambda: vrrp_state(m) == "master", 10), vrrp_state(m)
        # Switching to a backend that runs applies the stored configuration.
        m.edit_config(target="running", config=mld_config(backend="nftables"))
        assert wait_for(lambda: backend_of(m)[:2] == ("nftables", "up"), 10), backend_of(m)
    finally:
        m.close_session()
        agent.kill9()
