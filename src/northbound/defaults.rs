//! :with-defaults (RFC 6243): how default values from the schema are reported. The datastores
//! hold what was set (basic mode `explicit`); the other modes transform a copy of the tree
//! before filtering and printing, so the default path costs nothing.

use crate::datastore::tree::{Node, NodeKey};
use crate::rpc_error::{ErrorTag, RpcError, RpcResult};
use crate::xml::Element;
use crate::yang::schema::{self, Schema};
use std::sync::Arc;
use yang3::schema::SchemaNodeKind;

/// Namespace of the `<with-defaults>` parameter (module ietf-netconf-with-defaults).
pub const NS_WITH_DEFAULTS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults";

/// The retrieval modes of RFC 6243 §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Explicit,
    ReportAll,
    ReportAllTagged,
    Trim,
}

impl Mode {
    /// The `<with-defaults>` parameter of an operation; `explicit` when absent.
    pub fn from_op(op: &Element) -> RpcResult<Mode> {
        let Some(p) = op.child(NS_WITH_DEFAULTS, "with-defaults") else {
            return Ok(Mode::Explicit);
        };
        match p.trimmed_text() {
            "explicit" => Ok(Mode::Explicit),
            "report-all" => Ok(Mode::ReportAll),
            "report-all-tagged" => Ok(Mode::ReportAllTagged),
            "trim" => Ok(Mode::Trim),
            other => Err(RpcError::protocol(
                ErrorTag::InvalidValue,
                format!("with-defaults mode '{other}' is not supported"),
            )
            .with_info("bad-element", "with-defaults")),
        }
    }

    /// Transforms `tree` for this mode; `config_only` for get-config (no state defaults).
    /// Report-all-tagged adds the defaults here; the printer tags them (see `convert`).
    pub fn apply(self, tree: &Arc<Node>, config_only: bool) -> Arc<Node> {
        match self {
            Mode::Explicit => Arc::clone(tree),
            Mode::ReportAll | Mode::ReportAllTagged => {
                let mut t = (**tree).clone();
                add_defaults(&mut t, &schema::top_level(), config_only);
                Arc::new(t)
            }
            Mode::Trim => {
                let mut t = (**tree).clone();
                trim(&mut t, None);
                Arc::new(t)
            }
        }
    }
}

/// The default of a leaf, if it has one.
pub fn leaf_default(s: &Schema) -> Option<&str> {
    if s.kind() != SchemaNodeKind::Leaf || !s.has_default() {
        return None;
    }
    s.default_value_canonical()
}

/// Data children reachable without a choice, and without a `when` condition: the nodes whose
/// defaults are in use whenever their parent exists.
fn unconditional_children(s: &Schema) -> Vec<Schema> {
    s.children()
        .filter(|c| {
            matches!(
                c.kind(),
                SchemaNodeKind::Container | SchemaNodeKind::List | SchemaNodeKind::Leaf
            ) && c.whens().next().is_none()
        })
        .collect()
}

