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
    /// The multicast forwarding backend (`auto`, `ip6mr`, `nftables`).
    pub backend: String,
}

impl Default for Vrrp6Scenario {
    fn default() -> Self {
        Vrrp6Scenario {
            mode: Mode::MasterBackup,
            advertise_cs: 100,
            preempt_delay: 10,
            rbs_port: 1025,
            rbs_key: Some("mldhb-rbs-key".into()),
            backend: "auto".into(),
        }
    }
}

/// Which protocol elects the master (SCENARIOS.md 1–2: VRRP6, 3–4: E-Trunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleSource {
    Vrrp6,
    ETrunk,
}

impl RoleSource {
    /// The name in `--role-source` and in the lab's options file.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleSource::Vrrp6 => "vrrp6",
            RoleSource::ETrunk => "e-trunk",
        }
    }

    pub fn parse(s: &str) -> Result<RoleSource, String> {
        match s {
            "vrrp6" => Ok(RoleSource::Vrrp6),
            "e-trunk" => Ok(RoleSource::ETrunk),
            other => Err(format!("unknown role source {other:?} (vrrp6, e-trunk)")),
        }
    }

    /// The interface that holds the downstream addresses and MLD.
    pub fn downstream(self) -> &'static str {
        match self {
            RoleSource::Vrrp6 => DOWNSTREAM,
            RoleSource::ETrunk => ETH_TRUNK,
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
/// The Eth-Trunk of the E-Trunk scenarios; `eth1` is its one member on each device.
pub const ETH_TRUNK: &str = "Eth-Trunk1";
pub const ETH_TRUNK_ID: u8 = 1;
pub const ETRUNK_ID: u8 = 1;
/// The LACP system ID both devices present to the customer edge.
pub const LACP_SYSTEM_ID: &str = "00:e0:fc:12:34:56";

const NS_IF: &str = "urn:ietf:params:xml:ns:yang:ietf-interfaces";
const NS_IANAIFT: &str = "urn:ietf:params:xml:ns:yang:iana-if-type";
const NS_IP: &str = "urn:ietf:params:xml:ns:yang:ietf-ip";
const NS_VRRP: &str = "urn:ietf:params:xml:ns:yang:ietf-vrrp";
const NS_MLD: &str = "urn:mldhb:yang:mldhb-mld";
const NS_MCAST: &str = "urn:mldhb:yang:mldhb-multicast";
const NS_RBS: &str = "urn:mldhb:yang:mldhb-rbs";
const NS_ETRUNK: &str = "urn:mldhb:yang:mldhb-etrunk";

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
        multicast_routing(&mut out, &self.backend);
        rbs(
            &mut out,
            dev,
            self.rbs_port,
            self.rbs_key.as_deref(),
            self.mode,
            &format!("<vrrp6-id>{VRID}</vrrp6-id><interface>{DOWNSTREAM}</interface>"),
        );
        out
    }
}

/// The remote backup service and profile; `role_source` is the profile's role-source leaves.
fn rbs(out: &mut String, dev: Device, port: u16, key: Option<&str>, mode: Mode, role_source: &str) {
    let me = dev.host_id();
    let peer = dev.peer().host_id();
    let key = security_key(key);
    let (mode, lb) = match mode {
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
         {role_source}<backup-mode>{mode}</backup-mode><load-balance>{lb}</load-balance></profile>\
         </remote-backup>",
        lb = lb.yang(),
    );
}

/// A `security-key` container with the key in clear, or nothing.
fn security_key(key: Option<&str>) -> String {
    key.map_or(String::new(), |k| {
        format!("<security-key><key-type>simple</key-type><key>{k}</key></security-key>")
    })
}

/// Multicast routing on, with the forwarding backend when one is forced.
fn multicast_routing(out: &mut String, backend: &str) {
    let backend = if backend == "auto" {
        String::new()
    } else {
        format!("<forwarding-backend>{backend}</forwarding-backend>")
    };
    let _ = write!(
        out,
        "<multicast xmlns=\"{NS_MCAST}\"><ipv6-routing-enable>true</ipv6-routing-enable>{backend}</multicast>"
    );
}

