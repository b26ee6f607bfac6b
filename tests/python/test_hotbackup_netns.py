"""MLD hot backup end to end (VRRP6 scenarios): two agents, a kernel receiver host joining 1,000
groups, a source sending sequence-numbered UDP to each, real kernel forwarding; the device
that must learn through RBS never hears a report; then the learner fails (kill -9, or its
downstream link goes down) and every group keeps flowing from the survivor."""

import time

import pytest

from lab import (
    block_reports,
    lab,
    mfc,
    mld_groups,
    ns_run,
    profile_state,
    read_report,
    vif_indexes,
    vrrp_state,
    RECEIVER_NS,
)
from conftest import eventually
from netns import require_root

GROUPS = 1000
RATE = 10  # datagrams per second per group
# VRRP6 at 1 s advertisements: B (priority 120) declares the master down after
# 3 * 1 s + (256 - 120) / 256 s.
MASTER_DOWN_B = 3 + (256 - 120) / 256
MASTER_DOWN_A = 3 + (256 - 200) / 256


@pytest.fixture(autouse=True)
def _root():
    require_root()


def wait_roles(lb, master, backup):
    ok = eventually(lambda: vrrp_state(lb, master) == "master" and vrrp_state(lb, backup) == "backup",
                    timeout=30, step=0.5)
    assert ok, (vrrp_state(lb, master), vrrp_state(lb, backup), lb.logs())
    ok = eventually(lambda: profile_state(lb, master).get("batch-sync") == "complete"
                    and profile_state(lb, backup).get("batch-sync") == "complete", timeout=30, step=0.5)
    assert ok, (profile_state(lb, master), profile_state(lb, backup), lb.logs())


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


def assert_flowing_once(report, require_all=True):
    """Every group arrives, and no sequence number arrives twice."""
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


@pytest.mark.parametrize("failure", ["kill9", "link-down"])
def test_master_backup(tmp_path, failure):
    with lab(tmp_path, mode="master-backup") as lb:
        # B must learn only through RBS: it never hears a report.
        block_reports(lb.ns("b"))
        wait_roles(lb, "a", "b")
        report = tmp_path / "receiver.json"
        learn(lb, "a", "b", report)
        time.sleep(3)
        assert_flowing_once(report)
        # The backup's kernel entries are prepared without a downstream interface.
        down_vifs = vif_indexes(lb.ns("b"), "eth1")
        entries = mfc(lb.ns("b"))
        assert entries, "B prepared no kernel entries"
        assert all(not down_vifs & set(oifs) for oifs in entries.values()), (down_vifs, entries)
        if failure == "kill9":
            fail = lambda: lb.kill_agent("a")  # noqa: E731
        else:
            fail = lambda: ns_run(lb.ns("a"), "ip", "link", "set", "eth1", "down")  # noqa: E731
        fail_and_measure(lb, report, fail, MASTER_DOWN_B + 1)
        assert vrrp_state(lb, "b") == "master"


@pytest.mark.parametrize("failure", ["kill9", "link-down"])
def test_active_active(tmp_path, failure):
    with lab(tmp_path, mode="active-active", load_balance="group-hash") as lb:
        # A must learn only through RBS; B learns from the host.
        block_reports(lb.ns("a"))
        wait_roles(lb, "a", "b")
        report = tmp_path / "receiver.json"
        learn(lb, "b", "a", report)
        time.sleep(3)
        # Both forward, each its share: every group exactly once.
        assert_flowing_once(report)
        a_down = vif_indexes(lb.ns("a"), "eth1")
        b_down = vif_indexes(lb.ns("b"), "eth1")
        a_fwd = {k[0] for k, oifs in mfc(lb.ns("a")).items() if a_down & set(oifs)}
        b_fwd = {k[0] for k, oifs in mfc(lb.ns("b")).items() if b_down & set(oifs)}
        assert a_fwd and b_fwd, (len(a_fwd), len(b_fwd))
        assert not (a_fwd & b_fwd), sorted(a_fwd & b_fwd)[:5]
        if failure == "kill9":
            fail = lambda: lb.kill_agent("b")  # noqa: E731
        else:
            fail = lambda: ns_run(lb.ns("b"), "ip", "link", "set", "eth1", "down")  # noqa: E731
        # A is VRRP6 master already; it takes B's share when it learns B is gone.
        fail_and_measure(lb, report, fail, MASTER_DOWN_A + 1)
