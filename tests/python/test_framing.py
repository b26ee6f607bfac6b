"""RFC 6242 framing and bad input, spoken by hand over real SSH (paramiko) to the real agent.

A base:1.0-only client gets end-of-message framing, a base:1.1 client chunked framing, a hello
and the first rpc may share one write; malformed XML, a missing message-id, foreign attributes
on <rpc>, prefixed elements, DTDs and entities, and oversized messages each get the precise
answer, and the session (or, when it must end, the agent) survives.
"""

import os
import re

import pytest
from lxml import etree
from conftest import (
    NS_BASE,
    NS_NCM,
    assert_ok,
    config,
    data_of,
    edit,
    eventually,
    get_config,
    interface,
    interfaces,
    one_error,
    rbs_service,
    remote_backup,
    service_ports,
    xml_of,
    xp,
)

GET_RUNNING = "<get-config><source><running/></source></get-config>"


def rpc_text(body, msg_id="1", attrs=""):
    return f'<rpc xmlns="{NS_BASE}" message-id="{msg_id}"{attrs}>{body}</rpc>'


def chunked(msg):
    data = msg.encode()
    return b"\n#%d\n" % len(data) + data + b"\n##\n"


def first_bytes(raw):
    """Waits for the start of the next server message and returns what arrived."""
    while len(raw.buf) < 2:
        raw._fill()
    return raw.buf


def session_id_of(hello):
    return re.search(r"<session-id>(\d+)</session-id>", hello).group(1)


@pytest.fixture
def raw10(agent):
    r = agent.raw(base11=False)
    r.send_hello()
    yield r
    r.close()


@pytest.fixture
def raw11(agent):
    r = agent.raw(base11=True)
    r.send_hello()
    yield r
    r.close()


# ---------------------------------------------------------------- hello and framing


def test_server_hello_capabilities_and_session_id(agent):
    r = agent.raw()
    hello = xml_of(r.server_hello)
    caps = [c.text for c in hello.iter(f"{{{NS_BASE}}}capability")]
    for cap in (
        "urn:ietf:params:netconf:base:1.0",
        "urn:ietf:params:netconf:base:1.1",
        "urn:ietf:params:netconf:capability:writable-running:1.0",
        "urn:ietf:params:netconf:capability:candidate:1.0",
        "urn:ietf:params:netconf:capability:validate:1.1",
        "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
        "urn:ietf:params:netconf:capability:startup:1.0",
        "urn:ietf:params:netconf:capability:xpath:1.0",
    ):
        assert cap in caps
    assert any(c.startswith("urn:ietf:params:netconf:capability:yang-library:1.0?") and "module-set-id=" in c for c in caps)
    assert int(hello.findtext(f"{{{NS_BASE}}}session-id")) > 0
    r.close()


def test_base10_only_client_gets_end_of_message_framing(raw10):
    raw10.send(rpc_text(GET_RUNNING, "a1"))
    start = first_bytes(raw10)
    assert not start.startswith(b"\n#")
    reply = xml_of(raw10.read_eom())
    assert reply.get("message-id") == "a1"
    assert reply.find(f"{{{NS_BASE}}}data") is not None
    # The session keeps end-of-message framing.
    raw10.send(rpc_text('<lock><target><running/></target></lock>', "a2"))
    assert not first_bytes(raw10).startswith(b"\n#")
    assert "<ok/>" in raw10.read_eom()


def test_base11_client_gets_chunked_framing(raw11):
    raw11.send(rpc_text(GET_RUNNING, "b1"))
    assert first_bytes(raw11).startswith(b"\n#")
    reply = xml_of(raw11.read_chunked())
    assert reply.get("message-id") == "b1"
    assert reply.find(f"{{{NS_BASE}}}data") is not None


def test_one_message_in_many_chunks(raw11):
    msg = rpc_text('<lock><target><candidate/></target></lock>', "c1").encode()
    parts = [msg[:7], msg[7:8], msg[8:40], msg[40:]]
    raw11.send_raw(b"".join(b"\n#%d\n" % len(p) + p for p in parts) + b"\n##\n")
    reply = raw11.read_chunked()
    assert 'message-id="c1"' in reply and "<ok/>" in reply


def test_hello_and_first_rpc_in_one_write_base11(agent):
    r = agent.raw(base11=True)
    r.send_hello(then=chunked(rpc_text(GET_RUNNING, "h1")))
    reply = xml_of(r.read_chunked())
    assert reply.get("message-id") == "h1"
    assert reply.find(f"{{{NS_BASE}}}data") is not None
    r.close()


