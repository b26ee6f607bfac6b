"""MLD hot backup end to end in the E-Trunk scenarios (SCENARIOS.md 3 and 4): the lab with
Open vSwitch as the customer edge (an LACP bond over one link to each device's Eth-Trunk member,
a port to the receiver host), two agents running E-Trunk, LACP, MLD, RBS and kernel forwarding,
1,000 groups. OVS must show the master's member in its aggregation and the backup's out
(master/backup), or both (active-active); the device that must learn through RBS never hears a
report; then the learner fails (kill -9, or its member link goes down) and every group keeps
flowing from the survivor, once, each group's gap printed and bounded.

The bound: the E-Trunk declares its peer lost after the peer's hello interval times its
multiplier (1 s x 3 here); on a kill that is when the survivor becomes master (master/backup)
or takes the peer's share (active-active). In master/backup the survivor's member must also
join the customer edge's aggregation: it sends an LACPDU in sync at once and OVS enables the
member on receipt, well within the second of margin. OVS drops the dead device's member only
after its own LACP timeout (3 s), but nothing depends on that: traffic towards the receiver
enters OVS on the survivor's member. A member link going down needs no timer at all (the
E-Trunk reports it in an immediate hello), so the same bound is loose there."""

import time

import pytest

from lab import (
    CE_MEMBER,
    GROUPS,
    RECEIVER_NS,
    assert_flowing_once,
    block_device_reports,
    etrunk_state,
    fail_and_measure,
    forwarding,
    lab,
    learn,
    reports_received,
    wait_prepared,
    ns_run,
    profile_state,
    BACKENDS,
)
from conftest import eventually
from netns import require_root

HELLO_S = 1.0  # timer hello 10 (x 100 ms)
MULTIPLIER = 3  # timer hold-on-failure multiplier 3
LIMIT = HELLO_S * MULTIPLIER + 1


@pytest.fixture(autouse=True)
def _root():
    require_root()


def wait_roles(lb, active_active):
    """A is E-Trunk master and B backup; the Eth-Trunks' roles and member selection follow
    (both master and selected with force-master); RBS batches are complete on both."""
    if active_active:
        want = {"a": ("master", "master", True), "b": ("backup", "master", True)}
    else:
        want = {"a": ("master", "master", True), "b": ("backup", "backup", False)}

    def roles():
        got = {d: etrunk_state(lb, d) for d in "ab"}
        return all((s[0], s[2], s[3]) == want[d] for d, s in got.items()) or got

    ok = eventually(lambda: roles() is True, timeout=30, step=0.5)
    assert ok, (roles(), lb.logs())
    ok = eventually(lambda: profile_state(lb, "a").get("batch-sync") == "complete"
                    and profile_state(lb, "b").get("batch-sync") == "complete", timeout=30, step=0.5)
    assert ok, (profile_state(lb, "a"), profile_state(lb, "b"), lb.logs())


def wait_lag(lb, devices):
    """OVS's aggregation holds exactly the members towards `devices`."""
    want = {CE_MEMBER[d] for d in devices}
    ok = eventually(lambda: lb.ovs.enabled_members() == want, timeout=20, step=0.5)
    assert ok, (want, lb.ovs.appctl("bond/show", "bond0"))


def pin_receiver_to(lb, dev):
    """Makes OVS send everything the receiver host sends into the bond (its MLD reports) on
    the member towards `dev`. The bond balances by source MAC, so one host's reports would all
    take whichever member its hash bucket happens to use; the test decides which."""
    mac = ns_run(RECEIVER_NS, "cat", "/sys/class/net/eth0/address").strip()
    bucket = lb.ovs.appctl("bond/hash", mac).strip()
    lb.ovs.appctl("bond/migrate", "bond0", bucket, CE_MEMBER[dev])


def failure(lb, dev, kind):
    if kind == "kill9":
        return lambda: lb.kill_agent(dev)
    return lambda: ns_run(lb.ns(dev), "ip", "link", "set", "eth1", "down")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["kill9", "link-down"])
def test_master_backup(tmp_path, kind, backend):
    with lab(tmp_path, role_source="e-trunk", mode="master-backup", backend=backend) as lb:
        # B must learn only through RBS: it never hears a report (OVS sends it nothing on an
        # unselected member anyway).
        block_device_reports(lb, "b")
        before = reports_received(lb, "b")
        wait_roles(lb, active_active=False)
        wait_lag(lb, "a")
        report = tmp_path / "receiver.json"
        learn(lb, "a", "b", report)
        time.sleep(3)
        assert_flowing_once(report)
        # The backup's kernel entries are prepared without the Eth-Trunk.
        wait_prepared(lb, "b", GROUPS)
        assert reports_received(lb, "b") == before
        assert not forwarding(lb, "b"), sorted(forwarding(lb, "b"))[:5]
        assert len(forwarding(lb, "a")) == GROUPS
        fail_and_measure(lb, report, failure(lb, "a", kind), LIMIT)
        assert etrunk_state(lb, "b")[0] == "master"
        # OVS moved its aggregation to B's member (A's left on its LACP timeout or carrier).
        wait_lag(lb, "b")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["kill9", "link-down"])
def test_active_active(tmp_path, kind, backend):
    with lab(tmp_path, role_source="e-trunk", mode="active-active", load_balance="group-hash",
             backend=backend) as lb:
        # A must learn only through RBS: reports reaching it are dropped on the way, and OVS is
        # told to send the receiver's reports on B's member.
        block_device_reports(lb, "a")
        before = reports_received(lb, "a")
        wait_roles(lb, active_active=True)
        wait_lag(lb, "ab")
        pin_receiver_to(lb, "b")
        report = tmp_path / "receiver.json"
        learn(lb, "b", "a", report)
        time.sleep(3)
        # Both forward, each its share: every group exactly once.
        assert_flowing_once(report)
        assert reports_received(lb, "a") == before, lb.logs()
        a_fwd, b_fwd = forwarding(lb, "a"), forwarding(lb, "b")
        assert a_fwd and b_fwd, (len(a_fwd), len(b_fwd))
        assert not (a_fwd & b_fwd), sorted(a_fwd & b_fwd)[:5]
        # A takes B's share when it learns B is gone (hold time) or B's member is down (at once).
        fail_and_measure(lb, report, failure(lb, "b", kind), LIMIT)
        assert len(forwarding(lb, "a")) == GROUPS
        wait_lag(lb, "a")
