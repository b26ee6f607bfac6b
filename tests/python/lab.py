"""The two-device lab from tests: `mldhb lab up --detach` builds namespaces and configures both
agents over NETCONF; tests then drive the receiver host, the source and failures themselves."""

import contextlib
import json
import os
import subprocess
import tempfile
import time

import pytest
from ncclient import manager

from conftest import BIN, NS_BASE, data_of, eventually  # noqa: F401
from ovs import Ovs

NS = {
    "if": "urn:ietf:params:xml:ns:yang:ietf-interfaces",
    "ip": "urn:ietf:params:xml:ns:yang:ietf-ip",
    "vrrp": "urn:ietf:params:xml:ns:yang:ietf-vrrp",
    "mld": "urn:mldhb:yang:mldhb-mld",
    "rbs": "urn:mldhb:yang:mldhb-rbs",
    "mc": "urn:mldhb:yang:mldhb-multicast",
    "et": "urn:mldhb:yang:mldhb-etrunk",
    "nc": NS_BASE,
}
DEVICES = {"a": ("mldhb-a", "10.77.1.2"), "b": ("mldhb-b", "10.77.2.2")}
RECEIVER_NS = "mldhb-h"
SOURCE_NS = "mldhb-s"
CE_NS = "mldhb-ce"
SWITCH_NS = "mldhb-sw"
# The customer edge's bond members towards A and B (E-Trunk).
CE_MEMBER = {"a": "a-down", "b": "b-down"}
GROUP_BASE = "ff0e::db8:1:0"
# Every test that forwards runs on each backend; ip6mr only where the kernel has it.
BACKENDS = ["nftables", "ip6mr"]
GROUPS = 1000
RATE = 10  # datagrams per second per group


def xp(node, path):
    return node.xpath(path, namespaces=NS)


def ns_run(ns, *args, check=True):
    return subprocess.run(
        ["ip", "netns", "exec", ns, *args], check=check, capture_output=True, text=True
    ).stdout


