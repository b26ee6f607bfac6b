//! NETCONF access control (RFC 8341): rules from `/nacm` in running, checked for protocol
//! operations, data nodes and notifications.
//!
//! The rules are compiled once per change of the `/nacm` subtree (compared by pointer) and
//! narrowed to one user's groups per operation. Reads of data are pruned with a walk only when a
//! rule could hide part of the tree; otherwise at most the `nacm:default-deny-all` nodes go.

use crate::datastore::tree::{Change, Node, NodeKey};
use crate::rpc_error::{ErrorTag, ErrorType, RpcError};
use crate::xml::Element;
use crate::yang::schema;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

pub const NS_ACM: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm";
const ACM: &str = "ietf-netconf-acm";

pub const CREATE: u8 = 1;
pub const READ: u8 = 2;
pub const UPDATE: u8 = 4;
pub const DELETE: u8 = 8;
pub const EXEC: u8 = 16;
const ALL: u8 = 31;

/// What the agent configuration adds to the rules in the datastore.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// False: no access control at all (embedded uses and unit tests).
    pub enforce: bool,
    /// Groups of each user from the agent configuration, added to `/nacm/groups`.
    pub user_groups: HashMap<String, Vec<String>>,
    /// A user whose sessions bypass access control (RFC 8341 §3.4 recovery session).
    pub recovery_user: Option<String>,
    /// The `/nacm` subtree used while running holds no `/nacm` at all.
    pub fallback: Option<Arc<Node>>,
}

/// Access control state of one agent: settings, compiled rules and denial counters.
#[derive(Default)]
pub struct Nacm {
    settings: Settings,
    pub denied_operations: AtomicU64,
    pub denied_data_writes: AtomicU64,
    pub denied_notifications: AtomicU64,
    cache: Mutex<Option<(Arc<Node>, Arc<Rules>)>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    /// None: any module (an unprefixed first step).
    module: Option<String>,
    /// "*" matches any name.
    name: String,
    /// Key predicates `[name='value']`; `.` for a leaf-list value.
    preds: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
enum Target {
    Any,
    /// None: every operation.
    Rpc(Option<String>),
    Notification(Option<String>),
    /// None: a path the agent could not read; the rule never matches.
    Path(Option<Vec<Step>>),
}

#[derive(Debug, Clone)]
struct Rule {
    module: Option<String>,
    target: Target,
    ops: u8,
    permit: bool,
}

#[derive(Debug, Default)]
struct Rules {
    enabled: bool,
    read_default: bool,
    write_default: bool,
    exec_default: bool,
    /// Group name → members.
    groups: Vec<(String, Vec<String>)>,
    /// (groups of the rule-list, its rules), in evaluation order.
    lists: Vec<(Vec<String>, Vec<Rule>)>,
}

/// Access control for one user, from the rules in force when it was made.
#[derive(Debug, Clone)]
pub struct Access {
    bypass: bool,
    read_default: bool,
    write_default: bool,
    exec_default: bool,
    rules: Vec<Rule>,
}

/// Result of a write check: the first denied node.
pub struct Denied(pub String);

impl Nacm {
    pub fn new(settings: Settings) -> Self {
        Nacm {
            settings,
            ..Default::default()
        }
    }

    /// The access of `user` under the rules in `running`.
    pub fn access(&self, running: &Node, user: &str) -> Access {
        if !self.settings.enforce || self.settings.recovery_user.as_deref() == Some(user) {
            return Access::permit_all();
        }
        let stored = running
            .children
            .get(&NodeKey::new(ACM, "nacm"))
            .cloned()
            .or_else(|| self.settings.fallback.clone())
            .unwrap_or_default();
        let rules = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match &*cache {
                Some((n, r)) if Arc::ptr_eq(n, &stored) => Arc::clone(r),
                _ => {
                    let r = Arc::new(compile(&stored));
                    *cache = Some((stored, Arc::clone(&r)));
                    r
                }
            }
        };
        if !rules.enabled {
            return Access::permit_all();
        }
        let mut groups: Vec<&str> = rules
            .groups
            .iter()
            .filter(|(_, users)| users.iter().any(|u| u == user))
            .map(|(g, _)| g.as_str())
            .collect();
        if let Some(extra) = self.settings.user_groups.get(user) {
            groups.extend(extra.iter().map(String::as_str));
        }
        let mut applicable = Vec::new();
        if !groups.is_empty() {
            for (lgroups, lrules) in &rules.lists {
                if lgroups
                    .iter()
                    .any(|g| g == "*" || groups.contains(&g.as_str()))
                {
                    applicable.extend(lrules.iter().cloned());
                }
            }
        }
        Access {
            bypass: false,
            read_default: rules.read_default,
            write_default: rules.write_default,
            exec_default: rules.exec_default,
            rules: applicable,
        }
    }

