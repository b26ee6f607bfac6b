//! Enforces the dependency rules of DESIGN.md §2 (principle 9, with principle 7's "protocol cores
//! never see XML, NETCONF types or data trees") on the crate's own source tree.
//!
//! The checker reads every `.rs` file under `src/`, blanks out comments, string and character
//! literals, drops test-only code, and collects each module's dependencies on other crate
//! modules: `use` items (grouped, nested, renamed, glob, `pub use`), inline `crate::`, `self::`
//! and `super::` paths, and paths through a child module's name. A path that names something a
//! module re-exports (`pub use`, or a private `use` seen by a child module through `super::`) is
//! followed to where it comes from, so a dependency cannot be laundered through a re-export.
//!
//! Test code is not part of the shipped dependency graph, so it is skipped: every `#[cfg(test)]`
//! item (usually `mod tests { … }`) and every file its parent declares `#[cfg(test)] mod name;`
//! (with that file's sub-modules). Tests may import whatever sets up their scenario.
//!
//! `rules_hold_on_the_source_tree` checks `src/`; `fixtures_break_exactly_their_rule` shows, on
//! small synthetic files, that every rule can fail and that literals, comments and test code
//! do not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One dependency rule: modules under an importer prefix (minus exempt sub-modules) must not
/// depend on modules under a forbidden prefix.
struct Rule {
    id: &'static str,
    /// Importing modules the rule applies to, each with its sub-modules.
    importers: &'static [&'static str],
    /// Sub-modules of each importer (relative to it) that the rule leaves out.
    exempt: &'static [&'static str],
    /// Modules, each with its sub-modules, the importers must not depend on.
    forbidden: &'static [&'static str],
    why: &'static str,
}

const fn rule(
    id: &'static str,
    importers: &'static [&'static str],
    exempt: &'static [&'static str],
    forbidden: &'static [&'static str],
    why: &'static str,
) -> Rule {
    Rule {
        id,
        importers,
        exempt,
        forbidden,
        why,
    }
}

/// The protocol runtimes of principle 9.
const RUNTIMES: &[&str] = &["mld", "vrrp6", "etrunk", "lacp", "rbs", "hotbackup"];
/// The YANG-data layer that only a runtime's own `northbound` part may see.
const YANG_DATA: &[&str] = &["xml", "rpc_error", "northbound", "datastore", "yang"];

#[rustfmt::skip]
const RULES: &[Rule] = &[
    rule("R1", &["northbound"], &[], &["netconf"], "the northbound never imports NETCONF (NETCONF depends on the northbound, never the reverse)"),
    rule("R2", RUNTIMES, &[], &["netconf"], "protocol runtimes never import NETCONF"),
    rule("R3", RUNTIMES, &["northbound"], YANG_DATA, "only a runtime's own northbound part knows YANG data: protocol cores and drivers never see XML, NETCONF types or data trees"),
    rule("R4", &["mld"], &[], &["hotbackup"], "MLD never imports hot backup (hot backup drives the MLD routers, MLD knows no backup)"),
    rule("R5", &["forwarding"], &[], &["mld", "hotbackup"], "forwarding never imports MLD or hot backup (it obeys, it decides nothing)"),
    rule("R6", &["netio"], &[], &["forwarding", "mld", "vrrp6", "etrunk", "lacp", "rbs", "hotbackup", "northbound", "datastore", "netconf", "bus", "interfaces"], "netio imports no table or protocol module (I/O knows no tables)"),
    rule("R7", &["cli", "lab"], &[], &["northbound", "datastore"], "cli and lab reach agents only as NETCONF clients, never through the northbound or the datastore"),
    rule("R8", &["datastore"], &[], &["netconf", "northbound", "mld", "vrrp6", "etrunk", "lacp", "rbs", "hotbackup", "forwarding", "interfaces", "cli", "lab", "agent", "bus"], "the datastore imports no protocol or upper layer"),
    rule("R9", &["seckey"], &[], &["datastore", "northbound"], "seckey is a codec that reads no configuration tree"),
    rule("R10", &["bytes", "time"], &[], EVERY_MODULE, "bytes and time sit below every layer and import nothing from the crate"),
];

