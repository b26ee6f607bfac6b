//! The hot-backup scenarios' device configurations as NETCONF `<config>` content, one source
//! for the lab and the end-to-end tests (`mldhb lab config` prints them).

use std::fmt::Write;

/// Which of the two devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// The intended master.
    A,
    B,
}

impl Device {
    /// The last group of the device's addresses: A is ::1, B is ::2.
    pub fn host_id(self) -> u8 {
        match self {
            Device::A => 1,
            Device::B => 2,
        }
    }

    pub fn peer(self) -> Device {
        match self {
            Device::A => Device::B,
            Device::B => Device::A,
        }
    }
}

/// Backup mode and forwarder selection of the remote backup profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    MasterBackup,
    ActiveActive(LoadBalance),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalance {
    MasterOnly,
    GroupHash,
    SourceGroupHash,
}

impl LoadBalance {
    fn yang(self) -> &'static str {
        match self {
            LoadBalance::MasterOnly => "master-only",
            LoadBalance::GroupHash => "group-hash",
            LoadBalance::SourceGroupHash => "source-group-hash",
        }
    }
}

/// The VRRP6 scenario's knobs (SCENARIOS.md 1 and 2); the defaults are the reference values.
#[derive(Debug, Clone)]
pub struct Vrrp6Scenario {
    pub mode: Mode,
    /// Advertisement interval, centiseconds.
    pub advertise_cs: u16,
    /// Preempt delay, seconds.
    pub preempt_delay: u16,
    pub rbs_port: u16,
    pub rbs_key: Option<String>,
}

impl Default for Vrrp6Scenario {
    fn default() -> Self {
        Vrrp6Scenario {
            mode: Mode::MasterBackup,
            advertise_cs: 100,
            preempt_delay: 10,
            rbs_port: 1025,
            rbs_key: Some("mldhb-rbs-key".into()),
        }
    }
}

pub const UPSTREAM: &str = "eth0";
pub const DOWNSTREAM: &str = "eth1";
pub const RBS_LINK: &str = "eth2";
/// The upstream, downstream and RBS prefixes, with the device number appended.
pub const UPSTREAM_PREFIX: &str = "2001:db8:100::";
pub const DOWNSTREAM_PREFIX: &str = "2001:db8:1::";
pub const RBS_PREFIX: &str = "2001:db8:10::";
pub const VIRTUAL_LINK_LOCAL: &str = "fe80::1";
pub const VIRTUAL_GLOBAL: &str = "2001:db8:1::100";
pub const VRID: u8 = 1;

const NS_IF: &str = "urn:ietf:params:xml:ns:yang:ietf-interfaces";
const NS_IANAIFT: &str = "urn:ietf:params:xml:ns:yang:iana-if-type";
const NS_IP: &str = "urn:ietf:params:xml:ns:yang:ietf-ip";
const NS_VRRP: &str = "urn:ietf:params:xml:ns:yang:ietf-vrrp";
const NS_MLD: &str = "urn:mldhb:yang:mldhb-mld";
const NS_MCAST: &str = "urn:mldhb:yang:mldhb-multicast";
const NS_RBS: &str = "urn:mldhb:yang:mldhb-rbs";

fn interface(out: &mut String, name: &str, address: &str, extra_ipv6: &str, extra: &str) {
    let _ = write!(
        out,
        "<interface><name>{name}</name>\
         <type xmlns:ianaift=\"{NS_IANAIFT}\">ianaift:ethernetCsmacd</type>\
         <enabled>true</enabled>\
         <ipv6 xmlns=\"{NS_IP}\"><address><ip>{address}</ip><prefix-length>64</prefix-length></address>{extra_ipv6}</ipv6>\
         {extra}</interface>"
    );
}