    /// Checks a protocol operation before it runs; counts a denial.
    pub fn check_exec(&self, access: &Access, op: &Element) -> Result<(), RpcError> {
        let module = schema::module_of(&op.ns).unwrap_or(if op.ns == super::NS_BASE {
            "ietf-netconf"
        } else {
            ""
        });
        if access.may_exec(module, &op.name) {
            return Ok(());
        }
        self.denied_operations.fetch_add(1, Ordering::Relaxed);
        Err(RpcError::new(
            ErrorType::Protocol,
            ErrorTag::AccessDenied,
            format!("access to operation <{}> is denied", op.name),
        ))
    }

    /// Checks every change from `old` to `new`; counts a denial.
    pub fn check_write(&self, access: &Access, old: &Node, new: &Node) -> Result<(), RpcError> {
        if [CREATE, UPDATE, DELETE]
            .iter()
            .all(|op| matches!(access.uniform(*op), Ok(Some(true))))
        {
            return Ok(());
        }
        let changes = crate::datastore::tree::diff(old, new);
        match access.check_changes(old, new, &changes) {
            Ok(()) => Ok(()),
            Err(Denied(path)) => {
                self.denied_data_writes.fetch_add(1, Ordering::Relaxed);
                Err(RpcError::new(
                    ErrorType::Application,
                    ErrorTag::AccessDenied,
                    "access to the data node is denied",
                )
                .with_path(path))
            }
        }
    }

    /// Adds the denial counters to a `<get>` tree.
    pub fn merge_state(&self, tree: &mut Node) {
        for (name, c) in [
            ("denied-operations", &self.denied_operations),
            ("denied-data-writes", &self.denied_data_writes),
            ("denied-notifications", &self.denied_notifications),
        ] {
            tree.insert(
                &[NodeKey::new(ACM, "nacm"), NodeKey::new(ACM, name)],
                Arc::new(Node::leaf(c.load(Ordering::Relaxed).to_string())),
            );
        }
    }
}

/// What of `notification` (the event element) `user` may see under the rules in running: None
/// when nothing (the denial is counted), Some(None) when all of it, Some(Some(part)) when a
/// netconf-config-change loses the edits whose targets the user may not read (RFC 8341 §3.4.6
/// and §3.2.4: omitted silently). For the notification sender.
pub fn visible(
    shared: &super::Shared,
    user: &str,
    notification: &Element,
) -> Option<Option<Element>> {
    let running = shared
        .northbound()
        .get(crate::datastore::Datastore::Running);
    let access = shared.nacm.access(&running, user);
    if !access.may_receive(notification) {
        shared
            .nacm
            .denied_notifications
            .fetch_add(1, Ordering::Relaxed);
        return None;
    }
    if notification.name != "netconf-config-change" || notification.ns != super::notify::NS_NCN {
        return Some(None);
    }
    Some(access.readable_edits(notification))
}

fn path_string(keys: &[NodeKey]) -> String {
    let mut s = String::new();
    for k in keys {
        s.push('/');
        s.push_str(&k.module);
        s.push(':');
        s.push_str(&k.name);
    }
    s
}

impl Access {
    pub fn permit_all() -> Self {
        Access {
            bypass: true,
            read_default: true,
            write_default: true,
            exec_default: true,
            rules: Vec::new(),
        }
    }

    /// RFC 8341 §3.4.4.
    pub fn may_exec(&self, module: &str, name: &str) -> bool {
        if self.bypass || (module == "ietf-netconf" && name == "close-session") {
            return true;
        }
        for r in &self.rules {
            if r.ops & EXEC == 0 || !module_matches(&r.module, module) {
                continue;
            }
            let hit = match &r.target {
                Target::Any => true,
                Target::Rpc(n) => n.as_deref().is_none_or(|n| n == name),
                _ => false,
            };
            if hit {
                return r.permit;
            }
        }
        if tags().rpcs.iter().any(|(m, n)| m == module && n == name) {
            return false;
        }
        // RFC 8341 §3.4.4 step 11: kill-session and delete-config need an explicit rule.
        if module == "ietf-netconf" && (name == "kill-session" || name == "delete-config") {
            return false;
        }
        self.exec_default
    }

