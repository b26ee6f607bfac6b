//! edit-config semantics (RFC 6241 §7.2) applied to a data tree: merge, replace, create, delete, remove.

use crate::datastore::tree::{Node, NodeKey};
use crate::rpc_error::{ErrorTag, ErrorType, RpcError};
use crate::xml::Element;
use crate::xml::NS_BASE;
use crate::yang::schema::{self, Kind, Schema};
use std::sync::Arc;

/// An edit operation on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Merge,
    Replace,
    Create,
    Delete,
    Remove,
    None,
}

impl Operation {
    pub fn parse(s: &str) -> Option<Operation> {
        Some(match s {
            "merge" => Operation::Merge,
            "replace" => Operation::Replace,
            "create" => Operation::Create,
            "delete" => Operation::Delete,
            "remove" => Operation::Remove,
            "none" => Operation::None,
            _ => return None,
        })
    }
}

/// Applies the children of `config` to `target`. With `continue_on_error` every valid edit is
/// applied and every error returned; otherwise the first error stops the edit (the caller then
/// discards `target`).
pub fn apply(
    target: &mut Node,
    config: &Element,
    default_op: Operation,
    continue_on_error: bool,
) -> Vec<RpcError> {
    let mut errors = Vec::new();
    let mut ctx = EditCtx {
        errors: &mut errors,
        continue_on_error,
    };
    ctx.children(target, None, config, default_op, "");
    errors
}

struct EditCtx<'e> {
    errors: &'e mut Vec<RpcError>,
    continue_on_error: bool,
}

/// Instance path segment with module-name prefix.
fn segment(schema: &Schema, id: &[String], keys: &[String]) -> String {
    let m = schema.module().name().to_string();
    let mut s = format!("/{m}:{}", schema.name());
    for (k, v) in keys.iter().zip(id) {
        s.push_str(&format!("[{m}:{k}='{v}']"));
    }
    s
}