/// The E-Trunk scenario's knobs (SCENARIOS.md 3 and 4); the defaults are the reference values.
/// Active-active puts `e-trunk mode force-master` on both devices' Eth-Trunk.
#[derive(Debug, Clone)]
pub struct ETrunkScenario {
    pub mode: Mode,
    /// Hello interval, units of 100 ms.
    pub hello: u8,
    /// Hold-on-failure multiplier: the peer is lost after hello × multiplier.
    pub multiplier: u16,
    pub rbs_port: u16,
    pub rbs_key: Option<String>,
    pub etrunk_key: Option<String>,
    /// The multicast forwarding backend (`auto`, `ip6mr`, `nftables`).
    pub backend: String,
}

impl Default for ETrunkScenario {
    fn default() -> Self {
        ETrunkScenario {
            mode: Mode::MasterBackup,
            hello: 10,
            multiplier: 3,
            rbs_port: 1025,
            rbs_key: Some("mldhb-rbs-key".into()),
            etrunk_key: Some("mldhb-example-key".into()),
            backend: "auto".into(),
        }
    }
}

impl ETrunkScenario {
    /// The `<config>` content for one device.
    pub fn config(&self, dev: Device) -> String {
        let me = dev.host_id();
        let peer = dev.peer().host_id();
        let priority = match dev {
            Device::A => 10,
            Device::B => 20,
        };
        let force = match self.mode {
            Mode::MasterBackup => "",
            Mode::ActiveActive(_) => "<e-trunk-mode>force-master</e-trunk-mode>",
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
        let _ = write!(
            out,
            "<interface><name>{DOWNSTREAM}</name>\
             <type xmlns:ianaift=\"{NS_IANAIFT}\">ianaift:ethernetCsmacd</type>\
             <enabled>true</enabled>\
             <member-of-eth-trunk xmlns=\"{NS_ETRUNK}\">{ETH_TRUNK_ID}</member-of-eth-trunk></interface>\
             <interface><name>{ETH_TRUNK}</name>\
             <type xmlns:ianaift=\"{NS_IANAIFT}\">ianaift:ieee8023adLag</type>\
             <enabled>true</enabled>\
             <eth-trunk xmlns=\"{NS_ETRUNK}\"><trunk-id>{ETH_TRUNK_ID}</trunk-id><mode>lacp-static</mode>\
             <e-trunk>{ETRUNK_ID}</e-trunk>{force}</eth-trunk>\
             <ipv6 xmlns=\"{NS_IP}\"><address><ip>{DOWNSTREAM_PREFIX}{me}</ip><prefix-length>64</prefix-length></address></ipv6>\
             <mld xmlns=\"{NS_MLD}\"><enable>true</enable></mld>\
             <remote-backup-profile xmlns=\"{NS_RBS}\">rbp1</remote-backup-profile></interface>"
        );
        interface(&mut out, RBS_LINK, &format!("{RBS_PREFIX}{me}"), "", "");
        out.push_str("</interfaces>");
        multicast_routing(&mut out, &self.backend);
        let key = security_key(self.etrunk_key.as_deref());
        let _ = write!(
            out,
            "<lacp xmlns=\"{NS_ETRUNK}\"><e-trunk-system-id>{LACP_SYSTEM_ID}</e-trunk-system-id>\
             <e-trunk-priority>1</e-trunk-priority></lacp>\
             <e-trunk xmlns=\"{NS_ETRUNK}\"><id>{ETRUNK_ID}</id><priority>{priority}</priority>\
             <peer-ipv6>{RBS_PREFIX}{peer}</peer-ipv6><source-ipv6>{RBS_PREFIX}{me}</source-ipv6>\
             <hello-interval>{hello}</hello-interval>\
             <hold-on-failure-multiplier>{mult}</hold-on-failure-multiplier>{key}</e-trunk>",
            hello = self.hello,
            mult = self.multiplier,
        );
        rbs(
            &mut out,
            dev,
            self.rbs_port,
            self.rbs_key.as_deref(),
            self.mode,
            &format!(
                "<e-trunk-id>{ETRUNK_ID}</e-trunk-id><eth-trunk-id>{ETH_TRUNK_ID}</eth-trunk-id>"
            ),
        );
        out
    }
}

/// One of the four scenarios, as the lab runs it.
#[derive(Debug, Clone)]
pub enum Scenario {
    Vrrp6(Vrrp6Scenario),
    ETrunk(ETrunkScenario),
}

impl Scenario {
    pub fn config(&self, dev: Device) -> String {
        match self {
            Scenario::Vrrp6(s) => s.config(dev),
            Scenario::ETrunk(s) => s.config(dev),
        }
    }