    /// A netconf-config-change without the edits whose targets this user may not read; None
    /// when nothing is hidden. A target that does not parse is hidden.
    pub fn readable_edits(&self, change: &Element) -> Option<Element> {
        if self.reads_everything() {
            return None;
        }
        let readable = |edit: &Element| {
            let Some(target) = edit.children.iter().find(|c| c.name == "target") else {
                return true;
            };
            match super::notify::parse_instance_identifier(target.text.trim()) {
                Some((keys, nodes)) => {
                    let refs: Vec<&Node> = nodes.iter().collect();
                    self.may_access(&keys, &refs, READ)
                }
                None => false,
            }
        };
        let hidden = change
            .children
            .iter()
            .any(|c| c.name == "edit" && !readable(c));
        hidden.then(|| {
            let mut part = change.clone();
            part.children.retain(|c| c.name != "edit" || readable(c));
            part
        })
    }

    /// RFC 8341 §3.4.6; replayComplete and notificationComplete always pass.
    pub fn may_receive(&self, notification: &Element) -> bool {
        if self.bypass {
            return true;
        }
        let event = if notification.name == "notification" {
            match notification.children.iter().find(|c| c.name != "eventTime") {
                Some(e) => e,
                None => return true,
            }
        } else {
            notification
        };
        if event.name == "replayComplete" || event.name == "notificationComplete" {
            return true;
        }
        let module = schema::module_of(&event.ns).unwrap_or("");
        for r in &self.rules {
            if r.ops & READ == 0 || !module_matches(&r.module, module) {
                continue;
            }
            let hit = match &r.target {
                Target::Any => true,
                Target::Notification(n) => n.as_deref().is_none_or(|n| n == event.name),
                _ => false,
            };
            if hit {
                return r.permit;
            }
        }
        if tags()
            .notifications
            .iter()
            .any(|(m, n)| m == module && *n == event.name)
        {
            return false;
        }
        self.read_default
    }

    /// RFC 8341 §3.4.5 for one node; `nodes[i]` is the node named by `keys[i]`.
    pub fn may_access(&self, keys: &[NodeKey], nodes: &[&Node], op: u8) -> bool {
        if self.bypass {
            return true;
        }
        let Some(last) = keys.last() else {
            return true;
        };
        for r in &self.rules {
            if r.ops & op == 0 || !module_matches(&r.module, &last.module) {
                continue;
            }
            let hit = match &r.target {
                Target::Any => true,
                Target::Path(Some(steps)) => path_matches(steps, keys, nodes),
                _ => false,
            };
            if hit {
                return r.permit;
            }
        }
        let tag = tag_of(keys);
        if tag == Some(Tag::DenyAll) {
            return false;
        }
        if op == READ {
            return self.read_default;
        }
        if tag == Some(Tag::DenyWrite) {
            return false;
        }
        self.write_default
    }

    /// One verdict for every data node for `op`, when no rule tells nodes apart: Some(permit)
    /// from a rule that matches everything, or None when per-node defaults apply.
    fn uniform(&self, op: u8) -> Result<Option<bool>, ()> {
        if self.bypass {
            return Ok(Some(true));
        }
        for r in &self.rules {
            if r.ops & op == 0 {
                continue;
            }
            match (&r.module, &r.target) {
                (None, Target::Any) => return Ok(Some(r.permit)),
                (_, Target::Rpc(_)) | (_, Target::Notification(_)) => {}
                _ => return Err(()),
            }
        }
        Ok(None)
    }

    /// True when nothing is ever hidden from this user.
    pub fn reads_everything(&self) -> bool {
        matches!(self.uniform(READ), Ok(Some(true)))
    }

    /// Removes from `tree` what the user may not read (RFC 8341 §3.2.4: silently omitted).
    pub fn prune(&self, tree: &mut Node) {
        match self.uniform(READ) {
            Ok(Some(true)) => {}
            Ok(Some(false)) => *tree = Node::default(),
            Ok(None) if !self.read_default => *tree = Node::default(),
            Ok(None) => {
                // Only the default-deny-all nodes go; no need to visit anything else.
                for path in &tags().data {
                    if path.1 == Tag::DenyAll {
                        remove_schema_path(tree, &path.0);
                    }
                }
            }
            Err(()) => {
                let mut keys = Vec::new();
                let mut nodes = Vec::new();
                if let Some(new) = self.prune_children(tree, &mut keys, &mut nodes) {
                    *tree = new;
                }
            }
        }
    }

