//! The customer edge of the E-Trunk lab: Open vSwitch (ovsdb-server and ovs-vswitchd, user-space
//! datapath) in its own namespace, with an LACP bond over the links to both devices and a port
//! to the receiver host; its files live under the lab's state directory.

use super::procs::state_dir;
use super::topology::{TopologyError, CE};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The bridge, the bond and its members, and the receiver's port, as OVS names them.
pub const BRIDGE: &str = "br0";
pub const BOND: &str = "bond0";
pub const MEMBER_A: &str = "a-down";
pub const MEMBER_B: &str = "b-down";
pub const RECEIVER_PORT: &str = "h-down";
const DAEMONS: [&str; 2] = ["ovs-vswitchd", "ovsdb-server"];
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// Where this lab's OVS keeps its database, sockets, pid files and logs.
pub fn dir() -> PathBuf {
    state_dir().join("ovs")
}

fn db() -> String {
    format!("unix:{}/db.sock", dir().display())
}

/// Runs an OVS command in the customer edge's namespace with the lab's OVS directories.
fn ovs(cmd: &str, args: &[&str]) -> Result<String, TopologyError> {
    let d = dir();
    let shown = format!("{cmd} {}", args.join(" "));
    let out = Command::new("ip")
        .args(["netns", "exec", CE, cmd])
        .args(args)
        .env("OVS_RUNDIR", &d)
        .env("OVS_DBDIR", &d)
        .env("OVS_LOGDIR", &d)
        .env("OVS_SYSCONFDIR", &d)
        .output()
        .map_err(|e| TopologyError {
            command: shown.clone(),
            reason: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(TopologyError {
            command: shown,
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn vsctl(args: &[&str]) -> Result<String, TopologyError> {
    let db = format!("--db={}", db());
    let mut all = vec![db.as_str(), "--timeout=30"];
    all.extend_from_slice(args);
    ovs("ovs-vsctl", &all)
}

/// Starts OVS in the customer edge's namespace and builds its bridge: the bond over the two
/// devices' links (LACP active, fast timeout, no rebalancing, so a flow stays on its member)
/// and the receiver's port.
pub fn start() -> Result<(), TopologyError> {
    let d = dir();
    std::fs::create_dir_all(&d).map_err(|e| TopologyError {
        command: format!("mkdir {}", d.display()),
        reason: e.to_string(),
    })?;
    let path = |f: &str| d.join(f).display().to_string();
    ovs("ovsdb-tool", &["create", &path("conf.db"), SCHEMA])?;
    ovs(
        "ovsdb-server",
        &[
            &path("conf.db"),
            &format!("--remote=p{}", db()),
            &format!("--pidfile={}", path("ovsdb-server.pid")),
            &format!("--log-file={}", path("ovsdb-server.log")),
            "--no-chdir",
            "--detach",
        ],
    )?;
    vsctl(&["--no-wait", "init"])?;
    // The user-space datapath reads and writes the veths through packet sockets; without the
    // virtio-net header a checksum the sender left to offload would reach the receiver unfilled.
    vsctl(&[
        "--no-wait",
        "set",
        "Open_vSwitch",
        ".",
        "other_config:userspace-tso-enable=true",
    ])?;
    ovs(
        "ovs-vswitchd",
        &[
            &db(),
            &format!("--pidfile={}", path("ovs-vswitchd.pid")),
            &format!("--log-file={}", path("ovs-vswitchd.log")),
            "--no-chdir",
            "--detach",
        ],
    )?;
    vsctl(&[
        "add-br",
        BRIDGE,
        "--",
        "set",
        "bridge",
        BRIDGE,
        "datapath_type=netdev",
    ])?;
    vsctl(&[
        "add-bond",
        BRIDGE,
        BOND,
        MEMBER_A,
        MEMBER_B,
        "lacp=active",
        "bond_mode=balance-slb",
        "other_config:lacp-time=fast",
        "other_config:bond-rebalance-interval=0",
    ])?;
    vsctl(&["add-port", BRIDGE, RECEIVER_PORT])?;
    Ok(())
}

/// Stops both daemons (SIGTERM, then SIGKILL after five seconds); quiet when none runs.
pub fn stop() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for name in DAEMONS {
        let Some(pid) = std::fs::read_to_string(dir().join(format!("{name}.pid")))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        else {
            continue;
        };
        let pid = Pid::from_raw(pid);
        if kill(pid, Signal::SIGTERM).is_err() {
            continue;
        }
        let mut gone = false;
        for _ in 0..50 {
            if kill(pid, None).is_err() {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !gone {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

/// The bond members OVS has put in its link aggregation now (`bond/show`: "member X: enabled").
pub fn enabled_members() -> Result<Vec<String>, TopologyError> {
    let pid =
        std::fs::read_to_string(dir().join("ovs-vswitchd.pid")).map_err(|e| TopologyError {
            command: "reading ovs-vswitchd.pid".into(),
            reason: e.to_string(),
        })?;
    let ctl = dir().join(format!("ovs-vswitchd.{}.ctl", pid.trim()));
    let out = ovs(
        "ovs-appctl",
        &["-t", &ctl.display().to_string(), "bond/show", BOND],
    )?;
    Ok(parse_enabled(&out))
}

fn parse_enabled(bond_show: &str) -> Vec<String> {
    bond_show
        .lines()
        .filter_map(|l| l.strip_prefix("member "))
        .filter_map(|l| l.split_once(": "))
        .filter(|(_, state)| state.trim() == "enabled")
        .map(|(name, _)| name.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_members_are_read_from_bond_show() {
        let out = "---- bond0 ----\nbond_mode: balance-slb\nlacp_status: negotiated\n\n\
                   member a-down: enabled\n  may_enable: true\n\n\
                   member b-down: disabled\n  may_enable: false\n";
        assert_eq!(parse_enabled(out), vec!["a-down".to_string()]);
        assert!(parse_enabled("").is_empty());
    }
}
