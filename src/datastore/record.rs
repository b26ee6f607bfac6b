//! The on-disk record layout of a datastore: one sled record per top-level node and per list
//! entry, holding that node's own leaves, leaf-lists and containers; list entries nested in it
//! are records of their own. A one-leaf edit rewrites one small record, and a list of 100,000
//! entries costs 100,000 records rather than one per data node.
//!
//! Key: the path from the root, each segment `str(module) str(name) varint(n) str(id)×n`.
//! Value: `node`, where `node = tag [str(value)] varint(count) child×count` and
//! `child = str(module, empty when the parent's) str(name) varint(n) str(id)×n node`.
//! `str` is a varint length and UTF-8 bytes; varints are LEB128. Keys are unambiguous for any
//! key value (no separator bytes), and a parent's key is a prefix of its children's.

use super::tree::{Change, Node, NodeKey};
use super::{work, StoreError};
use crate::bytes::{put_varint, Reader};
use std::collections::BTreeMap;
use std::sync::Arc;

const INNER: u8 = 0;
const LEAF: u8 = 1;

/// Deepest nesting of containers inside one record that a load accepts.
const MAX_DEPTH: usize = 64;

/// True for a list entry (stored as a record of its own when nested); leaf-list entries carry
/// a value and stay inline.
fn is_entry(key: &NodeKey, node: &Node) -> bool {
    !key.id.is_empty() && node.value.is_none()
}

/// Length of the path prefix naming the record that holds the node at `path` when that node is
/// not a record itself: its nearest list-entry ancestor, else its top-level ancestor.
fn owner_len(path: &[NodeKey]) -> usize {
    (2..path.len())
        .rev()
        .find(|&i| !path[i - 1].id.is_empty())
        .unwrap_or(1)
}

