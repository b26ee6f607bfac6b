//! The configuration data tree: schema-keyed nodes with shared, copy-on-write subtrees.

use imbl::ordmap::DiffItem;
use imbl::OrdMap;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

/// Identifies a child among its siblings: module and name, plus the key values of a list entry
/// (in key order) or the value of a leaf-list entry. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeKey(Arc<KeyData>);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyData {
    pub module: String,
    pub name: String,
    pub id: Vec<String>,
}

impl std::ops::Deref for NodeKey {
    type Target = KeyData;
    fn deref(&self) -> &KeyData {
        &self.0
    }
}

impl NodeKey {
    /// A key without key values: one shared instance per (module, name), so equal keys are
    /// the same allocation and compare by pointer.
    pub fn new(module: &str, name: &str) -> Self {
        type Table = HashMap<String, HashMap<String, NodeKey>>;
        static TABLE: OnceLock<RwLock<Table>> = OnceLock::new();
        let table = TABLE.get_or_init(Default::default);
        if let Some(k) = table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(module)
            .and_then(|m| m.get(name))
        {
            return k.clone();
        }
        // Names come from the schema (edits resolve them before building keys), so the table
        // is bounded by the schema's vocabulary.
        let mut t = table.write().unwrap_or_else(|e| e.into_inner());
        t.entry(module.to_string())
            .or_default()
            .entry(name.to_string())
            .or_insert_with(|| {
                NodeKey(Arc::new(KeyData {
                    module: module.to_string(),
                    name: name.to_string(),
                    id: Vec::new(),
                }))
            })
            .clone()
    }

    pub fn with_id(module: &str, name: &str, id: Vec<String>) -> Self {
        if id.is_empty() {
            return Self::new(module, name);
        }
        NodeKey(Arc::new(KeyData {
            module: module.to_string(),
            name: name.to_string(),
            id,
        }))
    }

    /// Identity of a shared key (one without key values); None for list and leaf-list entries.
    pub fn shared_id(&self) -> Option<usize> {
        self.id.is_empty().then_some(Arc::as_ptr(&self.0) as usize)
    }
}

/// A data node: a leaf or leaf-list entry has a value; containers and list entries have children.
/// Subtrees are shared between datastores until one of them is edited; sibling maps are
/// persistent, so copying a datastore and editing one entry costs O(log n).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub value: Option<String>,
    pub children: OrdMap<NodeKey, Arc<Node>>,
}

/// A change between two trees, with the path of keys from the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created(Vec<NodeKey>, Arc<Node>),
    Deleted(Vec<NodeKey>, Arc<Node>),
    /// A leaf whose value changed: old and new.
    Modified(Vec<NodeKey>, Option<String>, Option<String>),
}

impl Change {
    pub fn path(&self) -> &[NodeKey] {
        match self {
            Change::Created(p, _) | Change::Deleted(p, _) | Change::Modified(p, _, _) => p,
        }
    }
}

