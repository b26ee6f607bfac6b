"""tshark (Wireshark's decoder) reads the agent's VRRP6 advertisements on the wire: VRRP version
3, type advertisement, hop limit 255, checksum status Good, from the link-local address to
ff02::12, the link-local virtual address first; the priority 0 advertisement of a clean stop;
and the unsolicited Neighbor Advertisements that announce the virtual addresses."""

import os
import shutil
import signal
import subprocess
import time

import pytest

from netns import require_root
from test_vrrp_keepalived import AGENT_IF, KA_IF, VIP, VIP_LL, VRID, Lab, agent_is, vrrp_config, wait

FIELDS = [
    "vrrp.version",
    "vrrp.type",
    "vrrp.virt_rtr_id",
    "vrrp.prio",
    "vrrp.addr_count",
    "vrrp.short_adver_int",
    "vrrp.checksum.status",
    "vrrp.ipv6_addr",
    "ipv6.hlim",
    "ipv6.src",
    "ipv6.dst",
    "_ws.expert",
]


@pytest.fixture
def lab(workdir):
    require_root()
    if not shutil.which("tshark"):
        pytest.fail("tshark is missing: scripts/setup installs it")
    lab = Lab(f"ts{os.getpid()}", workdir)
    yield lab
    lab.delete()


def test_advertisements_decode_cleanly(lab, workdir):
    pcap = os.path.join(workdir, "vk.pcap")
    cap = subprocess.Popen(
        ["ip", "netns", "exec", lab.k.name, "tshark", "-q", "-n", "-i", KA_IF, "-w", pcap],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 20
        line = b""
        while time.time() < deadline and b"Capturing on" not in line:
            line = cap.stderr.readline()
        assert b"Capturing on" in line, "tshark did not start"
        m = lab.start_agent()
        m.edit_config(target="running", config=vrrp_config(200))
        assert wait(lambda: agent_is(lab, "master"), 20)
        time.sleep(3.5)
        m.close_session()
        lab.m = None
        lab.agent.proc.send_signal(signal.SIGTERM)
        lab.agent.proc.wait(timeout=20)
        time.sleep(1)
    finally:
        cap.terminate()
        cap.wait()
    out = subprocess.run(
        ["tshark", "-n", "-r", pcap, "-Y", "vrrp", "-T", "fields", "-E", "separator=|",
         "-E", "occurrence=a", "-E", "aggregator=,"] + sum((["-e", f] for f in FIELDS), []),
        check=True, capture_output=True, text=True,
    ).stdout
    rows = [dict(zip(FIELDS, line.split("|"))) for line in out.splitlines() if line.strip()]
    assert len(rows) >= 4, "too few advertisements captured:\n" + out
    ll = lab.a.run("ip", "-6", "-o", "addr", "show", "dev", AGENT_IF, "scope", "link")
    for r in rows:
        assert r["vrrp.version"] == "3", r
        assert r["vrrp.type"] == "1", r
        assert r["vrrp.virt_rtr_id"] == str(VRID), r
        assert r["vrrp.checksum.status"] == "1", r  # 1 = Good
        assert r["ipv6.hlim"] == "255", r
        assert r["ipv6.dst"] == "ff02::12", r
        assert r["ipv6.src"].startswith("fe80::") and r["ipv6.src"] in ll, r
        assert r["vrrp.addr_count"] == "2", r
        assert r["vrrp.ipv6_addr"] == f"{VIP_LL},{VIP}", r
        assert r["vrrp.short_adver_int"] == "100", r
        assert r["_ws.expert"] == "", r
    prios = [r["vrrp.prio"] for r in rows]
    assert prios[-1] == "0", prios
    assert set(prios[:-1]) == {"200"}, prios
    # Becoming master, the agent announced each virtual address: an unsolicited Neighbor
    # Advertisement with the Router and Override flags and the interface's MAC address.
    na_fields = ["icmpv6.nd.na.target_address", "icmpv6.nd.na.flag.r", "icmpv6.nd.na.flag.s",
                 "icmpv6.nd.na.flag.o", "icmpv6.opt.linkaddr", "icmpv6.checksum.status",
                 "ipv6.hlim", "ipv6.src", "ipv6.dst"]
    out = subprocess.run(
        ["tshark", "-n", "-r", pcap, "-Y", "icmpv6.type == 136", "-T", "fields",
         "-E", "separator=|"] + sum((["-e", f] for f in na_fields), []),
        check=True, capture_output=True, text=True,
    ).stdout
    nas = [dict(zip(na_fields, line.split("|"))) for line in out.splitlines() if line.strip()]
    mac = lab.a.run("cat", f"/sys/class/net/{AGENT_IF}/address").strip()
    announced = {r["icmpv6.nd.na.target_address"] for r in nas if r["ipv6.src"] in ll}
    assert announced == {VIP_LL, VIP}, out
    for r in nas:
        if r["ipv6.src"] in ll:
            assert (r["icmpv6.nd.na.flag.r"], r["icmpv6.nd.na.flag.s"], r["icmpv6.nd.na.flag.o"]) \
                in {("1", "0", "1"), ("True", "False", "True")}, r
            assert r["icmpv6.opt.linkaddr"] == mac, r
            assert r["icmpv6.checksum.status"] == "1", r
            assert r["ipv6.hlim"] == "255" and r["ipv6.dst"] == "ff02::1", r