/// Every top-level module of the crate.
const EVERY_MODULE: &[&str] = &[
    "agent",
    "bus",
    "bytes",
    "cli",
    "config",
    "datastore",
    "etrunk",
    "forwarding",
    "handoff",
    "hotbackup",
    "interfaces",
    "lab",
    "lacp",
    "mld",
    "netconf",
    "netio",
    "northbound",
    "rbs",
    "rpc_error",
    "seckey",
    "time",
    "vrrp6",
    "xml",
    "yang",
];

/// A module path from the crate root (empty for the root).
type Segs = Vec<String>;

/// `src/mld/tasks.rs` → `mld::tasks`, `src/yang/mod.rs` → `yang`, `src/lib.rs` → the root.
fn module_path(file: &str) -> Segs {
    let rel = file.strip_prefix("src/").unwrap_or(file);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut segs: Segs = rel.split('/').map(str::to_string).collect();
    if segs.len() == 1 && (segs[0] == "lib" || segs[0] == "main") {
        return Vec::new();
    }
    if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    segs
}

fn is_ident(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// Replaces comments (line, nested block, doc) and string, raw-string, byte and char literals
/// by blanks, keeping line breaks so that line numbers stay right. Lifetimes and labels (`'a`)
/// are kept.
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        match skipped_end(&c, i) {
            Some(end) => {
                let end = end.min(c.len());
                out.extend(
                    c[i..end]
                        .iter()
                        .map(|&ch| if ch == '\n' { '\n' } else { ' ' }),
                );
                i = end;
            }
            None => {
                out.push(c[i]);
                i += 1;
            }
        }
    }
    out
}

/// If a comment or literal starts at `i`, where it ends (exclusive).
fn skipped_end(c: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    match at(i) {
        '/' if at(i + 1) == '/' => Some(
            c[i..]
                .iter()
                .position(|&x| x == '\n')
                .map_or(c.len(), |p| i + p),
        ),
        '/' if at(i + 1) == '*' => {
            let (mut depth, mut k) = (0, i);
            while k < c.len() {
                if at(k) == '/' && at(k + 1) == '*' {
                    depth += 1;
                    k += 2;
                } else if at(k) == '*' && at(k + 1) == '/' {
                    depth -= 1;
                    k += 2;
                    if depth == 0 {
                        return Some(k);
                    }
                } else {
                    k += 1;
                }
            }
            Some(c.len())
        }
        '"' => Some(quoted_end(c, i + 1)),
        '\'' => char_literal_end(c, i),
        'b' | 'c' | 'r' if i == 0 || !is_ident(c[i - 1]) => {
            let mut k = if at(i) == 'r' { i } else { i + 1 };
            if at(i) != 'r' && at(k) == '"' {
                return Some(quoted_end(c, k + 1));
            }
            if at(i) == 'b' && at(k) == '\'' {
                return char_literal_end(c, k);
            }
            if at(k) != 'r' {
                return None;
            }
            k += 1;
            let hashes = c[k..].iter().take_while(|&&x| x == '#').count();
            k += hashes;
            if at(k) != '"' {
                return None; // an identifier, or a raw identifier `r#name`
            }
            k += 1;
            while k < c.len() {
                if c[k] == '"' && (1..=hashes).all(|h| at(k + h) == '#') {
                    return Some(k + 1 + hashes);
                }
                k += 1;
            }
            Some(c.len())
        }
        _ => None,
    }
}

/// The end of a `"…"` literal whose body starts at `k`.
fn quoted_end(c: &[char], mut k: usize) -> usize {
    while k < c.len() {
        match c[k] {
            '\\' => k += 2,
            '"' => return k + 1,
            _ => k += 1,
        }
    }
    c.len()
}