    fn prune_children<'a>(
        &self,
        node: &'a Node,
        keys: &mut Vec<NodeKey>,
        nodes: &mut Vec<&'a Node>,
    ) -> Option<Node> {
        let mut out: Option<Node> = None;
        for (k, c) in &node.children {
            keys.push(k.clone());
            nodes.push(c);
            if !self.may_access(keys, nodes, READ) {
                out.get_or_insert_with(|| node.clone()).children.remove(k);
            } else if let Some(nc) = self.prune_children(c, keys, nodes) {
                out.get_or_insert_with(|| node.clone())
                    .children
                    .insert(k.clone(), Arc::new(nc));
            }
            keys.pop();
            nodes.pop();
        }
        out
    }

    /// Checks create/update/delete of every changed node (and of every node in a created or
    /// deleted subtree).
    pub fn check_changes(&self, old: &Node, new: &Node, changes: &[Change]) -> Result<(), Denied> {
        if changes.is_empty() {
            return Ok(());
        }
        for c in changes {
            let (op, tree) = match c {
                Change::Created(..) => (CREATE, new),
                Change::Deleted(..) => (DELETE, old),
                Change::Modified(..) => (UPDATE, new),
            };
            match self.uniform(op) {
                Ok(Some(true)) => continue,
                Ok(Some(false)) => return Err(Denied(path_string(c.path()))),
                _ => {}
            }
            let keys = c.path().to_vec();
            let mut nodes = Vec::with_capacity(keys.len());
            let mut cur = tree;
            for k in &keys {
                match cur.children.get(k) {
                    Some(n) => {
                        cur = n;
                        nodes.push(&**n);
                    }
                    None => break,
                }
            }
            if nodes.len() != keys.len() {
                continue;
            }
            if !self.may_access(&keys, &nodes, op) {
                return Err(Denied(path_string(&keys)));
            }
            if op != UPDATE {
                let mut keys = keys;
                self.check_subtree(cur, &mut keys, &mut nodes, op)?;
            }
        }
        Ok(())
    }

    fn check_subtree<'a>(
        &self,
        node: &'a Node,
        keys: &mut Vec<NodeKey>,
        nodes: &mut Vec<&'a Node>,
        op: u8,
    ) -> Result<(), Denied> {
        for (k, c) in &node.children {
            keys.push(k.clone());
            nodes.push(c);
            if !self.may_access(keys, nodes, op) {
                return Err(Denied(path_string(keys)));
            }
            self.check_subtree(c, keys, nodes, op)?;
            keys.pop();
            nodes.pop();
        }
        Ok(())
    }
}

fn module_matches(rule: &Option<String>, module: &str) -> bool {
    rule.as_deref().is_none_or(|m| m == module)
}

/// A rule path selects a node and its descendants: every step must match, in order.
fn path_matches(steps: &[Step], keys: &[NodeKey], nodes: &[&Node]) -> bool {
    if steps.len() > keys.len() {
        return false;
    }
    steps.iter().zip(keys).zip(nodes).all(|((s, k), n)| {
        s.module.as_deref().is_none_or(|m| m == k.module)
            && (s.name == "*" || s.name == k.name)
            && s.preds.iter().all(|(pk, pv)| {
                if pk == "." {
                    k.id.first() == Some(pv)
                } else {
                    n.children
                        .iter()
                        .any(|(ck, cn)| ck.name == *pk && cn.value.as_deref() == Some(pv))
                }
            })
    })
}

// ----- compiling the rules -----

fn leaf<'a>(n: &'a Node, name: &str) -> Option<&'a str> {
    n.leaf_value(ACM, name)
}

fn entries<'a>(n: &'a Node, name: &'a str) -> impl Iterator<Item = &'a Arc<Node>> + 'a {
    n.children
        .iter()
        .filter(move |(k, _)| k.module == ACM && k.name == name)
        .map(|(_, v)| v)
}

fn values<'a>(n: &'a Node, name: &'a str) -> Vec<String> {
    n.children
        .keys()
        .filter(|k| k.module == ACM && k.name == name)
        .filter_map(|k| k.id.first().cloned())
        .collect()
}

