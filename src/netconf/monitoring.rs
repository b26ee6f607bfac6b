//! Server state for `<get>`: ietf-netconf-monitoring (RFC 6022) and the YANG library (RFC 8525,
//! with the RFC 7895 modules-state older clients read).

use super::Shared;
use crate::datastore::tree::{Node, NodeKey};
use crate::datastore::Datastore;
use crate::yang::date_and_time;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

const NCM: &str = "ietf-netconf-monitoring";
const YL: &str = "ietf-yang-library";

/// Builder helpers over a state subtree.
struct B<'a> {
    module: &'a str,
    node: &'a mut Node,
}

impl<'a> B<'a> {
    fn leaf(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.node
            .children
            .insert(NodeKey::new(self.module, name), Arc::new(Node::leaf(value)));
        self
    }

    fn leaf_list(&mut self, name: &str, value: &str) -> &mut Self {
        self.node.children.insert(
            NodeKey::with_id(self.module, name, vec![value.to_string()]),
            Arc::new(Node::leaf(value)),
        );
        self
    }

    fn child(&mut self, name: &str, id: Vec<String>) -> B<'_> {
        let module = self.module;
        let slot = self
            .node
            .children
            .entry(NodeKey::with_id(module, name, id))
            .or_default();
        B {
            module,
            node: Arc::make_mut(slot),
        }
    }
}

/// An implemented module: name, revision, namespace, enabled features.
type ModuleInfo = (String, Option<String>, String, Vec<String>);

/// The implemented modules, sorted by name.
fn implemented() -> &'static Vec<ModuleInfo> {
    static M: OnceLock<Vec<ModuleInfo>> = OnceLock::new();
    M.get_or_init(|| {
        let mut v = crate::yang::implemented();
        v.sort();
        v
    })
}

/// Identifies the current module set; changes whenever the schema does.
pub fn module_set_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        // FNV-1a over every module's name, revision, features and text.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: &[u8]| {
            for x in b {
                h ^= *x as u64;
                h = h.wrapping_mul(0x100_0000_01b3);
            }
        };
        for (name, rev, _, features) in implemented() {
            eat(name.as_bytes());
            eat(rev.as_deref().unwrap_or("").as_bytes());
            for f in features {
                eat(f.as_bytes());
            }
        }
        for s in crate::yang::sources() {
            eat(s.text.as_bytes());
        }
        format!("{h:016x}")
    })
}

/// Module capabilities for the YANG 1.0 modules (YANG 1.1 ones are announced only through
/// the YANG library, RFC 7950 §5.6.4).
pub fn yang10_module_capabilities() -> Vec<String> {
    let mut out = Vec::new();
    for (name, rev, ns, features) in implemented() {
        let Some(src) = crate::yang::sources().iter().find(|s| s.name == name) else {
            continue;
        };
        if src.text.contains("yang-version 1.1") {
            continue;
        }
        let mut cap = format!("{ns}?module={name}");
        if let Some(r) = rev {
            cap.push_str(&format!("&revision={r}"));
        }
        if !features.is_empty() {
            cap.push_str(&format!("&features={}", features.join(",")));
        }
        out.push(cap);
    }
    out
}

/// Adds the server's state to a `<get>` tree.
pub fn merge_state(shared: &Shared, tree: &mut Node) {
    netconf_state(shared, tree);
    yang_library(tree);
}

