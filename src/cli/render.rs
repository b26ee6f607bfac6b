//! Running configuration as VRP-like commands, read back through the command table so that the
//! text fed into an empty device reproduces the configuration; what no command expresses is
//! listed in a comment block.

use super::commands::{
    eth_trunk_number, interface_type, table, Action, ArgType, Command, Scope, Set, Token, Val,
    ViewKind,
};
use super::edit::{RSeg, Value};
use crate::xml::Element;
use crate::yang::schema::{self, Kind};
use std::collections::{HashMap, HashSet};

/// Parameter values bound while matching: per token, its YANG parts.
type Binding = HashMap<usize, Vec<Option<String>>>;

/// One way a command's nodes were found: the binding, every element it covers and the last
/// element of each set's path.
type Found<'a> = (Binding, Vec<&'a Element>, Vec<&'a Element>);

fn set_part(b: &mut Binding, n: usize, k: usize, text: &str) -> bool {
    let e = b.entry(n).or_default();
    if e.len() <= k {
        e.resize(k + 1, None);
    }
    match &e[k] {
        Some(x) => x == text,
        None => {
            e[k] = Some(text.to_string());
            true
        }
    }
}

fn unify(b: &mut Binding, v: &Val, value: &Value) -> bool {
    match v {
        Val::Lit(l) => Value::literal(l) == *value,
        Val::Arg(n) => set_part(b, *n, 0, value.text()),
        Val::Part(n, k) => set_part(b, *n, *k, value.text()),
    }
}

fn flipped(sets: &[Set]) -> Vec<Set> {
    sets.iter()
        .map(|s| Set {
            path: s.path.clone(),
            value: match s.value {
                Some(Val::Lit("true")) => Some(Val::Lit("false")),
                Some(Val::Lit("false")) => Some(Val::Lit("true")),
                ref v => v.clone(),
            },
        })
        .collect()
}

/// Renders configuration data, tracking which elements commands have covered.
struct Renderer<'a> {
    consumed: HashSet<*const Element>,
    _data: std::marker::PhantomData<&'a Element>,
}

impl<'a> Renderer<'a> {
    fn new() -> Self {
        Renderer {
            consumed: HashSet::new(),
            _data: std::marker::PhantomData,
        }
    }

    fn is_consumed(&self, e: &Element) -> bool {
        self.consumed.contains(&(e as *const Element))
    }

    fn consume(&mut self, e: &Element) {
        self.consumed.insert(e as *const Element);
    }

    fn match_set(
        &self,
        node: &'a Element,
        segs: &[super::commands::Seg],
        value: Option<&Val>,
        binding: &Binding,
    ) -> Vec<(Binding, Vec<&'a Element>, &'a Element)> {
        let Some(seg) = segs.first() else {
            return Vec::new();
        };
        let ns = super::commands::ns(seg.prefix);
        let mut out = Vec::new();
        for child in node
            .children
            .iter()
            .filter(|c| c.ns == ns && c.name == seg.name)
        {
            let mut b = binding.clone();
            let mut used = vec![child];
            let keys_ok = seg.keys.iter().all(|(k, v)| match child.child(ns, k) {
                Some(kc) => {
                    used.push(kc);
                    unify(&mut b, v, &Value::of_leaf(kc))
                }
                None => false,
            });
            if !keys_ok {
                continue;
            }
            if segs.len() == 1 {
                if self.is_consumed(child) {
                    continue;
                }
                if let Some(v) = value {
                    if !child.children.is_empty() || !unify(&mut b, v, &Value::of_leaf(child)) {
                        continue;
                    }
                }
                out.push((b, used, child));
            } else {
                for (b2, mut u2, last) in self.match_set(child, &segs[1..], value, &b) {
                    u2.extend(used.iter().copied());
                    out.push((b2, u2, last));
                }
            }
        }
        out
    }

