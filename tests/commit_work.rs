//! A commit costs what it changes (DESIGN.md §2 principle 4), held by counting rather than
//! timing: the work a one-entry edit-config + commit does at the boundaries nothing bypasses
//! (data-tree nodes looked at, datastore records read and written, nodes handed to libyang) is
//! counted with every runtime the agent starts, at 1,000 and at 100,000 interface entries, and
//! may grow by at most [`LOG_TERM`] per counter between the two. A runtime that reads its whole
//! subtree on every commit must make the comparison fail (the negative control below).
//!
//! The agent's own start-up code registers the runtimes, in a network namespace of the test's
//! own so that nothing they do reaches the host.

mod common;

use mldhb::bus::Bus;
use mldhb::datastore::work::{self, Counts};
use mldhb::netconf::session::SessionState;
use mldhb::netconf::{ops, Shared};
use mldhb::northbound::registry::{Changes, Provider, Subtree};
use std::io::Write as _;
use std::sync::mpsc;

/// How much more work each counter may do at 100,000 entries than at 1,000: a few steps per
/// doubling of the datastore (4 · log2(100)).
const LOG_TERM: u64 = 28;
const SMALL: usize = 1_000;
const LARGE: usize = 100_000;

const IF: &str = "ietf-interfaces";
const NS_IF: &str = "urn:ietf:params:xml:ns:yang:ietf-interfaces";

fn interfaces_xml(range: std::ops::Range<usize>) -> String {
    let mut s = format!(
        r#"<interfaces xmlns="{NS_IF}" xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">"#
    );
    for i in range {
        s.push_str(&format!(
            "<interface><name>bench{i}</name><type>ianaift:ethernetCsmacd</type>\
             <description>entry {i}</description></interface>"
        ));
    }
    s.push_str("</interfaces>");
    s
}

/// A runtime that reads every interface entry on every commit: the shape of the regression the
/// test exists to catch.
struct ReadsEverything;

const ALL_INTERFACES: &[Subtree] = &[Subtree::whole(&[(IF, "interfaces")])];

impl Provider for ReadsEverything {
    type Config = usize;
    fn name(&self) -> &'static str {
        "reads-everything"
    }
    fn subtrees(&self) -> &'static [Subtree] {
        ALL_INTERFACES
    }
    fn decode(&self, _: &usize, changes: &Changes) -> Result<usize, String> {
        Ok(changes.subtree(0).map_or(0, |n| n.children.len()))
    }
    fn apply(&mut self, _: &usize, _: &usize, _: &Changes) -> Result<(), String> {
        Ok(())
    }
}

fn rpc(shared: &Shared, session: &mut SessionState, body: &str) {
    let text = format!(
        r#"<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1">{body}</rpc>"#
    );
    let el = mldhb::xml::parse(text.as_bytes()).expect("rpc parses");
    if let Err(errs) = ops::dispatch(shared, session, &el) {
        panic!("{body}: {errs:?}");
    }
}

/// The work of a single-entry edit-config on the candidate plus commit, with `entries`
/// interfaces in running and every runtime of the default agent registered; then the same with
/// [`ReadsEverything`] registered too.
fn one_entry_commits(entries: usize) -> (Counts, Counts) {
    let dir = tempdir(entries);
    let startup = dir.join("startup.xml");
    let mut f = std::fs::File::create(&startup).unwrap();
    write!(
        f,
        r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">{}</config>"#,
        interfaces_xml(0..entries)
    )
    .unwrap();
    drop(f);
    let cfg = mldhb::config::AgentConfig::parse(&format!(
        "datastore = \"{}\"\nstartup_config = \"{}\"\nmanage_interfaces = true\n\
         manage_multicast = true\n[[users]]\nname = \"admin\"\npassword = \"x\"\ngroups = [\"admin\"]\n",
        dir.join("db").display(),
        startup.display()
    ))
    .expect("agent configuration");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let (mut nb, nacm) = mldhb::agent::open(&cfg).expect("datastore opens");
    let (bus, _events) = Bus::new();
    let runtimes = mldhb::agent::start_runtimes(&mut nb, &cfg, &bus).expect("runtimes");
    assert_eq!(
        runtimes.states.failed(),
        [],
        "every runtime must run for the count to mean anything"
    );
    let shared = Shared::with_nacm(nb, mldhb::agent::limits(&cfg), nacm);
    let mut session = SessionState {
        id: 1,
        user: "admin".into(),
        base11: true,
        subscription: None,
    };
    let mut commit_one = |n: usize| {
        let edit = format!(
            r#"<edit-config><target><candidate/></target><config>{}</config></edit-config>"#,
            interfaces_xml(n..n + 1)
        );
        let before = work::now();
        rpc(&shared, &mut session, &edit);
        rpc(&shared, &mut session, "<commit/>");
        work::now() - before
    };
    let plain = commit_one(entries);
    shared.northbound().register(ReadsEverything).unwrap();
    let linear = commit_one(entries + 1);
    drop(shared);
    let _ = std::fs::remove_dir_all(&dir);
    (plain, linear)
}

fn tempdir(entries: usize) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "mldhb-commit-work-{}-{entries}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The counters that grew by more than [`LOG_TERM`] from `small` to `large`.
fn grown(small: Counts, large: Counts) -> Vec<String> {
    let pairs = [
        ("tree nodes", small.tree_nodes, large.tree_nodes),
        ("store reads", small.store_reads, large.store_reads),
        ("store writes", small.store_writes, large.store_writes),
        ("libyang nodes", small.yang_nodes, large.yang_nodes),
    ];
    pairs
        .into_iter()
        .filter(|(_, s, l)| *l > s + LOG_TERM)
        .map(|(what, s, l)| format!("{what}: {s} at {SMALL} entries, {l} at {LARGE}"))
        .collect()
}

fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    common::in_netns(move || {
        tx.send(f()).unwrap();
    });
    rx.recv().unwrap()
}

#[test]
fn a_one_entry_commit_costs_the_same_at_1k_and_100k_entries() {
    if !common::root_or_skip() {
        return;
    }
    let ((small, small_linear), (large, large_linear)) =
        in_netns(|| (one_entry_commits(SMALL), one_entry_commits(LARGE)));
    println!("one-entry commit at {SMALL} entries: {small:?}");
    println!("one-entry commit at {LARGE} entries: {large:?}");
    // The commit did real work at both sizes (the counters count).
    for c in [small, large] {
        assert!(
            c.tree_nodes > 0 && c.store_writes > 0 && c.yang_nodes > 0,
            "{c:?}"
        );
    }
    assert_eq!(grown(small, large), Vec::<String>::new());
    // Negative control: one runtime that reads all of its subtree on every commit.
    println!("with a runtime reading every entry: {small_linear:?} / {large_linear:?}");
    let caught = grown(small_linear, large_linear);
    assert!(
        caught.iter().any(|g| g.starts_with("tree nodes")),
        "a runtime reading every entry must be caught: {caught:?}"
    );
}