fn put_str(s: &str, out: &mut Vec<u8>) {
    put_varint(s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

fn put_segment(k: &NodeKey, module: &str, out: &mut Vec<u8>) {
    put_str(module, out);
    put_str(&k.name, out);
    put_varint(k.id.len(), out);
    for id in &k.id {
        put_str(id, out);
    }
}

/// The sled key of the record at `path`.
pub(super) fn key(path: &[NodeKey]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() * 32);
    for k in path {
        put_segment(k, &k.module, &mut out);
    }
    out
}

/// The sled value of the record for `node`: its value and its inline descendants.
pub(super) fn value(node: &Node, module: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    put_node(node, module, &mut out);
    out
}

fn put_node(node: &Node, module: &str, out: &mut Vec<u8>) {
    match &node.value {
        None => out.push(INNER),
        Some(v) => {
            out.push(LEAF);
            put_str(v, out);
        }
    }
    let inline = || node.children.iter().filter(|(k, c)| !is_entry(k, c));
    work::tree_nodes(node.children.len());
    put_varint(inline().count(), out);
    for (k, c) in inline() {
        put_segment(k, if k.module == module { "" } else { &k.module }, out);
        put_node(c, &k.module, out);
    }
}

fn corrupt(what: &'static str) -> impl Fn(crate::bytes::Short) -> StoreError {
    move |_| StoreError::Corrupt(what)
}

fn get_varint(r: &mut Reader) -> Result<usize, StoreError> {
    r.varint().ok_or(StoreError::Corrupt("truncated length"))
}

fn get_str(r: &mut Reader) -> Result<String, StoreError> {
    let n = get_varint(r)?;
    let b = r.take(n).map_err(corrupt("truncated string"))?;
    String::from_utf8(b.to_vec()).map_err(|_| StoreError::Corrupt("string is not UTF-8"))
}

/// One path segment; `parent` stands in for an empty module.
fn get_segment(r: &mut Reader, parent: Option<&str>) -> Result<NodeKey, StoreError> {
    let mut module = get_str(r)?;
    if module.is_empty() {
        module = parent
            .ok_or(StoreError::Corrupt("segment without a module"))?
            .to_string();
    }
    let name = get_str(r)?;
    let n = get_varint(r)?;
    if n > r.remaining() {
        return Err(StoreError::Corrupt("more key values than bytes"));
    }
    let id = (0..n).map(|_| get_str(r)).collect::<Result<Vec<_>, _>>()?;
    Ok(NodeKey::with_id(&module, &name, id))
}

/// Decodes a record key into its path.
pub(super) fn decode_key(bytes: &[u8]) -> Result<Vec<NodeKey>, StoreError> {
    let mut r = Reader::new(bytes);
    let mut path = Vec::new();
    while !r.is_empty() {
        path.push(get_segment(&mut r, None)?);
    }
    if path.is_empty() {
        return Err(StoreError::Corrupt("empty path"));
    }
    Ok(path)
}

/// Decodes a record value into `node`, adding its inline children to those already there.
pub(super) fn decode_value(bytes: &[u8], module: &str, node: &mut Node) -> Result<(), StoreError> {
    let mut r = Reader::new(bytes);
    get_node(&mut r, module, node, 0)?;
    r.end()
        .map_err(|_| StoreError::Corrupt("bytes after the record"))
}

fn get_node(r: &mut Reader, module: &str, node: &mut Node, depth: usize) -> Result<(), StoreError> {
    if depth > MAX_DEPTH {
        return Err(StoreError::Corrupt("record nested too deeply"));
    }
    node.value = match r.u8().map_err(corrupt("truncated record"))? {
        INNER => None,
        LEAF => Some(get_str(r)?),
        _ => return Err(StoreError::Corrupt("unknown node record")),
    };
    let count = get_varint(r)?;
    if count > r.remaining() {
        return Err(StoreError::Corrupt("more children than bytes"));
    }
    for _ in 0..count {
        let k = get_segment(r, Some(module))?;
        let child_module = k.module.clone();
        get_node(r, &child_module, node.child_mut(k), depth + 1)?;
    }
    Ok(())
}

/// Calls `f` with the path and node of the record at `path` and of every record inside it.
fn records_in(path: &mut Vec<NodeKey>, node: &Node, f: &mut dyn FnMut(&[NodeKey], &Node)) {
    f(path, node);
    nested_records(path, node, f);
}

/// Calls `f` for every record strictly inside `node` (at `path`).
fn nested_records(path: &mut Vec<NodeKey>, node: &Node, f: &mut dyn FnMut(&[NodeKey], &Node)) {
    for (k, c) in &node.children {
        if c.children.is_empty() {
            continue;
        }
        path.push(k.clone());
        if is_entry(k, c) {
            records_in(path, c, f);
        } else {
            nested_records(path, c, f);
        }
        path.pop();
    }
}

/// Record writes (`Some` value) and removals (`None`) by key, each with its path.
pub(super) type Writes = BTreeMap<Vec<u8>, (Vec<NodeKey>, Option<Vec<u8>>)>;

/// The record writes and removals that turn the records of the tree before `changes` into
/// those of `after`: each record written once, however many of its leaves changed.
pub(super) fn writes(changes: &[Change], after: &Node) -> Writes {
    let mut out = Writes::new();
    let rewrite = |out: &mut Writes, path: &[NodeKey]| {
        out.entry(key(path))
            .or_insert_with(|| (path.to_vec(), value_at(after, path)));
    };
    for c in changes {
        let path = c.path();
        if path.is_empty() {
            continue;
        }
        match c {
            Change::Created(_, n) | Change::Deleted(_, n) => {
                let created = matches!(c, Change::Created(..));
                let mut emit = |p: &[NodeKey], node: &Node| {
                    let v = created.then(|| value(node, &p[p.len() - 1].module));
                    out.insert(key(p), (p.to_vec(), v));
                };
                let mut p = path.to_vec();
                if path.len() == 1 || is_entry(&path[path.len() - 1], n) {
                    records_in(&mut p, n, &mut emit);
                } else {
                    nested_records(&mut p, n, &mut emit);
                    rewrite(&mut out, &path[..owner_len(path)]);
                }
            }
            Change::Modified(..) => rewrite(&mut out, &path[..owner_len(path)]),
        }
    }
    out
}

/// The value of the record at `path` (a record's path) in `tree`, if the node exists.
pub(super) fn value_at(tree: &Node, path: &[NodeKey]) -> Option<Vec<u8>> {
    tree.get(path)
        .map(|n| value(n, &path[path.len() - 1].module))
}

/// An overlay record saying that the record at its key is absent (record values are never
/// empty: they start with a tag).
pub(super) const TOMBSTONE: &[u8] = &[];

/// Applies one overlay record to `tree`: a tombstone removes the node at its path; a value
/// replaces the node's own value and inline descendants, keeping the list entries nested in it
/// (records of their own, overlaid by their own keys).
pub(super) fn apply_overlay(tree: &mut Node, k: &[u8], v: &[u8]) -> Result<(), StoreError> {
    let path = decode_key(k)?;
    if v == TOMBSTONE {
        tree.remove(&path);
        return Ok(());
    }
    let mut fresh = Node::default();
    decode_value(v, &path[path.len() - 1].module, &mut fresh)?;
    if let Some(old) = tree.get(&path) {
        keep_entries(old, &mut fresh);
    }
    tree.insert(&path, Arc::new(fresh));
    Ok(())
}

/// Copies into `new` the list entries nested in `old`'s inline containers, wherever `new` still
/// has the container (an entry in a container that is gone is gone too).
fn keep_entries(old: &Node, new: &mut Node) {
    for (k, c) in &old.children {
        if is_entry(k, c) {
            new.children.insert(k.clone(), Arc::clone(c));
        } else if !c.children.is_empty() {
            if let Some(n) = new.children.get_mut(k) {
                keep_entries(c, Arc::make_mut(n));
            }
        }
    }
}

/// Every record of `tree`, as (key, value).
pub(super) fn all(tree: &Node) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    for (k, c) in &tree.children {
        path.push(k.clone());
        records_in(&mut path, c, &mut |p, n| {
            out.push((key(p), value(n, &p[p.len() - 1].module)))
        });
        path.pop();
    }
    out
}

