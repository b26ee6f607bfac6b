"""tshark (Wireshark's decoder) reads the agent's MLD queries on the wire: decoded as MLD, with
the ICMPv6 checksum status Good, the Router Alert option present, hop limit 1 and a link-local
source."""

import os
import shutil
import subprocess
import time

import pytest

from netns import require_root
from test_interfaces_netns import NsAgent
from test_mld_netns import Topology, join_sockets, mld_config

FIELDS = [
    "icmpv6.type",
    "icmpv6.checksum.status",
    "ipv6.opt.router_alert",
    "ipv6.hlim",
    "ipv6.src",
    "ipv6.dst",
    "icmpv6.mld.multicast_address",
    "_ws.expert",
]


@pytest.fixture
def topo():
    require_root()
    if not shutil.which("tshark"):
        pytest.fail("tshark is missing: scripts/setup installs it")
    t = Topology(f"ts{os.getpid()}")
    yield t
    t.delete()


def test_queries_decode_cleanly(topo, workdir):
    pcap = os.path.join(workdir, "hd.pcap")
    cap = subprocess.Popen(
        ["ip", "netns", "exec", topo.h.name, "tshark", "-q", "-n", "-i", "hd",
         "-w", pcap],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    agent = NsAgent(topo.r, workdir)
    m = None
    try:
        # dumpcap announces the capture on stderr once it is running.
        deadline = time.time() + 20
        line = b""
        while time.time() < deadline and b"Capturing on" not in line:
            line = cap.stderr.readline()
        assert b"Capturing on" in line, "tshark did not start"
        m = agent.start()
        m.edit_config(target="running", config=mld_config())
        # A join then a leave makes the agent send group-specific queries too.
        time.sleep(2)
        sock = join_sockets(topo.h, ["ff0e::db8:77"])
        time.sleep(1.5)
        sock.close()
        time.sleep(2.5)
    finally:
        cap.terminate()
        cap.wait()
        if m:
            m.close_session()
        agent.kill9()
    out = subprocess.run(
        ["tshark", "-n", "-r", pcap, "-Y", "icmpv6.type == 130", "-T", "fields",
         "-E", "separator=|", "-E", "occurrence=f"] + sum((["-e", f] for f in FIELDS), []),
        check=True, capture_output=True, text=True,
    ).stdout
    rows = [dict(zip(FIELDS, line.split("|"))) for line in out.splitlines() if line.strip()]
    ours = [r for r in rows if r["ipv6.src"].startswith("fe80")]
    assert ours, "no query from the agent was captured:\n" + out
    general = [r for r in ours if r["icmpv6.mld.multicast_address"] == "::"]
    specific = [r for r in ours if r["icmpv6.mld.multicast_address"] == "ff0e::db8:77"]
    assert general and specific, out
    for r in ours:
        assert r["icmpv6.checksum.status"] == "1", r  # 1 = Good
        assert r["ipv6.opt.router_alert"] == "0", r  # Router Alert: MLD
        assert r["ipv6.hlim"] == "1", r
        assert r["_ws.expert"] == "", r
    assert {r["ipv6.dst"] for r in general} == {"ff02::1"}
    assert {r["ipv6.dst"] for r in specific} == {"ff0e::db8:77"}
