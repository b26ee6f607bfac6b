"""MLD hot backup end to end (VRRP6 scenarios): two agents, a kernel receiver host joining 1,000
groups, a source sending sequence-numbered UDP to each, real kernel forwarding; the device
that must learn through RBS never hears a report; then the learner fails (kill -9, or its
downstream link goes down) and every group keeps flowing from the survivor."""

import time

import pytest

from lab import (
    assert_flowing_once,
    backend_status,
    block_device_reports,
    fail_and_measure,
    forwarding,
    lab,
    learn,
    reports_received,
    wait_prepared,
    BACKENDS,
    GROUPS,
    ns_run,
    profile_state,
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


def assert_learned_only_through_rbs(lb, dev, dropped, before):
    """Reports to `dev` were dropped on the way (the counter moved) and its router took none in
    since the block went in (`before`: its count then; the devices' own kernels report their
    link-scope groups while the lab comes up); `learn` has checked that every one of its
    entries has origin peer."""
    assert dropped() > 0, "no report to the device was dropped: the block is not in the path"
    assert reports_received(lb, dev) == before, lb.logs()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("failure", ["kill9", "link-down"])
def test_master_backup(tmp_path, failure, backend):
    with lab(tmp_path, mode="master-backup", backend=backend) as lb:
        assert backend_status(lb, "a") == (backend, "up")
        # B must learn only through RBS: it never hears a report.
        dropped = block_device_reports(lb, "b")
        before = reports_received(lb, "b")
        wait_roles(lb, "a", "b")
        report = tmp_path / "receiver.json"
        learn(lb, "a", "b", report)
        time.sleep(3)
        assert_flowing_once(report)
        assert_learned_only_through_rbs(lb, "b", dropped, before)
        # The backup's entries are prepared with the downstream interface standby.
        table = wait_prepared(lb, "b", GROUPS)
        assert not forwarding(lb, "b"), sorted(forwarding(lb, "b"))[:5]
        assert all(oifs.get("eth1") != "active" for oifs in table.values())
        if failure == "kill9":
            fail = lambda: lb.kill_agent("a")  # noqa: E731
        else:
            fail = lambda: ns_run(lb.ns("a"), "ip", "link", "set", "eth1", "down")  # noqa: E731
        fail_and_measure(lb, report, fail, MASTER_DOWN_B + 1)
        assert vrrp_state(lb, "b") == "master"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("failure", ["kill9", "link-down"])
def test_active_active(tmp_path, failure, backend):
    with lab(tmp_path, mode="active-active", load_balance="group-hash", backend=backend) as lb:
        # A must learn only through RBS; B learns from the host.
        dropped = block_device_reports(lb, "a")
        before = reports_received(lb, "a")
        wait_roles(lb, "a", "b")
        report = tmp_path / "receiver.json"
        learn(lb, "b", "a", report)
        time.sleep(3)
        # Both forward, each its share: every group exactly once.
        assert_flowing_once(report)
        assert_learned_only_through_rbs(lb, "a", dropped, before)
        a_fwd, b_fwd = forwarding(lb, "a"), forwarding(lb, "b")
        assert a_fwd and b_fwd, (len(a_fwd), len(b_fwd))
        assert not (a_fwd & b_fwd), sorted(a_fwd & b_fwd)[:5]
        if failure == "kill9":
            fail = lambda: lb.kill_agent("b")  # noqa: E731
        else:
            fail = lambda: ns_run(lb.ns("b"), "ip", "link", "set", "eth1", "down")  # noqa: E731
        # A is VRRP6 master already; it takes B's share when it learns B is gone.
        fail_and_measure(lb, report, fail, MASTER_DOWN_A + 1)
