//! Validation that costs what changed: when a datastore holds no instance of a node whose
//! validity depends on other nodes (must, when, leafref, instance-identifier, unique,
//! min/max-elements), every constraint left is local to a node, so only the changed entries
//! of large lists need to go through libyang; otherwise the whole datastore does.

use super::validate;
use crate::datastore::tree::{Change, Node, NodeKey};
use crate::rpc_error::RpcError;
use crate::yang::schema::{self, Kind, Schema};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use yang3::schema::{DataValueType, SchemaNodeKind};

/// Sibling maps larger than this are pruned to their changed entries.
const PRUNE_ABOVE: usize = 64;

/// Schema nodes whose instances make validation non-local.
fn relevant() -> &'static HashSet<usize> {
    static R: OnceLock<HashSet<usize>> = OnceLock::new();
    R.get_or_init(|| {
        let ctx = crate::yang::context();
        let unique_lists = lists_with_unique();
        let mut set = HashSet::new();
        for s in ctx.traverse() {
            if !s.is_config() {
                continue;
            }
            let xpath = s.musts().is_some_and(|mut m| m.next().is_some())
                || s.whens().next().is_some()
                || s.leaf_type().is_some_and(|t| {
                    matches!(
                        t.base_type(),
                        DataValueType::LeafRef | DataValueType::InstanceId | DataValueType::Union
                    ) && crate::netio::sys::type_may_reference(&t)
                });
            let counted = matches!(s.kind(), SchemaNodeKind::List | SchemaNodeKind::LeafList)
                && (s.min_elements().is_some_and(|m| m > 0) || s.max_elements().is_some());
            let unique = s.kind() == SchemaNodeKind::List && unique_lists.contains(s.name());
            if xpath || counted || unique {
                set.insert(explicit_anchor(&s));
            }
        }
        set
    })
}

/// The node whose explicit instance brings `s` into existence: itself unless it can exist
/// implicitly (a default leaf, a non-presence container, a choice's default case), in which
/// case its nearest list or presence-container ancestor (0 = the datastore root, always there).
fn explicit_anchor(s: &Schema) -> usize {
    let implicit = match s.kind() {
        SchemaNodeKind::Leaf => s.has_default(),
        SchemaNodeKind::Container => s.is_np_container(),
        SchemaNodeKind::Choice | SchemaNodeKind::Case => true,
        _ => false,
    };
    if !implicit {
        return s.as_raw() as usize;
    }
    for a in s.ancestors() {
        match a.kind() {
            SchemaNodeKind::List => return a.as_raw() as usize,
            SchemaNodeKind::Container if !a.is_np_container() => return a.as_raw() as usize,
            _ => {}
        }
    }
    0
}

/// Names of lists that carry a `unique` statement in any shipped module.
fn lists_with_unique() -> HashSet<String> {
    let mut out = HashSet::new();
    for src in crate::yang::sources() {
        let mut lists: Vec<(usize, String)> = Vec::new();
        for line in src.text.lines() {
            let indent = line.len() - line.trim_start().len();
            let t = line.trim_start();
            while lists
                .last()
                .is_some_and(|(i, _)| *i >= indent && !t.is_empty() && t != "}")
            {
                lists.pop();
            }
            if let Some(rest) = t.strip_prefix("list ") {
                let name = rest.trim_end_matches(['{', ' ']).trim().to_string();
                lists.push((indent, name));
            } else if t.starts_with("unique ") || t == "unique" {
                if let Some((_, name)) = lists.last() {
                    out.insert(name.clone());
                }
            }
        }
    }
    out
}

/// Whether the datastore root itself anchors relevant nodes (then no pruning is ever sound).
fn root_is_relevant() -> bool {
    relevant().contains(&0)
}

/// Counts instances of relevant nodes in a subtree whose schema is `schema`.
fn count_in(node: &Node, schema: &Schema) -> usize {
    let own = usize::from(relevant().contains(&(schema.as_raw() as usize)));
    own + count_children(node, Some(schema))
}

