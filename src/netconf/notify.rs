//! Event notifications (RFC 5277 :notification and :interleave) and the NETCONF base events of
//! RFC 6470 (ietf-netconf-notifications).
//!
//! Every event goes through one [`Hub`]: it is stamped, appended to a bounded replay log kept in
//! sled (so replay survives restarts), and broadcast to the subscribed sessions. The only
//! stream is `NETCONF`.
//!
//! Other modules publish with [`super::Shared::publish`]. Hooks left for other features:
//! - confirmed commit, on each confirm event, makes one call:
//!   `shared.publish(notify::confirmed_commit(by, event, timeout))` with `event` one of start,
//!   cancel, timeout, extend, complete; `by` is `Some(&shared.session_by(id))` except for
//!   timeout (None); `timeout` is the remaining seconds for start and extend (else None).
//! - a rollback of running that no rpc asked for (confirmed-commit timeout) reports what it
//!   changed with `shared.config_changed(None, &nb.take_running_changes())` (changed-by server).

use crate::bytes::Reader;
use crate::datastore::tree::{Change, Node, NodeKey};
use crate::rpc_error::{ErrorTag, RpcError};
use crate::xml::{self, Element};
use crate::yang::{date_and_time, schema};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

pub const NS_NOTIF: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";
pub const NS_NCN: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications";
pub const NS_NC_EVENTS: &str = "urn:ietf:params:xml:ns:netmod:notification";
pub const CAP_NOTIFICATION: &str = "urn:ietf:params:netconf:capability:notification:1.0";
pub const CAP_INTERLEAVE: &str = "urn:ietf:params:netconf:capability:interleave:1.0";
/// The one event stream.
pub const STREAM: &str = "NETCONF";
/// How many events a subscriber may fall behind before it misses some.
const CHANNEL_CAPACITY: usize = 1024;
/// At most this many `<edit>` entries go into one netconf-config-change event.
pub const MAX_EDITS: usize = crate::northbound::MAX_RUNNING_CHANGES;

/// One event: when it happened, its position in the log, and its content element.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: u64,
    pub time: SystemTime,
    pub content: Element,
}

impl Event {
    /// The complete `<notification>` message.
    pub fn to_xml(&self) -> String {
        self.to_xml_with(None)
    }

    /// The notification with `content` in place of the event's own (the part a receiver may
    /// see), when given.
    pub fn to_xml_with(&self, content: Option<&Element>) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        s.push_str("<notification xmlns=\"");
        s.push_str(NS_NOTIF);
        s.push_str("\"><eventTime>");
        s.push_str(&event_time(self.time));
        s.push_str("</eventTime>");
        content.unwrap_or(&self.content).write_xml(&mut s, NS_NOTIF);
        s.push_str("</notification>");
        s
    }
}

/// RFC 3339 with microseconds, UTC.
pub fn event_time(t: SystemTime) -> String {
    let secs = date_and_time(t);
    let micros = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_micros())
        .unwrap_or(0);
    format!("{}.{micros:06}Z", secs.trim_end_matches('Z'))
}

/// Parses an RFC 3339 date-and-time (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`).
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u64 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 9)];
        nanos = frac.parse::<u64>().ok()? * 10u64.pow(9 - frac.len() as u32);
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        b'+' | b'-' if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if b[i] == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    // Days since 1970-01-01 from a civil date.
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    if secs < 0 {
        return Some(UNIX_EPOCH);
    }
    Some(UNIX_EPOCH + Duration::from_secs(secs as u64) + Duration::from_nanos(nanos))
}

fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The replay log: sled keys are big-endian sequence numbers, values are the event time in
/// microseconds (8 bytes, big-endian) followed by the content XML.
struct Log {
    tree: sled::Tree,
    max: usize,
    /// Entries in `tree` (sled's own count walks the whole tree).
    len: std::sync::atomic::AtomicUsize,
}