fn compile(nacm: &Node) -> Rules {
    let permit = |name: &str, default: bool| match leaf(nacm, name) {
        Some(v) => v == "permit",
        None => default,
    };
    let mut rules = Rules {
        enabled: leaf(nacm, "enable-nacm") != Some("false"),
        read_default: permit("read-default", true),
        write_default: permit("write-default", false),
        exec_default: permit("exec-default", true),
        ..Default::default()
    };
    if let Some(groups) = nacm.children.get(&NodeKey::new(ACM, "groups")) {
        for g in entries(groups, "group") {
            if let Some(name) = leaf(g, "name") {
                rules
                    .groups
                    .push((name.to_string(), values(g, "user-name")));
            }
        }
    }
    // The datastore keeps list entries in key order, so rule-lists and rules are evaluated in
    // the order of their names.
    for list in entries(nacm, "rule-list") {
        let groups = values(list, "group");
        let compiled = entries(list, "rule").map(|r| compile_rule(r)).collect();
        rules.lists.push((groups, compiled));
    }
    rules
}

fn compile_rule(r: &Node) -> Rule {
    let star = |v: Option<&str>| v.filter(|v| *v != "*").map(str::to_string);
    let target = if let Some(v) = leaf(r, "rpc-name") {
        Target::Rpc(star(Some(v)))
    } else if let Some(v) = leaf(r, "notification-name") {
        Target::Notification(star(Some(v)))
    } else if let Some(v) = leaf(r, "path") {
        let parsed = parse_path(v);
        if parsed.is_none() {
            tracing::warn!(
                path = v,
                "NACM rule path not understood; the rule never matches"
            );
        }
        Target::Path(parsed)
    } else {
        Target::Any
    };
    let ops = match leaf(r, "access-operations") {
        None | Some("*") => ALL,
        Some(v) => v.split_whitespace().fold(0, |acc, w| {
            acc | match w {
                "create" => CREATE,
                "read" => READ,
                "update" => UPDATE,
                "delete" => DELETE,
                "exec" => EXEC,
                "*" => ALL,
                _ => 0,
            }
        }),
    };
    Rule {
        module: star(leaf(r, "module-name")),
        target,
        ops,
        permit: leaf(r, "action") == Some("permit"),
    }
}

fn resolve_module(prefix: &str) -> Option<String> {
    if schema::namespace_of(prefix).is_some() {
        Some(prefix.to_string())
    } else {
        crate::yang::schema::module_by_prefix(prefix)
    }
}

/// Parses the common absolute form of a node-instance-identifier:
/// `/p:a/p:b[p:k='v'][q:k2="w"]/c[.='x']`, with module names or YANG prefixes as prefixes;
/// `/` alone selects everything.
fn parse_path(s: &str) -> Option<Vec<Step>> {
    let s = s.trim();
    if s == "/" {
        return Some(Vec::new());
    }
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut steps: Vec<Step> = Vec::new();
    while i < chars.len() {
        if chars[i] != '/' {
            return None;
        }
        i += 1;
        let start = i;
        while i < chars.len() && chars[i] != '/' && chars[i] != '[' {
            i += 1;
        }
        let qname: String = chars[start..i].iter().collect();
        let (module, name) = match qname.split_once(':') {
            Some((p, n)) => (Some(resolve_module(p.trim())?), n.trim().to_string()),
            None => (
                steps.last().and_then(|s| s.module.clone()),
                qname.trim().to_string(),
            ),
        };
        if name.is_empty() {
            return None;
        }
        let mut preds = Vec::new();
        while i < chars.len() && chars[i] == '[' {
            let start = i + 1;
            let mut quote = None;
            while i < chars.len() {
                let c = chars[i];
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == '\'' || c == '"' => quote = Some(c),
                    None if c == ']' => break,
                    None => {}
                }
                i += 1;
            }
            if i >= chars.len() {
                return None;
            }
            let pred: String = chars[start..i].iter().collect();
            i += 1;
            let (k, v) = pred.split_once('=')?;
            let k = k.trim();
            let k = k.split_once(':').map(|(_, n)| n).unwrap_or(k).trim();
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))?;
            preds.push((k.to_string(), v.to_string()));
        }
        steps.push(Step {
            module,
            name,
            preds,
        });
    }
    Some(steps)
}

// ----- nacm:default-deny-all / default-deny-write, resolved against the schema once -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    DenyAll,
    #[allow(dead_code)]
    DenyWrite,
}

#[derive(Default)]
struct Tags {
    /// Schema paths as (module, name) steps.
    data: Vec<(Vec<(String, String)>, Tag)>,
    /// (module, rpc): none in the shipped modules; see `Access::may_exec` for the RFC's two.
    rpcs: Vec<(String, String)>,
    /// (module, notification): none in the shipped modules.
    notifications: Vec<(String, String)>,
}