/// `'x'`, `'\n'`, `'\''`, `'\u{1F600}'`; `None` for a lifetime or label (`'a`, `'outer:`).
fn char_literal_end(c: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    if at(i + 1) == '\\' {
        let k = i
            + 3
            + c.get(i + 3..)?
                .iter()
                .position(|&x| x == '\'' || x == '\n')?;
        return Some(k + 1);
    }
    (at(i + 1) != '\n' && at(i + 2) == '\'').then_some(i + 3)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Word,
    /// `::` or one punctuation character.
    Punct,
    /// A `#[cfg(test)] mod name;` declaration (removed; its file is test code).
    TestMod,
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    text: String,
    line: usize,
}

fn tokenize(stripped: &str) -> Vec<Token> {
    let c: Vec<char> = stripped.chars().collect();
    let (mut toks, mut line, mut i) = (Vec::new(), 1, 0);
    while i < c.len() {
        if c[i] == '\n' {
            line += 1;
        }
        if c[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let kind = if is_ident(c[i]) {
            i += c[i..].iter().take_while(|&&x| is_ident(x)).count();
            Kind::Word
        } else {
            i += if c[i] == ':' && c.get(i + 1) == Some(&':') {
                2
            } else {
                1
            };
            Kind::Punct
        };
        toks.push(Token {
            kind,
            text: c[start..i].iter().collect(),
            line,
        });
    }
    toks
}

fn text(toks: &[Token], k: usize) -> &str {
    toks.get(k).map_or("", |t| t.text.as_str())
}

fn is_word(toks: &[Token], k: usize) -> bool {
    toks.get(k).is_some_and(|t| t.kind == Kind::Word)
}

fn starts_with(toks: &[Token], k: usize, pattern: &[&str]) -> bool {
    pattern
        .iter()
        .enumerate()
        .all(|(j, p)| text(toks, k + j) == *p)
}

/// The index after the group (`(…)`, `[…]` or `{…}`) that opens at `open`.
fn group_end(toks: &[Token], open: usize) -> usize {
    let mut depth = 0;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match t.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// The index after the item (or field, arm, statement) that starts at `start`.
fn item_end(toks: &[Token], start: usize) -> usize {
    let mut k = start;
    loop {
        match text(toks, k) {
            "pub" if text(toks, k + 1) == "(" => k = group_end(toks, k + 1),
            "pub" | "unsafe" | "async" | "extern" | "default" => k += 1,
            "const" if matches!(text(toks, k + 1), "fn" | "unsafe" | "async" | "extern") => k += 1,
            _ => break,
        }
    }
    let keyword = text(toks, k);
    let braced = matches!(
        keyword,
        "fn" | "mod" | "struct" | "enum" | "union" | "trait" | "impl" | "macro_rules"
    );
    let to_semicolon = matches!(keyword, "use" | "const" | "static" | "type" | "let");
    let mut depth = 0;
    for (j, t) in toks.iter().enumerate().skip(start) {
        match t.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" if depth == 0 => return j,
            ")" | "]" | "}" => {
                depth -= 1;
                if depth == 0 && braced && t.text == "}" {
                    return j + 1;
                }
            }
            ";" if depth == 0 => return j + 1,
            "," if depth == 0 && !braced && !to_semicolon => return j + 1,
            _ => {}
        }
    }
    toks.len()
}

const CFG_TEST: &[&str] = &["#", "[", "cfg", "(", "test", ")", "]"];

/// Drops every `#[cfg(test)]` item, leaving a `TestMod` marker for `#[cfg(test)] mod name;`.
/// A file starting with `#![cfg(test)]` is test code as a whole.
fn drop_test_code(toks: Vec<Token>) -> Vec<Token> {
    let mut i = 0;
    while starts_with(&toks, i, &["#", "!", "["]) {
        if starts_with(&toks, i + 2, &CFG_TEST[1..]) {
            return Vec::new();
        }
        i = group_end(&toks, i + 2);
    }
    let mut out: Vec<Token> = toks[..i.min(toks.len())].to_vec();
    while i < toks.len() {
        if !starts_with(&toks, i, CFG_TEST) {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        let mut k = i + CFG_TEST.len();
        while starts_with(&toks, k, &["#", "["]) {
            k = group_end(&toks, k + 1);
        }
        let mut m = k;
        if text(&toks, m) == "pub" {
            m = if text(&toks, m + 1) == "(" {
                group_end(&toks, m + 1)
            } else {
                m + 1
            };
        }
        if text(&toks, m) == "mod" && is_word(&toks, m + 1) && text(&toks, m + 2) == ";" {
            out.push(Token {
                kind: Kind::TestMod,
                ..toks[m + 1].clone()
            });
        }
        i = item_end(&toks, k);
    }
    out
}

/// One path a module refers to, as written (relative paths not yet resolved).
#[derive(Clone, Debug)]
struct Ref {
    /// The module the path appears in (inline modules included).
    at: Segs,
    written: Segs,
    glob: bool,
    /// For a `use` leaf, the name it binds in `at` (`None` for `as _`, globs, inline paths).
    binding: Option<String>,
    line: usize,
}

#[derive(Default)]
struct Scan {
    refs: Vec<Ref>,
    /// Modules declared by `mod name;` or `mod name { … }`.
    declared: Vec<Segs>,
    /// Modules declared `#[cfg(test)] mod name;`.
    test_mods: Vec<Segs>,
}

fn child(m: &[String], name: &str) -> Segs {
    let mut c = m.to_vec();
    c.push(name.to_string());
    c
}

/// Parses one use tree at `k` under the path `segs` written so far, appending its leaves;
/// returns the index after it.
fn use_tree(toks: &[Token], mut k: usize, mut segs: Segs, out: &mut Vec<Ref>) -> usize {
    let leaf = |written, glob, binding, line| Ref {
        at: Vec::new(),
        written,
        glob,
        binding,
        line,
    };
    loop {
        match text(toks, k) {
            "{" => {
                k += 1;
                while k < toks.len() && text(toks, k) != "}" {
                    let next = use_tree(toks, k, segs.clone(), out);
                    if next == k {
                        return k;
                    }
                    k = next + usize::from(text(toks, next) == ",");
                }
                return k + 1;
            }
            "*" => {
                out.push(leaf(segs, true, None, toks[k].line));
                return k + 1;
            }
            "::" if segs.is_empty() => {
                segs.push("::".into()); // `::name` is an extern crate
                k += 1;
            }
            w if is_word(toks, k) => {
                segs.push(w.to_string());
                let line = toks[k].line;
                k += 1;
                if text(toks, k) == "::" {
                    k += 1;
                    continue;
                }
                if segs.len() > 1 && segs.last().is_some_and(|s| s == "self") {
                    segs.pop();
                }
                let mut binding = segs.last().cloned();
                if text(toks, k) == "as" {
                    binding = Some(text(toks, k + 1).to_string()).filter(|b| b != "_");
                    k += 2;
                }
                out.push(leaf(segs, false, binding, line));
                return k;
            }
            _ => return k,
        }
    }
}

/// Collects one file's references, module declarations and inline modules.
fn scan(module: &[String], toks: &[Token]) -> Scan {
    let mut s = Scan::default();
    let mut inline: Vec<(Segs, i32)> = Vec::new(); // inline module, brace depth of its body
    let (mut depth, mut i) = (0, 0);
    while i < toks.len() {
        let here = inline.last().map_or(module.to_vec(), |(m, _)| m.clone());
        let t = &toks[i];
        match (t.kind, t.text.as_str()) {
            (Kind::TestMod, name) => s.test_mods.push(child(&here, name)),
            (Kind::Word, "mod") if is_word(toks, i + 1) => {
                let m = child(&here, text(toks, i + 1));
                s.declared.push(m.clone());
                if text(toks, i + 2) == "{" {
                    depth += 1;
                    inline.push((m, depth));
                    i += 3;
                    continue;
                }
            }
            (Kind::Word, "use") => {
                let mut leaves = Vec::new();
                i = use_tree(toks, i + 1, Vec::new(), &mut leaves);
                s.refs.extend(leaves.into_iter().map(|r| Ref {
                    at: here.clone(),
                    ..r
                }));
                while i < toks.len() && text(toks, i) != ";" {
                    i += 1;
                }
                continue;
            }
            (_, "{") => depth += 1,
            (_, "}") => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            (Kind::Word, first)
                if text(toks, i + 1) == "::"
                    && is_word(toks, i + 2)
                    && (i == 0 || text(toks, i - 1) != "::") =>
            {
                let mut written = vec![first.to_string()];
                let mut k = i + 1;
                while text(toks, k) == "::" && is_word(toks, k + 1) {
                    written.push(text(toks, k + 1).to_string());
                    k += 2;
                }
                let line = toks[k - 1].line;
                s.refs.push(Ref {
                    at: here,
                    written,
                    glob: false,
                    binding: None,
                    line,
                });
                i = k;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    s
}

/// The absolute path of a written path seen in module `at`; `None` outside the crate.
fn absolutize(at: &[String], written: &[String], modules: &BTreeSet<Segs>) -> Option<Segs> {
    let first = written.first()?.as_str();
    let (mut base, mut rest): (Segs, &[String]) = match first {
        "crate" => (Vec::new(), &written[1..]),
        "self" => (at.to_vec(), &written[1..]),
        "super" => (at.to_vec(), written),
        _ if modules.contains(&child(at, first)) => (at.to_vec(), written),
        _ => return None,
    };
    while rest.first().is_some_and(|s| s == "super") {
        base.pop()?;
        rest = &rest[1..];
    }
    base.extend_from_slice(rest);
    Some(base)
}

/// Names bound by `use` in each module, and each module's glob imports (absolute targets).
#[derive(Default)]
struct Bindings {
    names: BTreeMap<Segs, BTreeMap<String, Segs>>,
    globs: BTreeMap<Segs, Vec<Segs>>,
}

impl Bindings {
    fn bound(&self, module: &[String], name: &str) -> Option<&Segs> {
        self.names.get(module)?.get(name)
    }
}

/// The modules an absolute path depends on: the module it names, then each module a re-export
/// along the way leads to (bounded, as re-exports can chain or loop).
fn resolve(abs: &[String], modules: &BTreeSet<Segs>, b: &Bindings) -> Vec<Segs> {
    let (mut chain, mut path) = (Vec::<Segs>::new(), abs.to_vec());
    for _ in 0..16 {
        let n = (0..=path.len())
            .rev()
            .find(|&n| modules.contains(&path[..n]))
            .unwrap_or(0);
        // Outside the known modules (a fixture naming a module it does not define), the first
        // segment stands for the module.
        let module = if n == 0 && !path.is_empty() {
            path[..1].to_vec()
        } else {
            path[..n].to_vec()
        };
        if !chain.contains(&module) {
            chain.push(module);
        }
        let Some(name) = path.get(n) else { break };
        let here = &path[..n];
        let target = b.bound(here, name).cloned().or_else(|| {
            let globs = b.globs.get(here)?;
            globs
                .iter()
                .find(|g| modules.contains(&child(g, name)) || b.bound(g, name).is_some())
                .map(|g| child(g, name))
        });
        let Some(mut next) = target else { break };
        next.extend_from_slice(&path[n + 1..]);
        if next == path {
            break;
        }
        path = next;
    }
    chain
}

fn within(path: &[String], prefix: &str) -> bool {
    let pre: Vec<&str> = prefix.split("::").collect();
    path.len() >= pre.len() && path.iter().zip(&pre).all(|(a, b)| a == b)
}

fn applies(rule: &Rule, importer: &[String]) -> bool {
    rule.importers.iter().any(|p| {
        within(importer, p)
            && !rule
                .exempt
                .iter()
                .any(|e| within(importer, &format!("{p}::{e}")))
    })
}

fn show(m: &[String]) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    rule: &'static str,
    file: String,
    line: usize,
    importer: String,
    imported: String,
    written: String,
}

struct Report {
    violations: Vec<Violation>,
    /// How many references into the crate were checked (guards against a vacuous pass).
    crate_refs: usize,
}

/// Checks `(path relative to the crate, source)` pairs against `RULES`.
fn check(files: &[(String, String)]) -> Report {
    let scans: Vec<(&str, Segs, Scan)> = files
        .iter()
        .map(|(file, src)| {
            let module = module_path(file);
            let toks = drop_test_code(tokenize(&strip(src)));
            let s = scan(&module, &toks);
            (file.as_str(), module, s)
        })
        .collect();
    let test_mods: Vec<&Segs> = scans.iter().flat_map(|(_, _, s)| &s.test_mods).collect();
    let is_test = |m: &[String]| test_mods.iter().any(|t| m.starts_with(t));
    let live: Vec<_> = scans.iter().filter(|(_, m, _)| !is_test(m)).collect();
    let mut modules: BTreeSet<Segs> = BTreeSet::from([Vec::new()]);
    for (_, m, s) in &live {
        modules.insert(m.clone());
        modules.extend(s.declared.iter().filter(|d| !is_test(d)).cloned());
    }
    let mut refs = Vec::new();
    let mut b = Bindings::default();
    for (file, _, s) in &live {
        for r in &s.refs {
            let Some(abs) = absolutize(&r.at, &r.written, &modules) else {
                continue;
            };
            if r.glob {
                b.globs.entry(r.at.clone()).or_default().push(abs.clone());
            } else if let Some(name) = &r.binding {
                b.names
                    .entry(r.at.clone())
                    .or_default()
                    .insert(name.clone(), abs.clone());
            }
            refs.push((*file, r, abs));
        }
    }
    let mut violations = BTreeSet::new();
    for (file, r, abs) in &refs {
        let chain = resolve(abs, &modules, &b);
        for rule in RULES.iter().filter(|rule| applies(rule, &r.at)) {
            for m in chain
                .iter()
                .filter(|m| rule.forbidden.iter().any(|f| within(m, f)))
            {
                violations.insert(Violation {
                    rule: rule.id,
                    file: file.to_string(),
                    line: r.line,
                    importer: show(&r.at),
                    imported: show(m),
                    written: r.written.join("::") + if r.glob { "::*" } else { "" },
                });
            }
        }
    }
    Report {
        violations: violations.into_iter().collect(),
        crate_refs: refs.len(),
    }
}

fn render(violations: &[Violation]) -> String {
    let mut out = String::new();
    for rule in RULES {
        let hits: Vec<_> = violations.iter().filter(|v| v.rule == rule.id).collect();
        if !hits.is_empty() {
            out += &format!("{}: {}\n", rule.id, rule.why);
        }
        for v in hits {
            out += &format!(
                "  {}:{}: {} → {} ({})\n",
                v.file, v.line, v.importer, v.imported, v.written
            );
        }
    }
    out
}

fn read_sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("reading a source directory") {
        let path = entry.expect("reading a directory entry").path();
        if path.is_dir() {
            read_sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("a path under the crate");
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((
                rel,
                std::fs::read_to_string(&path).expect("reading a source file"),
            ));
        }
    }
}

#[test]
fn rules_hold_on_the_source_tree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    read_sources(&root.join("src"), root, &mut files);
    files.sort();
    assert!(
        files.len() > 50,
        "only {} source files found under src/",
        files.len()
    );
    let report = check(&files);
    assert!(
        report.crate_refs > 500,
        "only {} crate references found: the scanner is broken",
        report.crate_refs
    );
    assert!(
        report.violations.is_empty(),
        "{} dependency-rule violations (DESIGN.md §2, principle 9):\n{}",
        report.violations.len(),
        render(&report.violations)
    );
}

/// Synthetic files. A line that must be flagged ends in a `// FLAG <rule>` comment (comments
/// are blanked before analysis, so the marker itself is never seen by the checker).
#[rustfmt::skip]
const FIXTURES: &[(&str, &str)] = &[
    // R1: a multi-line grouped use with nested groups, `self` and a rename.
    ("src/northbound/fx_group.rs", r#"
use crate::{
    xml::Element,
    netconf::{
        session::Session, // FLAG R1
        self as nc,       // FLAG R1
    },
};
// use crate::netconf::Session;
const WHY: &str = "crate::netconf::ssh is not a dependency";
"#),
    // R2: an inline path after lifetimes, char literals and a raw string that look like code.
    ("src/vrrp6/fx_inline.rs", r###"
fn pick<'a>(x: &'a str) -> &'a str { let _q = '"'; let _e = '\''; let _r = r#"use crate::netconf::ssh;"#; x }
fn keep<'s>(s: &'s crate::netconf::session::Session) -> &'s str { todo!() } // FLAG R2
pub fn open() -> crate::netconf::session::Session { todo!() } // FLAG R2
"###),
    // R3: `super` paths from a file module and from a `mod.rs` (where `super` is one level up).
    ("src/rbs/fx/deep.rs", r#"
use super::super::super::xml::Element; // FLAG R3
use super::sibling::Thing;
"#),
    ("src/rbs/fx_dir/mod.rs", r#"
use super::super::yang::Schema; // FLAG R3
use super::channel::Connection;
"#),
    // R3 clean: a runtime's own northbound part may see the YANG-data layer.
    ("src/rbs/northbound/fx_state.rs", r#"
use crate::yang::schema::Walker;
use super::super::super::datastore::Store;
pub use crate::xml::Element;
fn f(e: &crate::xml::Element) {}
"#),
    // R3: a runtime's root re-exporting, by a child-relative path, its northbound's XML type.
    ("src/rbs/mod.rs", r#"
pub mod northbound;
pub use northbound::fx_state::Element; // FLAG R3
pub use northbound::fx_state::f;
"#),
    // R4: names re-exported (through a chain of two modules) from hot backup.
    ("src/fx_hub.rs", r#"
pub use crate::hotbackup::controller::Takeover;
pub use crate::fx_relay::Balance;
pub use crate::hotbackup::glue;
"#),
    ("src/fx_relay.rs", "pub(crate) use super::hotbackup::balance::Balance as Balance;\n"),
    ("src/mld/fx_reexport.rs", r#"
use crate::fx_hub::Takeover; // FLAG R4
fn f() { let _ = crate::fx_hub::Balance::new(); } // FLAG R4
use crate::fx_hub::glue::Glue as G; // FLAG R4
"#),
    // R5: test code (braces hidden in literals and comments) is skipped, what follows is not.
    ("src/forwarding/fx_cfg.rs", r#"
use crate::forwarding::backend::Backend;
#[cfg(test)]
mod sim;
#[cfg(test)]
#[allow(dead_code)]
mod tests {
    use crate::mld::instance::Router;
    fn f() { let _ = "}"; /* } */ let _c = '}'; let _d = '{'; }
}
#[cfg(test)]
pub(crate) fn helper() -> crate::hotbackup::controller::Controller { todo!() }
use crate::mld::events::Event; // FLAG R5
"#),
    ("src/forwarding/fx_cfg/sim.rs", r#"
use crate::mld::instance::Router;
use crate::hotbackup::X;
"#),
    // R6: a glob, a `pub(crate) use` of a whole module, and `super` from an inline module.
    ("src/netio/fx_glob.rs", r#"
use crate::bus::*; // FLAG R6
pub(crate) use crate::interfaces as ifs; // FLAG R6
mod inner {
    use super::super::super::forwarding::Mfib; // FLAG R6
    use super::super::clock::Clock;
}
"#),
    // R6 clean: crate paths in every kind of comment and literal, and neighbours inside netio.
    ("src/netio/fx_clean.rs", r###"
//! Talks about crate::forwarding::Mfib in a doc comment.
/// `use crate::mld::Router;`
// use crate::hotbackup::X;
/* use crate::bus::Bus; /* nested crate::bus */ crate::bus::Still */
const HELP: &str = "use crate::forwarding::Mfib; \" crate::mld";
const RAW: &str = r##"crate::mld::x "# still crate::mld"##;
const B: &[u8] = b"crate::bus";
fn life<'a>(s: &'a str) -> &'a str { let _q = '\''; 'outer: loop { break 'outer; } s }
use crate::netio::sys::Socket;
use super::clock::Clock;
use std::fmt;
"###),
    // R7: paths inside a macro invocation and a use in a function body.
    ("src/lab/fx_macro.rs", r#"
fn f() {
    let v = vec![crate::northbound::edit::apply]; // FLAG R7
    use crate::datastore::Store; // FLAG R7
}
"#),
    // R8: a multi-line `pub use` group, and `{self}`.
    ("src/datastore/fx_multi.rs", r#"
pub use crate::{
    agent::Agent, // FLAG R8
    xml::Element,
};
use crate::lab::{self}; // FLAG R8
"#),
    // R9: an inline path in a type and a double `super`.
    ("src/seckey/fx.rs", r#"
fn f(t: &crate::datastore::tree::Tree) {} // FLAG R9
use super::super::northbound::Registry as Reg; // FLAG R9
use super::Codec;
"#),
    // R10: the bottom layer reaching up.
    ("src/time/fx.rs", r#"
use crate::netio::clock; // FLAG R10
"#),
    // Clean: a `mod.rs` re-exporting from a child module by a relative path, used by a sibling.
    ("src/mld/mod.rs", r#"
pub mod fx_reexport;
mod events;
pub use events::Event;
"#),
    ("src/mld/fx_child.rs", r#"
use crate::mld::Event;
use super::events::Event as E;
"#),
];

/// The `(rule, line)` pairs a fixture marks with `// FLAG <rule>`.
fn expected_flags(src: &str) -> BTreeSet<(String, usize)> {
    src.lines()
        .enumerate()
        .filter_map(|(n, l)| {
            l.split("// FLAG ")
                .nth(1)
                .map(|id| (id.trim().to_string(), n + 1))
        })
        .collect()
}

#[test]
fn fixtures_break_exactly_their_rule() {
    assert_eq!(module_path("src/mld/tasks.rs"), ["mld", "tasks"]);
    assert_eq!(module_path("src/yang/mod.rs"), ["yang"]);
    assert!(module_path("src/lib.rs").is_empty());
    let files: Vec<(String, String)> = FIXTURES
        .iter()
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect();
    let report = check(&files);
    let mut failures = Vec::new();
    let mut targeted = BTreeSet::new();
    for (path, src) in FIXTURES {
        let want = expected_flags(src);
        let rules: BTreeSet<&str> = want.iter().map(|(id, _)| id.as_str()).collect();
        assert!(
            rules.len() <= 1,
            "{path}: a fixture targets one rule, not {rules:?}"
        );
        targeted.extend(rules.iter().map(|id| id.to_string()));
        let got: BTreeSet<(String, usize)> = report
            .violations
            .iter()
            .filter(|v| v.file == *path)
            .map(|v| (v.rule.to_string(), v.line))
            .collect();
        if got != want {
            failures.push(format!("{path}: expected {want:?}, flagged {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nall violations:\n{}",
        failures.join("\n"),
        render(&report.violations)
    );
    let all: BTreeSet<String> = RULES.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(targeted, all, "every rule needs a fixture that breaks it");
}