impl Vrrp6Scenario {
    /// The `<config>` content for one device.
    pub fn config(&self, dev: Device) -> String {
        let me = dev.host_id();
        let peer = dev.peer().host_id();
        let priority = match dev {
            Device::A => 200,
            Device::B => 120,
        };
        let mut out = String::new();
        let _ = write!(out, "<interfaces xmlns=\"{NS_IF}\">");
        interface(
            &mut out,
            UPSTREAM,
            &format!("{UPSTREAM_PREFIX}{me}"),
            "",
            "",
        );
        let vrrp = format!(
            "<vrrp xmlns=\"{NS_VRRP}\"><vrrp-instance><vrid>{VRID}</vrid>\
             <version xmlns:vrrp=\"{NS_VRRP}\">vrrp:vrrp-v3</version>\
             <preempt><enabled>true</enabled><hold-time>{delay}</hold-time></preempt>\
             <priority>{priority}</priority>\
             <advertise-interval-centi-sec>{adv}</advertise-interval-centi-sec>\
             <virtual-ipv6-addresses>\
             <virtual-ipv6-address><ipv6-address>{VIRTUAL_LINK_LOCAL}</ipv6-address></virtual-ipv6-address>\
             <virtual-ipv6-address><ipv6-address>{VIRTUAL_GLOBAL}</ipv6-address></virtual-ipv6-address>\
             </virtual-ipv6-addresses></vrrp-instance></vrrp>",
            delay = self.preempt_delay,
            adv = self.advertise_cs,
        );
        let mld = format!(
            "<mld xmlns=\"{NS_MLD}\"><enable>true</enable><track-vrrp6-vrid>{VRID}</track-vrrp6-vrid></mld>\
             <remote-backup-profile xmlns=\"{NS_RBS}\">rbp1</remote-backup-profile>"
        );
        interface(
            &mut out,
            DOWNSTREAM,
            &format!("{DOWNSTREAM_PREFIX}{me}"),
            &vrrp,
            &mld,
        );
        interface(&mut out, RBS_LINK, &format!("{RBS_PREFIX}{me}"), "", "");
        out.push_str("</interfaces>");
        let _ = write!(
            out,
            "<multicast xmlns=\"{NS_MCAST}\"><ipv6-routing-enable>true</ipv6-routing-enable></multicast>"
        );
        let key = self.rbs_key.as_ref().map_or(String::new(), |k| {
            format!("<security-key><key-type>simple</key-type><key>{k}</key></security-key>")
        });
        let (mode, lb) = match self.mode {
            Mode::MasterBackup => ("master-backup", LoadBalance::MasterOnly),
            Mode::ActiveActive(lb) => ("active-active", lb),
        };
        let _ = write!(
            out,
            "<remote-backup xmlns=\"{NS_RBS}\">\
             <service><name>rbs1</name><peer-ipv6>{RBS_PREFIX}{peer}</peer-ipv6>\
             <source-ipv6>{RBS_PREFIX}{me}</source-ipv6><port>{port}</port>{key}</service>\
             <profile><name>rbp1</name><service-type>mld</service-type><backup-id>10</backup-id>\
             <remote-backup-service>rbs1</remote-backup-service><peer-backup>hot</peer-backup>\
             <vrrp6-id>{VRID}</vrrp6-id><interface>{DOWNSTREAM}</interface>\
             <backup-mode>{mode}</backup-mode><load-balance>{lb}</load-balance></profile>\
             </remote-backup>",
            port = self.rbs_port,
            lb = lb.yang(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_differ_in_addresses_priority_and_peer() {
        let s = Vrrp6Scenario::default();
        let a = s.config(Device::A);
        let b = s.config(Device::B);
        assert!(a.contains("<priority>200</priority>"));
        assert!(b.contains("<priority>120</priority>"));
        assert!(a.contains("<peer-ipv6>2001:db8:10::2</peer-ipv6>"));
        assert!(b.contains("<source-ipv6>2001:db8:10::2</source-ipv6>"));
        assert!(a.contains("<backup-mode>master-backup</backup-mode>"));
        let aa = Vrrp6Scenario {
            mode: Mode::ActiveActive(LoadBalance::GroupHash),
            ..Default::default()
        };
        assert!(aa
            .config(Device::A)
            .contains("<load-balance>group-hash</load-balance>"));
    }

    #[test]
    fn every_config_parses_as_xml_and_validates() {
        for mode in [
            Mode::MasterBackup,
            Mode::ActiveActive(LoadBalance::GroupHash),
        ] {
            let s = Vrrp6Scenario {
                mode,
                ..Default::default()
            };
            for dev in [Device::A, Device::B] {
                let text = format!(
                    "<config xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">{}</config>",
                    s.config(dev)
                );
                let el = crate::netconf::xml::parse(text.as_bytes()).expect("well-formed");
                let tree = crate::netconf::ops::inline_config(&el).expect("known nodes");
                crate::northbound::validate::validate(&tree)
                    .unwrap_or_else(|e| panic!("{dev:?} {mode:?}: {}", e.message));
            }
        }
    }
}
