"""Fixtures that run the real mldhb binary and connect to it over SSH."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import paramiko
import pytest
from lxml import etree
from ncclient import manager
from ncclient.operations import RaiseMode
from ncclient.xml_ import to_ele

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("MLDHB_BIN") or os.path.join(ROOT, "target", "debug", "mldhb")

NS_BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS_IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
NS_IANAIFT = "urn:ietf:params:xml:ns:yang:iana-if-type"
NS_IP = "urn:ietf:params:xml:ns:yang:ietf-ip"
NS_RBS = "urn:mldhb:yang:mldhb-rbs"
NS_MLD = "urn:mldhb:yang:mldhb-mld"
NS_NCM = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
NS_YL = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
NSMAP = {"nc": NS_BASE, "if": NS_IF, "ip": NS_IP, "rbs": NS_RBS, "mld": NS_MLD,
         "ncm": NS_NCM, "yl": NS_YL}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agent:
    """One agent process with its own datastore directory."""

    def __init__(self, workdir, extra_config=""):
        self.workdir = workdir
        self.datastore = os.path.join(workdir, "ds")
        self.port = free_port()
        self.config = os.path.join(workdir, "agent.toml")
        with open(self.config, "w") as f:
            f.write(
                f'listen = "127.0.0.1:{self.port}"\n'
                f'datastore = "{self.datastore}"\n'
                "auth_failure_delay_ms = 300\n"
                # Agents in the host namespace never touch its interfaces.
                "manage_interfaces = false\n"
                "manage_multicast = false\n"
                f"{extra_config}\n"
                '[[users]]\nname = "admin"\npassword = "admin"\ngroups = ["admin"]\n'
            )
        self.proc = None
        self.log = os.path.join(workdir, "agent.log")
        # Words put before the agent's command line (e.g. prlimit with its options).
        self.launcher = []

    def start(self):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [*self.launcher, BIN, "agent", "--config", self.config],
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("agent exited: " + open(self.log).read()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("agent did not start listening")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self):
        self.stop(signal.SIGKILL)

    def connect(self, user="admin", password="admin", **kw):
        return manager.connect(
            host="127.0.0.1",
            port=self.port,
            username=user,
            password=password,
            hostkey_verify=False,
            look_for_keys=False,
            allow_agent=False,
            timeout=60,
            **kw,
        )

    def quiet(self, **kw):
        """An ncclient manager that returns rpc-errors in the reply instead of raising."""
        m = self.connect(**kw)
        m.raise_mode = RaiseMode.NONE
        return m

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def raw(self, base11=False):
        """A raw NETCONF client over SSH that speaks only what the test tells it to."""
        return RawClient(self.port, base11)


class RawClient:
    """A minimal NETCONF client: sends hand-written hellos and messages."""

    def __init__(self, port, base11=False):
        self.t = paramiko.Transport(("127.0.0.1", port))
        self.t.connect(username="admin", password="admin")
        self.ch = self.t.open_session()
        self.ch.invoke_subsystem("netconf")
        self.ch.settimeout(30)
        self.buf = b""
        self.base11 = False
        self.server_hello = self.read_eom()
        caps = "<capability>urn:ietf:params:netconf:base:1.0</capability>"
        if base11:
            caps += "<capability>urn:ietf:params:netconf:base:1.1</capability>"
        self.hello = f'<hello xmlns="{NS_BASE}"><capabilities>{caps}</capabilities></hello>'
        self.want11 = base11

    def send_hello(self, then=b""):
        self.ch.sendall(self.hello.encode() + b"]]>]]>" + then)
        self.base11 = self.want11

    def send_raw(self, data):
        self.ch.sendall(data)

    def send(self, msg):
        data = msg.encode() if isinstance(msg, str) else msg
        if self.base11:
            self.ch.sendall(b"\n#%d\n" % len(data) + data + b"\n##\n")
        else:
            self.ch.sendall(data + b"]]>]]>")

    def _fill(self):
        chunk = self.ch.recv(65536)
        if not chunk:
            raise EOFError("session closed")
        self.buf += chunk

    def read_eom(self):
        while b"]]>]]>" not in self.buf:
            self._fill()
        msg, self.buf = self.buf.split(b"]]>]]>", 1)
        return msg.decode()

    def read_chunked(self):
        out = b""
        while True:
            while len(self.buf) < 4:
                self._fill()
            if self.buf.startswith(b"\n##\n"):
                self.buf = self.buf[4:]
                return out.decode()
            while b"\n" not in self.buf[2:]:
                self._fill()
            end = self.buf.index(b"\n", 2)
            size = int(self.buf[2:end])
            self.buf = self.buf[end + 1 :]
            while len(self.buf) < size:
                self._fill()
            out += self.buf[:size]
            self.buf = self.buf[size:]

    def read(self):
        return self.read_chunked() if self.base11 else self.read_eom()

    def rpc(self, body, msg_id="1"):
        self.send(f'<rpc xmlns="{NS_BASE}" message-id="{msg_id}">{body}</rpc>')
        return self.read()

    def closed(self, timeout=10):
        """True once the server has closed the channel."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.ch.settimeout(0.5)
                if not self.ch.recv(65536):
                    return True
            except socket.timeout:
                pass
            except (EOFError, OSError):
                return True
            if self.ch.closed or self.ch.exit_status_ready():
                return True
        return False

    def close(self):
        self.t.close()


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="mldhb-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def agent_factory(workdir):
    """Starts agents with extra configuration lines; all are stopped at teardown."""
    started = []

    def make(extra_config="", name="a"):
        d = os.path.join(workdir, name)
        os.makedirs(d, exist_ok=True)
        a = Agent(d, extra_config).start()
        started.append(a)
        return a

    yield make
    for a in started:
        a.stop()


