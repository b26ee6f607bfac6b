//! The lab's network on this machine: one namespace per device and host, the bridged upstream
//! LAN, the downstream side (a bridged LAN for VRRP6, a customer edge with a link to each device
//! for E-Trunk), the direct link between the devices and a management link from the host to
//! each device.

use super::ovs;
use super::scenario::{Device, RoleSource, DOWNSTREAM, RBS_LINK, UPSTREAM};
use std::process::Command;

/// Every namespace name starts with this.
pub const PREFIX: &str = "mldhb-";
pub const SWITCH: &str = "mldhb-sw";
pub const RECEIVER: &str = "mldhb-h";
pub const SOURCE: &str = "mldhb-s";
/// The customer edge of the E-Trunk scenarios (Open vSwitch).
pub const CE: &str = "mldhb-ce";
/// The receiver's and the source's interface in their namespaces.
pub const HOST_IF: &str = "eth0";
/// The source's address on the upstream LAN.
pub const SOURCE_ADDR: &str = "2001:db8:100::10";

#[derive(Debug, thiserror::Error)]
#[error("{command}: {reason}")]
pub struct TopologyError {
    pub command: String,
    pub reason: String,
}

/// The namespace a device runs in.
pub fn device_ns(dev: Device) -> &'static str {
    match dev {
        Device::A => "mldhb-a",
        Device::B => "mldhb-b",
    }
}

/// The device's management address, reachable from the host.
pub fn mgmt_addr(dev: Device) -> String {
    format!("10.77.{}.2", dev.host_id())
}

fn mgmt_host_if(dev: Device) -> String {
    format!("mldhb-{}-mgmt", device_ns(dev).trim_start_matches(PREFIX))
}

/// Runs `ip` with the arguments; an error says which command failed and why.
pub fn ip(args: &[&str]) -> Result<(), TopologyError> {
    run("ip", args)
}