    pub fn role_source(&self) -> RoleSource {
        match self {
            Scenario::Vrrp6(_) => RoleSource::Vrrp6,
            Scenario::ETrunk(_) => RoleSource::ETrunk,
        }
    }

    pub fn mode(&self) -> Mode {
        match self {
            Scenario::Vrrp6(s) => s.mode,
            Scenario::ETrunk(s) => s.mode,
        }
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

    /// The device configuration as a data tree.
    fn tree(config: &str) -> crate::datastore::tree::Node {
        crate::northbound::edit::config_tree(&format!(
            "<config xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">{config}</config>"
        ))
    }

    fn validate(what: &str, config: &str) {
        crate::northbound::validate::validate(&tree(config))
            .unwrap_or_else(|e| panic!("{what}: {}", e.message));
    }

    #[test]
    fn every_config_parses_as_xml_and_validates() {
        for mode in [
            Mode::MasterBackup,
            Mode::ActiveActive(LoadBalance::GroupHash),
        ] {
            let v = Vrrp6Scenario {
                mode,
                ..Default::default()
            };
            let e = ETrunkScenario {
                mode,
                ..Default::default()
            };
            for dev in [Device::A, Device::B] {
                validate(&format!("vrrp6 {dev:?} {mode:?}"), &v.config(dev));
                validate(&format!("e-trunk {dev:?} {mode:?}"), &e.config(dev));
            }
        }
    }

    #[test]
    fn etrunk_devices_differ_in_priority_and_active_active_forces_master() {
        let s = ETrunkScenario::default();
        let a = s.config(Device::A);
        let b = s.config(Device::B);
        assert!(a.contains(
            "<e-trunk xmlns=\"urn:mldhb:yang:mldhb-etrunk\"><id>1</id><priority>10</priority>"
        ));
        assert!(b.contains("<id>1</id><priority>20</priority>"));
        assert!(a.contains("<hello-interval>10</hello-interval>"));
        assert!(a.contains("<hold-on-failure-multiplier>3</hold-on-failure-multiplier>"));
        assert!(b.contains("<ip>2001:db8:1::2</ip>"));
        assert!(a.contains("<e-trunk-id>1</e-trunk-id><eth-trunk-id>1</eth-trunk-id>"));
        assert!(!a.contains("force-master"));
        let aa = ETrunkScenario {
            mode: Mode::ActiveActive(LoadBalance::GroupHash),
            ..Default::default()
        };
        for dev in [Device::A, Device::B] {
            let c = aa.config(dev);
            assert!(c.contains("<e-trunk-mode>force-master</e-trunk-mode>"));
            assert!(c.contains(
                "<backup-mode>active-active</backup-mode><load-balance>group-hash</load-balance>"
            ));
        }
    }

    /// The runtimes' own commit checks (beyond YANG) accept the E-Trunk configurations too (the
    /// E-Trunk refuses force-master without an active-active profile), and the hot-backup
    /// controller reads the profile's role source and bound interface.
    #[test]
    fn etrunk_profiles_read_back_as_etrunk_role_sources() {
        for mode in [
            Mode::MasterBackup,
            Mode::ActiveActive(LoadBalance::GroupHash),
        ] {
            let s = ETrunkScenario {
                mode,
                ..Default::default()
            };
            let tree = tree(&s.config(Device::A));
            crate::etrunk::northbound::configured(&tree)
                .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            let cfg = crate::hotbackup::northbound::configured(&tree).expect("accepted");
            assert_eq!(cfg.profiles.len(), 1);
            let p = &cfg.profiles[0];
            assert_eq!(
                p.role_source,
                crate::bus::RoleSourceId::ETrunk {
                    etrunk: 1,
                    eth_trunk: 1
                }
            );
            assert!(p.interfaces.contains(ETH_TRUNK));
        }
    }
}