@pytest.fixture
def agent(workdir):
    a = Agent(workdir).start()
    yield a
    a.stop()


def iface_config(name, description=None, operation=None, nsdecl=True):
    op = f' xmlns:nc="{NS_BASE}" nc:operation="{operation}"' if operation else ""
    desc = f"<description>{description}</description>" if description is not None else ""
    return (
        f'<config xmlns="{NS_BASE}"><interfaces xmlns="{NS_IF}" xmlns:ianaift="{NS_IANAIFT}">'
        f"<interface{op}><name>{name}</name><type>ianaift:ethernetCsmacd</type>{desc}</interface>"
        "</interfaces></config>"
    )


def eventually(check, timeout=15, step=0.05):
    """Polls `check` until it returns a true value (or fails with its last result)."""
    deadline = time.time() + timeout
    while True:
        result = check()
        if result or time.time() > deadline:
            return result
        time.sleep(step)


def xml_of(reply):
    """The reply as an lxml element (ncclient reply, raw string or element)."""
    if hasattr(reply, "xml"):
        reply = reply.xml
    if isinstance(reply, str):
        reply = reply.encode()
    if isinstance(reply, bytes):
        return etree.fromstring(reply)
    return reply


def rpc_errors(reply):
    """Every <rpc-error> of a reply as a dict: type, tag, severity, app_tag, path, message,
    info (error-info children by local name)."""
    out = []
    for e in xml_of(reply).findall(f"{{{NS_BASE}}}rpc-error"):
        def text(name):
            c = e.find(f"{{{NS_BASE}}}{name}")
            return None if c is None else (c.text or "").strip()

        info = {}
        ie = e.find(f"{{{NS_BASE}}}error-info")
        if ie is not None:
            for c in ie:
                info[etree.QName(c).localname] = (c.text or "").strip()
        out.append(
            {
                "type": text("error-type"),
                "tag": text("error-tag"),
                "severity": text("error-severity"),
                "app_tag": text("error-app-tag"),
                "path": text("error-path"),
                "message": text("error-message"),
                "info": info,
            }
        )
    return out


def one_error(reply):
    """The single rpc-error of a reply (fails if there is not exactly one)."""
    errs = rpc_errors(reply)
    assert len(errs) == 1, xml_of(reply) is not None and etree.tostring(xml_of(reply)).decode()
    assert errs[0]["severity"] == "error"
    return errs[0]


def is_ok(reply):
    root = xml_of(reply)
    return root.find(f"{{{NS_BASE}}}ok") is not None and not rpc_errors(root)


def assert_ok(reply):
    assert is_ok(reply), etree.tostring(xml_of(reply)).decode()


def dispatch(m, body):
    """Sends an operation element written by hand (as text) through ncclient."""
    return m.dispatch(to_ele(body))


def data_of(reply):
    """The <data> element of a get/get-config reply."""
    d = xml_of(reply).find(f"{{{NS_BASE}}}data")
    assert d is not None, etree.tostring(xml_of(reply)).decode()
    return d


def xp(node, path):
    return node.xpath(path, namespaces=NSMAP)