impl Node {
    pub fn leaf(value: impl Into<String>) -> Self {
        Node {
            value: Some(value.into()),
            children: OrdMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    pub fn get(&self, path: &[NodeKey]) -> Option<&Node> {
        super::work::tree_nodes(path.len());
        let mut node = self;
        for k in path {
            node = node.children.get(k)?;
        }
        Some(node)
    }

    /// The child at `key`, created empty if missing; a shared child is copied first.
    pub fn child_mut(&mut self, key: NodeKey) -> &mut Node {
        super::work::tree_nodes(1);
        Arc::make_mut(self.children.entry(key).or_default())
    }

    /// The entry `value` of the one-key list `module:list`, created with its key leaf if missing.
    pub fn list_entry_mut(
        &mut self,
        module: &str,
        list: &str,
        key: &str,
        value: &str,
    ) -> &mut Node {
        let entry = self.child_mut(NodeKey::with_id(module, list, vec![value.to_string()]));
        entry
            .children
            .entry(NodeKey::new(module, key))
            .or_insert_with(|| Arc::new(Node::leaf(value)));
        entry
    }

    /// The value of the leaf `module:name` among the children, if present.
    pub fn leaf_value(&self, module: &str, name: &str) -> Option<&str> {
        self.children
            .get(&NodeKey::new(module, name))
            .and_then(|l| l.value.as_deref())
    }

    /// Sets the leaf `module:name` among the children to `value`.
    pub fn set_leaf(&mut self, module: &str, name: &str, value: impl Into<String>) {
        self.children
            .insert(NodeKey::new(module, name), Arc::new(Node::leaf(value)));
    }

    /// Inserts `node` at `path`, creating missing ancestors as empty inner nodes.
    pub fn insert(&mut self, path: &[NodeKey], node: Arc<Node>) {
        let (last, parents) = path.split_last().expect("insert at the root");
        super::work::tree_nodes(path.len());
        let mut cur = self;
        for k in parents {
            cur = cur.child_mut(k.clone());
        }
        cur.children.insert(last.clone(), node);
    }

    pub fn remove(&mut self, path: &[NodeKey]) -> Option<Arc<Node>> {
        let (last, parents) = path.split_last()?;
        super::work::tree_nodes(path.len());
        let mut cur = self;
        for k in parents {
            cur = Arc::make_mut(cur.children.get_mut(k)?);
        }
        cur.children.remove(last)
    }

    /// Number of nodes in the subtree, this one included.
    pub fn count(&self) -> usize {
        super::work::tree_nodes(1);
        1 + self.children.values().map(|c| c.count()).sum::<usize>()
    }

    /// Visits every node below this one in key order with its path.
    pub fn walk<'a>(&'a self, path: &mut Vec<NodeKey>, f: &mut dyn FnMut(&[NodeKey], &'a Node)) {
        for (k, c) in &self.children {
            super::work::tree_nodes(1);
            path.push(k.clone());
            f(path, c);
            c.walk(path, f);
            path.pop();
        }
    }
}

/// Differences from `old` to `new`; shared subtrees are skipped without being visited, so the
/// cost follows what changed rather than the size of the trees.
pub fn diff(old: &Node, new: &Node) -> Vec<Change> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    diff_into(old, new, &mut path, &mut out);
    out
}

fn diff_into(old: &Node, new: &Node, path: &mut Vec<NodeKey>, out: &mut Vec<Change>) {
    for item in old.children.diff(&new.children) {
        super::work::tree_nodes(1);
        match item {
            DiffItem::Add(k, v) => {
                path.push(k.clone());
                out.push(Change::Created(path.clone(), Arc::clone(v)));
                path.pop();
            }
            DiffItem::Remove(k, v) => {
                path.push(k.clone());
                out.push(Change::Deleted(path.clone(), Arc::clone(v)));
                path.pop();
            }
            DiffItem::Update {
                old: (k, a),
                new: (_, b),
            } => {
                if !Arc::ptr_eq(a, b) {
                    path.push(k.clone());
                    diff_pair(a, b, path, out);
                    path.pop();
                }
            }
        }
    }
}

fn diff_pair(a: &Node, b: &Node, path: &mut Vec<NodeKey>, out: &mut Vec<Change>) {
    if a.value != b.value {
        out.push(Change::Modified(
            path.clone(),
            a.value.clone(),
            b.value.clone(),
        ));
    }
    diff_into(a, b, path, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str) -> NodeKey {
        NodeKey::new("m", name)
    }

    #[test]
    fn diff_reports_created_deleted_modified() {
        let mut a = Node::default();
        a.insert(&[k("c"), k("x")], Arc::new(Node::leaf("1")));
        a.insert(&[k("c"), k("y")], Arc::new(Node::leaf("2")));
        let mut b = a.clone();
        b.insert(&[k("c"), k("x")], Arc::new(Node::leaf("3")));
        b.remove(&[k("c"), k("y")]);
        b.insert(&[k("d")], Arc::new(Node::default()));
        let d = diff(&a, &b);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(
            matches!(&d[0], Change::Modified(p, Some(o), Some(n)) if p.len() == 2 && o == "1" && n == "3")
        );
        assert!(matches!(&d[1], Change::Deleted(p, _) if p[1] == k("y")));
        assert!(matches!(&d[2], Change::Created(p, _) if p[0] == k("d")));
    }

    #[test]
    fn diff_of_large_lists_matches_small_path() {
        let mut a = Node::default();
        for i in 0..200 {
            a.insert(
                &[k("l"), NodeKey::with_id("m", "e", vec![format!("{i:03}")])],
                Arc::new(Node::leaf("v")),
            );
        }
        let mut b = a.clone();
        b.remove(&[k("l"), NodeKey::with_id("m", "e", vec!["005".into()])]);
        b.insert(
            &[k("l"), NodeKey::with_id("m", "e", vec!["999".into()])],
            Arc::new(Node::leaf("w")),
        );
        b.insert(
            &[k("l"), NodeKey::with_id("m", "e", vec!["007".into()])],
            Arc::new(Node::leaf("z")),
        );
        let d = diff(&a, &b);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn builders_create_once_and_copy_shared_subtrees() {
        let mut a = Node::default();
        a.child_mut(k("c"))
            .list_entry_mut("m", "e", "name", "x")
            .set_leaf("m", "v", "1");
        let b = a.clone();
        let e = a.child_mut(k("c")).list_entry_mut("m", "e", "name", "x");
        assert_eq!(e.leaf_value("m", "name"), Some("x"));
        e.set_leaf("m", "v", "2");
        let path = [k("c"), NodeKey::with_id("m", "e", vec!["x".into()])];
        assert_eq!(a.get(&path).unwrap().leaf_value("m", "v"), Some("2"));
        assert_eq!(b.get(&path).unwrap().leaf_value("m", "v"), Some("1"));
        assert_eq!(a.count(), 5);
    }
}

#[cfg(test)]
mod diff_property {
    use super::*;

    /// Applies a change list to a tree.
    fn apply(tree: &mut Node, changes: &[Change]) {
        for c in changes {
            match c {
                Change::Created(p, n) => tree.insert(p, Arc::clone(n)),
                Change::Deleted(p, _) => {
                    tree.remove(p);
                }
                Change::Modified(p, _, v) => {
                    let mut cur = &mut *tree;
                    for k in p {
                        cur = Arc::make_mut(cur.children.get_mut(k).unwrap());
                    }
                    cur.value = v.clone();
                }
            }
        }
    }

    #[test]
    fn diff_then_apply_reproduces_the_new_tree() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let top = NodeKey::new("m", "c");
        let mut tree = Node::default();
        for round in 0..300 {
            let old = tree.clone();
            for _ in 0..1 + rnd(5) {
                let e = NodeKey::with_id("m", "e", vec![format!("{}", rnd(400))]);
                match rnd(3) {
                    0 => {
                        tree.remove(&[top.clone(), e]);
                    }
                    _ => tree.insert(
                        &[top.clone(), e, NodeKey::new("m", "v")],
                        Arc::new(Node::leaf(format!("{}", rnd(3)))),
                    ),
                }
            }
            let changes = diff(&old, &tree);
            let mut rebuilt = old.clone();
            apply(&mut rebuilt, &changes);
            assert_eq!(rebuilt, tree, "round {round}: {changes:?}");
        }
    }
}
