"""The RBS channel between two real agents configured over NETCONF: each agent runs in a
network namespace of the test's own, joined by a veth pair (2001:db8:ab::1 and ::2), with
services pointed at each other on one port. State, counters and notifications are read back
with <get> and a subscription."""

import base64
import hashlib
import os
import time

import pytest
from ncclient.operations.rpc import RPCError

from conftest import NS_BASE, NS_RBS
from netns import Netns, require_root
from test_interfaces_netns import NsAgent, wait_for

A_ADDR = "2001:db8:ab::1"
B_ADDR = "2001:db8:ab::2"
PORT = 2046
SECRET = b"rbs-secret-1"


def cipher(secret):
    """The agent's cipher-text key form (see src/seckey.rs), written independently: marks
    around unpadded base64 of salt, origin, masked key and tag."""
    label = b"mldhb security-key cipher text, version 1"
    origin = b"c"
    salt = hashlib.sha256(label + b"salt" + origin + secret).digest()[:8]
    stream, counter = b"", 0
    while len(stream) < len(secret):
        stream += hashlib.sha256(label + b"stream" + salt + counter.to_bytes(4, "big")).digest()
        counter += 1
    masked = bytes(a ^ b for a, b in zip(secret, stream))
    tag = hashlib.sha256(label + b"tag" + salt + origin + secret).digest()[:8]
    body = base64.b64encode(salt + origin + masked + tag).decode().rstrip("=")
    return "%^%#" + body + "%^%#"


def service(peer, source, key=None, key_type="simple", op=None):
    sk = ""
    if key is not None:
        sk = f"<security-key><key-type>{key_type}</key-type><key>{key}</key></security-key>"
    attr = f' xmlns:nc="{NS_BASE}" nc:operation="{op}"' if op else ""
    return (
        f'<config xmlns="{NS_BASE}"><remote-backup xmlns="{NS_RBS}">'
        f"<service{attr}><name>rbs1</name><peer-ipv6>{peer}</peer-ipv6>"
        f"<source-ipv6>{source}</source-ipv6><port>{PORT}</port>{sk}</service>"
        "</remote-backup></config>"
    )


def state(m):
    data = m.get(filter=("subtree", f'<remote-backup xmlns="{NS_RBS}"/>')).data
    ns = {"rbs": NS_RBS}
    svc = data.xpath("//rbs:service[rbs:name='rbs1']", namespaces=ns)
    if not svc:
        return {}
    out = {}
    for leaf in svc[0].iter():
        if leaf.text and leaf.text.strip() and len(leaf) == 0:
            out[leaf.tag.split("}")[1]] = leaf.text.strip()
    return out


def notifications(m, name, timeout=10):
    """Notification elements of one name until `timeout` passes without one."""
    found = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        n = m.take_notification(timeout=0.5)
        if n is None:
            continue
        el = n.notification_ele
        hits = el.xpath(f"//*[local-name()='{name}']")
        if hits:
            found.append({c.tag.split("}")[1]: c.text for c in hits[0]})
            return found
    return found


class Pair:
    def __init__(self, tag, workdir):
        self.a = Netns(f"mldhb-rbsa-{tag}")
        self.b = Netns(f"mldhb-rbsb-{tag}")
        self.a.run("ip", "link", "add", "ra", "type", "veth", "peer", "name", "rb", "netns", self.b.name)
        for ns, dev, addr in ((self.a, "ra", A_ADDR), (self.b, "rb", B_ADDR)):
            ns.run("ip", "addr", "add", f"{addr}/64", "dev", dev, "nodad")
            ns.run("ip", "link", "set", dev, "up")
        for name, ns in (("a", self.a), ("b", self.b)):
            d = os.path.join(workdir, name)
            os.makedirs(d, exist_ok=True)
            setattr(self, f"agent_{name}", NsAgent(ns, d))

    def delete(self):
        for agent in (self.agent_a, self.agent_b):
            if agent.proc and agent.proc.poll() is None:
                agent.kill9()
        self.a.delete()
        self.b.delete()


@pytest.fixture
def pair(workdir):
    require_root()
    p = Pair(os.getpid(), workdir)
    yield p
    p.delete()


