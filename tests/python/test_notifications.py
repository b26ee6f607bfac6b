"""Event notifications: RFC 5277 (create-subscription, replay, filters, :interleave) and the
RFC 6470 base events (netconf-config-change, netconf-session-start/end)."""

import datetime
import time

import pytest
from lxml import etree

from conftest import (
    NS_BASE,
    NS_IF,
    NS_NCM,
    assert_ok,
    config,
    data_of,
    dispatch,
    edit,
    interface,
    interfaces,
    one_error,
    xml_of,
)

NS_NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NS_NCN = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
NS_EVENTS = "urn:ietf:params:xml:ns:netmod:notification"
IF_LIST = "/ietf-interfaces:interfaces/ietf-interfaces:interface"


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class Notif:
    """One received <notification>: its eventTime and its content element."""

    def __init__(self, xml):
        self.root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
        assert self.root.tag == f"{{{NS_NOTIF}}}notification", xml
        children = list(self.root)
        assert children[0].tag == f"{{{NS_NOTIF}}}eventTime"
        self.time = children[0].text
        assert len(children) == 2, xml
        self.content = children[1]
        self.name = etree.QName(self.content).localname

    def text(self, path):
        el = self.content.find(path.replace("n:", f"{{{NS_NCN}}}"))
        return None if el is None else el.text

    def edits(self):
        """[(target, operation)] of a netconf-config-change."""
        out = []
        for e in self.content.findall(f"{{{NS_NCN}}}edit"):
            out.append((e.findtext(f"{{{NS_NCN}}}target"), e.findtext(f"{{{NS_NCN}}}operation")))
        return out


def take(m, timeout=10):
    n = m.take_notification(timeout=timeout)
    assert n is not None, "no notification arrived"
    return Notif(n.notification_xml)