/// Builds a data tree from records, in any order.
pub(super) fn load(
    records: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>>,
) -> Result<Node, StoreError> {
    let mut root = Node::default();
    for item in records {
        let (k, v) = item?;
        let path = decode_key(&k)?;
        let mut cur = &mut root;
        for p in &path {
            cur = cur.child_mut(p.clone());
        }
        decode_value(&v, &path[path.len() - 1].module, cur)?;
    }
    Ok(root)
}

/// A node built from one record's bytes alone (for tests and fuzzing).
pub fn decode_record(k: &[u8], v: &[u8]) -> Result<(Vec<NodeKey>, Arc<Node>), StoreError> {
    let path = decode_key(k)?;
    let mut node = Node::default();
    decode_value(v, &path[path.len() - 1].module, &mut node)?;
    Ok((path, Arc::new(node)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::tree::diff;

    fn k(m: &str, n: &str, id: &[&str]) -> NodeKey {
        NodeKey::with_id(m, n, id.iter().map(|s| s.to_string()).collect())
    }

    /// Interfaces with a nested list and a leaf-list, key values with every byte the old
    /// separator layout could not hold.
    fn sample() -> Node {
        let mut t = Node::default();
        let ifs = k("if", "interfaces", &[]);
        for name in ["eth0", "a\u{0}b", "c\u{1}d", ""] {
            let e = k("if", "interface", &[name]);
            t.insert(
                &[ifs.clone(), e.clone(), k("if", "name", &[])],
                Arc::new(Node::leaf(name)),
            );
            t.insert(
                &[
                    ifs.clone(),
                    e.clone(),
                    k("ip", "ipv6", &[]),
                    k("ip", "enabled", &[]),
                ],
                Arc::new(Node::leaf("true")),
            );
            t.insert(
                &[
                    ifs.clone(),
                    e.clone(),
                    k("ip", "ipv6", &[]),
                    k("ip", "address", &["fe80::1"]),
                    k("ip", "ip", &[]),
                ],
                Arc::new(Node::leaf("fe80::1")),
            );
            t.insert(
                &[ifs.clone(), e.clone(), k("if", "tag", &["x"])],
                Arc::new(Node::leaf("x")),
            );
        }
        t.insert(&[k("n", "enable", &[])], Arc::new(Node::leaf("true")));
        t.insert(&[k("n", "empty", &[])], Arc::new(Node::default()));
        t
    }

    fn records_of(t: &Node) -> BTreeMap<Vec<u8>, Vec<u8>> {
        all(t).into_iter().collect()
    }

    #[test]
    fn records_round_trip_and_split_at_list_entries() {
        let t = sample();
        let recs = records_of(&t);
        // interfaces, enable, empty, 4 interfaces, 4 nested addresses.
        assert_eq!(recs.len(), 3 + 4 + 4);
        let loaded = load(recs.clone().into_iter().rev().map(Ok)).unwrap();
        assert_eq!(loaded, t);
    }

    #[test]
    fn writes_turn_old_records_into_new_ones() {
        let old = sample();
        let mut new = old.clone();
        let ifs = k("if", "interfaces", &[]);
        let e = k("if", "interface", &["eth0"]);
        new.insert(
            &[ifs.clone(), e.clone(), k("if", "description", &[])],
            Arc::new(Node::leaf("d")),
        );
        new.remove(&[ifs.clone(), k("if", "interface", &["a\u{0}b"])]);
        new.remove(&[ifs.clone(), e.clone(), k("ip", "ipv6", &[])]);
        new.insert(&[k("n", "enable", &[])], Arc::new(Node::leaf("false")));
        let mut recs = records_of(&old);
        for (key, (_, v)) in writes(&diff(&old, &new), &new) {
            match v {
                Some(v) => recs.insert(key, v),
                None => recs.remove(&key),
            };
        }
        assert_eq!(recs, records_of(&new));
    }

    #[test]
    fn damaged_records_are_refused_not_panicked_on() {
        let recs = records_of(&sample());
        for (key, v) in &recs {
            for cut in 0..v.len() {
                assert!(decode_record(key, &v[..cut]).is_err());
            }
            for cut in 0..key.len() {
                let _ = decode_record(&key[..cut], v);
            }
            let mut longer = v.clone();
            longer.push(0);
            assert!(decode_record(key, &longer).is_err());
        }
        assert!(decode_record(&[], &[INNER, 0]).is_err());
        assert!(decode_record(&[1, b'm', 1, b'n', 0], &[7, 0]).is_err());
        assert!(decode_record(
            &[1, b'm', 1, b'n', 0],
            &[INNER, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        )
        .is_err());
    }

    #[test]
    fn an_overlay_of_differing_records_turns_one_tree_into_another() {
        let base = sample();
        let mut other = base.clone();
        let ifs = k("if", "interfaces", &[]);
        let e = k("if", "interface", &["eth0"]);
        other.insert(
            &[ifs.clone(), e.clone(), k("if", "description", &[])],
            Arc::new(Node::leaf("d")),
        );
        other.remove(&[ifs.clone(), k("if", "interface", &["c\u{1}d"])]);
        other.insert(
            &[
                ifs.clone(),
                k("if", "interface", &["new"]),
                k("if", "name", &[]),
            ],
            Arc::new(Node::leaf("new")),
        );
        other.remove(&[k("n", "enable", &[])]);
        other.remove(&[
            ifs.clone(),
            k("if", "interface", &[""]),
            k("ip", "ipv6", &[]),
        ]);
        // The overlay: every record of `other` that differs, and a tombstone for each record
        // of `base` that `other` lacks.
        let (b, o) = (records_of(&base), records_of(&other));
        let mut overlay: BTreeMap<Vec<u8>, Vec<u8>> = o
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for k in b.keys().filter(|k| !o.contains_key(*k)) {
            overlay.insert(k.clone(), TOMBSTONE.to_vec());
        }
        // eth0 (a description), c\u{1}d and its address (gone), new, enable (gone), "" and its
        // address (ipv6 gone).
        assert_eq!(overlay.len(), 7);
        let mut t = base.clone();
        for (k, v) in &overlay {
            apply_overlay(&mut t, k, v).unwrap();
        }
        assert_eq!(t, other);
    }
}