fn add_defaults(node: &mut Node, children: &[Schema], config_only: bool) {
    for c in children {
        if config_only && !c.is_config() {
            continue;
        }
        let module = c.module().name().to_string();
        let key = NodeKey::new(&module, c.name());
        match c.kind() {
            SchemaNodeKind::Leaf => {
                if c.is_list_key() || node.children.contains_key(&key) {
                    continue;
                }
                if let Some(d) = leaf_default(c) {
                    node.children.insert(key, Arc::new(Node::leaf(d)));
                }
            }
            SchemaNodeKind::Container => {
                let grand = unconditional_children(c);
                match node.children.get_mut(&key) {
                    Some(existing) => add_defaults(Arc::make_mut(existing), &grand, config_only),
                    None if c.is_np_container() => {
                        let mut fresh = Node::default();
                        add_defaults(&mut fresh, &grand, config_only);
                        if !fresh.children.is_empty() {
                            node.children.insert(key, Arc::new(fresh));
                        }
                    }
                    None => {}
                }
            }
            SchemaNodeKind::List => {
                let grand = unconditional_children(c);
                let entries: Vec<NodeKey> = node
                    .children
                    .keys()
                    .filter(|k| k.module == module && k.name == c.name())
                    .cloned()
                    .collect();
                for k in entries {
                    if let Some(e) = node.children.get_mut(&k) {
                        add_defaults(Arc::make_mut(e), &grand, config_only);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Removes every leaf whose value is its default.
fn trim(node: &mut Node, parent: Option<&Schema>) {
    let keys: Vec<NodeKey> = node.children.keys().cloned().collect();
    for k in keys {
        let Some(s) = schema::find_child(parent, &k.module, &k.name) else {
            continue;
        };
        match s.kind() {
            SchemaNodeKind::Leaf => {
                let is_default = match (leaf_default(&s), &node.children[&k].value) {
                    (Some(d), Some(v)) => d == v,
                    _ => false,
                };
                if is_default && !s.is_list_key() {
                    node.children.remove(&k);
                }
            }
            SchemaNodeKind::Container | SchemaNodeKind::List => {
                if let Some(c) = node.children.get_mut(&k) {
                    trim(Arc::make_mut(c), Some(&s));
                }
            }
            _ => {}
        }
    }
}

thread_local! {
    static TAGGING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True while printing for report-all-tagged on this thread.
#[inline]
pub fn tagging() -> bool {
    TAGGING.with(|t| t.get())
}

/// Runs `f` with default-valued leaves tagged `wd:default="true"` when `on`.
pub fn with_tagging<T>(on: bool, f: impl FnOnce() -> T) -> T {
    if !on {
        return f();
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            TAGGING.with(|t| t.set(false));
        }
    }
    TAGGING.with(|t| t.set(true));
    let _reset = Reset;
    f()
}

/// True when a leaf's value is its schema default (the leaves report-all-tagged marks).
pub fn is_default_value(s: &Schema, value: &str) -> bool {
    leaf_default(s) == Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::northbound::convert;

    fn tree() -> Node {
        let xml = br#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type">
            <interface><name>a</name><type>t:ethernetCsmacd</type></interface>
            <interface><name>b</name><type>t:ethernetCsmacd</type><enabled>true</enabled></interface>
            <interface><name>c</name><type>t:ethernetCsmacd</type><enabled>false</enabled></interface>
          </interfaces></config>"#;
        crate::netconf::ops::inline_config(&crate::xml::parse(xml).unwrap()).unwrap()
    }

    fn enabled(t: &Node, name: &str) -> Option<String> {
        let path = [
            NodeKey::new("ietf-interfaces", "interfaces"),
            NodeKey::with_id("ietf-interfaces", "interface", vec![name.to_string()]),
            NodeKey::new("ietf-interfaces", "enabled"),
        ];
        t.get(&path).and_then(|n| n.value.clone())
    }

    #[test]
    fn modes_transform_the_tree() {
        let t = Arc::new(tree());
        assert!(Arc::ptr_eq(&Mode::Explicit.apply(&t, true), &t));
        let all = Mode::ReportAll.apply(&t, true);
        assert_eq!(enabled(&all, "a").as_deref(), Some("true"));
        assert_eq!(enabled(&all, "c").as_deref(), Some("false"));
        let trimmed = Mode::Trim.apply(&t, true);
        assert_eq!(enabled(&trimmed, "a"), None);
        assert_eq!(enabled(&trimmed, "b"), None);
        assert_eq!(enabled(&trimmed, "c").as_deref(), Some("false"));
    }

    #[test]
    fn both_printers_tag_the_same_leaves() {
        let t = Mode::ReportAllTagged.apply(&Arc::new(tree()), true);
        let (direct, via_elements) = with_tagging(true, || {
            let mut s = String::new();
            for e in convert::to_elements(&t, None) {
                e.write_xml(&mut s, "");
            }
            (convert::to_xml(&t), s)
        });
        assert_eq!(direct, via_elements);
        // a and b (set to the default) are tagged; c is not.
        assert_eq!(
            direct.matches("wd:default=\"true\">true</enabled>").count(),
            2
        );
        assert!(direct.contains("<enabled>false</enabled>"));
        assert!(!tagging());
        assert!(!convert::to_xml(&t).contains("wd:default"));
    }
}
