//! Conversions between data trees and XML: printing with schema order (list keys first) and
//! module-qualified identities.

use super::defaults;
use crate::datastore::tree::{Node, NodeKey};
use crate::xml::Element;
use crate::yang::schema::{self, Kind, Schema};

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
            for (m, mns) in value_prefixes(&v) {
                el.ns_decls.push((m.to_string(), mns.to_string()));
            }
            if defaults::tagging() && defaults::is_default_value(schema, &v) {
                el.attrs.push(crate::xml::Attr {
                    ns: crate::xml::NS_WITH_DEFAULTS_MD.to_string(),
                    name: "default".to_string(),
                    value: "true".to_string(),
                });
            }
            el.text = v;
        }
        Kind::Any => {
            let v = node.value.clone().unwrap_or_default();
            match crate::xml::parse(format!("<x>{v}</x>").as_bytes()) {
                Ok(x) => el.children = x.children,
                Err(_) => el.text = v,
            }
        }
        Kind::List { keys } => {
            for k in keys {
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

/// The module prefixes a stored value uses, with their namespaces: the prefix of an identity
/// (`module:name`), or every prefix of an absolute path (`/m:a/m:b[m:k='v']`, NACM rule paths).
fn value_prefixes(v: &str) -> Vec<(&str, &'static str)> {
    if !v.starts_with('/') {
        return v
            .split_once(':')
            .and_then(|(m, _)| Some((m, schema::namespace_of(m)?)))
            .into_iter()
            .collect();
    }
    let mut out: Vec<(&str, &'static str)> = Vec::new();
    let mut quote = None;
    let mut start = None;
    for (i, c) in v.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == ':' => {
                if let Some(s) = start {
                    let m = &v[s..i];
                    if let Some(ns) = schema::namespace_of(m) {
                        if !out.iter().any(|(p, _)| *p == m) {
                            out.push((m, ns));
                        }
                    }
                }
            }
            None => {}
        }
        if quote.is_none() && (c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            start.get_or_insert(i);
        } else {
            start = None;
        }
    }
    out
}

fn find_or(parent: &Schema, key: &NodeKey) -> Schema {
    schema::find_child_key(Some(parent), key).unwrap_or_else(|| parent.clone())
}

/// The whole tree as one XML string of top-level siblings (the form libyang parses).
pub fn to_xml(root: &Node) -> String {
    // Start from the size of the last print: large datastores are printed again and again.
    static LAST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(4096);
    let hint = LAST.load(std::sync::atomic::Ordering::Relaxed);
    let mut s = String::with_capacity(hint + hint / 8);
    write_children(root, None, "", &mut s);
    LAST.store(s.len(), std::sync::atomic::Ordering::Relaxed);
    s
}

/// Prints the children of `node` straight into `out` (no intermediate elements).
pub fn write_children(node: &Node, parent: Option<&Schema>, parent_ns: &str, out: &mut String) {
    let mut cached: Option<(NodeKey, Schema)> = None;
    for (k, child) in node.children.iter() {
        let schema = match &cached {
            Some((ck, s)) if ck.module == k.module && ck.name == k.name => s.clone(),
            _ => match schema::find_child_key(parent, k) {
                Some(s) => {
                    if !k.id.is_empty() {
                        cached = Some((k.clone(), s.clone()));
                    }
                    s
                }
                None => continue,
            },
        };
        write_node(k, child, &schema, parent_ns, out);
    }
}

fn open_tag(name: &str, ns: &str, parent_ns: &str, out: &mut String) {
    out.push('<');
    out.push_str(name);
    if ns != parent_ns {
        out.push_str(" xmlns=\"");
        out.push_str(&crate::xml::escape_attr(ns));
        out.push('"');
    }
}

/// Prints one node straight into `out`.
pub fn write_node(key: &NodeKey, node: &Node, schema: &Schema, parent_ns: &str, out: &mut String) {
    crate::datastore::work::yang_nodes(1);
    let ns = schema::namespace_of(&key.module).unwrap_or_default();
    match schema::kind(schema) {
        Kind::Leaf | Kind::LeafList => {
            open_tag(&key.name, ns, parent_ns, out);
            let v = node.value.as_deref().unwrap_or_default();
            for (m, mns) in value_prefixes(v) {
                out.push_str(" xmlns:");
                out.push_str(m);
                out.push_str("=\"");
                out.push_str(mns);
                out.push('"');
            }
            if defaults::tagging() && defaults::is_default_value(schema, v) {
                out.push_str(" xmlns:wd=\"");
                out.push_str(crate::xml::NS_WITH_DEFAULTS_MD);
                out.push_str("\" wd:default=\"true\"");
            }
            if v.is_empty() {
                out.push_str("/>");
                return;
            }
            out.push('>');
            crate::xml::push_escaped(out, v);
        }
        Kind::Any => {
            let el = to_element(key, node, schema);
            el.write_xml(out, parent_ns);
            return;
        }
        Kind::List { keys } => {
            open_tag(&key.name, ns, parent_ns, out);
            out.push('>');
            // Keys first, in schema order; then the rest.
            for k in keys {
                let kk = NodeKey::new(&key.module, k);
                if let Some(c) = node.children.get(&kk) {
                    write_node(&kk, c, &find_or(schema, &kk), ns, out);
                }
            }
            let mut cached: Option<(NodeKey, Schema)> = None;
            for (ck, c) in node.children.iter() {
                if ck.id.is_empty() && ck.module == key.module && keys.contains(&ck.name) {
                    continue;
                }
                let s = match &cached {
                    Some((pk, s)) if pk.module == ck.module && pk.name == ck.name => s.clone(),
                    _ => match schema::find_child_key(Some(schema), ck) {
                        Some(s) => {
                            if !ck.id.is_empty() {
                                cached = Some((ck.clone(), s.clone()));
                            }
                            s
                        }
                        None => continue,
                    },
                };
                write_node(ck, c, &s, ns, out);
            }
        }
        Kind::Container => {
            open_tag(&key.name, ns, parent_ns, out);
            out.push('>');
            write_children(node, Some(schema), ns, out);
        }
    }
    out.push_str("</");
    out.push_str(&key.name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::northbound::edit::{apply, Operation};
    use crate::xml::parse;

    #[test]
    fn direct_writer_matches_element_printer() {
        let cfg = parse(br#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
          <interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type">
            <interface><name>eth1</name><type>t:ethernetCsmacd</type><description>a &amp; b</description>
              <ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip"><address><ip>2001:db8:1::1</ip><prefix-length>64</prefix-length></address></ipv6>
            </interface>
          </interfaces></config>"#).unwrap();
        let mut t = Node::default();
        assert!(apply(&mut t, &cfg, Operation::Merge, false).is_empty());
        let mut via_elements = String::new();
        for e in to_elements(&t, None) {
            e.write_xml(&mut via_elements, "");
        }
        assert_eq!(to_xml(&t), via_elements);
        crate::northbound::validate::validate_xml(&to_xml(&t)).unwrap();
    }
}