impl Log {
    fn append(&self, ev: &Event) -> Result<(), sled::Error> {
        let mut v = micros(ev.time).to_be_bytes().to_vec();
        v.extend_from_slice(ev.content.to_xml().as_bytes());
        // Callers are serialised by the hub, so the count needs no compare-and-swap.
        if self.tree.insert(ev.seq.to_be_bytes(), v)?.is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        while self.len.load(Ordering::Relaxed) > self.max {
            if self.tree.pop_min()?.is_none() {
                self.len.store(0, Ordering::Relaxed);
                break;
            }
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The sequence number a key holds.
    fn seq(k: &[u8]) -> Option<u64> {
        let mut r = Reader::new(k);
        let seq = r.u64().ok()?;
        r.end().ok().map(|()| seq)
    }

    fn decode(k: &[u8], v: &[u8]) -> Option<Event> {
        let seq = Log::seq(k)?;
        let mut r = Reader::new(v);
        let t = r.u64().ok()?;
        let content = xml::parse(r.rest()).ok()?;
        Some(Event {
            seq,
            time: UNIX_EPOCH + Duration::from_micros(t),
            content,
        })
    }

    fn last_seq(&self) -> u64 {
        self.tree
            .last()
            .ok()
            .flatten()
            .and_then(|(k, _)| Log::seq(&k))
            .unwrap_or(0)
    }
}

/// The broadcast hub every session subscribes to.
pub struct Hub {
    tx: broadcast::Sender<Arc<Event>>,
    log: Option<Log>,
    /// Serialises stamping and logging so the log and the broadcast keep one order.
    order: Mutex<u64>,
    /// Events published since start.
    pub published: AtomicU64,
    /// Events subscribers missed because they fell behind.
    pub lagged: AtomicU64,
}

impl Hub {
    /// A hub whose replay log lives in `tree` (None: no replay) and keeps `max` events.
    pub fn new(tree: Option<sled::Tree>, max: usize) -> Hub {
        Self::with_capacity(tree, max, CHANNEL_CAPACITY)
    }

    fn with_capacity(tree: Option<sled::Tree>, max: usize, capacity: usize) -> Hub {
        let (tx, _) = broadcast::channel(capacity);
        let log = tree.map(|tree| Log {
            len: std::sync::atomic::AtomicUsize::new(tree.len()),
            tree,
            max: max.max(1),
        });
        let last = log.as_ref().map(Log::last_seq).unwrap_or(0);
        Hub {
            tx,
            log,
            order: Mutex::new(last),
            published: AtomicU64::new(0),
            lagged: AtomicU64::new(0),
        }
    }

    /// Stamps, logs and broadcasts one event whose content is `content`.
    pub fn publish(&self, content: Element) {
        let mut seq = self.order.lock().unwrap_or_else(|e| e.into_inner());
        *seq += 1;
        let ev = Arc::new(Event {
            seq: *seq,
            time: SystemTime::now(),
            content,
        });
        if let Some(log) = &self.log {
            if let Err(e) = log.append(&ev) {
                tracing::warn!(error = %e, "could not append to the notification replay log");
            }
        }
        self.published.fetch_add(1, Ordering::Relaxed);
        // No receiver is not an error: nobody is subscribed.
        let _ = self.tx.send(ev);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Logged events with `start <= time` (and `time <= stop`), oldest first.
    pub fn replay(&self, start: SystemTime, stop: Option<SystemTime>) -> Vec<Event> {
        let Some(log) = &self.log else {
            return Vec::new();
        };
        log.tree
            .iter()
            .filter_map(|r| r.ok())
            .filter_map(|(k, v)| Log::decode(&k, &v))
            .filter(|e| e.time >= start && stop.is_none_or(|s| e.time <= s))
            .collect()
    }
}

/// A filter on notification content.
#[derive(Debug, Clone)]
pub enum NotifFilter {
    None,
    Subtree(Vec<Element>),
    XPath(XPath),
}

impl NotifFilter {
    pub fn matches(&self, content: &Element) -> bool {
        match self {
            NotifFilter::None => true,
            NotifFilter::Subtree(f) => {
                !super::filter::filter_siblings(std::slice::from_ref(content), f).is_empty()
            }
            NotifFilter::XPath(x) => x.matches(content),
        }
    }
}

/// One subscription of a session.
pub struct Subscription {
    pub rx: broadcast::Receiver<Arc<Event>>,
    pub filter: NotifFilter,
    pub stop: Option<SystemTime>,
    /// Messages to send before any live event (replayed events, replayComplete).
    pub pending: VecDeque<String>,
    /// Live events up to this sequence number were already replayed.
    pub replayed_upto: u64,
}

/// What the session loop gets from its subscription.
pub enum Wake {
    /// A message to write.
    Message(String),
    /// The subscription ended; write this last message.
    Complete(String),
}

impl Subscription {
    /// Waits for the next message for this subscriber that `allowed` (access control) lets
    /// through.
    pub async fn next(
        &mut self,
        hub: &Hub,
        allowed: impl Fn(&Element) -> Option<Option<Element>>,
    ) -> Wake {
        if let Some(m) = self.pending.pop_front() {
            return Wake::Message(m);
        }
        loop {
            let ev = match self.stop {
                Some(stop) => {
                    let left = stop.duration_since(SystemTime::now()).unwrap_or_default();
                    tokio::select! {
                        r = self.rx.recv() => r,
                        _ = tokio::time::sleep(left) => {
                            return Wake::Complete(signal("notificationComplete"));
                        }
                    }
                }
                None => self.rx.recv().await,
            };
            match ev {
                Ok(ev) => {
                    if ev.seq <= self.replayed_upto || !self.filter.matches(&ev.content) {
                        continue;
                    }
                    let Some(part) = allowed(&ev.content) else {
                        continue;
                    };
                    if self.stop.is_some_and(|s| ev.time > s) {
                        return Wake::Complete(signal("notificationComplete"));
                    }
                    return Wake::Message(ev.to_xml_with(part.as_ref()));
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    hub.lagged.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(missed = n, "a subscriber fell behind and missed events");
                }
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

/// A `<notification>` carrying one RFC 5277 signal (`replayComplete`, `notificationComplete`).
pub fn signal(name: &str) -> String {
    let ev = Event {
        seq: 0,
        time: SystemTime::now(),
        content: Element::new(NS_NC_EVENTS, name),
    };
    ev.to_xml()
}

/// Who made a change or ended a session (`common-session-parms`).
#[derive(Debug, Clone)]
pub struct By {
    pub user: String,
    pub session_id: u32,
    pub source_host: Option<String>,
}

impl By {
    fn fill(&self, el: &mut Element) {
        el.push(Element::with_text(NS_NCN, "username", self.user.clone()));
        el.push(Element::with_text(
            NS_NCN,
            "session-id",
            self.session_id.to_string(),
        ));
        if let Some(h) = &self.source_host {
            el.push(Element::with_text(NS_NCN, "source-host", h.clone()));
        }
    }
}

/// netconf-session-start.
pub fn session_start(by: &By) -> Element {
    let mut el = Element::new(NS_NCN, "netconf-session-start");
    by.fill(&mut el);
    el
}

/// netconf-session-end; `reason` is a termination-reason enum value.
pub fn session_end(by: &By, reason: &str, killed_by: Option<u32>) -> Element {
    let mut el = Element::new(NS_NCN, "netconf-session-end");
    by.fill(&mut el);
    if let Some(k) = killed_by {
        el.push(Element::with_text(NS_NCN, "killed-by", k.to_string()));
    }
    el.push(Element::with_text(NS_NCN, "termination-reason", reason));
    el
}

/// netconf-confirmed-commit; `event` is start, cancel, timeout, extend or complete.
pub fn confirmed_commit(by: Option<&By>, event: &str, timeout_secs: Option<u32>) -> Element {
    let mut el = Element::new(NS_NCN, "netconf-confirmed-commit");
    if let Some(by) = by {
        by.fill(&mut el);
    }
    el.push(Element::with_text(NS_NCN, "confirm-event", event));
    if let Some(t) = timeout_secs {
        el.push(Element::with_text(NS_NCN, "timeout", t.to_string()));
    }
    el
}

/// netconf-config-change for a write to `datastore`, one edit per change (at most
/// [`MAX_EDITS`]).
/// `by` None means the server itself made the change.
pub fn config_change(by: Option<&By>, datastore: &str, changes: &[Change]) -> Element {
    let mut el = Element::new(NS_NCN, "netconf-config-change");
    let mut cb = Element::new(NS_NCN, "changed-by");
    match by {
        Some(by) => by.fill(&mut cb),
        None => {
            cb.push(Element::new(NS_NCN, "server"));
        }
    }
    el.push(cb);
    el.push(Element::with_text(NS_NCN, "datastore", datastore));
    for c in changes.iter().take(MAX_EDITS) {
        let (path, op) = match c {
            Change::Created(p, _) => (p, "create"),
            Change::Deleted(p, _) => (p, "delete"),
            Change::Modified(p, _, _) => (p, "replace"),
        };
        let mut edit = Element::new(NS_NCN, "edit");
        let (target, decls) = instance_identifier(path);
        let mut t = Element::with_text(NS_NCN, "target", target);
        t.ns_decls = decls;
        edit.push(t);
        edit.push(Element::with_text(NS_NCN, "operation", op));
        el.push(edit);
    }
    el
}

/// An instance-identifier for a data path, with module names as prefixes, and the namespace
/// declarations those prefixes need.
pub fn instance_identifier(path: &[NodeKey]) -> (String, Vec<(String, String)>) {
    let mut out = String::new();
    let mut decls: Vec<(String, String)> = Vec::new();
    let declare = |m: &str, decls: &mut Vec<(String, String)>| {
        if !decls.iter().any(|(p, _)| p == m) {
            if let Some(ns) = schema::namespace_of(m) {
                decls.push((m.to_string(), ns.to_string()));
            }
        }
    };
    let mut parent: Option<schema::Schema> = None;
    for k in path {
        declare(&k.module, &mut decls);
        out.push('/');
        out.push_str(&k.module);
        out.push(':');
        out.push_str(&k.name);
        let node = schema::find_child(parent.as_ref(), &k.module, &k.name);
        if !k.id.is_empty() {
            let kind = node.as_ref().map(schema::kind);
            match kind {
                Some(schema::Kind::List { keys }) => {
                    for (name, v) in keys.iter().zip(&k.id) {
                        out.push_str(&format!("[{}:{}={}]", k.module, name, quote(v)));
                    }
                }
                _ => {
                    for v in &k.id {
                        out.push_str(&format!("[.={}]", quote(v)));
                    }
                }
            }
        }
        parent = node;
    }
    (out, decls)
}

/// The data path an [`instance_identifier`] names, with each list entry's key leaves as a node
/// (what access control matches predicates against); None for anything else.
pub fn parse_instance_identifier(s: &str) -> Option<(Vec<NodeKey>, Vec<Node>)> {
    let mut keys = Vec::new();
    let mut nodes = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        rest = rest.strip_prefix('/')?;
        let (module, after) = rest.split_once(':')?;
        let end = after.find(['[', '/']).unwrap_or(after.len());
        let (name, mut after) = after.split_at(end);
        if module.is_empty() || name.is_empty() {
            return None;
        }
        let mut id = Vec::new();
        let mut node = Node::default();
        while let Some(pred) = after.strip_prefix('[') {
            let (key, value) = pred.split_once('=')?;
            let q = value.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            let value = &value[1..];
            let close = value.find(q)?;
            let v = &value[..close];
            after = value[close + 1..].strip_prefix(']')?;
            if key != "." {
                let (km, kn) = key.split_once(':')?;
                node.set_leaf(km, kn, v);
            }
            id.push(v.to_string());
        }
        keys.push(NodeKey::with_id(module, name, id));
        nodes.push(node);
        rest = after;
    }
    (!keys.is_empty()).then_some((keys, nodes))
}

fn quote(v: &str) -> String {
    if v.contains('\'') {
        format!("\"{v}\"")
    } else {
        format!("'{v}'")
    }
}

/// Parses the parameters of `<create-subscription>` into a filter and times, checking them
/// against RFC 5277 §2.1.1.
pub struct Request {
    pub filter: NotifFilter,
    pub start: Option<SystemTime>,
    pub stop: Option<SystemTime>,
}

/// A parameter of create-subscription. Clients put `<filter>` in the notification namespace
/// (RFC 5277) or in the base namespace (ncclient does); both are accepted.
fn param<'a>(el: &'a Element, name: &str) -> Option<&'a Element> {
    el.children
        .iter()
        .find(|c| c.name == name && (c.ns == NS_NOTIF || c.ns.is_empty() || c.ns == super::NS_BASE))
}

fn bad(name: &str, msg: impl Into<String>) -> RpcError {
    RpcError::protocol(ErrorTag::BadElement, msg).with_info("bad-element", name)
}

pub fn parse_request(rpc: &Element, el: &Element) -> Result<Request, RpcError> {
    for c in &el.children {
        if !matches!(
            c.name.as_str(),
            "stream" | "filter" | "startTime" | "stopTime"
        ) || param(el, &c.name).is_none()
        {
            return Err(RpcError::protocol(
                ErrorTag::UnknownElement,
                format!("<create-subscription> has no parameter <{}>", c.name),
            )
            .with_info("bad-element", c.name.clone()));
        }
    }
    if let Some(s) = param(el, "stream") {
        if s.trimmed_text() != STREAM {
            return Err(RpcError::protocol(
                ErrorTag::InvalidValue,
                format!(
                    "unknown stream '{}'; the only stream is {STREAM}",
                    s.trimmed_text()
                ),
            )
            .with_info("bad-element", "stream"));
        }
    }
    let time = |name: &str| -> Result<Option<SystemTime>, RpcError> {
        match param(el, name) {
            None => Ok(None),
            Some(t) => parse_time(t.trimmed_text()).map(Some).ok_or_else(|| {
                bad(
                    name,
                    format!("'{}' is not an RFC 3339 date-and-time", t.trimmed_text()),
                )
            }),
        }
    };
    let start = time("startTime")?;
    let stop = time("stopTime")?;
    if let Some(s) = start {
        if s > SystemTime::now() {
            return Err(bad("startTime", "startTime is in the future"));
        }
    }
    match (start, stop) {
        (None, Some(_)) => {
            return Err(RpcError::protocol(
                ErrorTag::MissingElement,
                "stopTime requires startTime",
            )
            .with_info("bad-element", "stopTime"));
        }
        (Some(a), Some(b)) if b < a => {
            return Err(bad("stopTime", "stopTime is earlier than startTime"));
        }
        _ => {}
    }
    let filter = match param(el, "filter") {
        None => NotifFilter::None,
        Some(f) => {
            let ftype = f.attr("", "type").unwrap_or("subtree");
            match ftype {
                "subtree" => NotifFilter::Subtree(f.children.clone()),
                "xpath" => {
                    let select = super::filter::xpath_select(f)?;
                    let scope = super::filter::prefix_scope(&[rpc, el, f]);
                    NotifFilter::XPath(XPath::parse(select, &scope).map_err(|m| {
                        RpcError::protocol(ErrorTag::InvalidValue, m)
                            .with_info("bad-attribute", "select")
                            .with_info("bad-element", "filter")
                    })?)
                }
                other => return Err(super::filter::unsupported_type(other)),
            }
        }
    };
    Ok(Request {
        filter,
        start,
        stop,
    })
}

/// The XPath subset notification filters support: a union (`|`) of location paths made of
/// child (`/`) and descendant (`//`) steps, names with or without prefix or `*`, and predicates
/// `[name]`, `[name='v']`, `[.='v']`, `[name!='v']` joined with `and`/`or`.
#[derive(Debug, Clone)]
pub struct XPath {
    paths: Vec<Vec<Step>>,
}

#[derive(Debug, Clone)]
struct Step {
    descendant: bool,
    test: NameTest,
    preds: Vec<Pred>,
}

#[derive(Debug, Clone)]
enum NameTest {
    Any,
    Name(Option<String>, String),
}

#[derive(Debug, Clone)]
enum Pred {
    /// Alternatives (or) of conjunctions (and) of conditions.
    Or(Vec<Vec<Cond>>),
}

#[derive(Debug, Clone)]
struct Cond {
    /// None: the context node itself (`.`).
    child: Option<NameTest>,
    /// (negated, literal)
    value: Option<(bool, String)>,
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }
    fn name(&mut self) -> Option<String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric()
                || matches!(self.s[self.i], b'_' | b'-' | b'.')
                || self.s[self.i] >= 0x80)
        {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
}

impl XPath {
    pub fn parse(select: &str, scope: &[(String, String)]) -> Result<XPath, String> {
        let unsupported =
            || format!("unsupported XPath expression in a notification filter: {select}");
        let mut lx = Lexer {
            s: select.as_bytes(),
            i: 0,
        };
        let resolve = |prefix: Option<String>| -> Result<Option<String>, String> {
            match prefix {
                None => Ok(None),
                Some(p) => scope
                    .iter()
                    .rev()
                    .find(|(q, _)| *q == p)
                    .map(|(_, ns)| Some(ns.clone()))
                    .ok_or_else(|| format!("XPath prefix '{p}' is not bound to a namespace")),
            }
        };
        let name_test = |lx: &mut Lexer<'_>| -> Result<NameTest, String> {
            if lx.eat("*") {
                return Ok(NameTest::Any);
            }
            let first = lx.name().ok_or_else(unsupported)?;
            if lx.s.get(lx.i) == Some(&b':') {
                lx.i += 1;
                if lx.eat("*") {
                    return Err(unsupported());
                }
                let local = lx.name().ok_or_else(unsupported)?;
                Ok(NameTest::Name(resolve(Some(first))?, local))
            } else {
                Ok(NameTest::Name(None, first))
            }
        };
        let literal = |lx: &mut Lexer<'_>| -> Result<String, String> {
            lx.ws();
            let q = *lx.s.get(lx.i).ok_or_else(unsupported)?;
            if q != b'\'' && q != b'"' {
                return Err(unsupported());
            }
            let start = lx.i + 1;
            let end = lx.s[start..]
                .iter()
                .position(|&c| c == q)
                .ok_or_else(unsupported)?;
            lx.i = start + end + 1;
            Ok(String::from_utf8_lossy(&lx.s[start..start + end]).into_owned())
        };
        let mut paths = Vec::new();
        loop {
            let mut steps = Vec::new();
            if lx.peek() != Some(b'/') {
                return Err(unsupported());
            }
            while lx.peek() == Some(b'/') {
                let descendant = lx.eat("//") || {
                    lx.eat("/");
                    false
                };
                let test = name_test(&mut lx)?;
                let mut preds = Vec::new();
                while lx.eat("[") {
                    let mut alts = Vec::new();
                    loop {
                        let mut all = Vec::new();
                        loop {
                            let child = if lx.eat(".") {
                                None
                            } else {
                                Some(name_test(&mut lx)?)
                            };
                            let value = if lx.eat("!=") {
                                Some((true, literal(&mut lx)?))
                            } else if lx.eat("=") {
                                Some((false, literal(&mut lx)?))
                            } else {
                                None
                            };
                            all.push(Cond { child, value });
                            if !lx.eat("and") {
                                break;
                            }
                        }
                        alts.push(all);
                        if !lx.eat("or") {
                            break;
                        }
                    }
                    if !lx.eat("]") {
                        return Err(unsupported());
                    }
                    preds.push(Pred::Or(alts));
                }
                steps.push(Step {
                    descendant,
                    test,
                    preds,
                });
            }
            paths.push(steps);
            if !lx.eat("|") {
                break;
            }
        }
        if lx.peek().is_some() {
            return Err(unsupported());
        }
        Ok(XPath { paths })
    }

    /// True when the expression selects anything in a document whose root element is `content`.
    pub fn matches(&self, content: &Element) -> bool {
        self.paths
            .iter()
            .any(|steps| select(std::slice::from_ref(content), steps))
    }
}

fn name_ok(t: &NameTest, e: &Element) -> bool {
    match t {
        NameTest::Any => true,
        NameTest::Name(ns, name) => *name == e.name && ns.as_ref().is_none_or(|n| *n == e.ns),
    }
}

fn cond_ok(c: &Cond, e: &Element) -> bool {
    let check = |x: &Element| match &c.value {
        None => true,
        Some((neg, v)) => (x.trimmed_text() == v) != *neg,
    };
    match &c.child {
        None => check(e),
        Some(t) => e.children.iter().any(|x| name_ok(t, x) && check(x)),
    }
}

fn step_ok(s: &Step, e: &Element) -> bool {
    name_ok(&s.test, e)
        && s.preds
            .iter()
            .all(|Pred::Or(alts)| alts.iter().any(|all| all.iter().all(|c| cond_ok(c, e))))
}

/// True when `steps` select a node starting from `candidates` (the children of the context).
fn select(candidates: &[Element], steps: &[Step]) -> bool {
    let Some((s, rest)) = steps.split_first() else {
        return true;
    };
    for e in candidates {
        if step_ok(s, e) && select(&e.children, rest) {
            return true;
        }
        if s.descendant && select(&e.children, steps) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        xml::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn times_round_trip() {
        let t = parse_time("2024-02-29T13:45:10.250Z").unwrap();
        assert_eq!(event_time(t), "2024-02-29T13:45:10.250000Z");
        let u = parse_time("2024-02-29T15:45:10.25+02:00").unwrap();
        assert_eq!(t, u);
        assert!(parse_time("2024-02-29 13:45:10Z").is_none());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn xpath_on_content() {
        let ev = el(&format!(
            "<netconf-config-change xmlns='{NS_NCN}'><datastore>running</datastore>\
             <edit><operation>create</operation></edit></netconf-config-change>"
        ));
        let scope = vec![("n".to_string(), NS_NCN.to_string())];
        let yes = [
            "/n:netconf-config-change",
            "/n:netconf-config-change[n:datastore='running']",
            "//n:operation[.='create']",
            "/n:netconf-session-start | /n:netconf-config-change/n:edit",
            "/*[n:datastore='x' or n:edit]",
        ];
        let no = [
            "/n:netconf-session-start",
            "/n:netconf-config-change[n:datastore='startup']",
            "//n:operation[.!='create']",
        ];
        for x in yes {
            assert!(XPath::parse(x, &scope).unwrap().matches(&ev), "{x}");
        }
        for x in no {
            assert!(!XPath::parse(x, &scope).unwrap().matches(&ev), "{x}");
        }
        assert!(XPath::parse("count(/n:a)", &scope).is_err());
        assert!(XPath::parse("/z:a", &scope).is_err());
    }

    #[test]
    fn config_change_names_targets_as_instance_identifiers() {
        let ifs = "ietf-interfaces";
        let path = vec![
            NodeKey::new(ifs, "interfaces"),
            NodeKey::with_id(ifs, "interface", vec!["eth'1".into()]),
            NodeKey::new(ifs, "description"),
        ];
        let ch = vec![
            Change::Modified(path.clone(), Some("a".into()), Some("b".into())),
            Change::Deleted(path[..2].to_vec(), Default::default()),
        ];
        let el = config_change(None, "running", &ch);
        let xml = el.to_xml();
        assert!(xml.contains("<changed-by><server/></changed-by>"), "{xml}");
        let edits: Vec<(String, String)> = el
            .children
            .iter()
            .filter(|e| e.name == "edit")
            .map(|e| (e.children[0].text.clone(), e.children[1].text.clone()))
            .collect();
        let entry = "/ietf-interfaces:interfaces/ietf-interfaces:interface\
                     [ietf-interfaces:name=\"eth'1\"]";
        assert_eq!(
            edits,
            [
                (
                    format!("{entry}/ietf-interfaces:description"),
                    "replace".into()
                ),
                (entry.to_string(), "delete".into()),
            ]
        );
        let target = &el.children[2].children[0];
        assert_eq!(
            target.ns_decls,
            [(
                ifs.to_string(),
                schema::namespace_of(ifs).unwrap().to_string()
            )]
        );
        // The printed event parses back with the prefix bound.
        assert!(xml::parse(xml.as_bytes()).is_ok());
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_counted_and_keeps_its_subscription() {
        let hub = Hub::with_capacity(None, 10, 4);
        let mut sub = Subscription {
            rx: hub.subscribe(),
            filter: NotifFilter::None,
            stop: None,
            pending: VecDeque::new(),
            replayed_upto: 0,
        };
        for i in 0..10 {
            hub.publish(Element::with_text(NS_NCN, "x", i.to_string()));
        }
        // The oldest six were overwritten before the subscriber read anything.
        let mut got = Vec::new();
        for _ in 0..4 {
            match sub.next(&hub, |_| Some(None)).await {
                Wake::Message(m) => got.push(m),
                Wake::Complete(_) => panic!("the subscription must go on"),
            }
        }
        assert_eq!(hub.lagged.load(Ordering::Relaxed), 6);
        assert!(
            got[0].contains(">6</x>") && got[3].contains(">9</x>"),
            "{got:?}"
        );
        hub.publish(Element::with_text(NS_NCN, "x", "10"));
        assert!(
            matches!(sub.next(&hub, |_| Some(None)).await, Wake::Message(m) if m.contains(">10</x>"))
        );
    }

    #[test]
    fn replay_log_is_bounded_and_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("mldhb-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let db = sled::open(&dir).unwrap();
            let hub = Hub::new(Some(db.open_tree("notifications").unwrap()), 3);
            for i in 0..5 {
                hub.publish(Element::with_text(NS_NCN, "x", i.to_string()));
            }
            db.flush().unwrap();
        }
        // sled's flusher thread may hold the directory's lock for a moment after the drop.
        let db = (0..100)
            .find_map(|_| {
                sled::open(&dir)
                    .map_err(|_| std::thread::sleep(std::time::Duration::from_millis(20)))
                    .ok()
            })
            .expect("the replay log reopens");
        let hub = Hub::new(Some(db.open_tree("notifications").unwrap()), 3);
        let got: Vec<String> = hub
            .replay(UNIX_EPOCH, None)
            .iter()
            .map(|e| e.content.text.clone())
            .collect();
        assert_eq!(got, ["2", "3", "4"]);
        hub.publish(Element::with_text(NS_NCN, "x", "5"));
        assert_eq!(hub.replay(UNIX_EPOCH, None).last().unwrap().seq, 6);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
