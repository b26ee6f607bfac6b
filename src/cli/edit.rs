//! Table paths made concrete: resolved path steps, values (identities with their namespace),
//! and the `<config>` and subtree-filter XML that carry them to the server.

use super::commands::{ns, Seg, Val};
use crate::netconf::NS_BASE;
use crate::xml::{Attr, Element};

/// A path step with its key values filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RSeg {
    pub ns: String,
    pub name: String,
    pub keys: Vec<(String, String)>,
}

/// A leaf value: text, or an identity (namespace + name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Ident { ns: String, name: String },
}

impl Value {
    /// A literal of the table: `prefix:name` with a known prefix is an identity.
    pub fn literal(l: &str) -> Value {
        if let Some((p, n)) = l.split_once(':') {
            if let Some((_, ns)) = super::commands::PREFIXES.iter().find(|(q, _)| *q == p) {
                return Value::Ident {
                    ns: ns.to_string(),
                    name: n.to_string(),
                };
            }
        }
        Value::Text(l.to_string())
    }

    /// The value of a data leaf (identities keep the namespace of their prefix).
    pub fn of_leaf(e: &Element) -> Value {
        let t = e.trimmed_text();
        match (&e.text_ns, t.split_once(':')) {
            (Some(ns), Some((_, name))) => Value::Ident {
                ns: ns.clone(),
                name: name.to_string(),
            },
            _ => Value::Text(t.to_string()),
        }
    }

    /// The value as plain text (identities by name only).
    pub fn text(&self) -> &str {
        match self {
            Value::Text(t) => t,
            Value::Ident { name, .. } => name,
        }
    }
}

/// The YANG values of each pattern token (keywords as themselves).
pub type Parts = Vec<Vec<String>>;

/// The value a table `Val` stands for.
pub fn value_of(v: &Val, parts: &Parts) -> Option<Value> {
    match v {
        Val::Lit(l) => Some(Value::literal(l)),
        Val::Arg(n) => parts.get(*n)?.first().cloned().map(Value::Text),
        Val::Part(n, k) => parts.get(*n)?.get(*k).cloned().map(Value::Text),
    }
}

/// Resolves table path steps with the parameters of a command.
pub fn resolve(segs: &[Seg], parts: &Parts) -> Option<Vec<RSeg>> {
    segs.iter()
        .map(|s| {
            Some(RSeg {
                ns: ns(s.prefix).to_string(),
                name: s.name.to_string(),
                keys: s
                    .keys
                    .iter()
                    .map(|(k, v)| Some((k.to_string(), value_of(v, parts)?.text().to_string())))
                    .collect::<Option<Vec<_>>>()?,
            })
        })
        .collect()
}

/// One node an edit touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub path: Vec<RSeg>,
    pub value: Option<Value>,
    /// `nc:operation` on the last node (`None`: the default operation).
    pub op: Option<&'static str>,
}

fn prefix_for(ns: &str) -> &str {
    super::commands::PREFIXES
        .iter()
        .find(|(_, n)| *n == ns)
        .map(|(p, _)| *p)
        .unwrap_or("v")
}

fn step<'a>(parent: &'a mut Element, s: &RSeg) -> &'a mut Element {
    let pos = parent.children.iter().position(|c| {
        c.ns == s.ns
            && c.name == s.name
            && s.keys.iter().all(|(k, v)| {
                c.child(&s.ns, k)
                    .is_some_and(|kc| kc.trimmed_text() == v.as_str())
            })
    });
    let i = match pos {
        Some(i) => i,
        None => {
            let mut e = Element::new(&s.ns, &s.name);
            for (k, v) in &s.keys {
                e.push(Element::with_text(&s.ns, k, v.clone()));
            }
            parent.children.push(e);
            parent.children.len() - 1
        }
    };
    &mut parent.children[i]
}

fn set_value(e: &mut Element, v: &Value) {
    match v {
        Value::Text(t) => e.text = t.clone(),
        Value::Ident { ns, name } => {
            let p = prefix_for(ns).to_string();
            e.text = format!("{p}:{name}");
            e.ns_decls.push((p, ns.clone()));
        }
    }
}

/// The `<config>` element of an edit-config holding `items`.
pub fn config_xml(items: &[Item]) -> Element {
    let mut root = Element::new(NS_BASE, "config");
    for it in items {
        let mut cur = &mut root;
        for s in &it.path {
            cur = step(cur, s);
        }
        if let Some(v) = &it.value {
            set_value(cur, v);
        }
        if let Some(op) = it.op {
            cur.attrs.push(Attr {
                ns: NS_BASE.to_string(),
                name: "operation".into(),
                value: op.to_string(),
            });
        }
    }
    root
}

/// A subtree filter selecting the node at `path` (its whole subtree).
pub fn filter_xml(path: &[RSeg]) -> Element {
    let mut root = Element::new(NS_BASE, "filter");
    root.attrs.push(Attr {
        ns: String::new(),
        name: "type".into(),
        value: "subtree".into(),
    });
    let mut cur = &mut root;
    for s in path {
        cur = step(cur, s);
    }
    root
}

/// The data node at `path` under `data`.
pub fn find<'a>(data: &'a Element, path: &[RSeg]) -> Option<&'a Element> {
    let mut cur = data;
    for s in path {
        cur = cur.children.iter().find(|c| {
            c.ns == s.ns
                && c.name == s.name
                && s.keys.iter().all(|(k, v)| {
                    c.child(&s.ns, k)
                        .is_some_and(|kc| kc.trimmed_text() == v.as_str())
                })
        })?;
    }
    Some(cur)
}

/// An `<edit-config>` of the candidate (validation deferred to commit).
pub fn edit_config(items: &[Item], default_op: &str) -> String {
    format!(
        "<edit-config><target><candidate/></target><default-operation>{default_op}\
         </default-operation><test-option>set</test-option>{}</edit-config>",
        config_xml(items).to_xml()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::commands::parse_path;

    #[test]
    fn items_merge_into_one_tree() {
        let parts: Parts = vec![
            vec!["vrrp6".into()],
            vec!["vrid".into()],
            vec!["1".into()],
            vec!["priority".into()],
            vec!["200".into()],
        ];
        let (p, v) = parse_path("ip:ipv6/vrrp:vrrp/vrrp:vrrp-instance[vrid=$2]/vrrp:priority=$4");
        let mut path = resolve(&p, &parts).unwrap();
        let leaf = Item {
            path: path.clone(),
            value: value_of(&v.unwrap(), &parts),
            op: None,
        };
        path.pop();
        path.push(RSeg {
            ns: ns("vrrp").into(),
            name: "version".into(),
            keys: vec![],
        });
        let version = Item {
            path,
            value: Some(Value::literal("vrrp:vrrp-v3")),
            op: None,
        };
        let xml = config_xml(&[leaf, version]).to_xml();
        assert_eq!(xml.matches("<vrrp-instance").count(), 1, "{xml}");
        assert!(
            xml.contains("<vrid>1</vrid><priority>200</priority>"),
            "{xml}"
        );
        assert!(xml.contains("xmlns:vrrp=\"urn:ietf:params:xml:ns:yang:ietf-vrrp\">vrrp:vrrp-v3"));
        let back = crate::xml::parse(xml.as_bytes()).unwrap();
        let inst = find(
            &back,
            &resolve(
                &parse_path("ip:ipv6/vrrp:vrrp/vrrp:vrrp-instance[vrid=1]").0,
                &parts,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            Value::of_leaf(inst.child(ns("vrrp"), "version").unwrap()),
            Value::literal("vrrp:vrrp-v3")
        );
    }
}
