"""MLD hot backup end to end (VRRP6 scenarios): two agents, a kernel receiver host joining 1,000
groups, a source sending sequence-numbered UDP to each, real kernel forwarding; the device
that must learn through RBS never hears a report; then the learner fails (kill -9, or its
downstream link goes down) and every group keeps flowing from the survivor."""

import time

import pytest

from lab import (
    assert_flowing_once,
    block_reports,
    fail_and_measure,
    lab,
    learn,
    mfc,
    wait_prepared,
    GROUPS,
    ns_run,
    profile_state,
    vif_indexes,
    vrrp_state,
)
from conftest import eventually
from netns import require_root

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
        wait_prepared(lb, "b", GROUPS)
        entries = mfc(lb.ns("b"))
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