/// Runs a command to completion; a non-zero exit is an error carrying its stderr.
pub fn run(cmd: &str, args: &[&str]) -> Result<(), TopologyError> {
    let shown = format!("{cmd} {}", args.join(" "));
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| TopologyError {
            command: shown.clone(),
            reason: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TopologyError {
            command: shown,
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Every namespace the lab may make; `lab down` removes these and no other (tests elsewhere on
/// the machine use the same prefix for their own namespaces).
pub fn namespaces() -> [&'static str; 6] {
    [
        device_ns(Device::A),
        device_ns(Device::B),
        SWITCH,
        RECEIVER,
        SOURCE,
        CE,
    ]
}

/// The lab's namespaces that exist now.
pub fn existing() -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| namespaces().contains(n))
        .map(str::to_string)
        .collect()
}

/// A veth pair with each end moved into a namespace (None: stays in the host's).
fn veth(a_ns: Option<&str>, a: &str, b_ns: &str, b: &str) -> Result<(), TopologyError> {
    let mut args = vec!["link", "add", a];
    if let Some(ns) = a_ns {
        args.extend(["netns", ns]);
    }
    args.extend(["type", "veth", "peer", "name", b, "netns", b_ns]);
    ip(&args)
}

fn up(ns: &str, ifname: &str) -> Result<(), TopologyError> {
    ip(&["-n", ns, "link", "set", ifname, "up"])
}

fn sysctl(ns: &str, key: &str, value: &str) -> Result<(), TopologyError> {
    run(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("{key}={value}"),
        ],
    )
}

/// Builds a scenario's topology (SCENARIOS.md). Device interfaces are created down and without
/// addresses: the agents configure them over NETCONF. With E-Trunk the receiver sits behind the
/// customer edge, whose ports OVS takes (`ovs::start`).
pub fn create(role_source: RoleSource) -> Result<(), TopologyError> {
    let devices = [Device::A, Device::B];
    let etrunk = role_source == RoleSource::ETrunk;
    let ce = etrunk.then_some(CE);
    for ns in [SWITCH, RECEIVER, SOURCE]
        .into_iter()
        .chain(ce)
        .chain(devices.iter().map(|d| device_ns(*d)))
    {
        ip(&["netns", "add", ns])?;
        up(ns, "lo")?;
        // Addresses must be usable at once: no duplicate address detection on lab links.
        sysctl(ns, "net.ipv6.conf.all.accept_dad", "0")?;
        sysctl(ns, "net.ipv6.conf.default.accept_dad", "0")?;
    }
    let bridges: &[&str] = if etrunk { &["up0"] } else { &["up0", "down0"] };
    for &br in bridges {
        ip(&["-n", SWITCH, "link", "add", br, "type", "bridge"])?;
        // A plain hub for multicast: snooping would hide reports from the other router.
        ip(&[
            "-n",
            SWITCH,
            "link",
            "set",
            br,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        up(SWITCH, br)?;
    }
    let port = |name: &str, bridge: &str| -> Result<(), TopologyError> {
        ip(&["-n", SWITCH, "link", "set", name, "master", bridge])?;
        up(SWITCH, name)
    };
    for dev in devices {
        let ns = device_ns(dev);
        let tag = ns.trim_start_matches(PREFIX);
        veth(Some(SWITCH), &format!("{tag}-up"), ns, UPSTREAM)?;
        port(&format!("{tag}-up"), "up0")?;
        if etrunk {
            // This device's Eth-Trunk member, one of the customer edge's bond members.
            let member = match dev {
                Device::A => ovs::MEMBER_A,
                Device::B => ovs::MEMBER_B,
            };
            veth(Some(CE), member, ns, DOWNSTREAM)?;
            up(CE, member)?;
        } else {
            veth(Some(SWITCH), &format!("{tag}-down"), ns, DOWNSTREAM)?;
            port(&format!("{tag}-down"), "down0")?;
        }
        let host_if = mgmt_host_if(dev);
        veth(None, &host_if, ns, "mgmt0")?;
        ip(&[
            "addr",
            "add",
            &format!("10.77.{}.1/24", dev.host_id()),
            "dev",
            &host_if,
        ])?;
        ip(&["link", "set", &host_if, "up"])?;
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/24", mgmt_addr(dev)),
            "dev",
            "mgmt0",
        ])?;
        up(ns, "mgmt0")?;
        sysctl(ns, "net.ipv6.conf.all.forwarding", "1")?;
    }
    ip(&[
        "link",
        "add",
        RBS_LINK,
        "netns",
        device_ns(Device::A),
        "type",
        "veth",
        "peer",
        "name",
        RBS_LINK,
        "netns",
        device_ns(Device::B),
    ])?;
    veth(Some(SWITCH), "s-up", SOURCE, HOST_IF)?;
    port("s-up", "up0")?;
    ip(&[
        "-n",
        SOURCE,
        "addr",
        "add",
        &format!("{SOURCE_ADDR}/64"),
        "dev",
        HOST_IF,
    ])?;
    up(SOURCE, HOST_IF)?;
    if etrunk {
        veth(Some(CE), ovs::RECEIVER_PORT, RECEIVER, HOST_IF)?;
        up(CE, ovs::RECEIVER_PORT)?;
    } else {
        veth(Some(SWITCH), "h-down", RECEIVER, HOST_IF)?;
        port("h-down", "down0")?;
    }
    up(RECEIVER, HOST_IF)?;
    // The receiver host answers queries quickly and speaks MLDv2.
    sysctl(
        RECEIVER,
        &format!("net.ipv6.conf.{HOST_IF}.force_mld_version"),
        "2",
    )?;
    Ok(())
}

/// Removes every namespace of the lab and the host ends of the management links.
pub fn destroy() -> Vec<TopologyError> {
    let mut errors = Vec::new();
    for ns in existing() {
        if let Err(e) = ip(&["netns", "del", &ns]) {
            errors.push(e);
        }
    }
    for dev in [Device::A, Device::B] {
        // Deleting the namespace already removed the pair; this covers a half-made lab.
        let _ = ip(&["link", "del", &mgmt_host_if(dev)]);
    }
    errors
}