impl EditCtx<'_> {
    fn stop(&self) -> bool {
        !self.continue_on_error && !self.errors.is_empty()
    }

    fn children(
        &mut self,
        target: &mut Node,
        parent: Option<&Schema>,
        el: &Element,
        op: Operation,
        path: &str,
    ) {
        for child in &el.children {
            if self.stop() {
                return;
            }
            self.element(target, parent, child, op, path);
        }
    }

    fn element(
        &mut self,
        target: &mut Node,
        parent: Option<&Schema>,
        el: &Element,
        inherited: Operation,
        path: &str,
    ) {
        let Some(schema) = schema::find_child_ns(parent, &el.ns, &el.name) else {
            let err = if schema::module_of(&el.ns).is_none() {
                RpcError::application(
                    ErrorTag::UnknownNamespace,
                    format!("unknown namespace '{}' for element <{}>", el.ns, el.name),
                )
                .with_info("bad-element", el.name.clone())
                .with_info("bad-namespace", el.ns.clone())
            } else {
                RpcError::unknown_element(
                    ErrorType::Application,
                    &el.name,
                    format!("unknown element <{}> in namespace '{}'", el.name, el.ns),
                )
            };
            // A top-level element has no parent to point at.
            self.errors.push(if path.is_empty() {
                err
            } else {
                err.with_path(path.to_string())
            });
            return;
        };
        if !schema.is_config() {
            self.errors.push(
                RpcError::application(
                    ErrorTag::InvalidValue,
                    format!("<{}> is state data and cannot be configured", el.name),
                )
                .with_path(format!("{path}{}", segment(&schema, &[], &[]))),
            );
            return;
        }
        let op = match el.attr(NS_BASE, "operation") {
            None => inherited,
            Some(v) => match Operation::parse(v) {
                Some(o) => o,
                None => {
                    self.errors.push(
                        RpcError::protocol(
                            ErrorTag::BadAttribute,
                            format!("invalid operation '{v}'"),
                        )
                        .with_info("bad-attribute", "operation")
                        .with_info("bad-element", el.name.clone()),
                    );
                    return;
                }
            },
        };
        let module = schema.module().name().to_string();
        let kind = schema::kind(&schema);
        let (id, keys) = match &kind {
            Kind::List { keys } => {
                let mut id = Vec::with_capacity(keys.len());
                for k in keys {
                    match el.children.iter().find(|c| &c.name == k) {
                        Some(kc) => id.push(kc.trimmed_text().to_string()),
                        None => {
                            self.errors.push(
                                RpcError::missing_element(ErrorType::Protocol, k)
                                    .with_path(format!("{path}{}", segment(&schema, &[], &[]))),
                            );
                            return;
                        }
                    }
                }
                (id, keys.clone())
            }
            Kind::LeafList => (vec![el.text.trim().to_string()], Vec::new()),
            _ => (Vec::new(), Vec::new()),
        };
        let node_path = format!("{path}{}", segment(&schema, &id, &keys));
        let key = NodeKey::with_id(&module, schema.name(), id);
        let exists = target.children.contains_key(&key);
        match op {
            Operation::Create if exists => {
                self.errors.push(
                    RpcError::application(
                        ErrorTag::DataExists,
                        format!("<{}> already exists", el.name),
                    )
                    .with_path(node_path),
                );
                return;
            }
            Operation::Delete if !exists => {
                self.errors.push(
                    RpcError::application(
                        ErrorTag::DataMissing,
                        format!("<{}> does not exist", el.name),
                    )
                    .with_path(node_path),
                );
                return;
            }
            Operation::Delete | Operation::Remove => {
                target.children.remove(&key);
                return;
            }
            _ => {}
        }
        match kind {
            Kind::Leaf | Kind::LeafList | Kind::Any => {
                if op == Operation::None {
                    return;
                }
                let value = if *kind == Kind::Any {
                    el.children.iter().map(|c| c.to_xml()).collect::<String>()
                } else {
                    leaf_value(&schema, el)
                };
                // With continue-on-error a bad value must fail its own edit, not the whole
                // result at validation; otherwise types are checked when the result is validated.
                if self.continue_on_error && *kind != Kind::Any {
                    if let Err(e) = check_value(&node_path, &value) {
                        self.errors.push(e);
                        return;
                    }
                }
                target.children.insert(key, Arc::new(Node::leaf(value)));
            }
            Kind::Container | Kind::List { .. } => {
                if op == Operation::Replace || !exists {
                    target
                        .children
                        .insert(key.clone(), Arc::new(Node::default()));
                }
                let Some(slot) = target.children.get_mut(&key) else {
                    return;
                };
                let node = Arc::make_mut(slot);
                // Key leaves are part of the entry itself.
                for (k, v) in keys.iter().zip(&key.id) {
                    node.children
                        .insert(NodeKey::new(&module, k), Arc::new(Node::leaf(v.clone())));
                }
                let child_op = if op == Operation::Create || op == Operation::Replace {
                    Operation::Merge
                } else {
                    op
                };
                for c in &el.children {
                    if self.stop() {
                        return;
                    }
                    if keys.contains(&c.name) && c.ns == el.ns {
                        if let Some(o) = c.attr(NS_BASE, "operation") {
                            if matches!(o, "delete" | "remove" | "replace" | "create") {
                                self.errors.push(
                                    RpcError::protocol(
                                        ErrorTag::BadAttribute,
                                        format!(
                                            "operation '{o}' is not allowed on list key <{}>",
                                            c.name
                                        ),
                                    )
                                    .with_info("bad-attribute", "operation")
                                    .with_info("bad-element", c.name.clone()),
                                );
                            }
                        }
                        continue;
                    }
                    self.element(node, Some(&schema), c, child_op, &node_path);
                }
                if op == Operation::None && !exists && node.children.len() <= keys.len() {
                    target.children.remove(&key);
                }
            }
        }
    }
}

/// Checks a leaf value against its type (ranges, patterns, enums, identities) in isolation.
fn check_value(path: &str, value: &str) -> Result<(), RpcError> {
    let invalid = || {
        RpcError::application(ErrorTag::InvalidValue, format!("invalid value '{value}'"))
            .with_path(path.to_string())
    };
    if value.contains('\0') {
        return Err(invalid());
    }
    if path.contains('\0') {
        // Not a path libyang can take; validation of the result reports it.
        return Ok(());
    }
    let mut tree = yang3::data::DataTree::new(crate::yang::context());
    tree.new_path(path, Some(value), false)
        .map(|_| ())
        .map_err(|e| {
            let mut err = super::validate::map_error(e);
            err.path = Some(path.to_string());
            err
        })
}

