"""`mldhb cli` errors: invalid commands, out-of-range values, refusals at commit and NACM
denials print VRP-like `Error:` lines carrying the NETCONF message and path, exit non-zero,
and change nothing (the run's edits are discarded and the candidate lock released)."""

import pytest

from cli_helpers import NS_ACM, SCENARIOS, batch, cli, ok, running_xml
from conftest import NS_BASE, assert_ok

USERS = """
[[users]]
name = "operator"
password = "operator"
groups = ["operator"]
[[users]]
name = "guest"
password = "guest"
groups = ["guests"]
"""


@pytest.fixture
def seeded(agent_factory):
    a = agent_factory(USERS)
    ok(batch(a, "system-view\n" + SCENARIOS["vrrp6-master-backup-A"][1]() + "commit\n"))
    return a


def snapshot(a):
    with a.quiet() as m:
        return running_xml(m), running_xml(m, "candidate")


def assert_unchanged_and_unlocked(a, before):
    assert snapshot(a) == before
    with a.quiet() as m:
        # The candidate lock was released.
        assert_ok(m.lock(target="candidate"))
        assert_ok(m.unlock(target="candidate"))


def failed(p):
    assert p.returncode != 0, p.stdout + p.stderr
    return p.stderr


def test_unrecognized_command(seeded):
    before = snapshot(seeded)
    err = failed(cli(seeded, "-c", "system-view; interface eth7; description new; mld enabel; commit"))
    assert "Error: line 4: mld enabel" in err
    assert "      ^\nError: Unrecognized command found at '^' position." in err, err
    assert "discarded" in err
    assert_unchanged_and_unlocked(seeded, before)


@pytest.mark.parametrize(
    "line, position, why",
    [
        ("interface eth1; vrrp6 vrid 1 priority 255", 22, "The value must be in the range 1-254."),
        ("interface eth1; vrrp6 vrid 256", 11, "The value must be in the range 1-255."),
        ("interface eth1; mld robust-count 6", 17, "The value must be in the range 2-5."),
        ("interface eth1; ipv6 address 2001:db8::1/129", 13, "The prefix length must be in the range 0-128."),
        ("interface eth1; vrrp6 vrid 1 virtual-ip 2001:db8::5 link-local", 24, "link-local"),
        ("interface eth1; mld static-group 2001:db8::1", 17, "multicast"),
        ("remote-backup-service rbs1; peer-ipv6 2001:db8::2 source-ipv6 2001:db8::1 port 80", 51,
         "The value must be in the range 1024-55535."),
        ("remote-backup-profile rbp1; backup-id 4096 remote-backup-service rbs1", 10, "1-4095"),
        ("e-trunk 129", 8, "1-128"),
        ("lacp e-trunk system-id 00e0-fc12", 23, "H-H-H"),
        ("remote-backup-service rbs1; security-key cipher %^%#AAAA%^%#", 20, "Invalid cipher text"),
    ],
)
def test_out_of_range_values(seeded, line, position, why):
    before = snapshot(seeded)
    err = failed(cli(seeded, "-c", f"system-view; {line}; commit"))
    last = line.split("; ")[-1]
    assert f"  {last}\n" + " " * (2 + position) + "^\nError: Wrong parameter found at '^' position." in err, err
    assert why in err, err
    assert_unchanged_and_unlocked(seeded, before)


def test_incomplete_and_ambiguous(seeded):
    err = failed(cli(seeded, "-c", "system-view; interface eth1; mld timer"))
    assert "Error: Incomplete command found at '^' position." in err
    err = failed(cli(seeded, "-c", "display remote-backup-"))
    assert "Error: Ambiguous command found at '^' position." in err


def test_commit_refused_by_validation_carries_message_and_path(seeded):
    before = snapshot(seeded)
    err = failed(cli(seeded, "-c", "system-view; remote-backup-profile rbp2; service-type mld; commit"))
    assert "Error: line 4: commit" in err
    assert 'Mandatory choice "role-source"' in err and "error-tag data-missing" in err, err
    assert "path /mldhb-rbs:remote-backup/mldhb-rbs:profile[mldhb-rbs:name='rbp2']" in err, err
    assert_unchanged_and_unlocked(seeded, before)