fn count_children(node: &Node, parent: Option<&Schema>) -> usize {
    let mut total = 0;
    for (k, c) in node.children.iter() {
        if let Some(s) = schema::find_child(parent, &k.module, &k.name) {
            total += count_in(c, &s);
        }
    }
    total
}

/// Relevant instances in a whole datastore (done once, then kept up to date by `delta`).
pub fn count(root: &Node) -> usize {
    count_children(root, None)
}

fn schema_at(path: &[NodeKey]) -> Option<Schema> {
    let mut s: Option<Schema> = None;
    for k in path {
        s = Some(schema::find_child(s.as_ref(), &k.module, &k.name)?);
    }
    s
}

/// How the count of relevant instances moves with `changes`.
pub fn delta(changes: &[Change]) -> isize {
    let mut d = 0isize;
    for c in changes {
        match c {
            Change::Created(p, n) => {
                if let Some(s) = schema_at(p) {
                    d += count_in(n, &s) as isize;
                }
            }
            Change::Deleted(p, n) => {
                if let Some(s) = schema_at(p) {
                    d -= count_in(n, &s) as isize;
                }
            }
            Change::Modified(..) => {}
        }
    }
    d
}

/// The changed paths as a trie; `whole` marks a node that changed as a whole (created).
#[derive(Default)]
struct Trie {
    children: HashMap<NodeKey, Trie>,
    whole: bool,
}

impl Trie {
    fn from_changes(changes: &[Change]) -> Trie {
        let mut t = Trie::default();
        for c in changes {
            let mut cur = &mut t;
            for k in c.path() {
                cur = cur.children.entry(k.clone()).or_default();
            }
            cur.whole |= matches!(c, Change::Created(..));
        }
        t
    }
}

/// `node` with every large sibling map cut down to its changed entries.
fn prune(node: &Node, parent: Option<&Schema>, touched: Option<&Trie>) -> Node {
    let mut out = Node {
        value: node.value.clone(),
        ..Default::default()
    };
    let keep = |out: &mut Node, k: &NodeKey, c: &Arc<Node>, sub: Option<&Trie>| {
        crate::datastore::work::tree_nodes(1);
        let s = schema::find_child(parent, &k.module, &k.name);
        let leafy = s
            .as_ref()
            .is_some_and(|s| matches!(schema::kind(s), Kind::Leaf | Kind::LeafList | Kind::Any));
        let child = if leafy || c.children.is_empty() || sub.is_some_and(|t| t.whole) {
            Arc::clone(c)
        } else {
            Arc::new(prune(c, s.as_ref(), sub))
        };
        out.children.insert(k.clone(), child);
    };
    if node.children.len() > PRUNE_ABOVE {
        if let Some(t) = touched {
            for (k, sub) in &t.children {
                if let Some(c) = node.children.get(k) {
                    keep(&mut out, k, c, Some(sub));
                }
            }
        }
    } else {
        for (k, c) in node.children.iter() {
            keep(&mut out, k, c, touched.and_then(|t| t.children.get(k)));
        }
    }
    out
}

