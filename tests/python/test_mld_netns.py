"""MLD and multicast forwarding with the Linux kernel as the real MLD host, in namespaces of the
test's own: a router namespace runs the agent (MLD on its downstream veth, multicast routing on),
a host namespace joins groups with ordinary sockets, a source namespace sends UDP to them."""

import os
import socket
import struct
import threading
import time

import pytest
from ncclient.operations.rpc import RPCError

from conftest import NS_BASE, NS_IANAIFT, NS_IF
from netns import Netns, require_root
from lab import BACKENDS, require_backend
from test_interfaces_netns import NsAgent, wait_for

NS_MLD = "urn:mldhb:yang:mldhb-mld"
NS_MC = "urn:mldhb:yang:mldhb-multicast"
PORT = 5500
GROUPS = 200


def group(i, base=0x1000):
    return f"ff0e::db8:{base + i:x}"


class Topology:
    """source (su) ── (ru) router (rd) ── (hd) host"""

    def __init__(self, tag):
        self.r = Netns(f"mldhb-r-{tag}")
        self.h = Netns(f"mldhb-h-{tag}")
        self.s = Netns(f"mldhb-s-{tag}")
        for ns in (self.r, self.h, self.s):
            ns.run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
            ns.run("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
        self.r.run("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        self.r.run("ip", "link", "add", "rd", "type", "veth", "peer", "name", "hd", "netns", self.h.name)
        self.r.run("ip", "link", "add", "ru", "type", "veth", "peer", "name", "su", "netns", self.s.name)
        for ns, dev, addr in (
            (self.r, "rd", "2001:db8:1::1/64"),
            (self.h, "hd", "2001:db8:1::2/64"),
            (self.r, "ru", "2001:db8:2::1/64"),
            (self.s, "su", "2001:db8:2::2/64"),
        ):
            ns.run("ip", "addr", "add", addr, "dev", dev, "nodad")
            ns.run("ip", "link", "set", dev, "up")
        self.s.run("ip", "-6", "route", "add", "default", "via", "2001:db8:2::1")
        self.h.run("ip", "-6", "route", "add", "default", "via", "2001:db8:1::1")
        for ns, dev in ((self.r, "rd"), (self.r, "ru"), (self.h, "hd"), (self.s, "su")):
            assert wait_for(lambda: "fe80" in ns.run("ip", "-6", "addr", "show", "dev", dev)
                            and "tentative" not in ns.run("ip", "-6", "addr", "show", "dev", dev))

    def delete(self):
        for ns in (self.r, self.h, self.s):
            ns.delete()


@pytest.fixture
def topo():
    require_root()
    t = Topology(os.getpid())
    yield t
    t.delete()


def mld_config(extra="", backend="auto"):
    chosen = "" if backend == "auto" else f"<forwarding-backend>{backend}</forwarding-backend>"
    return (
        f'<config xmlns="{NS_BASE}">'
        f'<interfaces xmlns="{NS_IF}" xmlns:t="{NS_IANAIFT}"><interface><name>rd</name>'
        f"<type>t:ethernetCsmacd</type>"
        f'<mld xmlns="{NS_MLD}"><enable>true</enable>{extra}</mld></interface></interfaces>'
        f'<multicast xmlns="{NS_MC}"><ipv6-routing-enable>true</ipv6-routing-enable>{chosen}'
        f"</multicast></config>"
    )


def groups_seen(m):
    data = m.get(filter=("subtree", f'<interfaces xmlns="{NS_IF}"/>')).data
    ns = {"if": NS_IF, "mld": NS_MLD}
    return set(data.xpath("//if:interface[if:name='rd']/mld:mld/mld:group/mld:address/text()",
                          namespaces=ns)), data


def join_sockets(ns, groups):
    """Joins every group on the host's interface; returns the receiving socket."""
    with ns.entered():
        ifindex = socket.if_nametoindex("hd")
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", PORT))
        for g in groups:
            mreq = socket.inet_pton(socket.AF_INET6, g) + struct.pack("@I", ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        sock.settimeout(0.2)
    return sock


class Receiver(threading.Thread):
    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock = sock
        self.got = set()
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                data, _ = self.sock.recvfrom(2048)
            except (socket.timeout, OSError):
                continue
            self.got.add(data.decode())


def send_rounds(ns, groups, until, timeout=20):
    """Sends one datagram to each group per round (the kernel resolves only ten unknown
    entries at a time) until `until()` holds or the time is up."""
    with ns.entered():
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, socket.if_nametoindex("su"))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 8)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            for g in groups:
                s.sendto(g.encode(), (g, PORT))
                time.sleep(0.002)
            if until():
                return True
            time.sleep(0.1)
        return until()
    finally:
        s.close()


def fwd_table(m):
    """The agent's forwarding entries from <get>: {(group, source): {oif name: state}}."""
    data = m.get(filter=("subtree", f'<multicast xmlns="{NS_MC}"/>')).data
    ns = {"mc": NS_MC}
    out = {}
    for e in data.xpath("//mc:forwarding/mc:entry", namespaces=ns):
        key = (e.xpath("mc:group/text()", namespaces=ns)[0], e.xpath("mc:source/text()", namespaces=ns)[0])
        out[key] = {
            o.xpath("mc:name/text()", namespaces=ns)[0]: o.xpath("mc:state/text()", namespaces=ns)[0]
            for o in e.xpath("mc:outgoing-interface", namespaces=ns)
        }
    return out


def backend_of(m):
    data = m.get(filter=("subtree", f'<multicast xmlns="{NS_MC}"><forwarding><backend/>'
                                    "<backend-state/><backend-reason/></forwarding></multicast>")).data
    ns = {"mc": NS_MC}
    return tuple((data.xpath(f"//mc:{leaf}/text()", namespaces=ns) or [None])[0]
                 for leaf in ("backend", "backend-state", "backend-reason"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("version", [2, 1])
def test_kernel_host_joins_and_traffic_follows(topo, workdir, version, backend):
    require_backend(backend)
    if version == 1:
        topo.h.run("sysctl", "-qw", "net.ipv6.conf.hd.force_mld_version=1")
    agent = NsAgent(topo.r, workdir)
    m = agent.start()
    try:
        m.edit_config(target="running", config=mld_config(backend=backend))
        assert wait_for(lambda: backend_of(m)[:2] == (backend, "up"), 10), backend_of(m)
        assert wait_for(lambda: "up" in str(groups_seen(m)[1].xpath(
            "//mld:oper-status/text()", namespaces={"mld": NS_MLD})), 10), "MLD did not start on rd"

        joined = [group(i) for i in range(GROUPS)]
        others = [group(i, base=0x9000) for i in range(20)]
        sock = join_sockets(topo.h, joined)
        rx = Receiver(sock)
        rx.start()
        try:
            assert wait_for(lambda: set(joined) <= groups_seen(m)[0], 20), (
                f"agent shows {len(groups_seen(m)[0])} of {GROUPS} groups"
            )
            seen, data = groups_seen(m)
            assert seen == set(joined)
            versions = set(data.xpath("//mld:group/mld:version/text()", namespaces={"mld": NS_MLD}))
            assert versions == {str(version)}

            # Traffic from the source reaches the host for joined groups only.
            assert send_rounds(topo.s, joined + others, lambda: set(joined) <= rx.got), (
                f"host received {len(rx.got & set(joined))} of {GROUPS} joined groups"
            )
            time.sleep(0.3)
            assert not (rx.got & set(others))
            table = fwd_table(m)
            src = "2001:db8:2::2"
            for g in joined:
                assert table[(g, src)].get("rd") == "active", (g, table.get((g, src)))
            for g in others:
                if (g, src) in table:
                    assert "rd" not in table[(g, src)]
            assert any((g, src) in table for g in others)
            # Forwarding state in <get>: incoming interface by RPF, rd outgoing.
            fwd = m.get(filter=("subtree", f'<multicast xmlns="{NS_MC}"/>')).data
            ns = {"mc": NS_MC}
            e = fwd.xpath(f"//mc:entry[mc:group='{joined[0]}'][mc:source='{src}']", namespaces=ns)
            assert e, fwd
            assert e[0].xpath("mc:incoming-interface/text()", namespaces=ns) == ["ru"]
            assert e[0].xpath("mc:outgoing-interface/mc:name/text()", namespaces=ns) == ["rd"]
            assert e[0].xpath("mc:state/text()", namespaces=ns) == ["active"]
            assert "ru" not in table[(joined[0], src)]
        finally:
            rx.stop = True
            rx.join()
            # Leaving: closing the socket leaves every group.
            sock.close()
        left = time.time()
        # Last-listener query time is 2 s (robustness 2 × 1 s); a generous margin on top.
        assert wait_for(
            lambda: (lambda t: all("rd" not in t.get((g, src), {}) for g in joined))(fwd_table(m)),
            2 + 6
        ), "entries kept the downstream interface after the host left"
        assert time.time() - left < 8
        assert wait_for(lambda: not groups_seen(m)[0], 5)
    finally:
        m.close_session()
        agent.kill9()


def test_receive_rules_count_drops_by_reason(topo, workdir):
    agent = NsAgent(topo.r, workdir)
    m = agent.start()
    ns = {"if": NS_IF, "mld": NS_MLD}

    def errors():
        data = m.get(filter=("subtree", f'<interfaces xmlns="{NS_IF}"/>')).data
        e = data.xpath("//if:interface[if:name='rd']/mld:mld/mld:statistics/mld:errors",
                       namespaces=ns)
        return {c.tag.split("}")[1]: int(c.text) for c in e[0]} if e else {}

    try:
        m.edit_config(target="running", config=mld_config())
        assert wait_for(lambda: errors() != {}, 10), "MLD did not start on rd"
        report = bytes([143, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0]) + socket.inet_pton(
            socket.AF_INET6, "ff0e::db8:5")
        with topo.h.entered():
            ifindex = socket.if_nametoindex("hd")
            # Hop limit 2 (and no Router Alert: hop limit is checked first).
            s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 2)
            s.sendto(report, ("ff02::16", 0, 0, ifindex))
            # Hop limit 1 without Router Alert.
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            s.sendto(report, ("ff02::16", 0, 0, ifindex))
            s.close()
            # A global source address.
            s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            s.bind(("2001:db8:1::2", 0))
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            s.sendto(report, ("ff02::16", 0, 0, ifindex))
            s.close()
        assert wait_for(lambda: errors().get("bad-source") == 1, 5), errors()
        e = errors()
        assert (e["hop-limit"], e["no-router-alert"], e["bad-source"]) == (1, 1, 1), e
        assert e["checksum"] == 0 and e["too-short"] == 0
        # None of them created the group.
        assert "ff0e::db8:5" not in groups_seen(m)[0]
    finally:
        m.close_session()
        agent.kill9()


def test_mld_on_an_interface_that_appears_later(topo, workdir):
    agent = NsAgent(topo.r, workdir)
    m = agent.start()
    ns = {"if": NS_IF, "mld": NS_MLD}

    def status():
        data = m.get(filter=("subtree", f'<interfaces xmlns="{NS_IF}"/>')).data
        return data.xpath("//if:interface[if:name='late']/mld:mld/mld:oper-status/text()",
                          namespaces=ns)

    try:
        # Accepted before the interface exists (pre-provisioning), reported down meanwhile.
        m.edit_config(target="running", config=mld_config().replace("<name>rd<", "<name>late<"))
        assert wait_for(lambda: status() == ["down"], 5), status()
        topo.r.run("ip", "link", "add", "late", "type", "veth", "peer", "name", "late-p")
        topo.r.run("ip", "link", "set", "late", "up")
        topo.r.run("ip", "link", "set", "late-p", "up")
        assert wait_for(lambda: status() == ["up"], 10), status()
        # What cannot be applied is refused, and running keeps the previous configuration.
        bad = mld_config("<static-group><group>ff02::5</group><source>::</source></static-group>")
        with pytest.raises(RPCError, match="link-scope"):
            m.edit_config(target="running", config=bad.replace("<name>rd<", "<name>late<"))
        assert "ff02::5" not in m.get_config(source="running").data_xml
    finally:
        m.close_session()
        agent.kill9()