def test_must_violation_at_commit(seeded):
    before = snapshot(seeded)
    err = failed(cli(seeded, "-c", "system-view; interface eth1; undo multicast ipv6 track vrrp6 vrid; commit"))
    assert "must track that VRRP6 group" in err, err
    assert_unchanged_and_unlocked(seeded, before)


def test_undo_of_something_missing(seeded):
    before = snapshot(seeded)
    err = failed(cli(seeded, "-c", "system-view; interface eth1; undo ipv6 address 2001:db8:9::1/64; commit"))
    assert "Error: <address> does not exist (error-tag data-missing, path " in err, err
    assert_unchanged_and_unlocked(seeded, before)


def test_uncommitted_batch_is_discarded(seeded):
    before = snapshot(seeded)
    err = failed(cli(seeded, "-c", "system-view; interface eth1; description no commit"))
    assert "not committed" in err
    assert_unchanged_and_unlocked(seeded, before)


def test_operator_is_denied_the_lock(seeded):
    before = snapshot(seeded)
    err = failed(cli(seeded, "-c", "system-view; interface eth9; commit", user="operator"))
    assert "Error: access to operation <lock> is denied (error-tag access-denied)" in err, err
    assert_unchanged_and_unlocked(seeded, before)
    # Reading is allowed.
    assert "interface eth1" in ok(cli(seeded, "-c", "display current-configuration", user="operator"))


def test_write_denied_by_nacm_carries_the_path(seeded):
    with seeded.quiet() as m:
        rules = (
            f'<config xmlns="{NS_BASE}"><nacm xmlns="{NS_ACM}"><rule-list><name>guests</name>'
            "<group>guests</group><rule><name>rbs</name><path>/rbs:remote-backup</path>"
            "<access-operations>create update delete</access-operations><action>permit</action>"
            "</rule></rule-list></nacm></config>"
        )
        assert_ok(m.edit_config(target="running", config=rules))
    before = snapshot(seeded)
    err = failed(cli(
        seeded, "-c",
        "system-view; remote-backup-service rbs9; peer-ipv6 2001:db8::9 source-ipv6 2001:db8::1 port 3000;"
        " interface eth1; description denied; commit",
        user="guest",
    ))
    assert "Error: line 5: description denied" in err, err
    assert "error-tag access-denied, path /ietf-interfaces:interfaces" in err, err
    assert "discarded" in err
    assert_unchanged_and_unlocked(seeded, before)
    # What the rules permit goes through.
    ok(cli(seeded, "-c",
           "system-view; remote-backup-service rbs9; peer-ipv6 2001:db8::9 source-ipv6 2001:db8::1 port 3000; commit",
           user="guest"))
    assert "remote-backup-service rbs9" in ok(cli(seeded, "-c", "display current-configuration"))


def test_candidate_locked_by_another_session(seeded):
    with seeded.quiet() as m:
        assert_ok(m.lock(target="candidate"))
        err = failed(cli(seeded, "-c", "system-view; interface eth1; description x; commit"))
        assert "error-tag lock-denied" in err, err
        assert_ok(m.unlock(target="candidate"))


def test_wrong_password_and_changed_host_key(seeded):
    p = cli(seeded, "-c", "display this", password="wrong")
    assert p.returncode == 2 and "authentication failed for user admin" in p.stderr
    # A different key recorded for this host and port is refused.
    kh = seeded.workdir + "/known_hosts"
    assert f"[127.0.0.1]:{seeded.port} ssh-ed25519 " in open(kh).read()
    with open(kh, "w") as f:
        f.write(f"[127.0.0.1]:{seeded.port} ssh-ed25519 "
                "AAAAC3NzaC1lZDI1NTE5AAAAIBW8N9VfWjpGmb3/4IqGZ6qQCHsm3XyWlqG9i1CuyU6O\n")
    p = cli(seeded, "-c", "display this")
    assert p.returncode == 2 and "has changed" in p.stderr, p.stderr
