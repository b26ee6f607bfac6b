"""`mldhb cli` displays against the running runtimes: the two-device lab (VRRP6 and E-Trunk)
with a kernel receiver host joining groups; every display's rows must match what `<get>`
reports of roles, groups and channel state on each device."""

import os
import re
import subprocess
import time

import pytest

from conftest import BIN, eventually
from lab import lab, etrunk_state, mld_groups, profile_state, vrrp_state, BACKENDS, DEVICES
from netns import require_root

GROUPS = 20


@pytest.fixture(autouse=True)
def _root():
    require_root()


def rows(table_text):
    """The rows of an aligned table, split on runs of two or more blanks."""
    lines = table_text.strip("\n").splitlines()
    assert len(lines) >= 2 and set(lines[1]) <= {"-", " "}, table_text
    return [re.split(r"\s{2,}", line.strip()) for line in lines[2:] if line.strip()]


def cli(tmp_path, dev, command):
    pw = tmp_path / "pw"
    pw.write_text("admin\n")
    _, addr = DEVICES[dev]
    p = subprocess.run(
        [BIN, "cli", "--host", addr, "--port", "830", "--user", "admin", "--password-file", str(pw),
         "--known-hosts", str(tmp_path / "known_hosts"), "-c", command],
        capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def column(table_text, name):
    header = re.split(r"\s{2,}", table_text.strip("\n").splitlines()[0].strip())
    i = header.index(name)
    return [r[i] for r in rows(table_text)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_displays_match_get_on_both_devices(tmp_path, backend):
    with lab(tmp_path, backend=backend) as lb:
        ok = eventually(lambda: vrrp_state(lb, "a") == "master" and vrrp_state(lb, "b") == "backup"
                        and profile_state(lb, "b").get("batch-sync") == "complete", timeout=30, step=0.5)
        assert ok, lb.logs()
        lb.receiver(GROUPS, tmp_path / "receiver.json")
        ours = lambda dev: {g: v for g, v in mld_groups(lb, dev).items()  # noqa: E731
                            if g.startswith("ff0e::db8:1:")}
        assert eventually(lambda: len(ours("a")) == GROUPS and len(ours("b")) == GROUPS,
                          timeout=30, step=0.5), (len(ours("a")), len(ours("b")))
        time.sleep(1)
        for dev in ("a", "b"):
            # VRRP6: the state column is the instance's state in <get>.
            out = cli(tmp_path, dev, "display vrrp6 brief")
            (r,) = rows(out)
            assert r[0] == "eth1" and r[1] == "1"
            assert r[2].lower() == vrrp_state(lb, dev), out

            # RBS: the channel state and the profile's role, batch and entry counts.
            prof = profile_state(lb, dev)
            out = cli(tmp_path, dev, "display remote-backup-service")
            assert column(out, "State") == [prof["rbs"]], out
            out = cli(tmp_path, dev, "display remote-backup-profile rbp1")
            assert column(out, "Role") == [prof["role"]], out
            assert column(out, "Batch") == [prof["batch-sync"]], out
            prof = profile_state(lb, dev)
            assert column(out, "Local") == [prof["local-entries"]], (out, prof)
            assert column(out, "Peer") == [prof["peer-entries"]], (out, prof)

            # MLD: one row per group of <get>, with its origin.
            out = cli(tmp_path, dev, "display mld group")
            shown = {r[1]: r for r in rows(out) if r[1].startswith("ff0e::db8:1:")}
            got = ours(dev)
            assert set(shown) == set(got), out
            origins = column(out, "Origin")
            groups = column(out, "Group")
            for g, origin in zip(groups, origins):
                if g in got:
                    assert origin == got[g][0], (g, origin, got[g])
        # The roles differ as the lab's scenario says.
        assert [r[2].lower() for r in rows(cli(tmp_path, "a", "display vrrp6 brief"))] == ["master"]
        assert set(column(cli(tmp_path, "b", "display mld group"), "Origin")) >= {"peer"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_etrunk_display_matches_get_on_both_devices(tmp_path, backend):
    with lab(tmp_path, role_source="e-trunk", backend=backend) as lb:
        ok = eventually(lambda: etrunk_state(lb, "a")[0] == "master" and etrunk_state(lb, "b")[0] == "backup",
                        timeout=40, step=0.5)
        assert ok, (etrunk_state(lb, "a"), etrunk_state(lb, "b"), lb.logs())
        for dev in ("a", "b"):
            state, cause, role, selected = etrunk_state(lb, dev)
            out = cli(tmp_path, dev, "display e-trunk 1")
            etrunks, trunks = out.split("\n\n")[:2]
            (r,) = rows(etrunks)
            assert r[0] == "1"
            assert column(etrunks, "State") == [state], out
            assert column(etrunks, "Cause") == [cause or "-"], out
            assert column(trunks, "Role") == [role], out
        # A (priority 10) is master, B backup: the displays say so too.
        assert column(cli(tmp_path, "a", "display e-trunk").split("\n\n")[0], "State") == ["master"]