    /// Every way the command's sets are found under `node` (absent leaves with a default
    /// count as set to it, but at least one set must be present).
    fn matches(&self, node: &'a Element, c: &Command, sets: &[Set]) -> Vec<Found<'a>> {
        let mut acc: Vec<(Found<'a>, bool)> =
            vec![((Binding::new(), Vec::new(), Vec::new()), false)];
        for set in sets {
            let mut next = Vec::new();
            for ((b, used, lasts), present) in acc {
                let ms = self.match_set(node, &set.path, set.value.as_ref(), &b);
                if ms.is_empty() {
                    if defaultable(c, set) {
                        next.push(((b, used, lasts), present));
                    }
                    continue;
                }
                for (b2, u2, last) in ms {
                    let mut used = used.clone();
                    used.extend(u2);
                    let mut lasts = lasts.clone();
                    lasts.push(last);
                    next.push(((b2, used, lasts), true));
                }
            }
            acc = next;
        }
        acc.into_iter()
            .filter(|(_, present)| *present)
            .map(|(f, _)| f)
            .collect()
    }

    fn render_command(
        &mut self,
        node: &'a Element,
        c: &Command,
        indent: &str,
        out: &mut Vec<String>,
    ) {
        let mut variants = vec![(c.sets.clone(), "")];
        if c.is_switch() {
            variants.push((flipped(&c.sets), "undo "));
        }
        for (sets, lead) in variants {
            for (b, used, lasts) in self.matches(node, c, &sets) {
                if c.bare && lasts.iter().any(|l| self.is_consumed(l)) {
                    continue;
                }
                let Some(text) = command_text(c, &b) else {
                    continue;
                };
                for u in used {
                    self.consume(u);
                }
                out.push(format!("{indent}{lead}{text}"));
            }
        }
    }

    fn render_scope(&mut self, node: &'a Element, scopes: &[Scope], indent: &str) -> Vec<String> {
        let mut out = Vec::new();
        let cmds: Vec<&Command> = table()
            .iter()
            .filter(|c| scopes.contains(&c.scope) && c.action == Action::Config)
            .collect();
        for bare in [false, true] {
            for c in cmds.iter().filter(|c| c.bare == bare) {
                self.render_command(node, c, indent, &mut out);
            }
        }
        out
    }

    /// Leaves the CLI sets without a command of their own, when they hold what it would set.
    fn consume_implied(&mut self, entry: &'a Element, name: &str) {
        let ifns = super::commands::ns("if");
        if let Some(t) = entry.child(ifns, "type") {
            if Value::of_leaf(t) == Value::literal(interface_type(name)) {
                self.consume(t);
            }
        }
        let etns = super::commands::ns("etrunk");
        if let (Some(et), Some(n)) = (entry.child(etns, "eth-trunk"), eth_trunk_number(name)) {
            if let Some(id) = et.child(etns, "trunk-id") {
                if id.trimmed_text() == n.to_string() {
                    self.consume(id);
                }
            }
        }
        let vns = super::commands::ns("vrrp");
        let v3 = Value::literal("vrrp:vrrp-v3");
        if let Some(insts) = entry
            .child(super::commands::ns("ip"), "ipv6")
            .and_then(|i| i.child(vns, "vrrp"))
        {
            for inst in insts.children.iter().filter(|c| c.name == "vrrp-instance") {
                if let Some(v) = inst.child(vns, "version") {
                    if Value::of_leaf(v) == v3 {
                        self.consume(v);
                    }
                }
            }
        }
    }

    /// Lists what no command covered: per node, its uncovered leaves on one line.
    fn unrendered(
        &self,
        e: &Element,
        parent: Option<&schema::Schema>,
        path: &str,
        parent_ns: &str,
        skip: &[String],
        out: &mut Vec<String>,
    ) {
        let mut leaves = Vec::new();
        let mut nested = Vec::new();
        for c in &e.children {
            if parent_ns == c.ns && skip.contains(&c.name) {
                continue;
            }
            let s = schema::find_child_ns(parent, &c.ns, &c.name);
            let mut name = String::new();
            if c.ns != parent_ns {
                name.push_str(schema::module_of(&c.ns).unwrap_or(&c.ns));
                name.push(':');
            }
            name.push_str(&c.name);
            let p = format!("{path}/{name}");
            match s.as_ref().map(schema::kind) {
                Some(Kind::List { keys }) => {
                    let mut p = p;
                    for k in keys {
                        let v = c.child(&c.ns, k).map(|k| k.trimmed_text()).unwrap_or("");
                        p.push_str(&format!("[{k}='{v}']"));
                    }
                    nested.push((c, s.clone(), p, keys.clone()));
                }
                Some(Kind::Container) => {
                    let presence = s.as_ref().is_some_and(|s| !s.is_np_container());
                    if c.children.is_empty() && presence && !self.is_consumed(c) {
                        out.push(format!("{p} (present)"));
                    }
                    nested.push((c, s.clone(), p, Vec::new()));
                }
                _ if c.children.is_empty() => {
                    if !self.is_consumed(c) {
                        leaves.push(format!("{name}={}", c.trimmed_text()));
                    }
                }
                _ => nested.push((c, s.clone(), p, Vec::new())),
            }
        }
        if !leaves.is_empty() {
            out.push(format!(
                "{}: {}",
                if path.is_empty() { "/" } else { path },
                leaves.join(", ")
            ));
        }
        for (c, s, p, keys) in nested {
            self.unrendered(c, s.as_ref(), &p, &c.ns, &keys, out);
        }
    }
}

fn defaultable(c: &Command, set: &Set) -> bool {
    let n = match &set.value {
        Some(Val::Arg(n)) => *n,
        Some(Val::Part(n, 0)) => *n,
        _ => return false,
    };
    match c.tokens.get(n) {
        Some(Token::Param { ty, default, .. }) => {
            default.is_some()
                || (*ty == ArgType::Cipher && matches!(set.value, Some(Val::Part(_, 0))))
        }
        _ => false,
    }
}

fn command_text(c: &Command, b: &Binding) -> Option<String> {
    let mut words = Vec::with_capacity(c.tokens.len());
    for (i, t) in c.tokens.iter().enumerate() {
        match t {
            Token::Kw(k) => words.push(k.to_string()),
            Token::Param { ty, default, .. } => {
                let parts = match b.get(&i) {
                    Some(p) => p.clone(),
                    None if *ty == ArgType::Cipher => vec![],
                    None => vec![Some((*default)?.to_string())],
                };
                words.push(ty.from_yang(&parts)?);
            }
        }
    }
    Some(words.join(" "))
}

fn view_scopes(kind: ViewKind, name: &str) -> Vec<Scope> {
    match kind {
        ViewKind::Interface if eth_trunk_number(name).is_some() => {
            vec![Scope::Iface, Scope::IfaceTrunk]
        }
        ViewKind::Interface => vec![Scope::Iface, Scope::IfacePort],
        ViewKind::Rbs => vec![Scope::Rbs],
        ViewKind::Rbp => vec![Scope::Rbp],
        ViewKind::ETrunk => vec![Scope::ETrunk],
    }
}

/// The configuration as blocks of lines, with the entry element each view block belongs to
/// (none for the system-level block), and the comment lines for what has no command.
struct Rendered<'a> {
    blocks: Vec<(Option<&'a Element>, Vec<String>)>,
    comments: Vec<String>,
}

fn render_blocks(data: &Element) -> Rendered<'_> {
    let mut r = Renderer::new();
    let mut blocks = vec![(None, r.render_scope(data, &[Scope::System], ""))];
    for c in table()
        .iter()
        .filter(|c| c.scope == Scope::System && matches!(c.action, Action::Enter(_)))
    {
        let Action::Enter(kind) = c.action else {
            continue;
        };
        for (b, used, lasts) in r.matches(data, c, &c.sets) {
            let Some(header) = command_text(c, &b) else {
                continue;
            };
            let entry = lasts[0];
            for u in used {
                r.consume(u);
            }
            let name = b
                .get(&1)
                .and_then(|p| p.first().cloned().flatten())
                .unwrap_or_default();
            let mut lines = vec![header];
            lines.extend(r.render_scope(entry, &view_scopes(kind, &name), " "));
            if kind == ViewKind::Interface {
                r.consume_implied(entry, &name);
            }
            blocks.push((Some(entry), lines));
        }
    }
    let mut comments = Vec::new();
    r.unrendered(data, None, "", "", &[], &mut comments);
    Rendered { blocks, comments }
}

/// `display current-configuration`: every block, then the comment block.
pub fn current_configuration(data: &Element) -> String {
    let r = render_blocks(data);
    let mut out = String::new();
    for (_, lines) in r.blocks.iter().filter(|(_, l)| !l.is_empty()) {
        out.push_str("#\n");
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
    }
    out.push_str("#\n");
    if !r.comments.is_empty() {
        out.push_str(
            "# Not shown as commands, and not part of a round trip (configure over NETCONF):\n",
        );
        for c in &r.comments {
            out.push_str("#  ");
            out.push_str(c);
            out.push('\n');
        }
        out.push_str("#\n");
    }
    out
}

/// `display this`: the block of the view whose entry is at `ctx` (the system-level lines for
/// an empty `ctx`).
pub fn this(data: &Element, ctx: &[RSeg]) -> String {
    let target = if ctx.is_empty() {
        None
    } else {
        match super::edit::find(data, ctx) {
            Some(e) => Some(e as *const Element),
            None => return "#\n".into(),
        }
    };
    let r = render_blocks(data);
    let mut out = String::from("#\n");
    for (entry, lines) in &r.blocks {
        if entry.map(|e| e as *const Element) == target {
            for l in lines {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out.push_str("#\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml;

    fn data(inner: &str) -> Element {
        xml::parse(
            format!("<data xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">{inner}</data>")
                .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn interface_block_with_vrrp_and_mld() {
        let d = data(
            r#"<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">
<interface><name>eth1</name><type>ianaift:ethernetCsmacd</type>
<ipv6 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip"><address><ip>2001:db8:1::1</ip><prefix-length>64</prefix-length></address>
<vrrp xmlns="urn:ietf:params:xml:ns:yang:ietf-vrrp"><vrrp-instance><vrid>1</vrid><version xmlns:v="urn:ietf:params:xml:ns:yang:ietf-vrrp">v:vrrp-v3</version><priority>200</priority>
<preempt><hold-time>10</hold-time></preempt>
<virtual-ipv6-addresses><virtual-ipv6-address><ipv6-address>fe80::1</ipv6-address></virtual-ipv6-address><virtual-ipv6-address><ipv6-address>2001:db8:1::100</ipv6-address></virtual-ipv6-address></virtual-ipv6-addresses>
</vrrp-instance><vrrp-instance><vrid>2</vrid><version xmlns:v="urn:ietf:params:xml:ns:yang:ietf-vrrp">v:vrrp-v3</version></vrrp-instance></vrrp></ipv6>
<mld xmlns="urn:mldhb:yang:mldhb-mld"><enable>true</enable><track-vrrp6-vrid>1</track-vrrp6-vrid><static-group><group>ff0e::1</group><source>::</source></static-group></mld>
</interface>
<interface><name>eth2</name><type>ianaift:ethernetCsmacd</type><enabled>false</enabled><mld xmlns="urn:mldhb:yang:mldhb-mld"/></interface>
<interface><name>lo9</name><type>ianaift:other</type></interface>
</interfaces>"#,
        );
        let text = current_configuration(&d);
        let want = "#\ninterface eth1\n ipv6 address 2001:db8:1::1/64\n \
vrrp6 vrid 1 virtual-ip fe80::1 link-local\n vrrp6 vrid 1 virtual-ip 2001:db8:1::100\n \
vrrp6 vrid 1 priority 200\n vrrp6 vrid 1 preempt-mode timer delay 10\n \
mld enable\n mld static-group ff0e::1\n multicast ipv6 track vrrp6 vrid 1\n vrrp6 vrid 2\n\
#\ninterface eth2\n shutdown\n undo mld enable\n#\ninterface lo9\n#\n";
        assert!(text.starts_with(want), "{text}");
        assert!(
            text.contains(
                "#  /ietf-interfaces:interfaces/interface[name='lo9']: type=ianaift:other\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn keys_show_as_cipher_and_defaults_fill_in() {
        let d = data(
            r#"<remote-backup xmlns="urn:mldhb:yang:mldhb-rbs"><service><name>rbs1</name>
<peer-ipv6>2001:db8:10::2</peer-ipv6><source-ipv6>2001:db8:10::1</source-ipv6><port>1025</port>
<security-key><key>mldhb-rbs-key</key></security-key></service></remote-backup>
<lacp xmlns="urn:mldhb:yang:mldhb-etrunk"><e-trunk-system-id>00:e0:fc:12:34:56</e-trunk-system-id></lacp>"#,
        );
        let text = current_configuration(&d);
        assert!(
            text.contains("lacp e-trunk system-id 00e0-fc12-3456\n"),
            "{text}"
        );
        let key_line = text
            .lines()
            .find(|l| l.starts_with(" security-key cipher %^%#"))
            .unwrap_or_else(|| panic!("{text}"));
        let c = key_line.trim().rsplit(' ').next().unwrap();
        assert_eq!(
            crate::seckey::decode(c).unwrap(),
            ("mldhb-rbs-key".to_string(), crate::seckey::Origin::Simple)
        );
        assert!(!text.contains("mldhb-rbs-key"));
        assert!(!text.contains("# Not shown"), "{text}");
    }
}