def test_hello_and_first_rpc_in_one_write_base10(agent):
    r = agent.raw(base11=False)
    r.send_hello(then=rpc_text(GET_RUNNING, "h2").encode() + b"]]>]]>")
    reply = xml_of(r.read_eom())
    assert reply.get("message-id") == "h2"
    assert reply.find(f"{{{NS_BASE}}}data") is not None
    r.close()


def test_two_rpcs_in_one_write(raw11):
    raw11.send_raw(chunked(rpc_text(GET_RUNNING, "t1")) + chunked(rpc_text(GET_RUNNING, "t2")))
    assert xml_of(raw11.read_chunked()).get("message-id") == "t1"
    assert xml_of(raw11.read_chunked()).get("message-id") == "t2"


# ---------------------------------------------------------------- malformed and odd messages


def test_malformed_xml_on_base11_gets_malformed_message_and_session_survives(raw11):
    raw11.send(f'<rpc xmlns="{NS_BASE}" message-id="m1"><get-config><source><running/></source></rpc>')
    e = one_error(raw11.read())
    assert (e["type"], e["tag"]) == ("rpc", "malformed-message")
    reply = xml_of(raw11.rpc(GET_RUNNING, "m2"))
    assert reply.get("message-id") == "m2"
    assert reply.find(f"{{{NS_BASE}}}data") is not None


def test_malformed_xml_on_base10_never_gets_malformed_message(raw10):
    raw10.send(f'<rpc xmlns="{NS_BASE}" message-id="m1"><get-config>')
    e = one_error(raw10.read())
    assert e["tag"] != "malformed-message"
    assert e["tag"] == "operation-failed"
    assert "<data" in raw10.rpc(GET_RUNNING, "m2")


def test_missing_message_id_gets_missing_attribute(raw11):
    raw11.send(f'<rpc xmlns="{NS_BASE}">{GET_RUNNING}</rpc>')
    e = one_error(raw11.read())
    assert (e["type"], e["tag"]) == ("rpc", "missing-attribute")
    assert e["info"] == {"bad-attribute": "message-id", "bad-element": "rpc"}
    assert "<data" in raw11.rpc(GET_RUNNING, "after")


def test_every_rpc_attribute_is_echoed(raw11):
    raw11.send(
        f'<rpc xmlns="{NS_BASE}" xmlns:ex="urn:example:ext" message-id="101" '
        f'ex:user-id="fred" color="blue">{GET_RUNNING}</rpc>'
    )
    reply = xml_of(raw11.read())
    assert reply.tag == f"{{{NS_BASE}}}rpc-reply"
    assert dict(reply.attrib) == {"message-id": "101", "{urn:example:ext}user-id": "fred", "color": "blue"}
    # Also on an error reply.
    raw11.send(f'<rpc xmlns="{NS_BASE}" message-id="102" ex:trace="x7" xmlns:ex="urn:example:ext"><frob/></rpc>')
    reply = xml_of(raw11.read())
    assert dict(reply.attrib) == {"message-id": "102", "{urn:example:ext}trace": "x7"}
    assert one_error(reply)["tag"] == "operation-not-supported"


def test_prefixed_rpc_and_operation(raw11):
    raw11.send(
        f'<nc:rpc xmlns:nc="{NS_BASE}" message-id="p1"><nc:edit-config><nc:target><nc:running/></nc:target>'
        f'<nc:config>{remote_backup(rbs_service("rbsp", 2100))}</nc:config></nc:edit-config></nc:rpc>'
    )
    reply = xml_of(raw11.read())
    assert reply.get("message-id") == "p1"
    assert reply.find(f"{{{NS_BASE}}}ok") is not None
    raw11.send(
        f'<nc:rpc xmlns:nc="{NS_BASE}" message-id="p2"><nc:get-config><nc:source><nc:running/></nc:source>'
        f"</nc:get-config></nc:rpc>"
    )
    reply = xml_of(raw11.read())
    assert service_ports(reply.find(f"{{{NS_BASE}}}data")) == {"rbsp": "2100"}


def test_not_an_rpc(raw11):
    raw11.send('<foo xmlns="urn:example:x" message-id="n1"/>')
    e = one_error(raw11.read())
    assert (e["type"], e["tag"], e["info"]) == ("rpc", "unknown-element", {"bad-element": "foo"})


def test_two_operations_in_one_rpc(raw11):
    raw11.send(rpc_text(GET_RUNNING + GET_RUNNING, "d1"))
    e = one_error(raw11.read())
    assert e["tag"] == "unknown-element"
    assert e["info"] == {"bad-element": "get-config"}


def test_rpc_without_operation(raw11):
    e = one_error(raw11.rpc("", "e1"))
    assert e["tag"] == "missing-element"