def test_channel_authenticates_counts_and_recovers(pair):
    ma = pair.agent_a.start()
    mb = pair.agent_b.start()
    watcher = pair.agent_a.connect()
    watcher.create_subscription()

    # Unusable configuration is refused in prepare and changes nothing.
    with pytest.raises(RPCError) as err:
        ma.edit_config(target="running", config=service(A_ADDR, A_ADDR, SECRET.decode()))
    assert "same address" in str(err.value)
    with pytest.raises(RPCError) as err:
        ma.edit_config(target="running", config=service(B_ADDR, A_ADDR, "%^%#AAAA%^%#", "cipher"))
    assert "security-key" in str(err.value)
    assert state(ma) == {}

    # a has the key in clear, b in cipher form: the same secret.
    ma.edit_config(target="running", config=service(B_ADDR, A_ADDR, SECRET.decode()))
    mb.edit_config(
        target="running", config=service(A_ADDR, B_ADDR, cipher(SECRET), "cipher")
    )
    assert wait_for(lambda: state(ma).get("state") == "up" and state(mb).get("state") == "up", 15), (
        state(ma), state(mb))
    sa, sb = state(ma), state(mb)
    assert sa["authenticated"] == "true" and sb["authenticated"] == "true"
    assert "last-up-time" in sa
    assert int(sa["frames-sent"]) >= 3 and int(sb["frames-received"]) >= 3
    assert sa["auth-failures"] == "0" and sa["decode-errors"] == "0"
    up = notifications(watcher, "rbs-channel-up")
    assert up and up[0]["service"] == "rbs1" and up[0]["authenticated"] == "true"

    # Keepalives flow while idle: frames keep increasing.
    before = int(state(ma)["frames-received"])
    assert wait_for(lambda: int(state(ma)["frames-received"]) >= before + 2, 10)

    # b's key changes to a wrong one: the channel goes down and stays down, failures counted.
    mb.edit_config(target="running", config=service(A_ADDR, B_ADDR, "wrong-key"))
    down = notifications(watcher, "rbs-channel-down")
    assert down and down[0]["reason"] == "peer-closed", down
    assert wait_for(lambda: int(state(ma)["auth-failures"]) >= 2 and int(state(mb)["auth-failures"]) >= 2, 15)
    sa, sb = state(ma), state(mb)
    assert sa["state"] != "up" and sb["state"] != "up"
    assert sb["last-down-reason"] == "auth-failure"

    # Fixed: up again.
    mb.edit_config(target="running", config=service(A_ADDR, B_ADDR, SECRET.decode()))
    assert wait_for(lambda: state(ma).get("state") == "up", 15), state(ma)

    # b dies: a sees the channel go down; b comes back (running restored) and it is up again.
    pair.agent_b.kill9()
    assert wait_for(lambda: state(ma).get("state") != "up", 10)
    assert state(ma)["last-down-reason"] in ("peer-closed", "keepalive-timeout")
    mb = pair.agent_b.start()
    assert wait_for(lambda: state(ma).get("state") == "up" and state(mb).get("state") == "up", 15), (
        state(ma), state(mb))
    for m in (ma, mb, watcher):
        m.close_session()


def test_unauthenticated_channel_comes_up_with_a_warning_in_state(pair):
    ma = pair.agent_a.start()
    mb = pair.agent_b.start()
    ma.edit_config(target="running", config=service(B_ADDR, A_ADDR))
    mb.edit_config(target="running", config=service(A_ADDR, B_ADDR))
    assert wait_for(lambda: state(ma).get("state") == "up", 15), state(ma)
    assert state(ma)["authenticated"] == "false"
    assert state(mb)["authenticated"] == "false"
    # Removing the service on a takes the channel down on b.
    ma.edit_config(target="running", config=service(B_ADDR, A_ADDR, op="remove"))
    assert state(ma) == {}
    assert wait_for(lambda: state(mb).get("state") != "up", 10)
    assert state(mb)["last-down-reason"] == "peer-closed"
    ma.close_session()
    mb.close_session()
