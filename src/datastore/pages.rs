//! An ordered map of records (byte keys to byte values) kept in a sled tree as pages of a few
//! kilobytes: sled holds a few thousand values instead of one per record. sled's memory grows
//! with the number of values it holds far more than with their bytes (100,000 records of 170
//! bytes took 185 MiB; the same bytes in 100 values, 10 MiB).
//!
//! Each page holds the records from its sled key (its first record's key) up to the next
//! page's; a page is split when it outgrows [`PAGE_BYTES`] and removed when empty. Writing a
//! set of records reads and rewrites only the pages they fall in. Page value:
//! `varint(count) (varint(len) key varint(len) value)×count`, keys in order.

use super::{work, StoreError};
use crate::bytes::{put_varint, Reader};
use std::collections::BTreeMap;
use std::ops::Bound;

/// The one sled key that is not a page: empty, before every page. The tree's owner may keep a
/// value of its own there (running keeps its integrity sum).
pub const META_KEY: &[u8] = b"";

/// Every page key (all keys but [`META_KEY`]).
fn pages(tree: &sled::Tree) -> sled::Iter {
    tree.range::<&[u8], _>((Bound::Excluded(META_KEY), Bound::Unbounded))
}

/// A page is split in two once its encoding exceeds this.
pub const PAGE_BYTES: usize = 8 * 1024;

type Records = BTreeMap<Vec<u8>, Vec<u8>>;

/// One record: key and value.
pub type Record = (Vec<u8>, Vec<u8>);

fn get_varint(r: &mut Reader) -> Result<usize, StoreError> {
    r.varint().ok_or(StoreError::Corrupt("truncated page"))
}

fn encoded_len(k: &[u8], v: &[u8]) -> usize {
    k.len() + v.len() + 2 * 3
}

