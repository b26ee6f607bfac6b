"""SSH side of the agent: hashed passwords, public keys, refused logins, the persistent host
key, and the command-line overrides of the config file."""

import os
import subprocess
import time

import paramiko
import pytest

from conftest import BIN, Agent, free_port


def hash_password(pw):
    out = subprocess.run([BIN, "hash-password"], input=pw + "\n", capture_output=True, text=True, check=True)
    return out.stdout.strip()


def make_key(workdir):
    path = os.path.join(workdir, "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    with open(path + ".pub") as f:
        return path, f.read().strip()


def open_netconf(port, user, **auth):
    t = paramiko.Transport(("127.0.0.1", port))
    t.connect()
    if "pkey" in auth:
        t.auth_publickey(user, auth["pkey"])
    else:
        t.auth_password(user, auth["password"])
    ch = t.open_session()
    ch.invoke_subsystem("netconf")
    ch.settimeout(10)
    data = b""
    while b"]]>]]>" not in data:
        data += ch.recv(65536)
    t.close()
    return data.decode()


def test_hashed_password_and_public_key(workdir):
    key_path, pub = make_key(workdir)
    h = hash_password("s3cret pass")
    assert h.startswith("$pbkdf2-sha256$")
    extra = (
        f'[[users]]\nname = "ops"\npassword_hash = "{h}"\n'
        f'[[users]]\nname = "robot"\nauthorized_keys = ["{pub}"]\n'
    )
    a = Agent(workdir, extra_config=extra).start()
    try:
        assert "<session-id>" in open_netconf(a.port, "ops", password="s3cret pass")
        pkey = paramiko.Ed25519Key.from_private_key_file(key_path)
        assert "<session-id>" in open_netconf(a.port, "robot", pkey=pkey)
        with pytest.raises(paramiko.AuthenticationException):
            open_netconf(a.port, "ops", password="wrong")
        with pytest.raises(paramiko.AuthenticationException):
            open_netconf(a.port, "robot", password="anything")
    finally:
        a.stop()


def test_failed_login_is_delayed_and_logged(workdir):
    a = Agent(workdir).start()
    try:
        t0 = time.monotonic()
        with pytest.raises(paramiko.AuthenticationException):
            open_netconf(a.port, "admin", password="not-the-password")
        # The fixture configures auth_failure_delay_ms = 300: the refusal is never faster.
        assert time.monotonic() - t0 >= 0.3
    finally:
        a.stop()
    log = open(a.log).read()
    assert "authentication failed" in log and 'user="admin"' in log


def host_key_of(port):
    t = paramiko.Transport(("127.0.0.1", port))
    t.connect()
    key = t.get_remote_server_key()
    t.close()
    return key.get_name(), key.get_base64()


def test_host_key_is_ed25519_and_survives_restart(workdir):
    a = Agent(workdir).start()
    first = host_key_of(a.port)
    a.stop()
    a.start()
    second = host_key_of(a.port)
    a.stop()
    assert first[0] == "ssh-ed25519"
    assert first == second
    assert os.path.exists(os.path.join(a.datastore, "ssh_host_ed25519_key"))
    mode = os.stat(os.path.join(a.datastore, "ssh_host_ed25519_key")).st_mode & 0o777
    assert mode == 0o600


def test_flags_override_the_config_file(workdir):
    a = Agent(workdir)
    port = free_port()
    other_ds = os.path.join(workdir, "other-ds")
    proc = subprocess.Popen(
        [BIN, "agent", "--config", a.config, "--listen", f"127.0.0.1:{port}", "--datastore", other_ds],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                assert "<session-id>" in open_netconf(port, "admin", password="admin")
                break
            except (OSError, paramiko.SSHException):
                time.sleep(0.1)
        else:
            pytest.fail("agent did not listen on the --listen address")
        assert os.path.exists(os.path.join(other_ds, "ssh_host_ed25519_key"))
        assert not os.path.exists(a.datastore)
    finally:
        proc.terminate()
        proc.wait()


def test_bad_config_file_is_refused(workdir):
    path = os.path.join(workdir, "bad.toml")
    with open(path, "w") as f:
        f.write('lisen = "127.0.0.1:1"\n')
    r = subprocess.run([BIN, "agent", "--config", path], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "unknown field" in r.stderr and "lisen" in r.stderr