/// The stored form of a rule path: every prefix becomes its module name, whether the client
/// used a module name, a prefix declared on the `<path>` element or a module's YANG prefix.
/// A prefix none of these resolve is kept (validation then refuses the value).
pub fn store_path(text: &str, decls: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut quote = None;
    let mut word = String::new();
    for c in text.chars() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
                continue;
            }
            None if c == '\'' || c == '"' => {
                out.push_str(&word);
                word.clear();
                out.push(c);
                quote = Some(c);
                continue;
            }
            None => {}
        }
        if c.is_alphanumeric() || matches!(c, '_' | '-' | '.') {
            word.push(c);
            continue;
        }
        if c == ':' && !word.is_empty() {
            let module = if schema::namespace_of(&word).is_some() {
                Some(word.clone())
            } else if let Some((_, ns)) = decls.iter().rev().find(|(p, _)| *p == word) {
                schema::module_of(ns).map(str::to_string)
            } else {
                crate::yang::schema::module_by_prefix(&word)
            };
            out.push_str(module.as_deref().unwrap_or(&word));
        } else {
            out.push_str(&word);
        }
        word.clear();
        out.push(c);
    }
    out.push_str(&word);
    out
}

/// The stored form of a leaf's text: identity values carry their module name as prefix
/// (`iana-if-type:ethernetCsmacd`), whatever prefix the client bound.
pub fn leaf_value(schema: &Schema, el: &Element) -> String {
    let text = el.text.trim();
    if schema.name() == "path" && schema.module().name() == "ietf-netconf-acm" {
        return store_path(text, &el.ns_decls);
    }
    if let (Some(ns), Some((_, local))) = (&el.text_ns, text.split_once(':')) {
        let is_identity = schema.leaf_type().is_some_and(|t| {
            matches!(
                t.base_type(),
                yang3::schema::DataValueType::IdentityRef | yang3::schema::DataValueType::Union
            )
        });
        if is_identity {
            if let Some(m) = schema::module_of(ns) {
                return format!("{m}:{local}");
            }
        }
    }
    text.to_string()
}

/// Merges the `<config>` document `xml` into `tree`; panics on a parse or edit error.
#[cfg(test)]
pub(crate) fn merge_config(tree: &mut Node, xml: &str) {
    let el = crate::xml::parse(xml.as_bytes()).unwrap();
    let errs = apply(tree, &el, Operation::Merge, false);
    assert!(errs.is_empty(), "{errs:?}");
}