def config(*parts):
    return f'<config xmlns="{NS_BASE}">' + "".join(parts) + "</config>"


def interfaces(*entries):
    return f'<interfaces xmlns="{NS_IF}" xmlns:ianaift="{NS_IANAIFT}">' + "".join(entries) + "</interfaces>"


def interface(name, description=None, addresses=(), operation=None, extra=""):
    op = f' xmlns:nc="{NS_BASE}" nc:operation="{operation}"' if operation else ""
    desc = f"<description>{description}</description>" if description is not None else ""
    ip = ""
    if addresses:
        ip = f'<ipv6 xmlns="{NS_IP}">' + "".join(
            f"<address><ip>{a}</ip><prefix-length>{p}</prefix-length></address>" for a, p in addresses
        ) + "</ipv6>"
    return (
        f"<interface{op}><name>{name}</name><type>ianaift:ethernetCsmacd</type>"
        f"{desc}{ip}{extra}</interface>"
    )


def remote_backup(*entries):
    return f'<remote-backup xmlns="{NS_RBS}">' + "".join(entries) + "</remote-backup>"


def rbs_service(name, port=2046, peer="2001:db8::2", source="2001:db8::1", operation=None):
    op = f' xmlns:nc="{NS_BASE}" nc:operation="{operation}"' if operation else ""
    return (
        f"<service{op}><name>{name}</name><peer-ipv6>{peer}</peer-ipv6>"
        f"<source-ipv6>{source}</source-ipv6><port>{port}</port></service>"
    )


def edit(target, cfg, default_operation=None, test_option=None, error_option=None):
    """An <edit-config> element as text."""
    opts = ""
    if default_operation:
        opts += f"<default-operation>{default_operation}</default-operation>"
    if test_option:
        opts += f"<test-option>{test_option}</test-option>"
    if error_option:
        opts += f"<error-option>{error_option}</error-option>"
    return f'<edit-config xmlns="{NS_BASE}"><target><{target}/></target>{opts}{cfg}</edit-config>'


def get_config(m, source="running", filter=None):
    return data_of(m.get_config(source=source, filter=filter))


def iface_names(data):
    return sorted(xp(data, "//if:interfaces/if:interface/if:name/text()"))


def service_ports(data):
    """{service name: port} of the remote backup services in a data tree."""
    return {
        s.findtext(f"{{{NS_RBS}}}name"): s.findtext(f"{{{NS_RBS}}}port")
        for s in xp(data, "//rbs:remote-backup/rbs:service")
    }


def canonical(data):
    """A datastore's content in a form that compares equal when the content is equal."""
    return etree.tostring(data, method="c14n")


# ---------------------------------------------------------------- shared by the operation suites

BASE_CONFIG = config(
    interfaces(
        interface("dn1", "downstream one", [("2001:db8:1::1", 64)]),
        interface("dn2", "downstream two", [("2001:db8:2::1", 64), ("2001:db8:2::2", 64)]),
        interface("up1", "uplink"),
    ),
    remote_backup(rbs_service("rbs1", 2046), rbs_service("rbs2", 2047, peer="2001:db8::3")),
)


@pytest.fixture
def m(agent):
    """An ncclient session that returns rpc-errors instead of raising them."""
    with agent.quiet() as mgr:
        yield mgr


@pytest.fixture
def seeded(agent, m):
    """An agent whose running (and candidate) hold BASE_CONFIG."""
    assert_ok(m.edit_config(target="running", config=BASE_CONFIG))
    return m


def descriptions(data):
    return {
        i.findtext(f"{{{NS_IF}}}name"): i.findtext(f"{{{NS_IF}}}description")
        for i in xp(data, "//if:interfaces/if:interface")
    }


def addresses(data, name):
    return sorted(xp(data, f"//if:interface[if:name='{name}']/ip:ipv6/ip:address/ip:ip/text()"))


@pytest.fixture(autouse=True)
def no_namespace_left_behind():
    """Whatever a test does, failed or not, the network namespaces it made (through
    `netns.Netns`) are gone after it: processes still inside them are killed and the namespaces
    deleted. The lab's own namespaces are removed by `mldhb lab down` in the lab fixture. Only
    this process's namespaces are touched, so a second test run on the machine is left alone."""
    import netns
    yield
    if os.geteuid() != 0:
        return
    existing = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
                   .stdout.split())
    for ns in sorted(netns.CREATED & existing):
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
        for pid in pids.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    netns.CREATED.clear()
