//! Schema look-ups on the compiled libyang context: children by namespace and name, node kinds.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use yang3::schema::{SchemaNode, SchemaNodeKind};

/// What a data node is, as far as editing and printing need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Container,
    List { keys: Vec<String> },
    Leaf,
    LeafList,
    Any,
}

/// A schema node of the global context.
pub type Schema = SchemaNode<'static>;

struct Modules {
    ns_by_name: HashMap<String, String>,
    name_by_ns: HashMap<String, String>,
}

fn modules() -> &'static Modules {
    static M: OnceLock<Modules> = OnceLock::new();
    M.get_or_init(|| {
        let ctx = crate::yang::context();
        let mut m = Modules {
            ns_by_name: HashMap::new(),
            name_by_ns: HashMap::new(),
        };
        for module in ctx.modules(false) {
            if module.is_implemented() {
                m.ns_by_name
                    .insert(module.name().to_string(), module.namespace().to_string());
                m.name_by_ns
                    .insert(module.namespace().to_string(), module.name().to_string());
            }
        }
        m
    })
}

/// Namespace of an implemented module.
pub fn namespace_of(module: &str) -> Option<&'static str> {
    modules().ns_by_name.get(module).map(String::as_str)
}

/// Name of the implemented module with this namespace.
pub fn module_of(ns: &str) -> Option<&'static str> {
    modules().name_by_ns.get(ns).map(String::as_str)
}

/// The kind of a schema node (cached per node; the cache is bounded by the schema's size).
pub fn kind(s: &Schema) -> &'static Kind {
    static KINDS: OnceLock<RwLock<HashMap<usize, &'static Kind>>> = OnceLock::new();
    let cache = KINDS.get_or_init(Default::default);
    let id = s.as_raw() as usize;
    if let Some(k) = cache.read().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return k;
    }
    let k: &'static Kind = Box::leak(Box::new(compute_kind(s)));
    cache
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, k);
    k
}

fn compute_kind(s: &Schema) -> Kind {
    match s.kind() {
        SchemaNodeKind::Container => Kind::Container,
        SchemaNodeKind::List => Kind::List {
            keys: s.list_keys().map(|k| k.name().to_string()).collect(),
        },
        SchemaNodeKind::Leaf => Kind::Leaf,
        SchemaNodeKind::LeafList => Kind::LeafList,
        _ => Kind::Any,
    }
}

/// Data children of a node, looking through choices and cases.
pub fn data_children(s: &Schema) -> Vec<Schema> {
    let mut out = Vec::new();
    push_data(s.children(), &mut out);
    out
}

fn push_data(iter: impl Iterator<Item = Schema>, out: &mut Vec<Schema>) {
    for c in iter {
        match c.kind() {
            SchemaNodeKind::Choice | SchemaNodeKind::Case => push_data(c.children(), out),
            SchemaNodeKind::Action | SchemaNodeKind::Notification | SchemaNodeKind::Rpc => {}
            _ => out.push(c),
        }
    }
}

/// Top-level data nodes of every implemented module.
pub fn top_level() -> Vec<Schema> {
    let ctx = crate::yang::context();
    let mut out = Vec::new();
    for m in ctx.modules(false) {
        if m.is_implemented() {
            push_data(m.data(), &mut out);
        }
    }
    out
}

/// Data children of one parent, by module then name.
type ChildIndex = HashMap<String, HashMap<String, Schema>>;

fn child_index(parent: Option<&Schema>) -> &'static ChildIndex {
    static INDEX: OnceLock<RwLock<HashMap<usize, &'static ChildIndex>>> = OnceLock::new();
    let cache = INDEX.get_or_init(Default::default);
    let id = parent.map(|p| p.as_raw() as usize).unwrap_or(0);
    if let Some(ix) = cache.read().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return ix;
    }
    let children = match parent {
        Some(p) => data_children(p),
        None => top_level(),
    };
    let mut ix: ChildIndex = HashMap::new();
    for c in children {
        ix.entry(c.module().name().to_string())
            .or_default()
            .insert(c.name().to_string(), c);
    }
    // Built once per schema node, so bounded by the schema's size.
    let ix: &'static ChildIndex = Box::leak(Box::new(ix));
    cache
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, ix);
    ix
}

/// The data child named `name` from module `module`; `parent` None means top level.
pub fn find_child(parent: Option<&Schema>, module: &str, name: &str) -> Option<Schema> {
    child_index(parent).get(module)?.get(name).cloned()
}

/// The schema of a data node's child `key`; shared keys hit a per-thread memo.
pub fn find_child_key(
    parent: Option<&Schema>,
    key: &crate::datastore::tree::NodeKey,
) -> Option<Schema> {
    use std::cell::RefCell;
    thread_local! {
        static MEMO: RefCell<HashMap<(usize, usize), Option<Schema>>> = RefCell::new(HashMap::new());
    }
    let Some(kid) = key.shared_id() else {
        return find_child(parent, &key.module, &key.name);
    };
    let pid = parent.map(|p| p.as_raw() as usize).unwrap_or(0);
    if let Some(hit) = MEMO.with(|m| m.borrow().get(&(pid, kid)).cloned()) {
        return hit;
    }
    let found = find_child(parent, &key.module, &key.name);
    MEMO.with(|m| m.borrow_mut().insert((pid, kid), found.clone()));
    found
}

/// Finds a child by its XML namespace and name.
pub fn find_child_ns(parent: Option<&Schema>, ns: &str, name: &str) -> Option<Schema> {
    find_child(parent, module_of(ns)?, name)
}

/// The keys of a list as (name, module) in schema order.
pub fn list_key_names(s: &Schema) -> Vec<String> {
    s.list_keys().map(|k| k.name().to_string()).collect()
}

/// YANG module prefix → module name, for paths written with module prefixes.
pub fn module_by_prefix(prefix: &str) -> Option<String> {
    static M: std::sync::OnceLock<HashMap<String, String>> = OnceLock::new();
    M.get_or_init(|| {
        crate::yang::context()
            .modules(false)
            .filter(|m| m.is_implemented())
            .map(|m| (m.prefix().to_string(), m.name().to_string()))
            .collect()
    })
    .get(prefix)
    .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_interface_list_and_keys() {
        let ifs = find_child(None, "ietf-interfaces", "interfaces").unwrap();
        assert_eq!(*kind(&ifs), Kind::Container);
        let ifl = find_child(Some(&ifs), "ietf-interfaces", "interface").unwrap();
        assert_eq!(
            *kind(&ifl),
            Kind::List {
                keys: vec!["name".into()]
            }
        );
        assert!(find_child(Some(&ifl), "ietf-interfaces", "description").is_some());
        assert!(find_child(Some(&ifl), "ietf-interfaces", "nonexistent").is_none());
        assert_eq!(
            namespace_of("ietf-interfaces"),
            Some("urn:ietf:params:xml:ns:yang:ietf-interfaces")
        );
    }
}