# ---------------------------------------------------------------- DTDs and entities


def test_external_entity_is_refused_and_never_expanded(agent, raw11, workdir):
    secret = os.path.join(workdir, "secret.txt")
    with open(secret, "w") as f:
        f.write("TOP-SECRET-7c1e")
    body = edit("candidate", config(interfaces(interface("dn1", "&leak;"))))
    raw11.send(
        f'<?xml version="1.0"?><!DOCTYPE rpc [<!ENTITY leak SYSTEM "file://{secret}">]>'
        f'<rpc xmlns="{NS_BASE}" message-id="x1">{body}</rpc>'
    )
    reply = raw11.read()
    assert "TOP-SECRET" not in reply
    e = one_error(reply)
    assert (e["type"], e["tag"]) == ("rpc", "malformed-message")
    # Nothing was stored, and the session goes on.
    reply = raw11.rpc("<get-config><source><candidate/></source></get-config>", "x2")
    assert "TOP-SECRET" not in reply
    # (a new datastore holds only the seeded access control rules)
    data = xml_of(reply).find(f"{{{NS_BASE}}}data")
    assert [etree.QName(c).localname for c in data] == ["nacm"]


def test_internal_entity_definitions_are_refused(raw11):
    raw11.send(
        '<!DOCTYPE rpc [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        f'<rpc xmlns="{NS_BASE}" message-id="y1">'
        + edit("running", config(interfaces(interface("dn1", "&b;"))))
        + "</rpc>"
    )
    reply = raw11.read()
    assert "aaaaaaaaaa" not in reply
    assert one_error(reply)["tag"] == "malformed-message"
    data = xml_of(raw11.rpc(GET_RUNNING, "y2")).find(f"{{{NS_BASE}}}data")
    assert [etree.QName(c).localname for c in data] == ["nacm"]


def test_predefined_entities_and_character_references_are_expanded(raw11):
    body = edit("running", config(interfaces(interface("dn1", "a&amp;b &lt;c&gt; &#x41;&#66;"))))
    assert "<ok/>" in raw11.rpc(body, "z1")
    data = xml_of(raw11.rpc(GET_RUNNING, "z2")).find(f"{{{NS_BASE}}}data")
    assert xp(data, "//if:interface/if:description/text()") == ["a&b <c> AB"]


# ---------------------------------------------------------------- oversized messages

LIMIT = 4096


@pytest.fixture
def small_agent(agent_factory):
    return agent_factory(f"max_message_bytes = {LIMIT}", name="small")


def big_edit(msg_id, size):
    body = edit("running", config(interfaces(interface("dn1", "x" * size))))
    return rpc_text(body, msg_id)


@pytest.mark.parametrize("base11", [False, True])
def test_oversized_message_ends_the_session_and_the_agent_survives(small_agent, base11):
    r = small_agent.raw(base11=base11)
    r.send_hello()
    # A message under the limit is served.
    assert "<ok/>" in r.rpc(edit("running", config(remote_backup(rbs_service("rbs1", 2046)))), "s1")
    r.send(big_edit("s2", 2 * LIMIT))
    e = one_error(r.read())
    assert (e["type"], e["tag"]) == ("rpc", "too-big")
    assert r.closed()
    r.close()
    assert small_agent.alive()
    with small_agent.quiet() as m:
        data = get_config(m)
        assert service_ports(data) == {"rbs1": "2046"}
        assert xp(data, "//if:interface") == []


def test_huge_chunk_header_is_refused_before_the_data(small_agent):
    r = small_agent.raw(base11=True)
    r.send_hello()
    r.send_raw(b"\n#4294967295\n<rpc")
    e = one_error(r.read())
    assert e["tag"] == "too-big"
    assert r.closed()
    r.close()
    assert small_agent.alive()
    with small_agent.quiet() as m:
        assert_ok(m.lock("running"))


def test_bad_chunk_header_gets_malformed_message_and_closes(agent):
    r = agent.raw(base11=True)
    r.send_hello()
    r.send_raw(b"\n#abc\n<rpc/>\n##\n")
    e = one_error(r.read())
    assert (e["type"], e["tag"]) == ("rpc", "malformed-message")
    assert r.closed()
    r.close()
    assert agent.alive()
    with agent.quiet() as m:
        f = f'<netconf-state xmlns="{NS_NCM}"><sessions/></netconf-state>'

        def session_ids():
            return xp(data_of(m.get(filter=("subtree", f))), "//ncm:session/ncm:session-id/text()")

        assert eventually(lambda: session_ids() == [m.session_id])