class Lab:
    """One lab for one test; `down` always runs. `role_source` is "vrrp6" (scenarios 1, 2) or
    "e-trunk" (3, 4: the downstream interface is Eth-Trunk1 over the member eth1, and the
    customer edge is Open vSwitch, reachable as `self.ovs`)."""

    def __init__(self, tmp_path, mode="master-backup", load_balance="group-hash", advertise=100,
                 role_source="vrrp6", backend="nftables"):
        self.dir = str(tmp_path / "lab")
        self.env = dict(os.environ, MLDHB_LAB_DIR=self.dir, RUST_BACKTRACE="0")
        self.args = ["--role-source", role_source, "--mode", mode, "--load-balance", load_balance,
                     "--advertise", str(advertise), "--backend", backend]
        self.backend = backend
        self.role_source = role_source
        self.downstream = "Eth-Trunk1" if role_source == "e-trunk" else "eth1"
        self.ovs = Ovs(CE_NS, os.path.join(self.dir, "ovs")) if role_source == "e-trunk" else None
        self.procs = []

    def mldhb(self, *args, check=True, timeout=120):
        r = subprocess.run([BIN, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"mldhb {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}\n{self.logs()}")
        return r

    def up(self):
        # A lab left behind by an interrupted run would make `up` refuse.
        subprocess.run([BIN, "lab", "down"], env=self.env, capture_output=True)
        self.mldhb("lab", "up", "--detach", "--no-traffic", *self.args)

    def down(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.mldhb("lab", "down", check=False)

    def logs(self):
        out = []
        for name in ("agent-a", "agent-b"):
            path = os.path.join(self.dir, name + ".log")
            if os.path.exists(path):
                with open(path) as f:
                    out.append(f"--- {name}.log (tail)\n" + "".join(f.readlines()[-40:]))
        if self.ovs:
            out.append("--- ovs-vswitchd.log (tail)\n" + self.ovs.log_tail())
        return "\n".join(out)

    def connect(self, dev):
        _, addr = DEVICES[dev]
        return manager.connect(
            host=addr, port=830, username="admin", password="admin",
            hostkey_verify=False, allow_agent=False, look_for_keys=False, timeout=30,
        )

    def get(self, dev, subtree):
        with self.connect(dev) as m:
            return data_of(m.get(filter=("subtree", subtree)))

    def ns(self, dev):
        return DEVICES[dev][0]

    def spawn(self, ns, *args):
        p = subprocess.Popen(
            ["ip", "netns", "exec", ns, BIN, *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env,
        )
        self.procs.append(p)
        return p

    def receiver(self, groups, report):
        return self.spawn(
            RECEIVER_NS, "lab", "receive", "--interface", "eth0", "--groups", str(groups),
            "--group-base", GROUP_BASE, "--report", str(report),
        )

    def source(self, groups, rate):
        return self.spawn(
            SOURCE_NS, "lab", "send", "--interface", "eth0", "--groups", str(groups),
            "--group-base", GROUP_BASE, "--rate", str(rate),
        )

    def kill_agent(self, dev):
        with open(os.path.join(self.dir, f"agent-{dev}.pid")) as f:
            os.kill(int(f.read().strip()), 9)


def kernel_has_ip6mr():
    return os.path.exists("/proc/net/ip6_mr_vif")


def require_backend(backend):
    """Skips, saying why, a case of the ip6mr backend on a kernel without IPv6 multicast
    routing: it needs the kernel's ip6mr socket. Every such test also runs on nftables."""
    if backend == "ip6mr" and not kernel_has_ip6mr():
        pytest.skip("the kernel has no IPv6 multicast routing (CONFIG_IPV6_MROUTE is not set): "
                    "the ip6mr backend needs its socket; the nftables case of this test runs")


@contextlib.contextmanager
def lab(tmp_path, **kw):
    require_backend(kw.get("backend", "nftables"))
    lb = Lab(tmp_path, **kw)
    try:
        lb.up()
        yield lb
    finally:
        lb.down()


def read_report(path):
    for _ in range(20):
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.1)
    raise AssertionError(f"no receiver report at {path}")


def block_reports(ns, chain="INPUT", iface_opt=("-i", "eth1")):
    """Drops MLD reports (v1 and v2) in a namespace's netfilter chain (the receiver host's own
    output; a device's packet socket sees frames before its netfilter, so reports meant to stay
    away from a device are dropped outside it, by `block_device_reports`)."""
    for t in ("131", "143"):
        ns_run(ns, "ip6tables", "-A", chain, *iface_opt, "-p", "icmpv6", "--icmpv6-type", t, "-j", "DROP")


def block_device_reports(lb, dev):
    """Drops every MLD report on its way to a device, outside the device: on the egress of the
    switch port (VRRP6) or customer-edge member (E-Trunk) that leads to it. Returns a function
    that reads how many reports were dropped there."""
    ns = CE_NS if lb.role_source == "e-trunk" else SWITCH_NS
    port = CE_MEMBER[dev]
    table = f"mldhb_test_block_{dev}"
    rules = (
        f"table netdev {table} {{\n"
        f"  chain out {{ type filter hook egress device \"{port}\" priority 0; policy accept;\n"
        "    icmpv6 type { mld-listener-report, mld2-listener-report } counter drop\n"
        "  }\n}\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
        f.write(rules)
    try:
        ns_run(ns, "nft", "-f", f.name)
    finally:
        os.unlink(f.name)

    def dropped():
        out = ns_run(ns, "nft", "list", "table", "netdev", table)
        for word, value in zip(out.split(), out.split()[1:]):
            if word == "packets":
                return int(value)
        return 0
    return dropped


def reports_received(lb, dev):
    """MLDv1 and MLDv2 reports the device's router took in on the downstream interface."""
    d = lb.get(dev, f'<interfaces xmlns="{NS["if"]}"><interface><name>{lb.downstream}</name>'
                    f'<mld xmlns="{NS["mld"]}"/></interface></interfaces>')
    return sum(int(e.text) for e in xp(d, ".//mld:v1-reports-received | .//mld:v2-reports-received"))


def vrrp_state(lb, dev):
    d = lb.get(dev, f'<interfaces xmlns="{NS["if"]}"><interface><name>eth1</name>'
                    f'<ipv6 xmlns="{NS["ip"]}"><vrrp xmlns="{NS["vrrp"]}"><vrrp-instance>'
                    '<state/></vrrp-instance></vrrp></ipv6></interface></interfaces>')
    s = xp(d, ".//vrrp:vrrp-instance/vrrp:state")
    return s[0].text.split(":")[-1] if s else None


def etrunk_state(lb, dev):
    """(E-Trunk state, cause, Eth-Trunk oper-role, member eth1 selected) as the agent reports."""
    with lb.connect(dev) as m:
        et = data_of(m.get(filter=("subtree", f'<e-trunk xmlns="{NS["et"]}"/>')))
        ifs = data_of(m.get(filter=("subtree", f'<interfaces xmlns="{NS["if"]}"><interface>'
                                               f'<name>Eth-Trunk1</name><eth-trunk xmlns="{NS["et"]}"/>'
                                               "</interface></interfaces>")))
    st = xp(et, "//et:e-trunk/et:state/text()")
    cause = xp(et, "//et:e-trunk/et:cause/text()")
    role = xp(ifs, "//et:eth-trunk/et:oper-role/text()")
    sel = xp(ifs, "//et:member[et:name='eth1']/et:selected/text()")
    return (st[0] if st else None, cause[0] if cause else None, role[0] if role else None,
            sel[0] == "true" if sel else None)


def profile_state(lb, dev):
    d = lb.get(dev, f'<remote-backup xmlns="{NS["rbs"]}"/>')
    prof = xp(d, ".//rbs:profile")
    svc = xp(d, ".//rbs:service")
    out = {}
    if prof:
        for leaf in ("role", "batch-sync", "local-entries", "peer-entries", "backup-id-mismatch"):
            e = prof[0].find(f"{{{NS['rbs']}}}{leaf}")
            out[leaf] = e.text if e is not None else None
    if svc:
        e = svc[0].find(f"{{{NS['rbs']}}}state")
        out["rbs"] = e.text if e is not None else None
    return out


def mld_groups(lb, dev):
    """{group: (origin, expiry seconds)} on the downstream interface."""
    d = lb.get(dev, f'<interfaces xmlns="{NS["if"]}"><interface><name>{lb.downstream}</name>'
                    f'<mld xmlns="{NS["mld"]}"><group/></mld></interface></interfaces>')
    out = {}
    for g in xp(d, ".//mld:group"):
        addr = g.find(f"{{{NS['mld']}}}address").text
        origin = g.find(f"{{{NS['mld']}}}origin")
        expiry = g.find(f"{{{NS['mld']}}}expiry")
        out[addr] = (
            origin.text if origin is not None else None,
            int(expiry.text) if expiry is not None else None,
        )
    return out


def forwarding_table(lb, dev):
    """The device's forwarding entries from <get>: {(source, group): {oif name: state}}."""
    d = lb.get(dev, f'<multicast xmlns="{NS["mc"]}"><forwarding/></multicast>')
    out = {}
    for e in xp(d, ".//mc:forwarding/mc:entry"):
        key = (e.find(f"{{{NS['mc']}}}source").text, e.find(f"{{{NS['mc']}}}group").text)
        out[key] = {
            o.find(f"{{{NS['mc']}}}name").text: o.find(f"{{{NS['mc']}}}state").text
            for o in e.findall(f"{{{NS['mc']}}}outgoing-interface")
        }
    return out


def forwarding(lb, dev):
    """Groups the device forwards now on its downstream interface."""
    return {g for (_, g), oifs in forwarding_table(lb, dev).items()
            if oifs.get(lb.downstream) == "active"}


def backend_status(lb, dev):
    """(backend, backend-state) the device reports."""
    d = lb.get(dev, f'<multicast xmlns="{NS["mc"]}"><forwarding><backend/><backend-state/>'
                    '</forwarding></multicast>')
    b = xp(d, ".//mc:backend")
    st = xp(d, ".//mc:backend-state")
    return (b[0].text if b else None, st[0].text if st else None)


def wait_prepared(lb, dev, groups, timeout=30):
    """Waits until the device holds a forwarding entry listing the downstream interface (active
    or standby) for every one of the test's groups: the backup's ready state. Returns the
    table."""
    def ready():
        t = forwarding_table(lb, dev)
        n = sum(1 for (_, g), oifs in t.items()
                if g.startswith("ff0e::db8:1:") and lb.downstream in oifs)
        return t if n >= groups else None
    got = eventually(ready, timeout=timeout, step=0.5)
    assert got, f"{dev} prepared fewer than {groups} entries\n{lb.logs()}"
    return got


def learn(lb, learner, via_rbs, report):
    """Starts the receiver and the source; waits until the learner has every group locally and
    the other device every group from the peer, with timers within a second of each other."""
    lb.receiver(GROUPS, report)
    lb.source(GROUPS, RATE)

    def ours(dev):
        # The host also reports its solicited-node groups; only the test's groups count.
        return {g: v for g, v in mld_groups(lb, dev).items() if g.startswith("ff0e::db8:1:")}

    def synced():
        mine = ours(learner)
        theirs = ours(via_rbs)
        return (len(mine) == GROUPS and len(theirs) == GROUPS
                and all(o == "local" for o, _ in mine.values())
                and all(o == "peer" for o, _ in theirs.values())) and (mine, theirs)

    got = eventually(synced, timeout=60, step=1)
    assert got, (len(ours(learner)), len(ours(via_rbs)), lb.logs())
    mine, theirs = got
    for g, (_, expiry) in mine.items():
        assert abs(theirs[g][1] - expiry) <= 1, (g, expiry, theirs[g])


def assert_flowing_once(report, require_all=True, timeout=30):
    """Every group arrives (waiting, within `timeout` seconds, for the last forwarding entries
    to be set up after the joins), and no sequence number arrives twice."""
    if require_all:
        eventually(lambda: read_report(report)["groups_flowing"] == GROUPS, timeout=timeout, step=1)
    r = read_report(report)
    flowing = r["groups_flowing"]
    dups = r["duplicates"]
    if require_all:
        assert flowing == GROUPS, f"{flowing}/{GROUPS} groups flowing"
    assert dups == 0, f"{dups} duplicate datagrams"
    return r


def fail_and_measure(lb, report, fail, limit):
    """Silences host reports, marks the receiver, applies `fail`, and asserts every group keeps
    flowing with no duplicates and each group's gap within `limit` seconds. Prints the gaps."""
    block_reports(RECEIVER_NS, chain="OUTPUT", iface_opt=("-o", "eth0"))
    open(str(report).replace(".json", ".reset"), "w").close()
    time.sleep(2.5)
    fail()
    time.sleep(limit + 4)
    r = read_report(report)
    gaps = sorted(g["max_gap_ms"] for g in r["groups"])
    print(f"\ngaps over {len(gaps)} groups: min {gaps[0]:.0f} ms, median {gaps[len(gaps) // 2]:.0f} ms, "
          f"max {gaps[-1]:.0f} ms (limit {limit * 1000:.0f} ms)")
    silent = [g["group"] for g in r["groups"] if g["silent_ms"] is None or g["silent_ms"] > 1000]
    assert not silent, f"{len(silent)} groups lost, e.g. {silent[:5]}"
    assert r["duplicates"] == 0, f"{r['duplicates']} duplicates"
    assert gaps[-1] <= limit * 1000, f"longest gap {gaps[-1]} ms > {limit * 1000} ms"
    return r
