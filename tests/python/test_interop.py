"""Other NETCONF clients against the agent: netconf-console2 (PyPI) and yangcli (Debian package
`yangcli`, yuma123). Each does a get-config and an edit-config on the candidate plus commit;
the result is checked with ncclient. scripts/setup installs both."""

import os
import shutil
import subprocess

import pytest
from conftest import get_config, interface, interfaces, xp


def need(tool):
    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed (scripts/setup installs it)")
        pytest.skip(f"{tool} is not installed; run scripts/setup")


def described(m):
    """{interface name: description} of running."""
    data = get_config(m)
    return {
        i.findtext("{*}name"): i.findtext("{*}description")
        for i in xp(data, "//if:interfaces/if:interface")
    }


def seed(agent, name):
    with agent.connect() as m:
        m.edit_config(target="running", config=f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">{interfaces(interface(name, "seeded"))}</config>')


# netconf-console2 ---------------------------------------------------------------------------

def nc2(agent, *args):
    need("netconf-console2")
    cmd = ["netconf-console2", "--host", "127.0.0.1", "--port", str(agent.port),
           "-u", "admin", "-p", "admin", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_netconf_console2_get_config(agent):
    seed(agent, "seen")
    r = nc2(agent, "--get-config")
    assert r.returncode == 0, r.stderr
    assert "<name>seen</name>" in r.stdout
    assert "<description>seeded</description>" in r.stdout


def test_netconf_console2_edit_and_commit(agent, tmp_path):
    edit = tmp_path / "edit.xml"
    edit.write_text(interfaces(interface("nc2", "from netconf-console2")))
    r = nc2(agent, "--db", "candidate", "--edit-config", str(edit), "--commit")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("<ok") == 2, r.stdout
    with agent.connect() as m:
        assert described(m) == {"nc2": "from netconf-console2"}


# yangcli ------------------------------------------------------------------------------------

def yangcli(agent, tmp_path, script):
    need("yangcli")
    path = tmp_path / "script"
    path.write_text(script)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    cmd = ["yangcli", "--server=127.0.0.1", f"--ncport={agent.port}", "--user=admin",
           "--password=admin", "--batch-mode", f"--run-script={path}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                       env={**os.environ, "HOME": str(home)})
    return r


def test_yangcli_get_config(agent, tmp_path):
    seed(agent, "seen")
    r = yangcli(agent, tmp_path, "get-config source=running\n")
    assert r.returncode == 0, r.stderr
    assert "NETCONF session established" in r.stdout
    reply = r.stdout[r.stdout.index("RPC Data Reply"):]
    assert "interface seen {" in reply
    assert "description seeded" in reply


def test_yangcli_edit_and_commit(agent, tmp_path):
    cfg = tmp_path / "cfg.xml"
    cfg.write_text(interfaces(interface("yc", "from yangcli")))
    r = yangcli(agent, tmp_path, f"edit-config target=candidate config=@{cfg}\ncommit\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("RPC OK Reply") == 2, r.stdout[-3000:]
    assert "canceled" not in r.stdout
    with agent.connect() as m:
        assert described(m) == {"yc": "from yangcli"}


def test_netconf_console2_with_defaults(agent):
    seed(agent, "d")
    r = nc2(agent, "--get-config", "--with-defaults", "report-all")
    assert r.returncode == 0, r.stderr
    assert "<enabled>true</enabled>" in r.stdout
    r = nc2(agent, "--get-config")
    assert "<enabled>" not in r.stdout


def test_yangcli_sees_the_capabilities(agent, tmp_path):
    r = yangcli(agent, tmp_path, "get-config source=running\n")
    caps = r.stdout[r.stdout.index("Server Protocol Capabilities"):r.stdout.index("Server Module Capabilities")]
    for c in ("candidate:1.0", "confirmed-commit:1.1", "with-defaults:1.0", "validate:1.1", "base:1.1"):
        assert c in caps
    assert "Default with-defaults behavior: explicit" in r.stdout
    assert "Additional with-defaults behavior: report-all,report-all-tagged,trim" in r.stdout
    # yangcli fetches every module the YANG library lists; each one is served.
    assert "Checking Server Modules" in r.stdout
    assert "no schema" not in r.stdout


def test_builtin_modules_are_served(agent):
    """yangcli fetches the modules libyang brings with it (listed in the YANG library)."""
    with agent.connect() as m:
        for name in ("ietf-yang-schema-mount", "yang"):
            text = m.get_schema(name).data
            assert text.lstrip().startswith(f"module {name} "), text[:200]
