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
from ncclient import manager

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("MLDHB_BIN") or os.path.join(ROOT, "target", "debug", "mldhb")

NS_BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS_IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
NS_IANAIFT = "urn:ietf:params:xml:ns:yang:iana-if-type"


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
                f"{extra_config}\n"
                '[[users]]\nname = "admin"\npassword = "admin"\n'
            )
        self.proc = None
        self.log = os.path.join(workdir, "agent.log")

    def start(self):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [BIN, "agent", "--config", self.config],
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
