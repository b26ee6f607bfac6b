#!/usr/bin/env python3
"""Switchover benchmark (DESIGN.md section 6): VRRP6 at 1-centisecond advertisements, 10,000
groups joined on the receiver host and backed up from A to B, traffic to a sample of 200 groups
at 200 datagrams per second each, real kernel forwarding in network namespaces. The master's
agent is killed (kill -9) and the receiver measures, per group, the longest interval between
consecutive datagrams around the failure; the figure is the maximum over the sample, printed
beside the same measurement over a window without a failure (the baseline) and their ratio.

Run as root on an otherwise idle machine, after a release build:

    cargo build --release --bin mldhb
    sudo python3 benches/switchover_bench.py [--groups 10000] [--sample 200] [--rate 200]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
os.environ.setdefault(
    "MLDHB_BIN",
    os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "mldhb"),
)

from lab import (  # noqa: E402
    Lab,
    RECEIVER_NS,
    block_reports,
    mld_groups,
    read_report,
    vrrp_state,
)
from conftest import eventually  # noqa: E402


def window(report, seconds, action=None):
    """Marks the receiver, optionally acts, waits, and returns the report."""
    reset = str(report).replace(".json", ".reset")
    open(reset, "w").close()
    eventually(lambda: not os.path.exists(reset), timeout=5, step=0.05)
    time.sleep(0.5)
    if action:
        action()
    time.sleep(seconds)
    return read_report(report)


def summary(r, sample):
    gaps = [g["max_gap_ms"] for g in r["groups"][:sample]]
    silent = sum(1 for g in r["groups"][:sample] if g["silent_ms"] is None or g["silent_ms"] > 1000)
    return max(gaps), sorted(gaps)[len(gaps) // 2], silent, sum(g["duplicates"] for g in r["groups"][:sample])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--groups", type=int, default=10000)
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--advertise", type=int, default=1, help="VRRP6 advertisement interval, cs")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark builds network namespaces")
    tmp = tempfile.mkdtemp(prefix="mldhb-switchover-")
    lb = Lab(Path(tmp), mode="master-backup", advertise=args.advertise)
    try:
        lb.up()
        block_reports(lb.ns("b"))
        ok = eventually(lambda: vrrp_state(lb, "a") == "master" and vrrp_state(lb, "b") == "backup",
                        timeout=30, step=0.5)
        if not ok:
            sys.exit("roles did not settle:\n" + lb.logs())
        report = os.path.join(tmp, "receiver.json")
        lb.receiver(args.groups, report)
        lb.source(args.sample, args.rate)
        t0 = time.time()
        ok = eventually(lambda: sum(1 for o, _ in mld_groups(lb, "b").values() if o == "peer") >= args.groups,
                        timeout=180, step=1)
        if not ok:
            sys.exit("B did not get every group from A:\n" + lb.logs())
        print(f"{args.groups} groups learned by A and backed up to B in {time.time() - t0:.1f} s")
        block_reports(RECEIVER_NS, chain="OUTPUT", iface_opt=("-o", "eth0"))
        base = window(report, 3)
        fail = window(report, 3, action=lambda: lb.kill_agent("a"))
        b_max, b_med, b_silent, b_dups = summary(base, args.sample)
        f_max, f_med, f_silent, f_dups = summary(fail, args.sample)
        master_down = 3 * args.advertise * 10 + (256 - 120) * args.advertise * 10 / 256
        print(f"VRRP6 advertisements every {args.advertise} cs: B's master-down interval {master_down:.1f} ms")
        print(f"sample: {args.sample} groups at {args.rate} datagrams/s each, {args.groups} groups joined")
        print(f"baseline (no failure, 3 s): max gap {b_max:.1f} ms, median {b_med:.1f} ms, "
              f"{b_silent} groups silent, {b_dups} duplicates")
        print(f"switchover (kill -9 of A):  max gap {f_max:.1f} ms, median {f_med:.1f} ms, "
              f"{f_silent} groups lost, {f_dups} duplicates")
        print(f"ratio switchover/baseline max gap: {f_max / b_max:.1f}x; budget < 50 ms: "
              f"{'within' if f_max < 50 and f_silent == 0 else 'OVER'}")
        print("B is now VRRP6", vrrp_state(lb, "b"))
        json.dump({"baseline_max_gap_ms": b_max, "switchover_max_gap_ms": f_max, "groups_lost": f_silent},
                  sys.stderr)
        print(file=sys.stderr)
    finally:
        lb.down()


if __name__ == "__main__":
    main()