def take_named(m, name, timeout=10):
    """The next notification whose content is `name`, skipping others."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        n = m.take_notification(timeout=max(0.1, deadline - time.time()))
        if n is None:
            break
        got = Notif(n.notification_xml)
        if got.name == name:
            return got
    raise AssertionError(f"no {name} notification")


def none_within(m, seconds):
    n = m.take_notification(timeout=seconds)
    assert n is None, n.notification_xml


def subscribe(m, body=""):
    return dispatch(m, f'<create-subscription xmlns="{NS_NOTIF}">{body}</create-subscription>')


def eth(name, description=None, operation=None):
    return config(interfaces(interface(name, description, operation=operation)))


def if_entry(name):
    return f"{IF_LIST}[ietf-interfaces:name='{name}']"


def test_config_change_live_exact_content(agent):
    with agent.connect() as watcher, agent.connect() as m:
        watcher.create_subscription()
        assert_ok(m.edit_config(target="running", config=eth("eth1")))
        n = take_named(watcher, "netconf-config-change")
        assert n.text("n:changed-by/n:username") == "admin"
        assert n.text("n:changed-by/n:session-id") == str(m.session_id)
        assert n.text("n:changed-by/n:source-host") == "127.0.0.1"
        assert n.text("n:datastore") == "running"
        # A new top-level container is one edit, not one per leaf.
        assert n.edits() == [("/ietf-interfaces:interfaces", "create")]
        # The target's prefixes are bound in the message (an instance-identifier).
        target = n.content.find(f"{{{NS_NCN}}}edit/{{{NS_NCN}}}target")
        assert target.nsmap["ietf-interfaces"] == NS_IF
        assert abs(parse_time(n.time) - time.time()) < 30
        assert "." in n.time and n.time.endswith("Z")

        # Through the candidate: commit reports what changed in running.
        assert_ok(m.edit_config(target="candidate", config=eth("eth1", "uplink")))
        assert_ok(m.edit_config(target="candidate", config=eth("eth2")))
        assert_ok(m.commit())
        n = take_named(watcher, "netconf-config-change")
        assert sorted(n.edits()) == sorted([
            (f"{if_entry('eth1')}/ietf-interfaces:description", "create"),
            (if_entry("eth2"), "create"),
        ])
        assert_ok(m.edit_config(target="running", config=eth("eth1", "downlink")))
        n = take_named(watcher, "netconf-config-change")
        assert n.edits() == [(f"{if_entry('eth1')}/ietf-interfaces:description", "replace")]
        assert_ok(m.edit_config(target="running", config=eth("eth2", operation="delete")))
        n = take_named(watcher, "netconf-config-change")
        assert n.edits() == [(if_entry("eth2"), "delete")]

        # copy-config to running is a write to running too.
        assert_ok(m.copy_config(source=f'<source xmlns="{NS_BASE}">{eth("eth9")}</source>', target="running"))
        n = take_named(watcher, "netconf-config-change")
        # The whole datastore is replaced, so the seeded access-control rules go too.
        assert sorted(n.edits()) == sorted(
            [(if_entry("eth1"), "delete"), (if_entry("eth9"), "create"), ("/ietf-netconf-acm:nacm", "delete")]
        )

        # Writes that change nothing in running send nothing.
        assert_ok(m.edit_config(target="candidate", config=eth("eth7")))
        assert_ok(m.edit_config(target="running", config=eth("eth9")))
        none_within(watcher, 1.0)


def test_session_start_and_end_with_reasons(agent):
    with agent.connect() as watcher:
        watcher.create_subscription()
        m = agent.connect()
        n = take_named(watcher, "netconf-session-start")
        assert n.text("n:username") == "admin"
        assert n.text("n:session-id") == str(m.session_id)
        assert n.text("n:source-host") == "127.0.0.1"
        m.close_session()
        n = take_named(watcher, "netconf-session-end")
        assert n.text("n:session-id") == str(m.session_id)
        assert n.text("n:termination-reason") == "closed"
        assert n.text("n:killed-by") is None

        victim = agent.connect()
        take_named(watcher, "netconf-session-start")
        assert_ok(watcher.kill_session(victim.session_id))
        n = take_named(watcher, "netconf-session-end")
        assert n.text("n:session-id") == str(victim.session_id)
        assert n.text("n:termination-reason") == "killed"
        assert n.text("n:killed-by") == str(watcher.session_id)

        raw = agent.raw()
        raw.send_hello()
        start = take_named(watcher, "netconf-session-start")
        raw.close()  # the transport goes away without close-session
        n = take_named(watcher, "netconf-session-end")
        assert n.text("n:session-id") == start.text("n:session-id")
        assert n.text("n:termination-reason") == "dropped"

        bad = agent.raw()
        bad.send_raw(b"<hello xmlns='nope'/>]]>]]>")
        n = take_named(watcher, "netconf-session-end")
        assert n.text("n:termination-reason") == "bad-hello"
        bad.close()

        # ietf-netconf-monitoring counts what this session was sent.
        reply = watcher.get(filter=("subtree", f'<netconf-state xmlns="{NS_NCM}"/>'))
        data = data_of(reply)
        mine = data.xpath(
            f"//ncm:session[ncm:session-id='{watcher.session_id}']/ncm:out-notifications/text()",
            namespaces={"ncm": NS_NCM},
        )
        assert int(mine[0]) >= 7
        total = data.xpath("//ncm:statistics/ncm:out-notifications/text()", namespaces={"ncm": NS_NCM})
        assert int(total[0]) >= int(mine[0])


def test_capabilities_announced(agent):
    with agent.connect() as m:
        caps = list(m.server_capabilities)
        assert "urn:ietf:params:netconf:capability:notification:1.0" in caps
        assert "urn:ietf:params:netconf:capability:interleave:1.0" in caps


def test_replay_survives_restart(agent):
    before = time.time() - 1
    with agent.connect() as m:
        for i in range(3):
            assert_ok(m.edit_config(target="running", config=eth(f"eth{i}")))
    time.sleep(1.0)
    agent.stop()
    agent.start()
    with agent.connect() as m:
        m.create_subscription(start_time=rfc3339(before))
        got = []
        while True:
            n = take(m)
            if n.name == "replayComplete":
                assert n.content.tag == f"{{{NS_EVENTS}}}replayComplete"
                break
            got.append(n)
        changes = [n for n in got if n.name == "netconf-config-change"]
        assert [n.edits()[0] for n in changes] == [
            ("/ietf-interfaces:interfaces", "create"),
            (if_entry("eth1"), "create"),
            (if_entry("eth2"), "create"),
        ]
        names = [n.name for n in got]
        assert names[0] == "netconf-session-start"
        assert "netconf-session-end" in names
        times = [parse_time(n.time) for n in got]
        assert times == sorted(times)
        # Live events follow the replay on the same subscription.
        with agent.connect() as other:
            assert_ok(other.edit_config(target="running", config=eth("eth5")))
        n = take_named(m, "netconf-config-change")
        assert n.edits() == [(if_entry("eth5"), "create")]


def test_replay_log_is_bounded(agent_factory):
    agent = agent_factory("notification_replay_max = 3")
    with agent.connect() as m:
        for i in range(6):
            assert_ok(m.edit_config(target="running", config=eth(f"eth{i}")))
        m.create_subscription(start_time="2000-01-01T00:00:00Z")
        got = []
        while True:
            n = take(m)
            if n.name == "replayComplete":
                break
            got.append(n)
        # Only the newest three events are left; the older ones were dropped.
        assert [n.edits()[0] for n in got] == [(if_entry(f"eth{i}"), "create") for i in (3, 4, 5)]

    with agent.connect() as m:
        # startTime selects from the log: the event at that very time is included.
        with agent.connect() as w:
            w.create_subscription(start_time="2000-01-01T00:00:00Z")
            log = []
            while (n := take(w)).name != "replayComplete":
                log.append(n)
        start = log[1].time
        m.create_subscription(start_time=start)
        replayed = []
        while (n := take(m)).name != "replayComplete":
            replayed.append(n.time)
        # Then whatever was logged since (w's own session end).
        assert replayed[: len(log) - 1] == [n.time for n in log[1:]]
        assert log[0].time not in replayed


def test_stop_time_ends_with_notification_complete(agent):
    before = rfc3339(time.time() - 1)
    with agent.connect() as m, agent.connect() as other:
        assert_ok(other.edit_config(target="running", config=eth("eth1")))
        # A stopTime already past: replay, replayComplete, then notificationComplete at once.
        m.create_subscription(start_time=before, stop_time=rfc3339(time.time()))
        names = []
        while True:
            n = take(m)
            names.append(n.name)
            if n.name == "notificationComplete":
                assert n.content.tag == f"{{{NS_EVENTS}}}notificationComplete"
                break
        assert names[-2:] == ["replayComplete", "notificationComplete"]
        assert "netconf-config-change" in names
        # The subscription is over: nothing more, and a new one may be created.
        assert_ok(other.edit_config(target="running", config=eth("eth2")))
        none_within(m, 1.0)

        stop = time.time() + 3
        m.create_subscription(start_time=rfc3339(time.time()), stop_time=rfc3339(stop))
        assert take(m).name == "replayComplete"
        assert_ok(other.edit_config(target="running", config=eth("eth3")))
        n = take_named(m, "netconf-config-change")
        assert n.edits() == [(if_entry("eth3"), "create")]
        n = take_named(m, "notificationComplete", timeout=10)
        assert time.time() >= stop - 0.5
        assert_ok(other.edit_config(target="running", config=eth("eth4")))
        none_within(m, 1.0)


def test_subtree_filter(agent):
    with agent.connect() as m, agent.connect() as other:
        flt = (
            f'<filter type="subtree"><netconf-config-change xmlns="{NS_NCN}">'
            "<datastore>running</datastore></netconf-config-change></filter>"
        )
        assert_ok(subscribe(m, flt))
        agent.connect().close_session()  # session start/end do not pass the filter
        assert_ok(other.edit_config(target="running", config=eth("eth1")))
        n = take(m)
        assert n.name == "netconf-config-change"
        none_within(m, 1.0)

    with agent.connect() as m:
        # A content match that nothing satisfies lets nothing through.
        flt = (
            f'<filter type="subtree"><netconf-session-start xmlns="{NS_NCN}">'
            "<username>nobody</username></netconf-session-start></filter>"
        )
        assert_ok(subscribe(m, flt))
        agent.connect().close_session()
        none_within(m, 1.0)


def test_xpath_filter(agent):
    with agent.connect() as m, agent.connect() as other:
        m.create_subscription(
            filter=("xpath", ({"ncn": NS_NCN}, "/ncn:netconf-config-change/ncn:edit[ncn:operation='delete']"))
        )
        assert_ok(other.edit_config(target="running", config=eth("eth1")))
        assert_ok(other.edit_config(target="running", config=eth("eth2")))
        assert_ok(other.edit_config(target="running", config=eth("eth1", operation="delete")))
        n = take(m)
        assert n.edits() == [(if_entry("eth1"), "delete")]
        none_within(m, 1.0)

    with agent.connect() as m:
        m.create_subscription(
            filter=("xpath", ({"x": NS_NCN}, "//x:termination-reason[.='killed'] | /x:netconf-session-start[x:username='nobody']"))
        )
        agent.connect().close_session()
        victim = agent.connect()
        assert_ok(m.kill_session(victim.session_id))
        n = take(m)
        assert n.name == "netconf-session-end"
        assert n.text("n:killed-by") == str(m.session_id)
        none_within(m, 0.5)


@pytest.mark.parametrize(
    "body,tag,bad",
    [
        ("<stream>SYSLOG</stream>", "invalid-value", "stream"),
        ("<startTime>2999-01-01T00:00:00Z</startTime>", "bad-element", "startTime"),
        ("<stopTime>2020-01-01T00:00:00Z</stopTime>", "missing-element", "stopTime"),
        (
            "<startTime>2020-01-02T00:00:00Z</startTime><stopTime>2020-01-01T00:00:00Z</stopTime>",
            "bad-element",
            "stopTime",
        ),
        ("<startTime>yesterday</startTime>", "bad-element", "startTime"),
        ('<filter type="xpath" select="count(/a)"/>', "invalid-value", "filter"),
        ("<color>red</color>", "unknown-element", "color"),
    ],
)
def test_create_subscription_errors(agent, body, tag, bad):
    with agent.quiet() as m:
        e = one_error(subscribe(m, body))
        assert (e["type"], e["tag"]) == ("protocol", tag)
        assert e["info"]["bad-element"] == bad
        # The session is still usable and may still subscribe.
        assert_ok(subscribe(m, "<stream>NETCONF</stream>"))


def test_second_subscription_on_a_session_is_refused(agent):
    with agent.quiet() as m:
        assert_ok(subscribe(m))
        e = one_error(subscribe(m))
        assert (e["type"], e["tag"]) == ("protocol", "operation-failed")
        assert "already" in e["message"]


def test_interleave_rpcs_answered_while_subscribed(agent):
    with agent.connect() as m:
        m.create_subscription()
        for i in range(5):
            assert_ok(m.edit_config(target="running", config=eth(f"eth{i}")))
            data = data_of(m.get_config(source="running"))
            assert len(data.xpath("//if:name", namespaces={"if": NS_IF})) == i + 1
        # Its own edits came back as notifications, between the replies.
        for i in range(5):
            n = take_named(m, "netconf-config-change")
            assert n.text("n:changed-by/n:session-id") == str(m.session_id)


@pytest.mark.parametrize("base11", [False, True])
def test_interleave_framing_keeps_messages_whole(agent, base11):
    raw = agent.raw(base11=base11)
    raw.send_hello()
    reply = raw.rpc(f'<create-subscription xmlns="{NS_NOTIF}"/>', msg_id="1")
    assert xml_of(reply).find(f"{{{NS_BASE}}}ok") is not None
    with agent.connect() as other:
        for i in range(20):
            assert_ok(other.edit_config(target="running", config=eth(f"eth{i}", "x" * 2000)))
    raw.send(f'<rpc xmlns="{NS_BASE}" message-id="2"><get-config><source><running/></source></get-config></rpc>')
    seen_reply = False
    changes = 0
    while not (seen_reply and changes == 20):
        msg = xml_of(raw.read())
        if msg.tag == f"{{{NS_BASE}}}rpc-reply":
            assert msg.get("message-id") == "2"
            seen_reply = True
        else:
            n = Notif(etree.tostring(msg))
            if n.name == "netconf-config-change":
                changes += 1
    raw.close()


def test_confirmed_commit_events(agent):
    """netconf-confirmed-commit: start with its timeout and the committing session, the timeout
    rollback with no session, and cancel-commit naming the cancelling session."""
    with agent.quiet() as sub, agent.quiet() as m:
        assert_ok(subscribe(sub))
        assert_ok(m.edit_config(target="candidate", config=eth("eth7")))
        assert_ok(dispatch(m, f'<commit xmlns="{NS_BASE}"><confirmed/><confirm-timeout>2</confirm-timeout></commit>'))
        start = take_named(sub, "netconf-confirmed-commit")
        assert start.text("n:confirm-event") == "start"
        assert start.text("n:timeout") == "2"
        assert start.text("n:session-id") == str(m.session_id)
        timeout = take_named(sub, "netconf-confirmed-commit", timeout=15)
        assert timeout.text("n:confirm-event") == "timeout"
        assert timeout.content.find(f"{{{NS_NCN}}}session-id") is None
        assert_ok(m.edit_config(target="candidate", config=eth("eth8")))
        assert_ok(dispatch(m, f'<commit xmlns="{NS_BASE}"><confirmed/></commit>'))
        assert take_named(sub, "netconf-confirmed-commit").text("n:confirm-event") == "start"
        assert_ok(dispatch(m, f'<cancel-commit xmlns="{NS_BASE}"/>'))
        cancel = take_named(sub, "netconf-confirmed-commit")
        assert cancel.text("n:confirm-event") == "cancel"
        assert cancel.text("n:session-id") == str(m.session_id)
