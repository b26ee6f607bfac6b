//! Reads stores written in the first layout (one sled record per data node, path segments split
//! by 0x00/0x01 bytes) so that [`super::Store::open`] can migrate them to [`super::record`].

use super::tree::{Node, NodeKey};
use super::StoreError;

const SEG: u8 = 0;
const FIELD: u8 = 1;
const INNER: u8 = 0;
const LEAF: u8 = 1;

/// The names of the first layout's trees, in [`super::Store`] order.
pub(super) const TREES: [&str; 4] = ["running", "candidate", "startup", "confirmed-rollback"];

fn decode_path(bytes: &[u8]) -> Result<Vec<NodeKey>, StoreError> {
    let mut path = Vec::new();
    for seg in bytes.split(|b| *b == SEG) {
        let mut fields = seg.split(|b| *b == FIELD);
        let text = |f: Option<&[u8]>| -> Result<String, StoreError> {
            let f = f.ok_or(StoreError::Corrupt("path segment without a name"))?;
            String::from_utf8(f.to_vec()).map_err(|_| StoreError::Corrupt("path is not UTF-8"))
        };
        let module = text(fields.next())?;
        let name = text(fields.next())?;
        let id = fields
            .map(|f| text(Some(f)))
            .collect::<Result<Vec<_>, _>>()?;
        path.push(NodeKey::with_id(&module, &name, id));
    }
    Ok(path)
}

/// Reads every node record of a first-layout tree into a data tree.
pub(super) fn load(tree: &sled::Tree) -> Result<Node, StoreError> {
    let mut root = Node::default();
    for item in tree.iter() {
        let (k, v) = item?;
        let path = decode_path(&k)?;
        let value = match v.first() {
            Some(&LEAF) => Some(
                String::from_utf8(v[1..].to_vec())
                    .map_err(|_| StoreError::Corrupt("value is not UTF-8"))?,
            ),
            Some(&INNER) => None,
            _ => return Err(StoreError::Corrupt("unknown node record")),
        };
        let (last, parents) = path.split_last().ok_or(StoreError::Corrupt("empty path"))?;
        let mut cur = &mut root;
        for p in parents {
            cur = cur.child_mut(p.clone());
        }
        cur.child_mut(last.clone()).value = value;
    }
    Ok(root)
}

/// Writes `tree` in the first layout (for migration tests).
#[cfg(test)]
pub(super) fn store(tree: &Node, into: &sled::Tree) -> Result<(), StoreError> {
    let mut path: Vec<NodeKey> = Vec::new();
    let mut out = Vec::new();
    tree.walk(&mut path, &mut |p, n| {
        let mut k = Vec::new();
        for (i, s) in p.iter().enumerate() {
            if i > 0 {
                k.push(SEG);
            }
            k.extend_from_slice(s.module.as_bytes());
            k.push(FIELD);
            k.extend_from_slice(s.name.as_bytes());
            for id in &s.id {
                k.push(FIELD);
                k.extend_from_slice(id.as_bytes());
            }
        }
        let v = match &n.value {
            None => vec![INNER],
            Some(v) => [&[LEAF][..], v.as_bytes()].concat(),
        };
        out.push((k, v));
    });
    for (k, v) in out {
        into.insert(k, v)?;
    }
    Ok(())
}
