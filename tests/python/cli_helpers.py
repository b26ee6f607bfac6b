"""Running `mldhb cli` against an Agent, and the four scenarios as CLI text and as the
equivalent NETCONF XML."""

import os
import subprocess

from lxml import etree

from conftest import BIN, NS_BASE, NS_IANAIFT, NS_IF, NS_IP, NS_MLD, NS_RBS, assert_ok, data_of

NS_WD = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"
NS_VRRP = "urn:ietf:params:xml:ns:yang:ietf-vrrp"
NS_MCAST = "urn:mldhb:yang:mldhb-multicast"
NS_ETRUNK = "urn:mldhb:yang:mldhb-etrunk"
NS_SYS = "urn:mldhb:yang:mldhb-system"
NS_ACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"


def cli(agent, *args, user="admin", password=None, stdin=None, timeout=120):
    """Runs `mldhb cli` against the agent; returns the CompletedProcess (text)."""
    pw = os.path.join(agent.workdir, f"pw-{user}")
    with open(pw, "w") as f:
        f.write((password or user) + "\n")
    cmd = [
        BIN, "cli", "--host", "127.0.0.1", "--port", str(agent.port), "--user", user,
        "--password-file", pw, "--known-hosts", os.path.join(agent.workdir, "known_hosts"),
        *args,
    ]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)


def batch(agent, text, **kw):
    """Feeds `text` to the CLI on standard input (batch mode)."""
    return cli(agent, stdin=text, **kw)


def ok(p):
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p.stdout


def running_xml(m, source="running"):
    """A datastore with every default filled in and NACM left out, with children sorted so
    that two datastores holding the same configuration compare equal."""
    reply = m.dispatch(etree.fromstring(
        f'<get-config xmlns="{NS_BASE}"><source><{source}/></source>'
        f'<with-defaults xmlns="{NS_WD}">report-all</with-defaults></get-config>'
    ))
    data = data_of(reply)
    for n in data.findall(f"{{{NS_ACM}}}nacm"):
        data.remove(n)
    return canonical_sorted(data)


def canonical_sorted(el):
    def norm(e):
        kids = [norm(c) for c in e]
        text = (e.text or "").strip()
        # Identity values: compare by namespace and name, whatever the prefix.
        if ":" in text:
            p, n = text.split(":", 1)
            ns = e.nsmap.get(p)
            if ns:
                text = f"{{{ns}}}{n}"
        return (etree.QName(e).text, text, tuple(sorted(kids)))
    return norm(el)


def edit_running(m, xml):
    assert_ok(m.edit_config(target="running", config=f'<config xmlns="{NS_BASE}">{xml}</config>'))


# ------------------------------------------------------------------- the scenarios

def rbs_xml(peer, source):
    return (
        f'<remote-backup xmlns="{NS_RBS}"><service><name>rbs1</name><peer-ipv6>{peer}</peer-ipv6>'
        f"<source-ipv6>{source}</source-ipv6><port>1025</port><security-key><key-type>simple"
        "</key-type><key>mldhb-rbs-key</key></security-key></service>{profile}</remote-backup>"
    )


def profile_xml(role_source, extra=""):
    return (
        "<profile><name>rbp1</name><service-type>mld</service-type><backup-id>10</backup-id>"
        f"<remote-backup-service>rbs1</remote-backup-service><peer-backup>hot</peer-backup>"
        f"{role_source}{extra}</profile>"
    )


def device_values(device, active_active):
    """What differs between devices A and B, and the profile lines of active-active."""
    peer, source = ("2001:db8:10::2", "2001:db8:10::1") if device == "A" else ("2001:db8:10::1", "2001:db8:10::2")
    addr = "2001:db8:1::1" if device == "A" else "2001:db8:1::2"
    extra = "<backup-mode>active-active</backup-mode><load-balance>group-hash</load-balance>" if active_active else ""
    return peer, source, addr, extra


def vrrp_xml(device, active_active):
    peer, source, addr, extra = device_values(device, active_active)
    prio = 200 if device == "A" else 120
    return (
        f'<multicast xmlns="{NS_MCAST}"><ipv6-routing-enable>true</ipv6-routing-enable></multicast>'
        + rbs_xml(peer, source).format(profile=profile_xml("<vrrp6-id>1</vrrp6-id><interface>eth1</interface>", extra))
        + f'<interfaces xmlns="{NS_IF}" xmlns:ianaift="{NS_IANAIFT}"><interface><name>eth1</name>'
        f"<type>ianaift:ethernetCsmacd</type>"
        f'<ipv6 xmlns="{NS_IP}"><address><ip>{addr}</ip><prefix-length>64</prefix-length></address>'
        f'<vrrp xmlns="{NS_VRRP}" xmlns:vrrp="{NS_VRRP}"><vrrp-instance><vrid>1</vrid><version>vrrp:vrrp-v3</version>'
        f"<priority>{prio}</priority><preempt><hold-time>10</hold-time></preempt>"
        "<advertise-interval-centi-sec>100</advertise-interval-centi-sec><virtual-ipv6-addresses>"
        "<virtual-ipv6-address><ipv6-address>fe80::1</ipv6-address></virtual-ipv6-address>"
        "<virtual-ipv6-address><ipv6-address>2001:db8:1::100</ipv6-address></virtual-ipv6-address>"
        "</virtual-ipv6-addresses></vrrp-instance></vrrp></ipv6>"
        f'<mld xmlns="{NS_MLD}"><enable>true</enable><track-vrrp6-vrid>1</track-vrrp6-vrid></mld>'
        f'<remote-backup-profile xmlns="{NS_RBS}">rbp1</remote-backup-profile></interface></interfaces>'
    )