/// The extensions on the shipped modules' nodes. The yang3 bindings expose no safe access to
/// compiled extension instances, so this mirrors the modules: `/nacm` (ietf-netconf-acm) and the
/// `security-key/key` leaf of the mldhb-types grouping are `default-deny-all`; no shipped node is
/// `default-deny-write`. Keep in step with `grep -r nacm:default-deny yang/`.
fn ext_tag(path: &[(String, String)]) -> Option<Tag> {
    match path {
        [(m, n)] if m == ACM && n == "nacm" => Some(Tag::DenyAll),
        [.., (_, p), (m, n)] if m.starts_with("mldhb-") && p == "security-key" && n == "key" => {
            Some(Tag::DenyAll)
        }
        _ => None,
    }
}

fn collect_tags(s: &schema::Schema, path: &mut Vec<(String, String)>, out: &mut Tags) {
    path.push((s.module().name().to_string(), s.name().to_string()));
    if let Some(t) = ext_tag(path) {
        out.data.push((path.clone(), t));
    } else {
        for c in schema::data_children(s) {
            collect_tags(&c, path, out);
        }
    }
    path.pop();
}

fn tags() -> &'static Tags {
    static T: OnceLock<Tags> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Tags::default();
        let mut path = Vec::new();
        for s in schema::top_level() {
            collect_tags(&s, &mut path, &mut t);
        }
        t
    })
}

/// The tag on the node at `keys` or on one of its ancestors (the extensions cover a subtree).
fn tag_of(keys: &[NodeKey]) -> Option<Tag> {
    let mut best = None;
    for (path, tag) in &tags().data {
        if path.len() <= keys.len()
            && path
                .iter()
                .zip(keys)
                .all(|((m, n), k)| *m == k.module && *n == k.name)
        {
            if *tag == Tag::DenyAll {
                return Some(Tag::DenyAll);
            }
            best = Some(*tag);
        }
    }
    best
}

/// Removes every instance of a schema path.
fn remove_schema_path(node: &mut Node, path: &[(String, String)]) {
    let Some(((m, n), rest)) = path.split_first() else {
        return;
    };
    let hits: Vec<NodeKey> = node
        .children
        .keys()
        .filter(|k| k.module == *m && k.name == *n)
        .cloned()
        .collect();
    for k in hits {
        if rest.is_empty() {
            node.children.remove(&k);
        } else if let Some(c) = node.children.get_mut(&k) {
            remove_schema_path(Arc::make_mut(c), rest);
        }
    }
}

// ----- the initial rules of a new datastore -----

/// `/nacm` for a new datastore: group `admin` with full access, group `operator` read-only,
/// members from the agent configuration.
pub fn seed_xml(user_groups: &HashMap<String, Vec<String>>) -> String {
    let esc = crate::xml::escape_text;
    let members = |group: &str| {
        let mut users: Vec<&String> = user_groups
            .iter()
            .filter(|(_, gs)| gs.iter().any(|g| g == group))
            .map(|(u, _)| u)
            .collect();
        users.sort();
        users
            .iter()
            .map(|u| format!("<user-name>{}</user-name>", esc(u)))
            .collect::<String>()
    };
    let deny_ops: String = [
        "edit-config",
        "copy-config",
        "delete-config",
        "commit",
        "discard-changes",
        "cancel-commit",
        "lock",
        "unlock",
        "kill-session",
    ]
    .iter()
    .map(|op| {
        format!(
            "<rule><name>deny-{op}</name><module-name>ietf-netconf</module-name>\
             <rpc-name>{op}</rpc-name><access-operations>exec</access-operations>\
             <action>deny</action></rule>"
        )
    })
    .collect();
    format!(
        "<config xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">\
         <nacm xmlns=\"{NS_ACM}\">\
         <groups>\
         <group><name>admin</name>{}</group>\
         <group><name>operator</name>{}</group>\
         </groups>\
         <rule-list><name>admin</name><group>admin</group>\
         <rule><name>permit-all</name><module-name>*</module-name>\
         <access-operations>*</access-operations><action>permit</action></rule>\
         </rule-list>\
         <rule-list><name>operator</name><group>operator</group>{deny_ops}</rule-list>\
         </nacm></config>",
        members("admin"),
        members("operator"),
    )
}