fn netconf_state(shared: &Shared, tree: &mut Node) {
    let mut root = B {
        module: NCM,
        node: tree,
    };
    let mut st = root.child("netconf-state", vec![]);
    {
        let mut caps = st.child("capabilities", vec![]);
        for c in super::capabilities() {
            caps.leaf_list("capability", &c);
        }
    }
    {
        let locks = shared.northbound().locks().clone();
        let mut dss = st.child("datastores", vec![]);
        for ds in Datastore::ALL {
            let mut d = dss.child("datastore", vec![ds.name().to_string()]);
            d.leaf("name", ds.name());
            if let Some((session, since)) = locks.get(&ds) {
                let mut l = d.child("locks", vec![]);
                let mut g = l.child("global-lock", vec![]);
                g.leaf("locked-by-session", session.to_string())
                    .leaf("locked-time", date_and_time(*since));
            }
        }
    }
    {
        let mut schemas = st.child("schemas", vec![]);
        for s in crate::yang::sources() {
            let rev = s.revision.unwrap_or("").to_string();
            let id = vec![
                s.name.to_string(),
                rev.clone(),
                "ietf-netconf-monitoring:yang".into(),
            ];
            let ns = namespace_in(s.text).unwrap_or_default();
            let mut e = schemas.child("schema", id);
            e.leaf("identifier", s.name)
                .leaf("version", rev)
                .leaf("format", "ietf-netconf-monitoring:yang")
                .leaf("namespace", ns)
                .leaf_list("location", "NETCONF");
        }
    }
    {
        let sessions: Vec<(u32, Arc<super::SessionInfo>)> = shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (*k, Arc::clone(v)))
            .collect();
        let mut ss = st.child("sessions", vec![]);
        for (id, info) in sessions {
            let mut s = ss.child("session", vec![id.to_string()]);
            s.leaf("session-id", id.to_string())
                .leaf("transport", "ietf-netconf-monitoring:netconf-ssh")
                .leaf("username", info.user.clone());
            if let Some(h) = &info.source_host {
                s.leaf("source-host", h.clone());
            }
            s.leaf("login-time", date_and_time(info.login_time))
                .leaf("in-rpcs", info.in_rpcs.load(Ordering::Relaxed).to_string())
                .leaf(
                    "in-bad-rpcs",
                    info.in_bad_rpcs.load(Ordering::Relaxed).to_string(),
                )
                .leaf(
                    "out-rpc-errors",
                    info.out_rpc_errors.load(Ordering::Relaxed).to_string(),
                )
                .leaf(
                    "out-notifications",
                    info.out_notifications.load(Ordering::Relaxed).to_string(),
                );
        }
    }
    {
        let c = &shared.stats;
        let mut s = st.child("statistics", vec![]);
        s.leaf("netconf-start-time", date_and_time(shared.start_time))
            .leaf(
                "in-bad-hellos",
                c.in_bad_hellos.load(Ordering::Relaxed).to_string(),
            )
            .leaf(
                "in-sessions",
                c.in_sessions.load(Ordering::Relaxed).to_string(),
            )
            .leaf(
                "dropped-sessions",
                c.dropped_sessions.load(Ordering::Relaxed).to_string(),
            )
            .leaf("in-rpcs", c.in_rpcs.load(Ordering::Relaxed).to_string())
            .leaf(
                "in-bad-rpcs",
                c.in_bad_rpcs.load(Ordering::Relaxed).to_string(),
            )
            .leaf(
                "out-rpc-errors",
                c.out_rpc_errors.load(Ordering::Relaxed).to_string(),
            )
            .leaf(
                "out-notifications",
                c.out_notifications.load(Ordering::Relaxed).to_string(),
            );
    }
}

/// The `namespace` statement of a module's text.
fn namespace_in(text: &str) -> Option<String> {
    let i = text
        .find("\n  namespace ")
        .or_else(|| text.find("namespace "))?;
    let rest = &text[i..];
    let start = rest.find('"')? + 1;
    let end = rest[start..].find('"')? + start;
    Some(rest[start..end].to_string())
}

fn yang_library(tree: &mut Node) {
    let mut root = B {
        module: YL,
        node: tree,
    };
    {
        let mut yl = root.child("yang-library", vec![]);
        {
            let mut set = yl.child("module-set", vec!["complete".into()]);
            set.leaf("name", "complete");
            for (name, rev, ns, features) in implemented() {
                let mut m = set.child("module", vec![name.clone()]);
                m.leaf("name", name.clone());
                if let Some(r) = rev {
                    m.leaf("revision", r.clone());
                }
                m.leaf("namespace", ns.clone());
                for f in features {
                    m.leaf_list("feature", f);
                }
            }
        }
        {
            let mut schema = yl.child("schema", vec!["complete".into()]);
            schema
                .leaf("name", "complete")
                .leaf_list("module-set", "complete");
        }
        for ds in [
            "ietf-datastores:running",
            "ietf-datastores:candidate",
            "ietf-datastores:startup",
            "ietf-datastores:operational",
        ] {
            let mut d = yl.child("datastore", vec![ds.to_string()]);
            d.leaf("name", ds).leaf("schema", "complete");
        }
        yl.leaf("content-id", module_set_id());
    }
    let mut ms = root.child("modules-state", vec![]);
    ms.leaf("module-set-id", module_set_id());
    for (name, rev, ns, features) in implemented() {
        let r = rev.clone().unwrap_or_default();
        let mut m = ms.child("module", vec![name.clone(), r.clone()]);
        m.leaf("name", name.clone())
            .leaf("revision", r)
            .leaf("namespace", ns.clone())
            .leaf("conformance-type", "implement");
        for f in features {
            m.leaf_list("feature", f);
        }
    }
}
