//! Conversions between data trees and XML: printing with schema order (list keys first) and
//! module-qualified identities.

use super::schema::{self, Kind, Schema};
use crate::datastore::tree::{Node, NodeKey};
use crate::netconf::xml::Element;

/// Prints the children of `node` (whose schema is `parent`, None at the top) as XML elements.
pub fn to_elements(node: &Node, parent: Option<&Schema>) -> Vec<Element> {
    let mut out = Vec::with_capacity(node.children.len());
    let mut cached: Option<(NodeKey, Schema)> = None;
    for (k, child) in &node.children {
        let schema = match &cached {
            Some((ck, s)) if ck.module == k.module && ck.name == k.name => s.clone(),
            _ => match schema::find_child(parent, &k.module, &k.name) {
                Some(s) => {
                    cached = Some((k.clone(), s.clone()));
                    s
                }
                None => continue,
            },
        };
        out.push(to_element(k, child, &schema));
    }
    out
}

/// Prints one node.
pub fn to_element(key: &NodeKey, node: &Node, schema: &Schema) -> Element {
    let ns = schema::namespace_of(&key.module).unwrap_or_default();
    let mut el = Element::new(ns, &key.name);
    match schema::kind(schema) {
        Kind::Leaf | Kind::LeafList => {
            let v = node.value.clone().unwrap_or_default();
            if let Some((m, _)) = v.split_once(':') {
                if let Some(mns) = schema::namespace_of(m) {
                    el.ns_decls.push((m.to_string(), mns.to_string()));
                }
            }
            el.text = v;
        }
        Kind::Any => {
            let v = node.value.clone().unwrap_or_default();
            match crate::netconf::xml::parse(format!("<x>{v}</x>").as_bytes()) {
                Ok(x) => el.children = x.children,
                Err(_) => el.text = v,
            }
        }
        Kind::List { keys } => {
            for k in &keys {
                if let Some((ck, c)) = node.children.iter().find(|(ck, _)| &ck.name == k) {
                    el.children.push(to_element(ck, c, &find_or(schema, ck)));
                }
            }
            let rest = to_elements(node, Some(schema));
            el.children.extend(
                rest.into_iter()
                    .filter(|c| !(c.ns == ns && keys.contains(&c.name))),
            );
        }
        Kind::Container => el.children = to_elements(node, Some(schema)),
    }
    el
}

fn find_or(parent: &Schema, key: &NodeKey) -> Schema {
    schema::find_child(Some(parent), &key.module, &key.name).unwrap_or_else(|| parent.clone())
}

/// The whole tree as one XML string of top-level siblings (the form libyang parses).
pub fn to_xml(root: &Node) -> String {
    let mut s = String::new();
    for e in to_elements(root, None) {
        e.write_xml(&mut s, "");
    }
    s
}