fn encode(records: &[(&Vec<u8>, &Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.iter().map(|(k, v)| encoded_len(k, v)).sum());
    put_varint(records.len(), &mut out);
    for (k, v) in records {
        put_varint(k.len(), &mut out);
        out.extend_from_slice(k);
        put_varint(v.len(), &mut out);
        out.extend_from_slice(v);
    }
    out
}

/// Decodes one page into its records, in order.
pub fn decode(page: &[u8]) -> Result<Vec<Record>, StoreError> {
    let mut r = Reader::new(page);
    let count = get_varint(&mut r)?;
    if count > r.remaining() {
        return Err(StoreError::Corrupt("more records than page bytes"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let bytes = |r: &mut Reader| -> Result<Vec<u8>, StoreError> {
            let n = get_varint(r)?;
            Ok(r.take(n)
                .map_err(|_| StoreError::Corrupt("truncated page record"))?
                .to_vec())
        };
        let k = bytes(&mut r)?;
        let v = bytes(&mut r)?;
        if out
            .last()
            .is_some_and(|(last, _): &(Vec<u8>, Vec<u8>)| *last >= k)
        {
            return Err(StoreError::Corrupt("page records out of order"));
        }
        out.push((k, v));
    }
    r.end()
        .map_err(|_| StoreError::Corrupt("bytes after the page"))?;
    Ok(out)
}

/// Every record of the tree, in key order.
pub fn iter(
    tree: &sled::Tree,
) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + '_ {
    pages(tree).flat_map(|page| {
        let records = page.map_err(StoreError::from).and_then(|(_, v)| decode(&v));
        let (ok, err) = match records {
            Ok(r) => (r, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        work::store_reads(1);
        ok.into_iter().map(Ok).chain(err.map(Err))
    })
}

/// The sled writes that store `records` (the tree's whole content, in order) into an empty
/// tree.
pub fn fill(records: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> sled::Batch {
    let mut batch = sled::Batch::default();
    let all: Records = records.into_iter().collect();
    for (key, page) in split(&all) {
        batch.insert(key, page);
    }
    batch
}

/// Cuts `records` into pages of at most about [`PAGE_BYTES`], keyed by their first key.
fn split(records: &Records) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut pages = Vec::new();
    let mut current: Vec<(&Vec<u8>, &Vec<u8>)> = Vec::new();
    let mut size = 0;
    for (k, v) in records {
        if size + encoded_len(k, v) > PAGE_BYTES && !current.is_empty() {
            pages.push((current[0].0.clone(), encode(&current)));
            current.clear();
            size = 0;
        }
        size += encoded_len(k, v);
        current.push((k, v));
    }
    if !current.is_empty() {
        pages.push((current[0].0.clone(), encode(&current)));
    }
    pages
}

/// One page read from the tree for a write: its sled key (None for a new first page), its
/// records, and the next page's key (where its range ends).
struct Open {
    key: Option<Vec<u8>>,
    records: Records,
    end: Option<Vec<u8>>,
}

/// The page `k` falls in: the last page whose key is at most `k`, else the first page.
fn open(tree: &sled::Tree, k: &[u8]) -> Result<Open, StoreError> {
    let found = match tree
        .range::<&[u8], _>((Bound::Excluded(META_KEY), Bound::Included(k)))
        .next_back()
    {
        Some(p) => Some(p?),
        None => pages(tree).next().transpose()?,
    };
    let Some((key, page)) = found else {
        return Ok(Open {
            key: None,
            records: Records::new(),
            end: None,
        });
    };
    work::store_reads(1);
    let end = match tree
        .range::<&[u8], _>((
            std::ops::Bound::Excluded(&key[..]),
            std::ops::Bound::Unbounded,
        ))
        .next()
    {
        Some(p) => Some(p?.0.to_vec()),
        None => None,
    };
    Ok(Open {
        key: Some(key.to_vec()),
        records: decode(&page)?.into_iter().collect(),
        end,
    })
}

/// Adds the rewrite of `page` to `batch`: removed when empty, split when large, moved when its
/// first key changed.
fn close(page: Open, batch: &mut sled::Batch) {
    let pages = split(&page.records);
    if let Some(old) = &page.key {
        if pages.first().is_none_or(|(k, _)| k != old) {
            work::store_writes(1);
            batch.remove(old.clone());
        }
    }
    work::store_writes(pages.len());
    for (k, v) in pages {
        batch.insert(k, v);
    }
}

/// The sled writes that apply `writes` (in key order: `Some` sets a record, `None` removes it)
/// to the tree, reading only the pages they fall in.
pub fn batch<'a>(
    tree: &sled::Tree,
    writes: impl IntoIterator<Item = (&'a Vec<u8>, Option<&'a Vec<u8>>)>,
) -> Result<sled::Batch, StoreError> {
    let mut batch = sled::Batch::default();
    let mut current: Option<Open> = None;
    for (k, v) in writes {
        let inside = current
            .as_ref()
            .is_some_and(|p| p.end.as_ref().is_none_or(|end| k < end));
        if !inside {
            if let Some(p) = current.take() {
                close(p, &mut batch);
            }
            current = Some(open(tree, k)?);
        }
        let page = current.as_mut().expect("opened above");
        match v {
            Some(v) => page.records.insert(k.clone(), v.clone()),
            None => page.records.remove(k),
        };
    }
    if let Some(p) = current {
        close(p, &mut batch);
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> Vec<u8> {
        format!("entry-{i:06}").into_bytes()
    }

    fn contents(tree: &sled::Tree) -> Records {
        iter(tree).map(|r| r.unwrap()).collect()
    }

    #[test]
    fn pages_hold_any_sequence_of_writes_like_a_map() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let mut model = Records::new();
        // Deterministic pseudo-random inserts, rewrites and removals, in batches.
        let mut x: u64 = 7;
        for round in 0..60 {
            let mut writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
            for _ in 0..(1 + round % 7) * 40 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let k = key((x >> 33) as usize % 3000);
                let v = !(x >> 20).is_multiple_of(5);
                writes.insert(k, v.then(|| vec![b'v'; 20 + (x >> 40) as usize % 200]));
            }
            let b = batch(&tree, writes.iter().map(|(k, v)| (k, v.as_ref()))).unwrap();
            tree.apply_batch(b).unwrap();
            for (k, v) in writes {
                match v {
                    Some(v) => model.insert(k, v),
                    None => model.remove(&k),
                };
            }
            assert_eq!(contents(&tree), model, "round {round}");
        }
        // Pages stay within bounds and keyed by their first record.
        assert!(tree.len() > 10, "{} pages", tree.len());
        for p in tree.iter() {
            let (k, v) = p.unwrap();
            let records = decode(&v).unwrap();
            assert!(!records.is_empty());
            assert_eq!(records[0].0, k.to_vec());
            assert!(v.len() <= PAGE_BYTES + 256, "page of {} bytes", v.len());
        }
        // Removing everything leaves no page.
        let all: Vec<Vec<u8>> = model.keys().cloned().collect();
        let b = batch(&tree, all.iter().map(|k| (k, None))).unwrap();
        tree.apply_batch(b).unwrap();
        assert!(tree.is_empty());
    }

    #[test]
    fn a_one_record_write_reads_and_writes_one_page_at_any_size() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        for n in [1_000, 100_000] {
            let tree = db.open_tree(format!("t{n}")).unwrap();
            tree.apply_batch(fill((0..n).map(|i| (key(i), vec![b'v'; 100]))))
                .unwrap();
            let (k, v) = (key(n / 2), Some(vec![b'w'; 100]));
            let before = work::now();
            let b = batch(&tree, [(&k, v.as_ref())]).unwrap();
            let cost = work::now() - before;
            assert_eq!(
                (cost.store_reads, cost.store_writes),
                (1, 1),
                "at {n} records"
            );
            tree.apply_batch(b).unwrap();
        }
    }

    #[test]
    fn damaged_pages_are_refused() {
        let page = encode(&[
            (&b"a".to_vec(), &b"1".to_vec()),
            (&b"b".to_vec(), &b"2".to_vec()),
        ]);
        assert_eq!(decode(&page).unwrap().len(), 2);
        for cut in 0..page.len() {
            assert!(decode(&page[..cut]).is_err());
        }
        let unordered = encode(&[
            (&b"b".to_vec(), &b"1".to_vec()),
            (&b"a".to_vec(), &b"2".to_vec()),
        ]);
        assert!(decode(&unordered).is_err());
        assert!(decode(&[0xff; 12]).is_err());
    }
}