/// The tree that the `<config>` document `xml` makes when merged into an empty one.
#[cfg(test)]
pub(crate) fn config_tree(xml: &str) -> Node {
    let mut t = Node::default();
    merge_config(&mut t, xml);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    const IF: &str = "urn:ietf:params:xml:ns:yang:ietf-interfaces";

    fn cfg(body: &str) -> Element {
        parse(
            format!(
                "<config xmlns=\"{NS_BASE}\" xmlns:nc=\"{NS_BASE}\" xmlns:ianaift=\"urn:ietf:params:xml:ns:yang:iana-if-type\"><interfaces xmlns=\"{IF}\">{body}</interfaces></config>"
            )
            .as_bytes(),
        )
        .unwrap()
    }

    fn iface(name: &str, extra: &str) -> String {
        format!("<interface{extra}><name>{name}</name><type>ianaift:ethernetCsmacd</type><description>d-{name}</description></interface>")
    }

    fn descr(tree: &Node, name: &str) -> Option<String> {
        tree.get(&[
            NodeKey::new("ietf-interfaces", "interfaces"),
            NodeKey::with_id("ietf-interfaces", "interface", vec![name.into()]),
            NodeKey::new("ietf-interfaces", "description"),
        ])
        .and_then(|n| n.value.clone())
    }

    #[test]
    fn merge_create_delete_remove() {
        let mut t = Node::default();
        assert!(apply(&mut t, &cfg(&iface("eth0", "")), Operation::Merge, false).is_empty());
        assert_eq!(descr(&t, "eth0").as_deref(), Some("d-eth0"));
        let errs = apply(
            &mut t,
            &cfg(&iface("eth0", " nc:operation=\"create\"")),
            Operation::Merge,
            false,
        );
        assert_eq!(errs[0].tag, ErrorTag::DataExists);
        assert_eq!(
            errs[0].path.as_deref(),
            Some("/ietf-interfaces:interfaces/ietf-interfaces:interface[ietf-interfaces:name='eth0']")
        );
        let del = cfg("<interface nc:operation=\"delete\"><name>eth9</name></interface>");
        assert_eq!(
            apply(&mut t, &del, Operation::Merge, false)[0].tag,
            ErrorTag::DataMissing
        );
        let rem = cfg("<interface nc:operation=\"remove\"><name>eth9</name></interface>");
        assert!(apply(&mut t, &rem, Operation::Merge, false).is_empty());
        let del = cfg("<interface nc:operation=\"delete\"><name>eth0</name></interface>");
        assert!(apply(&mut t, &del, Operation::Merge, false).is_empty());
        assert_eq!(descr(&t, "eth0"), None);
    }

    #[test]
    fn replace_drops_unlisted_children() {
        let mut t = Node::default();
        apply(&mut t, &cfg(&iface("eth0", "")), Operation::Merge, false);
        let r = cfg("<interface nc:operation=\"replace\"><name>eth0</name><type>ianaift:ethernetCsmacd</type></interface>");
        assert!(apply(&mut t, &r, Operation::Merge, false).is_empty());
        assert_eq!(descr(&t, "eth0"), None);
    }

    #[test]
    fn unknown_elements_and_missing_keys() {
        let mut t = Node::default();
        let e = apply(&mut t, &cfg("<bogus/>"), Operation::Merge, false);
        assert_eq!(e[0].tag, ErrorTag::UnknownElement);
        let e = apply(
            &mut t,
            &cfg("<interface><type>x</type></interface>"),
            Operation::Merge,
            false,
        );
        assert_eq!(e[0].tag, ErrorTag::MissingElement);
    }

    #[test]
    fn unknown_namespace_names_element_and_namespace() {
        let mut t = Node::default();
        let c = parse(
            format!("<config xmlns=\"{NS_BASE}\"><x xmlns=\"urn:nope\"/></config>").as_bytes(),
        )
        .unwrap();
        let e = apply(&mut t, &c, Operation::Merge, false);
        assert_eq!(e[0].tag, ErrorTag::UnknownNamespace);
        assert_eq!(e[0].path, None);
        let info: Vec<(&str, &str)> = e[0]
            .info
            .iter()
            .map(|i| (i.name.as_str(), i.text.as_str()))
            .collect();
        assert_eq!(info, [("bad-element", "x"), ("bad-namespace", "urn:nope")]);
    }

    #[test]
    fn continue_on_error_applies_the_valid_edits() {
        let mut t = Node::default();
        let body = format!("{}<bogus/>{}", iface("a", ""), iface("b", ""));
        let e = apply(&mut t, &cfg(&body), Operation::Merge, true);
        assert_eq!(e.len(), 1);
        assert!(descr(&t, "a").is_some() && descr(&t, "b").is_some());
    }

    #[test]
    fn continue_on_error_refuses_a_bad_value_alone() {
        let mut t = Node::default();
        let body = format!(
            "{}<interface><name>b</name><enabled>maybe</enabled></interface>",
            iface("a", "")
        );
        let e = apply(&mut t, &cfg(&body), Operation::Merge, true);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].tag, ErrorTag::InvalidValue);
        assert_eq!(
            e[0].path.as_deref(),
            Some("/ietf-interfaces:interfaces/ietf-interfaces:interface[ietf-interfaces:name='b']/ietf-interfaces:enabled")
        );
        assert!(descr(&t, "a").is_some());
        let enabled = t.get(&[
            NodeKey::new("ietf-interfaces", "interfaces"),
            NodeKey::with_id("ietf-interfaces", "interface", vec!["b".into()]),
            NodeKey::new("ietf-interfaces", "enabled"),
        ]);
        assert!(enabled.is_none());
    }

    #[test]
    fn none_does_not_create_parents() {
        let mut t = Node::default();
        let body = "<interface><name>x</name></interface>";
        assert!(apply(&mut t, &cfg(body), Operation::None, false).is_empty());
        assert!(t.children.is_empty());
    }
}
