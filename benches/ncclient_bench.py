#!/usr/bin/env python3
"""NETCONF benchmark with ncclient (DESIGN.md §6): single-entry edit-config+commit latency.

Starts the real agent (``$MLDHB_BIN`` or ``target/release/mldhb``) on a fresh datastore, preloads
running with ietf-interfaces ``interface`` entries up to each size, then times single-entry
transactions (edit-config on the candidate adding one interface, then commit). A baseline in the
same run, a ``<get-config>`` with an empty subtree filter, is timed at each size and every figure
is also printed as a ratio to it.

    python3 benches/ncclient_bench.py [--sizes 0,1000,10000] [--samples 50] [--batch 10000]
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from ncclient import manager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NS_BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS_IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
NS_IANAIFT = "urn:ietf:params:xml:ns:yang:iana-if-type"
EMPTY_FILTER = []  # <filter type="subtree"/> with no content: selects nothing


def agent_binary(arg):
    if arg:
        return arg
    if os.environ.get("MLDHB_BIN"):
        return os.environ["MLDHB_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    return os.path.join(target, "release", "mldhb")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agent:
    def __init__(self, binary, keep=False):
        self.dir = tempfile.mkdtemp(prefix="mldhb-ncbench-")
        self.keep = keep
        self.port = free_port()
        config = os.path.join(self.dir, "agent.toml")
        with open(config, "w") as f:
            f.write(
                f'listen = "127.0.0.1:{self.port}"\n'
                "auth_failure_delay_ms = 300\n"
                "manage_multicast = false\n"
                '[[users]]\nname = "admin"\npassword = "admin"\ngroups = ["admin"]\n'
            )
        self.log = os.path.join(self.dir, "agent.log")
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen(
                [binary, "agent", "--config", config, "--datastore", os.path.join(self.dir, "ds")],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
            )
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("agent exited: " + open(self.log).read()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError("agent did not start listening")
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.keep:
            print(f"kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def config_xml(names):
    entries = "".join(
        f"<interface><name>{n}</name><type>ianaift:ethernetCsmacd</type>"
        "<description>x</description></interface>"
        for n in names
    )
    return (
        f'<config xmlns="{NS_BASE}"><interfaces xmlns="{NS_IF}" '
        f'xmlns:ianaift="{NS_IANAIFT}">{entries}</interfaces></config>'
    )


def pct(values, p):
    v = sorted(values)
    k = max(1, min(len(v), int(-(-len(v) * p // 1))))  # ceil, clamped to [1, n]
    return v[k - 1]


def summary(values):
    return pct(values, 0.50), pct(values, 0.99), statistics.fmean(values)


def ms(s):
    return s * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="0,1000,10000",
                    help="datastore sizes, comma-separated (default 0,1000,10000)")
    ap.add_argument("--samples", type=int, default=50,
                    help="transactions (and baseline round trips) per size (default 50)")
    ap.add_argument("--batch", type=int, default=10000,
                    help="entries per edit-config+commit when preloading (default 10000)")
    ap.add_argument("--bin", help="agent binary (default $MLDHB_BIN or target/release/mldhb)")
    ap.add_argument("--tick", type=float,
                    help="override ncclient's transport poll interval, in seconds (its own "
                         "TICK is 0.1: a request queued while the session thread waits in "
                         "select() is sent only when that wait ends, which floors every round "
                         "trip near 100 ms whatever the agent does)")
    ap.add_argument("--keep", action="store_true", help="keep the datastore directory and log")
    args = ap.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if args.samples < 1:
        ap.error("--samples must be at least 1")
    if args.tick is not None:
        import ncclient.transport.session as nc_session
        nc_session.TICK = args.tick
    binary = agent_binary(args.bin)
    if not os.path.exists(binary):
        sys.exit(f"{binary} does not exist: build it with "
                 "`cargo build --release --bin mldhb` or set MLDHB_BIN")

    agent = Agent(binary, args.keep)
    results = []
    try:
        print(f"agent {binary} (pid {agent.proc.pid}) on 127.0.0.1:{agent.port}")
        with manager.connect(host="127.0.0.1", port=agent.port, username="admin",
                             password="admin", hostkey_verify=False, look_for_keys=False,
                             allow_agent=False, timeout=600) as m:
            import ncclient.transport.session as nc_session
            print(f"ncclient {getattr(sys.modules['ncclient'], '__version__', '?')} "
                  f"(TICK {nc_session.TICK} s), "
                  f"session {m.session_id}, base:1.1 "
                  f"{'yes' if ':base:1.1' in ' '.join(m.server_capabilities) else 'no'}")
            for i in range(10):
                m.get_config(source="running", filter=EMPTY_FILTER)
            for i in range(3):
                m.edit_config(target="candidate", config=config_xml([f"warm-{i}"]))
                m.commit()
            entries = 3
            preloaded = 0
            for size in sizes:
                print(f"\n== datastore size {size} ==", flush=True)
                if size > entries:
                    add = size - entries
                    t_all = time.perf_counter()
                    i = preloaded
                    while i < preloaded + add:
                        end = min(i + max(1, args.batch), preloaded + add)
                        t0 = time.perf_counter()
                        m.edit_config(target="candidate",
                                      config=config_xml(f"pre-{n}" for n in range(i, end)))
                        t1 = time.perf_counter()
                        m.commit()
                        t2 = time.perf_counter()
                        print(f"  preload {i:>6}..{end:<6} edit-config {ms(t1 - t0):8.1f} ms  "
                              f"commit {ms(t2 - t1):8.1f} ms", flush=True)
                        i = end
                    print(f"  preloaded {add} entries in {time.perf_counter() - t_all:.2f} s")
                    preloaded += add
                    entries += add
                before = entries
                base = []
                for _ in range(args.samples):
                    t0 = time.perf_counter()
                    m.get_config(source="running", filter=EMPTY_FILTER)
                    base.append(time.perf_counter() - t0)
                txn, edit, commit = [], [], []
                for i in range(args.samples):
                    cfg = config_xml([f"bench-{size}-{i}"])
                    t0 = time.perf_counter()
                    m.edit_config(target="candidate", config=cfg)
                    t1 = time.perf_counter()
                    m.commit()
                    t2 = time.perf_counter()
                    edit.append(t1 - t0)
                    commit.append(t2 - t1)
                    txn.append(t2 - t0)
                    entries += 1
                b50, b99, bmean = summary(base)
                p50, p99, mean = summary(txn)
                print(f"  entries in running: {before}..{entries} over {args.samples} transactions")
                print(f"  baseline get-config (empty filter): p50 {ms(b50):.3f} ms  "
                      f"p99 {ms(b99):.3f} ms  mean {ms(bmean):.3f} ms")
                print(f"  edit-config+commit: p50 {ms(p50):.3f} ms  p99 {ms(p99):.3f} ms  "
                      f"mean {ms(mean):.3f} ms  min {ms(min(txn)):.3f}  max {ms(max(txn)):.3f}")
                print(f"    edit-config alone p50 {ms(pct(edit, 0.5)):.3f} ms, "
                      f"commit alone p50 {ms(pct(commit, 0.5)):.3f} ms")
                print(f"  ratio to baseline: p50 {p50 / b50:.2f}x  p99 {p99 / b99:.2f}x")
                results.append((size, p50, p99, mean, b50))
    finally:
        agent.stop()

    print("\n== summary (ncclient over SSH, durability on) ==")
    print(f"{'entries':>8}  {'p50 ms':>9}  {'p99 ms':>9}  {'mean ms':>9}  "
          f"{'base p50 ms':>11}  {'p50/base':>9}")
    for size, p50, p99, mean, b50 in results:
        print(f"{size:>8}  {ms(p50):>9.3f}  {ms(p99):>9.3f}  {ms(mean):>9.3f}  "
              f"{ms(b50):>11.3f}  {p50 / b50:>8.2f}x")
    by = {r[0]: r for r in results}
    if 1000 in by and len(results) > 1 and results[-1][0] > 1000:
        big = results[-1]
        print(f"p50 ratio {big[0]} / 1000 entries: {big[1] / by[1000][1]:.2f}")


if __name__ == "__main__":
    main()