/// The seed `/nacm` subtree as a tree holding only `/nacm`.
pub fn seed(user_groups: &HashMap<String, Vec<String>>) -> Node {
    let xml = seed_xml(user_groups);
    let el = crate::xml::parse(xml.as_bytes()).expect("seed NACM XML is well formed");
    super::ops::inline_config(&el).expect("seed NACM rules fit ietf-netconf-acm")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::northbound::edit::{config_tree, store_path};
    use crate::xml::parse;

    fn tree(xml: &str) -> Node {
        config_tree(&format!(
            "<config xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">{xml}</config>"
        ))
    }

    fn nacm(groups: &[(&str, &[&str])]) -> Nacm {
        let user_groups: HashMap<String, Vec<String>> = groups
            .iter()
            .map(|(u, g)| (u.to_string(), g.iter().map(|s| s.to_string()).collect()))
            .collect();
        Nacm::new(Settings {
            enforce: true,
            user_groups,
            recovery_user: Some("root".into()),
            fallback: None,
        })
    }

    const IFS: &str = "<interfaces xmlns=\"urn:ietf:params:xml:ns:yang:ietf-interfaces\" \
        xmlns:t=\"urn:ietf:params:xml:ns:yang:iana-if-type\">\
        <interface><name>a</name><type>t:ethernetCsmacd</type><description>x</description></interface>\
        <interface><name>b</name><type>t:ethernetCsmacd</type></interface></interfaces>";

    #[test]
    fn seed_gives_admin_everything_and_operator_reads() {
        let n = nacm(&[("alice", &["admin"]), ("op", &["operator"])]);
        let mut running = seed(&n.settings.user_groups);
        let ifs = tree(IFS);
        for (k, v) in &ifs.children {
            running.children.insert(k.clone(), v.clone());
        }
        let admin = n.access(&running, "alice");
        assert!(admin.may_exec("ietf-netconf", "kill-session"));
        let mut t = running.clone();
        admin.prune(&mut t);
        assert_eq!(t, running);
        let op = n.access(&running, "op");
        assert!(!op.may_exec("ietf-netconf", "edit-config"));
        assert!(!op.may_exec("ietf-netconf", "kill-session"));
        assert!(op.may_exec("ietf-netconf", "get"));
        assert!(op.may_exec("ietf-netconf", "close-session"));
        let mut t = running.clone();
        op.prune(&mut t);
        assert!(!t.children.contains_key(&NodeKey::new(ACM, "nacm")));
        assert_eq!(t.children.len(), 1);
        let mut edited = running.clone();
        edited.remove(&[
            NodeKey::new("ietf-interfaces", "interfaces"),
            NodeKey::with_id("ietf-interfaces", "interface", vec!["b".into()]),
        ]);
        assert!(n.check_write(&op, &running, &edited).is_err());
        assert!(n.check_write(&admin, &running, &edited).is_ok());
        assert_eq!(n.denied_data_writes.load(Ordering::Relaxed), 1);
        let root = n.access(&running, "root");
        assert!(root.may_exec("ietf-netconf", "kill-session"));
        // Nobody's groups: defaults, and /nacm is default-deny-all.
        let other = n.access(&running, "nobody");
        assert!(!other.may_exec("ietf-netconf", "delete-config"));
        assert!(other.may_exec("ietf-netconf", "edit-config"));
    }

    #[test]
    fn config_change_notifications_lose_the_edits_the_receiver_may_not_read() {
        let n = nacm(&[("u", &["g"])]);
        let running = tree(&format!(
            "{IFS}<nacm xmlns=\"{NS_ACM}\"><rule-list><name>l</name><group>g</group>\
             <rule><name>a-hide</name><path>/if:interfaces/if:interface[if:name='a']</path>\
             <access-operations>read</access-operations><action>deny</action></rule>\
             </rule-list></nacm>"
        ));
        let iface = |name: &str| {
            vec![
                NodeKey::new("ietf-interfaces", "interfaces"),
                NodeKey::with_id("ietf-interfaces", "interface", vec![name.into()]),
                NodeKey::new("ietf-interfaces", "description"),
            ]
        };
        let changes = [
            Change::Modified(iface("a"), None, Some("x".into())),
            Change::Modified(iface("b"), None, Some("y".into())),
            Change::Modified(
                vec![NodeKey::new(ACM, "nacm"), NodeKey::new(ACM, "enable-nacm")],
                None,
                Some("false".into()),
            ),
        ];
        let event = super::super::notify::config_change(None, "running", &changes);
        let part = n
            .access(&running, "u")
            .readable_edits(&event)
            .expect("edits hidden");
        let targets: Vec<&str> = part
            .children
            .iter()
            .filter(|c| c.name == "edit")
            .filter_map(|e| e.children.iter().find(|c| c.name == "target"))
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(
            targets,
            ["/ietf-interfaces:interfaces/ietf-interfaces:interface[ietf-interfaces:name='b']/ietf-interfaces:description"]
        );
        // Someone who reads everything gets the event as it is.
        assert!(Access::permit_all().readable_edits(&event).is_none());
    }

    #[test]
    fn path_rules_hide_and_permit_subtrees() {
        let n = nacm(&[("u", &["g"])]);
        let running = tree(&format!(
            "{IFS}<nacm xmlns=\"{NS_ACM}\"><rule-list><name>l</name><group>g</group>\
             <rule><name>a-hide</name><path>/if:interfaces/if:interface[if:name='a']</path>\
             <access-operations>read</access-operations><action>deny</action></rule>\
             <rule><name>b-write</name><module-name>ietf-interfaces</module-name>\
             <path>/ietf-interfaces:interfaces/interface[name=\"b\"]</path>\
             <access-operations>create update delete</access-operations><action>permit</action></rule>\
             </rule-list></nacm>"
        ));
        let u = n.access(&running, "u");
        let mut t = running.clone();
        u.prune(&mut t);
        let ifs = t
            .get(&[NodeKey::new("ietf-interfaces", "interfaces")])
            .unwrap();
        assert_eq!(ifs.children.len(), 1);
        let b = [
            NodeKey::new("ietf-interfaces", "interfaces"),
            NodeKey::with_id("ietf-interfaces", "interface", vec!["b".into()]),
        ];
        let mut edited = running.clone();
        edited.insert(
            &[
                b[0].clone(),
                b[1].clone(),
                NodeKey::new("ietf-interfaces", "description"),
            ],
            Arc::new(Node::leaf("new")),
        );
        assert!(n.check_write(&u, &running, &edited).is_ok());
        let mut edited = running.clone();
        edited.insert(
            &[
                b[0].clone(),
                NodeKey::with_id("ietf-interfaces", "interface", vec!["a".into()]),
                NodeKey::new("ietf-interfaces", "description"),
            ],
            Arc::new(Node::leaf("new")),
        );
        assert!(n.check_write(&u, &running, &edited).is_err());
    }

    #[test]
    fn notifications_follow_rules_and_defaults() {
        let n = nacm(&[("u", &["g"])]);
        let running = tree(&format!(
            "<nacm xmlns=\"{NS_ACM}\"><rule-list><name>l</name><group>g</group>\
             <rule><name>r</name><module-name>ietf-netconf-notifications</module-name>\
             <notification-name>netconf-session-start</notification-name>\
             <access-operations>read</access-operations><action>deny</action></rule>\
             </rule-list></nacm>"
        ));
        let u = n.access(&running, "u");
        let ncn = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications";
        let wrap = |name: &str, ns: &str| {
            parse(
                format!(
                    "<notification xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\">\
                     <eventTime>2026-01-01T00:00:00Z</eventTime><{name} xmlns=\"{ns}\"/></notification>"
                )
                .as_bytes(),
            )
            .unwrap()
        };
        assert!(!u.may_receive(&wrap("netconf-session-start", ncn)));
        assert!(u.may_receive(&wrap("netconf-session-end", ncn)));
        assert!(u.may_receive(&wrap(
            "replayComplete",
            "urn:ietf:params:xml:ns:netmod:notification"
        )));
        assert!(n
            .access(&running, "root")
            .may_receive(&wrap("netconf-session-start", ncn)));
    }

    #[test]
    fn paths_parse() {
        let p = parse_path("/if:interfaces/interface[name='a b'][x:y=\"c\"]").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].module.as_deref(), Some("ietf-interfaces"));
        assert_eq!(p[1].preds[1], ("y".into(), "c".into()));
        assert!(parse_path("/nope:x").is_none());
        assert!(parse_path("/").unwrap().is_empty());
        assert_eq!(
            store_path(
                "/if:interfaces/x:interface[x:name='a:b']",
                &[(
                    "x".into(),
                    "urn:ietf:params:xml:ns:yang:ietf-interfaces".into()
                )]
            ),
            "/ietf-interfaces:interfaces/ietf-interfaces:interface[ietf-interfaces:name='a:b']"
        );
    }

    #[test]
    fn schema_extensions_are_found() {
        assert_eq!(
            tag_of(&[NodeKey::new(ACM, "nacm"), NodeKey::new(ACM, "groups")]),
            Some(Tag::DenyAll)
        );
        assert!(tags().data.len() >= 2, "{:?}", tags().data.len());
    }
}