/// Validates `new`, reached from `old` by `changes`. `old_count` is the number of relevant
/// instances in `old`, or None when unknown. Returns the count for `new`.
pub fn validate_change(
    old_valid: bool,
    old_count: Option<usize>,
    new: &Node,
    changes: &[Change],
) -> Result<usize, RpcError> {
    let new_count = match old_count {
        Some(c) => (c as isize + delta(changes)).max(0) as usize,
        None => count(new),
    };
    if old_valid && new_count == 0 && !root_is_relevant() {
        let pruned = prune(new, None, Some(&Trie::from_changes(changes)));
        validate::validate(&pruned)?;
    } else {
        validate::validate(new)?;
    }
    Ok(new_count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::tree::diff;
    use crate::northbound::edit::{apply, merge_config, Operation};
    use crate::xml::parse;

    const HEAD: &str = r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">"#;

    fn iface(name: &str, body: &str) -> String {
        format!(
            r#"<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type"><interface><name>{name}</name>{body}</interface></interfaces>"#
        )
    }

    fn random_edit(rnd: &mut impl FnMut(u64) -> u64) -> String {
        let name = format!("e{}", rnd(150));
        let body = match rnd(12) {
            0 => iface(&name, "").replace("<interface>", "<interface nc:operation=\"remove\">"),
            1 => iface(&name, "<type>t:ethernetCsmacd</type><description>x</description>"),
            2 => iface(&name, "<type>t:notAnIdentity</type>"),
            3 => iface(&name, "<type>t:ethernetCsmacd</type><ipv6 xmlns=\"urn:ietf:params:xml:ns:yang:ietf-ip\"><address><ip>2001:db8::1</ip><prefix-length>200</prefix-length></address></ipv6>"),
            4 => r#"<remote-backup xmlns="urn:mldhb:yang:mldhb-rbs"><service><name>s1</name><peer-ipv6>2001:db8:10::2</peer-ipv6><source-ipv6>2001:db8:10::1</source-ipv6><port>1025</port></service></remote-backup>"#.to_string(),
            5 => r#"<remote-backup xmlns="urn:mldhb:yang:mldhb-rbs" nc:operation="remove"/>"#.to_string(),
            6 => iface(&name, "<description>only</description>"),
            7 => iface(&name, "<type>t:ethernetCsmacd</type><enabled>maybe</enabled>"),
            _ => iface(&name, "<type>t:ethernetCsmacd</type>"),
        };
        format!("{HEAD}{body}</config>")
    }

    /// On random edit sequences the incremental path agrees with full libyang validation.
    #[test]
    fn agrees_with_full_validation() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut running = Node::default();
        let mut running_count = Some(0);
        let mut accepted = 0;
        let mut pruned = 0;
        // Grow past the pruning threshold first so large maps are really pruned; one bad
        // entry in a created subtree must still be found.
        for bad in [true, false] {
            let mut new = running.clone();
            for i in 0..100 {
                let t = if bad && i == 70 {
                    "t:nope"
                } else {
                    "t:ethernetCsmacd"
                };
                let x = format!(
                    "{HEAD}{}</config>",
                    iface(&format!("base{i}"), &format!("<type>{t}</type>"))
                );
                merge_config(&mut new, &x);
            }
            let r = validate_change(true, running_count, &new, &diff(&running, &new));
            assert_eq!(r.is_err(), bad);
            if !bad {
                running = new;
                running_count = Some(0);
            }
        }
        for step in 0..400 {
            let mut new = running.clone();
            let edit = random_edit(&mut rnd);
            if !apply(
                &mut new,
                &parse(edit.as_bytes()).unwrap(),
                Operation::Merge,
                false,
            )
            .is_empty()
            {
                continue;
            }
            let changes = diff(&running, &new);
            let full = validate::validate(&new);
            let fast = validate_change(true, running_count, &new, &changes);
            if count(&new) == 0 {
                pruned += 1;
            }
            assert_eq!(
                fast.is_ok(),
                full.is_ok(),
                "step {step}: {edit}\nfast {fast:?}\nfull {full:?}"
            );
            if let Ok(c) = fast {
                assert_eq!(c, count(&new), "step {step}: count drifted");
                running = new;
                running_count = Some(c);
                accepted += 1;
            }
        }
        assert!(accepted > 50, "too few accepted edits: {accepted}");
        assert!(pruned > 100, "the pruned path ran only {pruned} times");
        assert!(!root_is_relevant());
    }

    /// Access-control rules (unions of strings, no references) keep the incremental path open;
    /// a leafref instance closes it.
    #[test]
    fn unions_without_references_are_local() {
        let nacm = format!(
            "{HEAD}<nacm xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-acm\"><rule-list><name>r</name><group>*</group><rule><name>x</name><module-name>*</module-name><access-operations>*</access-operations><action>permit</action></rule></rule-list></nacm></config>"
        );
        let mut t = Node::default();
        merge_config(&mut t, &nacm);
        assert_eq!(count(&t), 0);
        let profile = format!("{HEAD}{}</config>", iface("e1", "<type>t:ethernetCsmacd</type><member-of-eth-trunk xmlns=\"urn:mldhb:yang:mldhb-etrunk\">1</member-of-eth-trunk>"));
        merge_config(&mut t, &profile);
        assert!(count(&t) > 0);
    }
}
