"""ietf-interfaces applied to the kernel through netlink, in a namespace of the test's own:
admin state, IPv6 addresses, pre-provisioned interfaces, and reconciliation after a restart."""

import os
import subprocess
import time

import pytest

from conftest import BIN, NS_BASE, NS_IANAIFT, NS_IF, free_port
from netns import Netns, require_root
from ncclient import manager

NS_IP = "urn:ietf:params:xml:ns:yang:ietf-ip"


@pytest.fixture
def ns():
    require_root()
    n = Netns(f"mldhb-if-{os.getpid()}")
    yield n
    n.delete()


class NsAgent:
    def __init__(self, ns, workdir):
        self.ns = ns
        self.port = free_port()
        self.config = os.path.join(workdir, "agent.toml")
        with open(self.config, "w") as f:
            f.write(
                f'listen = "127.0.0.1:{self.port}"\ndatastore = "{workdir}/ds"\n'
                '[[users]]\nname = "admin"\npassword = "admin"\ngroups = ["admin"]\n'
            )
        self.log_path = os.path.join(workdir, "agent.log")
        self.log = open(self.log_path, "ab")
        self.proc = None

    def log_tail(self, lines=30):
        """The last lines of the agent's log, for a failure message."""
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return b"".join(f.readlines()[-lines:]).decode(errors="replace")

    def start(self):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns.name, BIN, "agent", "--config", self.config],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.proc.poll() is None, (
                f"agent exited with status {self.proc.returncode}; its log ends with:\n"
                + self.log_tail()
            )
            try:
                return self.connect()
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("agent did not start")

    def connect(self):
        with self.ns.entered():
            return manager.connect(
                host="127.0.0.1", port=self.port, username="admin", password="admin",
                hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=30,
            )

    def kill9(self):
        self.proc.kill()
        self.proc.wait()


def iface(name, enabled=True, addrs=(), op=None):
    a = "".join(
        f"<address><ip>{ip}</ip><prefix-length>{plen}</prefix-length></address>" for ip, plen in addrs
    )
    attr = f' xmlns:nc="{NS_BASE}" nc:operation="{op}"' if op else ""
    return (
        f'<config xmlns="{NS_BASE}"><interfaces xmlns="{NS_IF}" xmlns:t="{NS_IANAIFT}">'
        f"<interface{attr}><name>{name}</name><type>t:ethernetCsmacd</type>"
        f"<enabled>{'true' if enabled else 'false'}</enabled>"
        f'<ipv6 xmlns="{NS_IP}">{a}</ipv6></interface></interfaces></config>'
    )


def link_state(ns, name):
    out = ns.run("ip", "-o", "link", "show", name, check=False)
    return "UP" in out.split("<", 1)[1].split(">", 1)[0].split(",") if out else None


def has_addr(ns, name, addr):
    return addr in ns.run("ip", "-o", "-6", "addr", "show", "dev", name, check=False)


def wait_for(pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_admin_state_addresses_and_preprovisioning(ns, workdir):
    ns.run("ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    agent = NsAgent(ns, workdir)
    m = agent.start()
    try:
        m.edit_config(target="running", config=iface("v0", True, [("2001:db8:1::1", 64)]))
        assert link_state(ns, "v0") is True
        assert has_addr(ns, "v0", "2001:db8:1::1/64")

        m.edit_config(target="running", config=iface("v0", False, [("2001:db8:1::1", 64)]))
        assert link_state(ns, "v0") is False

        # Replacing the address list removes the old address and adds the new one.
        m.edit_config(
            target="running", config=iface("v0", True, [("2001:db8:1::2", 64)], op="replace")
        )
        assert has_addr(ns, "v0", "2001:db8:1::2/64")
        assert not has_addr(ns, "v0", "2001:db8:1::1/64")

        state = m.get(filter=("subtree", f'<interfaces xmlns="{NS_IF}"/>')).data
        status = state.xpath(
            "//if:interface[if:name='v0']/if:oper-status/text()", namespaces={"if": NS_IF}
        )
        assert status and status[0] in ("up", "down")

        # Pre-provisioned: configured before it exists, applied when it appears.
        m.edit_config(target="running", config=iface("v9", True, [("2001:db8:9::1", 64)]))
        ns.run("ip", "link", "add", "v9", "type", "veth", "peer", "name", "v10")
        assert wait_for(lambda: has_addr(ns, "v9", "2001:db8:9::1/64")), "v9 was not configured"
        assert link_state(ns, "v9") is True
    finally:
        m.close_session()

    # After kill -9 and removal of the address behind the agent's back, a restart restores it.
    agent.kill9()
    ns.run("ip", "addr", "del", "2001:db8:1::2/64", "dev", "v0")
    m = agent.start()
    m.close_session()
    assert has_addr(ns, "v0", "2001:db8:1::2/64")
    agent.kill9()


def test_confirmed_commit_rollback_reaches_the_kernel(ns, workdir):
    """A confirmed commit that runs out, or is cancelled, is undone in the kernel too: the
    rollback goes through the runtimes like any commit."""
    ns.run("ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    agent = NsAgent(ns, workdir)
    m = agent.start()
    try:
        m.edit_config(target="running", config=iface("v0", True, [("2001:db8:1::1", 64)]))
        assert has_addr(ns, "v0", "2001:db8:1::1/64")

        m.edit_config(target="candidate", config=iface("v0", True, [("2001:db8:1::5", 64)]))
        m.commit(confirmed=True, timeout="2")
        assert has_addr(ns, "v0", "2001:db8:1::5/64")
        assert wait_for(lambda: not has_addr(ns, "v0", "2001:db8:1::5/64"), timeout=60)
        assert has_addr(ns, "v0", "2001:db8:1::1/64")

        m.edit_config(target="candidate", config=iface("v0", False, [("2001:db8:1::6", 64)]))
        m.commit(confirmed=True, timeout="600")
        assert link_state(ns, "v0") is False
        assert has_addr(ns, "v0", "2001:db8:1::6/64")
        m.cancel_commit()
        assert link_state(ns, "v0") is True
        assert not has_addr(ns, "v0", "2001:db8:1::6/64")
    finally:
        m.close_session()
    agent.kill9()
