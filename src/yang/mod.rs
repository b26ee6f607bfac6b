//! The YANG modules shipped in the binary and the global libyang context compiled from them.

pub mod schema;
mod time;

pub use time::date_and_time;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use yang3::context::{Context, ContextFlags, EmbeddedModuleKey, EmbeddedModules};
use yang3::schema::{SchemaOutputFormat, SchemaPrinterFlags};

/// The text of one shipped YANG module.
#[derive(Debug, Clone, Copy)]
pub struct ModuleSource {
    pub name: &'static str,
    pub revision: Option<&'static str>,
    pub text: &'static str,
}

/// Revision shared by every project module.
const PROJECT_REVISION: &str = "2026-11-26";

macro_rules! ietf {
    ($name:literal, $rev:literal) => {
        ModuleSource {
            name: $name,
            revision: Some($rev),
            text: include_str!(concat!("../../yang/ietf/", $name, "@", $rev, ".yang")),
        }
    };
}

macro_rules! project {
    ($name:literal) => {
        project!($name, PROJECT_REVISION)
    };
    ($name:literal, $revision:expr) => {
        ModuleSource {
            name: $name,
            revision: Some($revision),
            text: include_str!(concat!("../../yang/", $name, ".yang")),
        }
    };
}

static SOURCES: &[ModuleSource] = &[
    ietf!("ietf-inet-types", "2013-07-15"),
    ietf!("ietf-yang-types", "2013-07-15"),
    ietf!("ietf-datastores", "2018-02-14"),
    ietf!("ietf-yang-library", "2019-01-04"),
    ietf!("ietf-netconf-acm", "2018-02-14"),
    ietf!("ietf-netconf", "2011-06-01"),
    ietf!("ietf-netconf-with-defaults", "2011-06-01"),
    ietf!("ietf-netconf-monitoring", "2010-10-04"),
    ietf!("ietf-netconf-notifications", "2012-02-06"),
    ietf!("ietf-interfaces", "2018-02-20"),
    ietf!("iana-if-type", "2019-02-08"),
    ietf!("ietf-ip", "2018-02-22"),
    ietf!("ietf-vrrp", "2018-03-13"),
    project!("mldhb-types"),
    project!("mldhb-system", "2026-12-07"),
    project!("mldhb-multicast", "2026-12-07"),
    project!("mldhb-mld"),
    project!("mldhb-etrunk"),
    project!("mldhb-rbs"),
    project!("mldhb-vrrp"),
    project!("mldhb-deviations"),
];

/// Modules implemented in the context, in load order, with the features enabled in each.
const IMPLEMENT: &[(&str, &[&str])] = &[
    ("ietf-netconf-acm", &[]),
    (
        "ietf-netconf",
        &[
            "writable-running",
            "candidate",
            "confirmed-commit",
            "rollback-on-error",
            "validate",
            "startup",
            "xpath",
        ],
    ),
    ("ietf-netconf-with-defaults", &[]),
    ("ietf-netconf-monitoring", &[]),
    ("ietf-netconf-notifications", &[]),
    ("ietf-interfaces", &["pre-provisioning", "if-mib"]),
    ("iana-if-type", &[]),
    ("ietf-ip", &[]),
    ("ietf-vrrp", &[]),
    ("mldhb-types", &[]),
    ("mldhb-system", &[]),
    ("mldhb-multicast", &[]),
    ("mldhb-mld", &[]),
    ("mldhb-etrunk", &[]),
    ("mldhb-rbs", &[]),
    ("mldhb-vrrp", &[]),
    ("mldhb-deviations", &[]),
];

/// Names of the modules written for this project.
pub const PROJECT_MODULES: &[&str] = &[
    "mldhb-types",
    "mldhb-system",
    "mldhb-multicast",
    "mldhb-mld",
    "mldhb-etrunk",
    "mldhb-rbs",
    "mldhb-vrrp",
    "mldhb-deviations",
];

/// Every shipped module (standard and project), for `<get-schema>`.
pub fn sources() -> &'static [ModuleSource] {
    SOURCES
}

fn embedded() -> &'static EmbeddedModules {
    static EMBEDDED: OnceLock<EmbeddedModules> = OnceLock::new();
    EMBEDDED.get_or_init(|| {
        SOURCES
            .iter()
            .map(|m| {
                (
                    EmbeddedModuleKey::new(m.name, m.revision, None, None),
                    m.text,
                )
            })
            .collect::<HashMap<_, _>>()
    })
}

