"""Connections that never authenticate cannot take the agent down: they are closed after the
login timeout, at most a few wait per source address, and running out of file descriptors
pauses accepting instead of ending the agent (which would take MLD, VRRP6, E-Trunk and RBS with
it)."""

import os
import socket
import time

from conftest import NS_NCM, Agent, eventually


def idle(port, source):
    """A TCP connection to the agent from `source` that never speaks."""
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def closed_by_server(s, within):
    """True when the server closes the connection within `within` seconds (the SSH version
    line may arrive first)."""
    s.settimeout(0.2)
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True
        if not data:
            return True
    return False


def test_unauthenticated_connections_are_capped_per_source_and_timed_out(workdir):
    a = Agent(workdir, "login_timeout_secs = 2\nmax_unauthenticated_per_source = 4\n").start()
    try:
        waiting = [idle(a.port, "127.0.0.2") for _ in range(4)]
        time.sleep(0.3)
        # A fifth from the same source is closed at once; another source still gets in.
        assert closed_by_server(idle(a.port, "127.0.0.2"), 1.0)
        other = idle(a.port, "127.0.0.3")
        assert not closed_by_server(other, 0.5)
        with a.connect() as m:
            assert m.get_config(source="running").ok
        # Those that never authenticate are closed after the login timeout.
        assert all(closed_by_server(s, 4.0) for s in waiting + [other])
        assert a.alive()
    finally:
        a.stop()


def test_running_out_of_file_descriptors_does_not_end_the_agent(workdir):
    a = Agent(workdir, "login_timeout_secs = 5\nmax_unauthenticated = 1000\n"
                       "max_unauthenticated_per_source = 1000\n")
    a.launcher = ["prlimit", "--nofile=64:64"]
    a.start()
    conns = []
    try:
        for i in range(80):
            try:
                conns.append(idle(a.port, f"127.0.1.{i + 1}"))
            except OSError:
                pass
        time.sleep(1.5)
        assert a.alive(), open(a.log).read()[-2000:]
        with open(a.log) as f:
            assert "accepting a connection failed" in f.read(), "the descriptor limit was not reached"
        for s in conns:
            s.close()
        # Once the idle connections are gone (or timed out), the admin gets in.
        def admin_ok():
            try:
                with a.connect() as m:
                    return m.get_config(source="running").ok
            except Exception:
                return False
        assert eventually(admin_ok, timeout=20, step=0.5)
        assert a.alive()
    finally:
        for s in conns:
            s.close()
        a.stop()


def test_a_reference_to_a_nul_character_is_refused_and_frees_nothing_it_should_not(workdir):
    """`&#0;` in a value once reached a C string conversion and panicked the session, which
    kept its slot: four such requests with max_sessions = 4 locked everyone out."""
    a = Agent(workdir, "max_sessions = 2\n").start()
    try:
        for _ in range(4):
            c = a.raw()
            c.send_hello()
            reply = c.rpc(f'<get-schema xmlns="{NS_NCM}"><identifier>a&#0;b</identifier>'
                          "</get-schema>")
            assert "rpc-error" in reply, reply
            # The session survives the error and answers the next request.
            assert "<data" in c.rpc("<get-config><source><running/></source></get-config>", "2")
            c.close()
        assert a.alive()
        with a.connect() as m:
            assert m.get_config(source="running").ok
    finally:
        a.stop()