def etrunk_xml(device, active_active):
    peer, source, addr, extra = device_values(device, active_active)
    prio = 10 if device == "A" else 20
    force = "<e-trunk-mode>force-master</e-trunk-mode>" if active_active else ""
    return (
        f'<multicast xmlns="{NS_MCAST}"><ipv6-routing-enable>true</ipv6-routing-enable></multicast>'
        f'<lacp xmlns="{NS_ETRUNK}"><e-trunk-system-id>00:e0:fc:12:34:56</e-trunk-system-id>'
        "<e-trunk-priority>1</e-trunk-priority></lacp>"
        f'<e-trunk xmlns="{NS_ETRUNK}"><id>1</id><priority>{prio}</priority><peer-ipv6>{peer}</peer-ipv6>'
        f"<source-ipv6>{source}</source-ipv6><hello-interval>10</hello-interval>"
        "<hold-on-failure-multiplier>3</hold-on-failure-multiplier><security-key><key-type>simple</key-type>"
        "<key>mldhb-example-key</key></security-key></e-trunk>"
        + rbs_xml(peer, source).format(profile=profile_xml("<e-trunk-id>1</e-trunk-id><eth-trunk-id>1</eth-trunk-id>", extra))
        + f'<interfaces xmlns="{NS_IF}" xmlns:ianaift="{NS_IANAIFT}">'
        "<interface><name>eth1</name><type>ianaift:ethernetCsmacd</type>"
        f'<member-of-eth-trunk xmlns="{NS_ETRUNK}">1</member-of-eth-trunk></interface>'
        "<interface><name>Eth-Trunk1</name><type>ianaift:ieee8023adLag</type>"
        f'<eth-trunk xmlns="{NS_ETRUNK}"><trunk-id>1</trunk-id><mode>lacp-static</mode><e-trunk>1</e-trunk>{force}</eth-trunk>'
        f'<ipv6 xmlns="{NS_IP}"><address><ip>{addr}</ip><prefix-length>64</prefix-length></address></ipv6>'
        f'<mld xmlns="{NS_MLD}"><enable>true</enable></mld>'
        f'<remote-backup-profile xmlns="{NS_RBS}">rbp1</remote-backup-profile></interface></interfaces>'
    )


def vrrp_text(device, active_active):
    """Scenario 1 (and 2 with active_active) as SCENARIOS.md writes it."""
    peer, source = ("2001:db8:10::2", "2001:db8:10::1") if device == "A" else ("2001:db8:10::1", "2001:db8:10::2")
    addr = "2001:db8:1::1" if device == "A" else "2001:db8:1::2"
    prio = 200 if device == "A" else 120
    aa = " backup-mode active-active\n load-balance group-hash\n" if active_active else ""
    return f"""multicast ipv6 routing-enable
remote-backup-service rbs1
 peer-ipv6 {peer} source-ipv6 {source} port 1025
 security-key simple mldhb-rbs-key
remote-backup-profile rbp1
 service-type mld
 backup-id 10 remote-backup-service rbs1
 peer-backup hot
 vrrp6-id 1 interface eth1
{aa}interface eth1
 ipv6 address {addr}/64
 vrrp6 vrid 1 virtual-ip fe80::1 link-local
 vrrp6 vrid 1 virtual-ip 2001:db8:1::100
 vrrp6 vrid 1 priority {prio}
 vrrp6 vrid 1 preempt-mode timer delay 10
 vrrp6 vrid 1 timer advertise 100
 mld enable
 multicast ipv6 track vrrp6 vrid 1
 remote-backup-profile rbp1
"""


def etrunk_text(device, active_active):
    """Scenario 3 (and 4 with active_active) as SCENARIOS.md writes it."""
    peer, source = ("2001:db8:10::2", "2001:db8:10::1") if device == "A" else ("2001:db8:10::1", "2001:db8:10::2")
    addr = "2001:db8:1::1" if device == "A" else "2001:db8:1::2"
    prio = 10 if device == "A" else 20
    aa = " backup-mode active-active\n load-balance group-hash\n" if active_active else ""
    force = " e-trunk mode force-master\n" if active_active else ""
    return f"""multicast ipv6 routing-enable
lacp e-trunk system-id 00e0-fc12-3456
lacp e-trunk priority 1
e-trunk 1
 priority {prio}
 peer-ipv6 {peer} source-ipv6 {source}
 timer hello 10
 timer hold-on-failure multiplier 3
 security-key simple mldhb-example-key
remote-backup-service rbs1
 peer-ipv6 {peer} source-ipv6 {source} port 1025
 security-key simple mldhb-rbs-key
remote-backup-profile rbp1
 service-type mld
 backup-id 10 remote-backup-service rbs1
 peer-backup hot
 e-trunk 1 eth-trunk 1
{aa}interface eth1
 eth-trunk 1
interface Eth-Trunk1
 mode lacp-static
 e-trunk 1
{force} ipv6 address {addr}/64
 mld enable
 remote-backup-profile rbp1
"""


SCENARIOS = {
    "vrrp6-master-backup-A": (lambda: vrrp_xml("A", False), lambda: vrrp_text("A", False)),
    "vrrp6-master-backup-B": (lambda: vrrp_xml("B", False), lambda: vrrp_text("B", False)),
    "vrrp6-active-active-A": (lambda: vrrp_xml("A", True), lambda: vrrp_text("A", True)),
    "etrunk-master-backup-A": (lambda: etrunk_xml("A", False), lambda: etrunk_text("A", False)),
    "etrunk-master-backup-B": (lambda: etrunk_xml("B", False), lambda: etrunk_text("B", False)),
    "etrunk-active-active-A": (lambda: etrunk_xml("A", True), lambda: etrunk_text("A", True)),
}