/// Builds a fresh context with every implemented module loaded; nothing is read from disk.
pub fn new_context() -> Result<Context, yang3::Error> {
    let mut ctx = Context::new(ContextFlags::DISABLE_SEARCHDIRS)?;
    ctx.set_embedded_modules(embedded());
    for (name, features) in IMPLEMENT {
        let rev = SOURCES
            .iter()
            .find(|m| m.name == *name)
            .and_then(|m| m.revision);
        ctx.load_module(name, rev, features)?;
    }
    Ok(ctx)
}

/// The global libyang context, compiled once on first use.
pub fn context() -> &'static Context {
    static CONTEXT: OnceLock<Context> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        new_context().unwrap_or_else(|e| panic!("shipped YANG modules do not compile: {e:?}"))
    })
}

fn enabled_features(module: &yang3::schema::SchemaModule<'_>) -> Vec<String> {
    IMPLEMENT
        .iter()
        .find(|(name, _)| *name == module.name())
        .map(|(_, features)| {
            features
                .iter()
                .filter(|f| module.feature_value(f).unwrap_or(false))
                .map(|f| f.to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Implemented modules for the YANG library: (name, revision, namespace, enabled features).
/// Includes the modules libyang implements itself (ietf-yang-library, ietf-datastores, ...).
pub fn implemented() -> Vec<(String, Option<String>, String, Vec<String>)> {
    context()
        .modules(false)
        .filter(|m| m.is_implemented())
        .map(|m| {
            (
                m.name().to_string(),
                m.revision().map(str::to_string),
                m.namespace().to_string(),
                enabled_features(&m),
            )
        })
        .collect()
}

/// Deviations for the YANG library: (deviated module, module holding the deviations).
pub fn deviations() -> &'static [(&'static str, &'static str)] {
    &[
        ("ietf-interfaces", "mldhb-deviations"),
        ("ietf-ip", "mldhb-deviations"),
        ("ietf-vrrp", "mldhb-deviations"),
    ]
}

/// Modules present only because others import them: (name, revision, namespace).
pub fn import_only() -> Vec<(String, Option<String>, String)> {
    context()
        .modules(false)
        .filter(|m| !m.is_implemented())
        .map(|m| {
            (
                m.name().to_string(),
                m.revision().map(str::to_string),
                m.namespace().to_string(),
            )
        })
        .collect()
}

/// YANG text of a module in the context: the shipped file when there is one, otherwise the
/// module as libyang prints it (for its built-in modules). `revision: None` means any.
pub fn schema_text(name: &str, revision: Option<&str>) -> Option<Cow<'static, str>> {
    if let Some(m) = SOURCES
        .iter()
        .find(|m| m.name == name && (revision.is_none() || m.revision == revision))
    {
        return Some(Cow::Borrowed(m.text));
    }
    let ctx = context();
    let module = match revision {
        Some(_) => ctx.get_module(name, revision),
        None => ctx.get_module_latest(name),
    }?;
    module
        .print_string(SchemaOutputFormat::YANG, SchemaPrinterFlags::empty())
        .ok()
        .map(Cow::Owned)
}

/// Panics unless `xml` (state data) parses strictly against the shipped schema, unvalidated.
#[cfg(test)]
pub(crate) fn assert_state_parses(xml: &str) {
    use yang3::data::{DataFormat, DataParserFlags, DataTree, DataValidationFlags};
    DataTree::parse_string(
        context(),
        xml,
        DataFormat::XML,
        DataParserFlags::STRICT | DataParserFlags::NO_VALIDATION,
        DataValidationFlags::empty(),
    )
    .unwrap_or_else(|e| panic!("{xml}: {e:?}"));
}

/// Panics unless `xml` is a notification the shipped schema defines.
#[cfg(test)]
pub(crate) fn assert_notification_parses(xml: &str) {
    use yang3::data::{DataFormat, DataOperation, DataTree};
    DataTree::parse_op_string(
        context(),
        xml,
        DataFormat::XML,
        DataOperation::NotificationYang,
    )
    .unwrap_or_else(|e| panic!("{xml}: {e:?}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use yang3::data::{DataFormat, DataParserFlags, DataTree, DataValidationFlags};

    fn parse_config(xml: &str) -> Result<(), yang3::Error> {
        DataTree::parse_string(
            context(),
            xml,
            DataFormat::XML,
            DataParserFlags::STRICT | DataParserFlags::NO_STATE,
            DataValidationFlags::NO_STATE,
        )
        .map(|_| ())
    }

    const NS_IF: &str = "urn:ietf:params:xml:ns:yang:ietf-interfaces";

    /// Scenario 1 (VRRP6, master/backup), device A.
    const SCENARIO1_A: &str = r#"
<multicast xmlns="urn:mldhb:yang:mldhb-multicast">
  <ipv6-routing-enable>true</ipv6-routing-enable>
</multicast>
<remote-backup xmlns="urn:mldhb:yang:mldhb-rbs">
  <service>
    <name>rbs1</name>
    <peer-ipv6>2001:db8:10::2</peer-ipv6>
    <source-ipv6>2001:db8:10::1</source-ipv6>
    <port>1025</port>
    <security-key>
      <key-type>simple</key-type>
      <key>mldhb-rbs-key</key>
    </security-key>
  </service>
  <profile>
    <name>rbp1</name>
    <service-type>mld</service-type>
    <backup-id>10</backup-id>
    <remote-backup-service>rbs1</remote-backup-service>
    <peer-backup>hot</peer-backup>
    <vrrp6-id>1</vrrp6-id>
    <interface>eth1</interface>
  </profile>
</remote-backup>
<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"
            xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">
  <interface>
    <name>eth0</name>
    <type>ianaift:ethernetCsmacd</type>
    <ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip">
      <address><ip>2001:db8:100::1</ip><prefix-length>64</prefix-length></address>
    </ipv6>
  </interface>
  <interface>
    <name>eth2</name>
    <type>ianaift:ethernetCsmacd</type>
    <ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip">
      <address><ip>2001:db8:10::1</ip><prefix-length>64</prefix-length></address>
    </ipv6>
  </interface>
  <interface>
    <name>eth1</name>
    <type>ianaift:ethernetCsmacd</type>
    <ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip">
      <address><ip>2001:db8:1::1</ip><prefix-length>64</prefix-length></address>
      <vrrp xmlns="urn:ietf:params:xml:ns:yang:ietf-vrrp"
            xmlns:vrrp="urn:ietf:params:xml:ns:yang:ietf-vrrp">
        <vrrp-instance>
          <vrid>1</vrid>
          <version>vrrp:vrrp-v3</version>
          <priority>200</priority>
          <preempt><enabled>true</enabled><hold-time>10</hold-time></preempt>
          <advertise-interval-centi-sec>100</advertise-interval-centi-sec>
          <virtual-ipv6-addresses>
            <virtual-ipv6-address><ipv6-address>fe80::1</ipv6-address></virtual-ipv6-address>
            <virtual-ipv6-address><ipv6-address>2001:db8:1::100</ipv6-address></virtual-ipv6-address>
          </virtual-ipv6-addresses>
        </vrrp-instance>
      </vrrp>
    </ipv6>
    <mld xmlns="urn:mldhb:yang:mldhb-mld">
      <enable>true</enable>
      <track-vrrp6-vrid>1</track-vrrp6-vrid>
    </mld>
    <remote-backup-profile xmlns="urn:mldhb:yang:mldhb-rbs">rbp1</remote-backup-profile>
  </interface>
</interfaces>
"#;

    /// Scenario 4 (E-Trunk, active-active), device A.
    const SCENARIO4_A: &str = r#"
<multicast xmlns="urn:mldhb:yang:mldhb-multicast">
  <ipv6-routing-enable>true</ipv6-routing-enable>
</multicast>
<lacp xmlns="urn:mldhb:yang:mldhb-etrunk">
  <e-trunk-system-id>00:e0:fc:12:34:56</e-trunk-system-id>
  <e-trunk-priority>1</e-trunk-priority>
</lacp>
<e-trunk xmlns="urn:mldhb:yang:mldhb-etrunk">
  <id>1</id>
  <priority>10</priority>
  <peer-ipv6>2001:db8:10::2</peer-ipv6>
  <source-ipv6>2001:db8:10::1</source-ipv6>
  <hello-interval>10</hello-interval>
  <hold-on-failure-multiplier>3</hold-on-failure-multiplier>
  <security-key><key-type>simple</key-type><key>mldhb-example-key</key></security-key>
</e-trunk>
<remote-backup xmlns="urn:mldhb:yang:mldhb-rbs">
  <service>
    <name>rbs1</name>
    <peer-ipv6>2001:db8:10::2</peer-ipv6>
    <source-ipv6>2001:db8:10::1</source-ipv6>
    <port>1025</port>
    <security-key><key>mldhb-rbs-key</key></security-key>
  </service>
  <profile>
    <name>rbp1</name>
    <service-type>mld</service-type>
    <backup-id>10</backup-id>
    <remote-backup-service>rbs1</remote-backup-service>
    <peer-backup>hot</peer-backup>
    <e-trunk-id>1</e-trunk-id>
    <eth-trunk-id>1</eth-trunk-id>
    <backup-mode>active-active</backup-mode>
    <load-balance>group-hash</load-balance>
  </profile>
</remote-backup>
<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"
            xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">
  <interface>
    <name>eth1</name>
    <type>ianaift:ethernetCsmacd</type>
    <member-of-eth-trunk xmlns="urn:mldhb:yang:mldhb-etrunk">1</member-of-eth-trunk>
  </interface>
  <interface>
    <name>Eth-Trunk1</name>
    <type>ianaift:ieee8023adLag</type>
    <eth-trunk xmlns="urn:mldhb:yang:mldhb-etrunk">
      <trunk-id>1</trunk-id>
      <mode>lacp-static</mode>
      <e-trunk>1</e-trunk>
      <e-trunk-mode>force-master</e-trunk-mode>
    </eth-trunk>
    <ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip">
      <address><ip>2001:db8:1::1</ip><prefix-length>64</prefix-length></address>
    </ipv6>
    <mld xmlns="urn:mldhb:yang:mldhb-mld">
      <enable>true</enable>
    </mld>
    <remote-backup-profile xmlns="urn:mldhb:yang:mldhb-rbs">rbp1</remote-backup-profile>
  </interface>
</interfaces>
"#;

    #[test]
    fn context_builds() {
        let ctx = context();
        assert!(ctx.get_module_implemented("ietf-netconf").is_some());
    }

    /// The first (newest) revision statement of a shipped project module.
    fn s_first_revision(name: &str) -> String {
        let text = SOURCES.iter().find(|s| s.name == name).unwrap().text;
        let at = text.find("revision ").unwrap() + "revision ".len();
        text[at..at + 10].to_string()
    }

    #[test]
    fn every_project_module_is_implemented() {
        let ctx = context();
        for name in PROJECT_MODULES {
            let m = ctx
                .get_module_implemented(name)
                .unwrap_or_else(|| panic!("{name} not implemented"));
            assert_eq!(m.namespace(), format!("urn:mldhb:yang:{name}"));
            let newest = SOURCES
                .iter()
                .find(|s| s.name == *name)
                .and_then(|s| s.revision);
            assert_eq!(m.revision(), newest);
            assert_eq!(
                m.revision(),
                Some(&s_first_revision(name)[..]),
                "the embedded revision is the module's newest"
            );
        }
        for (name, _) in IMPLEMENT {
            assert!(
                ctx.get_module_implemented(name).is_some(),
                "{name} not implemented"
            );
        }
    }

    #[test]
    fn features_are_reported() {
        let all = implemented();
        let find = |n: &str| {
            all.iter()
                .find(|m| m.0 == n)
                .unwrap_or_else(|| panic!("{n}"))
        };
        let nc = find("ietf-netconf");
        for f in [
            "writable-running",
            "candidate",
            "rollback-on-error",
            "validate",
            "startup",
            "xpath",
        ] {
            assert!(nc.3.iter().any(|x| x == f), "ietf-netconf feature {f}");
        }
        assert!(nc.3.iter().any(|x| x == "confirmed-commit"));
        assert!(!nc.3.iter().any(|x| x == "url"));
        assert_eq!(find("ietf-interfaces").3, ["pre-provisioning", "if-mib"]);
        assert!(all
            .iter()
            .any(|m| m.0 == "ietf-yang-library" && m.1.as_deref() == Some("2019-01-04")));
        let imports = import_only();
        assert!(imports.iter().any(|m| m.0 == "ietf-inet-types"));
    }

    #[test]
    fn every_source_is_in_the_context_at_its_revision() {
        let ctx = context();
        for s in sources() {
            let m = ctx
                .get_module(s.name, s.revision)
                .unwrap_or_else(|| panic!("{} not loaded", s.name));
            assert_eq!(m.revision(), s.revision);
            assert!(schema_text(s.name, s.revision).is_some());
        }
        assert!(schema_text("ietf-yang-schema-mount", None).is_some());
    }

    #[test]
    fn deviation_targets_match_the_module() {
        let text = schema_text("mldhb-deviations", None).unwrap();
        let imported: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("import "))
            .map(|l| l.trim_end_matches(" {").trim())
            .collect();
        let listed: Vec<&str> = deviations().iter().map(|d| d.0).collect();
        assert_eq!(imported, listed);
    }

    #[test]
    fn scenario1_device_a_validates() {
        parse_config(SCENARIO1_A).unwrap();
    }

    #[test]
    fn scenario4_device_a_validates() {
        parse_config(SCENARIO4_A).unwrap();
    }

    #[test]
    fn vrrp6_profile_requires_tracking() {
        let xml = SCENARIO1_A.replace("<track-vrrp6-vrid>1</track-vrrp6-vrid>", "");
        let err = parse_config(&xml).unwrap_err();
        assert!(
            format!("{err:?}").contains("track that VRRP6 group"),
            "{err:?}"
        );
    }

    #[test]
    fn etrunk_profile_interface_cannot_track_vrrp6() {
        let vrrp = r#"<ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip">
      <address><ip>2001:db8:1::1</ip><prefix-length>64</prefix-length></address>
      <vrrp xmlns="urn:ietf:params:xml:ns:yang:ietf-vrrp" xmlns:vrrp="urn:ietf:params:xml:ns:yang:ietf-vrrp">
        <vrrp-instance><vrid>1</vrid><version>vrrp:vrrp-v3</version>
          <virtual-ipv6-addresses><virtual-ipv6-address><ipv6-address>fe80::1</ipv6-address></virtual-ipv6-address></virtual-ipv6-addresses>
        </vrrp-instance>
      </vrrp>
    </ipv6>"#;
        let base = SCENARIO4_A.replace(
            r#"<ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip">
      <address><ip>2001:db8:1::1</ip><prefix-length>64</prefix-length></address>
    </ipv6>"#,
            vrrp,
        );
        parse_config(&base).unwrap();
        let xml = base.replace(
            "<enable>true</enable>\n    </mld>",
            "<enable>true</enable><track-vrrp6-vrid>1</track-vrrp6-vrid></mld>",
        );
        assert_ne!(xml, base);
        let err = parse_config(&xml).unwrap_err();
        assert!(
            format!("{err:?}").contains("cannot track a VRRP6"),
            "{err:?}"
        );
    }

    #[test]
    fn vrrp6_profile_must_name_existing_group() {
        let xml = SCENARIO1_A.replace("<vrrp6-id>1</vrrp6-id>", "<vrrp6-id>2</vrrp6-id>");
        assert!(parse_config(&xml).is_err());
    }

    #[test]
    fn deviated_nodes_are_rejected() {
        for node in [
            "<link-up-down-trap-enable>enabled</link-up-down-trap-enable>",
            "<ipv6 xmlns=\"urn:ietf:params:xml:ns:yang:ietf-ip\"><mtu>1500</mtu></ipv6>",
            "<ipv4 xmlns=\"urn:ietf:params:xml:ns:yang:ietf-ip\"><forwarding>true</forwarding></ipv4>",
        ] {
            let xml = format!(
                "<interfaces xmlns=\"{NS_IF}\" xmlns:ianaift=\"urn:ietf:params:xml:ns:yang:iana-if-type\">\
                 <interface><name>eth9</name><type>ianaift:ethernetCsmacd</type>{node}</interface>\
                 </interfaces>"
            );
            assert!(parse_config(&xml).is_err(), "{node} accepted");
        }
    }

    #[test]
    fn ranges_and_defaults() {
        let ctx = context();
        let leaf = |p: &str| ctx.find_path(p).unwrap_or_else(|e| panic!("{p}: {e:?}"));
        assert_eq!(
            leaf("/ietf-interfaces:interfaces/interface/mldhb-mld:mld/query-interval")
                .default_value_canonical(),
            Some("125")
        );
        assert_eq!(
            leaf("/mldhb-etrunk:lacp/e-trunk-priority").default_value_canonical(),
            Some("32768")
        );
        let bad_port = SCENARIO1_A.replace("<port>1025</port>", "<port>55536</port>");
        assert!(parse_config(&bad_port).is_err());
    }
}
