//! The command table: every command as a pattern of keywords and typed parameters, the view it
//! belongs to and the YANG nodes it sets. Parsing, `?` help, completion, `undo` and the
//! rendering of `display current-configuration` all read this one table.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

/// Namespaces of the prefixes used in the table's paths.
pub const PREFIXES: &[(&str, &str)] = &[
    ("if", "urn:ietf:params:xml:ns:yang:ietf-interfaces"),
    ("ianaift", "urn:ietf:params:xml:ns:yang:iana-if-type"),
    ("ip", "urn:ietf:params:xml:ns:yang:ietf-ip"),
    ("vrrp", "urn:ietf:params:xml:ns:yang:ietf-vrrp"),
    ("mhvrrp", "urn:mldhb:yang:mldhb-vrrp"),
    ("mld", "urn:mldhb:yang:mldhb-mld"),
    ("mcast", "urn:mldhb:yang:mldhb-multicast"),
    ("etrunk", "urn:mldhb:yang:mldhb-etrunk"),
    ("rbs", "urn:mldhb:yang:mldhb-rbs"),
    ("sys", "urn:mldhb:yang:mldhb-system"),
];

/// The namespace of a table prefix.
pub fn ns(prefix: &str) -> &'static str {
    PREFIXES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("unknown prefix {prefix} in the command table"))
}

/// Where a command is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every view (displays, quit, return).
    Global,
    /// Every configuration view (commit), without leaving the view.
    Config,
    User,
    System,
    /// Every interface view.
    Iface,
    /// Interface views of an Eth-Trunk.
    IfaceTrunk,
    /// Interface views of anything but an Eth-Trunk (physical ports).
    IfacePort,
    Rbs,
    Rbp,
    ETrunk,
}

/// Views entered by a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    Interface,
    Rbs,
    Rbp,
    ETrunk,
}

/// What a display command shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    Current,
    This,
    Rbs,
    Rbp,
    Vrrp6,
    Vrrp6Brief,
    MldGroup,
    MldGroupVerbose,
    MldInterface,
    MldInterfaceVerbose,
    ETrunk,
}

/// What a command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Edits the candidate as `sets` says.
    Config,
    /// Creates the entry of `sets` when missing and enters its view.
    Enter(ViewKind),
    SystemView,
    Commit,
    Quit,
    Return,
    Show(Display),
}

/// The type of a parameter: how it is checked, converted to YANG values and shown in help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgType {
    Uint(u64, u64),
    Str(usize, usize),
    /// The rest of the line, as typed.
    Line(usize),
    Ipv6,
    /// An IPv6 link-local unicast address (fe80::/10).
    Ipv6LinkLocal,
    /// `ADDRESS/LENGTH`, two YANG values.
    Ipv6Prefix,
    Ipv4,
    /// A MAC address typed as `H-H-H` (or colon form), stored in colon form.
    Mac,
    Mcast6,
    IfName,
    Enum(Vec<&'static str>),
    /// A clear-text key.
    Key,
    /// A cipher-text key; two YANG values (key-type, key).
    Cipher,
}

/// One token of a command pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Kw(&'static str),
    Param {
        name: &'static str,
        ty: ArgType,
        default: Option<&'static str>,
    },
}

/// A value in a path: a literal, a parameter (by token index) or one part of a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Lit(&'static str),
    Arg(usize),
    Part(usize, usize),
}

/// One step of a path: a node, with key predicates when it is a list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seg {
    pub prefix: &'static str,
    pub name: &'static str,
    pub keys: Vec<(&'static str, Val)>,
}

/// One node a command sets: a leaf with a value, or (without value) a list entry or presence
/// container that it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub path: Vec<Seg>,
    pub value: Option<Val>,
}

/// What `undo` does with a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Not undoable.
    No,
    /// Removes the leaves the command sets (back to their defaults).
    RemoveLeaves,
    /// Deletes the entries the command creates.
    DeleteEntries,
    /// Sets the boolean leaves to the opposite value.
    Opposite,
    /// Deletes this node (a path relative to the view).
    Delete(Vec<Seg>),
}

/// One command of the table.
#[derive(Debug, Clone)]
pub struct Command {
    pub scope: Scope,
    pub tokens: Vec<Token>,
    pub action: Action,
    pub sets: Vec<Set>,
    pub help: &'static str,
    /// Rendered only when nothing else was rendered for the node it creates.
    pub bare: bool,
    /// Only used to render configuration (its text is not a command of its own).
    pub render_only: bool,
    pub undo: Undo,
    /// Tokens `undo` needs; the rest of the pattern may follow.
    pub undo_len: usize,
}

impl Command {
    /// The command's pattern as help shows it.
    pub fn pattern(&self) -> String {
        self.tokens
            .iter()
            .map(|t| match t {
                Token::Kw(k) => k.to_string(),
                Token::Param { name, .. } => format!("<{name}>"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// True when the command edits configuration (and so can be undone).
    pub fn is_config(&self) -> bool {
        matches!(self.action, Action::Config | Action::Enter(_))
    }

    /// True when every set is a boolean literal (the command switches something on or off).
    pub fn is_switch(&self) -> bool {
        !self.sets.is_empty()
            && self
                .sets
                .iter()
                .all(|s| matches!(s.value, Some(Val::Lit("true")) | Some(Val::Lit("false"))))
    }
}

impl ArgType {
    /// Checks a typed value; the error says what is expected.
    pub fn check(&self, tok: &str) -> Result<(), String> {
        self.to_yang(tok).map(|_| ())
    }

    /// The YANG values of a typed parameter (one, or two for composite types).
    pub fn to_yang(&self, tok: &str) -> Result<Vec<String>, String> {
        let one = |s: &str| Ok(vec![s.to_string()]);
        match self {
            ArgType::Uint(min, max) => match tok.parse::<u64>() {
                Ok(v) if v >= *min && v <= *max && !tok.starts_with('+') => Ok(vec![v.to_string()]),
                Ok(_) => Err(format!("The value must be in the range {min}-{max}.")),
                Err(_) => Err(format!("Expected an integer in the range {min}-{max}.")),
            },
            ArgType::Str(min, max) => {
                let n = tok.chars().count();
                if n < *min || n > *max {
                    Err(format!("The length must be in the range {min}-{max}."))
                } else if tok.chars().any(char::is_control) {
                    Err("Control characters are not allowed.".into())
                } else {
                    one(tok)
                }
            }
            ArgType::Line(max) => {
                if tok.is_empty() || tok.chars().count() > *max {
                    Err(format!("The length must be in the range 1-{max}."))
                } else {
                    one(tok)
                }
            }
            ArgType::Ipv6 => parse_v6(tok).map(|_| vec![tok.to_string()]),
            ArgType::Ipv6LinkLocal => {
                let a = parse_v6(tok)?;
                if a.segments()[0] & 0xffc0 != 0xfe80 {
                    return Err("A link-local address (fe80::/10) is expected.".into());
                }
                one(tok)
            }
            ArgType::Ipv6Prefix => {
                let (a, l) = tok
                    .split_once('/')
                    .ok_or("Expected an IPv6 address with a prefix length (X:X::X:X/M).")?;
                parse_v6(a)?;
                match l.parse::<u8>() {
                    Ok(n) if n <= 128 && !l.starts_with('+') => Ok(vec![a.into(), n.to_string()]),
                    _ => Err("The prefix length must be in the range 0-128.".into()),
                }
            }
            ArgType::Ipv4 => tok
                .parse::<Ipv4Addr>()
                .map(|_| vec![tok.to_string()])
                .map_err(|_| "Expected an IPv4 address (A.B.C.D).".into()),
            ArgType::Mac => mac_to_yang(tok).map(|m| vec![m]),
            ArgType::Mcast6 => {
                let a = parse_v6(tok)?;
                if !a.is_multicast() {
                    return Err("An IPv6 multicast address (ff00::/8) is expected.".into());
                }
                one(tok)
            }
            ArgType::IfName => {
                if tok.is_empty() || tok.len() > 63 || tok.chars().any(|c| c.is_whitespace()) {
                    Err("Expected an interface name of 1-63 characters.".into())
                } else {
                    one(tok)
                }
            }
            ArgType::Enum(values) => match values.iter().find(|v| **v == tok) {
                Some(v) => one(v),
                None => Err(format!("Expected one of: {}.", values.join(", "))),
            },
            ArgType::Key => {
                if tok.is_empty() || tok.len() > crate::seckey::MAX_KEY {
                    Err(format!(
                        "The key length must be in the range 1-{}.",
                        crate::seckey::MAX_KEY
                    ))
                } else if crate::seckey::looks_like_cipher(tok) {
                    Err("This looks like cipher text; use 'security-key cipher'.".into())
                } else {
                    one(tok)
                }
            }
            ArgType::Cipher => match crate::seckey::decode(tok) {
                Ok((key, crate::seckey::Origin::Simple)) => Ok(vec!["simple".into(), key]),
                Ok((_, crate::seckey::Origin::Cipher)) if tok.len() > crate::seckey::MAX_KEY => {
                    Err(format!(
                        "The cipher text is longer than {} characters.",
                        crate::seckey::MAX_KEY
                    ))
                }
                Ok((_, crate::seckey::Origin::Cipher)) => Ok(vec!["cipher".into(), tok.into()]),
                Err(e) => Err(format!("Invalid cipher text: {e}.")),
            },
        }
    }

    /// The typed form of stored YANG values (absent parts take their defaults); `None` when
    /// this type cannot show them (the renderer then tries another command).
    pub fn from_yang(&self, parts: &[Option<String>]) -> Option<String> {
        let first = parts.first().cloned().flatten();
        match self {
            ArgType::Ipv6Prefix => {
                let a = first?;
                let l = parts.get(1).cloned().flatten()?;
                Some(format!("{a}/{l}"))
            }
            ArgType::Mac => mac_to_cli(&first?),
            ArgType::Cipher => {
                let key = parts.get(1).cloned().flatten()?;
                match first.as_deref() {
                    None | Some("simple") => {
                        crate::seckey::encode(&key, crate::seckey::Origin::Simple).ok()
                    }
                    Some("cipher") => Some(key),
                    Some(_) => None,
                }
            }
            ArgType::Str(..) | ArgType::Key | ArgType::IfName => Some(quote(&first?)),
            _ => {
                let v = first?;
                self.check(&v).ok()?;
                Some(v)
            }
        }
    }

    /// How help shows the expected value.
    pub fn describe(&self) -> String {
        match self {
            ArgType::Uint(a, b) => format!("INTEGER<{a}-{b}>"),
            ArgType::Str(a, b) => format!("STRING<{a}-{b}>"),
            ArgType::Line(b) => format!("TEXT<1-{b}>"),
            ArgType::Ipv6 => "X:X::X:X".into(),
            ArgType::Ipv6LinkLocal => "FE80::X".into(),
            ArgType::Ipv6Prefix => "X:X::X:X/M".into(),
            ArgType::Ipv4 => "A.B.C.D".into(),
            ArgType::Mac => "H-H-H".into(),
            ArgType::Mcast6 => "FFXX:X::X".into(),
            ArgType::IfName => "INTERFACE".into(),
            ArgType::Enum(v) => v.join("|"),
            ArgType::Key => format!("STRING<1-{}>", crate::seckey::MAX_KEY),
            ArgType::Cipher => "CIPHER".into(),
        }
    }
}

fn parse_v6(tok: &str) -> Result<Ipv6Addr, String> {
    if tok.contains('%') {
        return Err("An IPv6 address without zone is expected.".into());
    }
    tok.parse::<Ipv6Addr>()
        .map_err(|_| "Expected an IPv6 address (X:X::X:X).".into())
}

fn mac_to_yang(tok: &str) -> Result<String, String> {
    let hex: String = if tok.len() == 14 && tok.as_bytes()[4] == b'-' && tok.as_bytes()[9] == b'-' {
        tok.split('-').collect()
    } else if tok.len() == 17 && tok.split(':').count() == 6 {
        tok.split(':').collect()
    } else {
        String::new()
    };
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("Expected a MAC address (H-H-H).".into());
    }
    let hex = hex.to_ascii_lowercase();
    Ok((0..6)
        .map(|i| &hex[2 * i..2 * i + 2])
        .collect::<Vec<_>>()
        .join(":"))
}

fn mac_to_cli(v: &str) -> Option<String> {
    let hex: String = v.split(':').collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(format!("{}-{}-{}", &hex[0..4], &hex[4..8], &hex[8..12]))
}

/// Quotes a value that would not survive as one token.
pub fn quote(v: &str) -> String {
    if !v.is_empty()
        && !v
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == ';' || c == '\\' || c == '?')
    {
        return v.to_string();
    }
    let mut out = String::from("\"");
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

// ------------------------------------------------------------------------------------------
// The table, written in a small pattern language:
//   pattern: keywords and `<name:type>` or `<name:type=default>`; types: `A-B` (integer range),
//     `strA-B`, `line`, `ipv6`, `ipv6ll`, `ipv6pfx`, `ipv4`, `mac`, `mcast6`, `ifname`, `key`,
//     `cipher`, `a|b|c` (one of);
//   sets: `prefix:node[key=V]/.../prefix:leaf=V` relative to the view, where V is `$N` (the
//     token at index N), `$N.K` (part K of that token) or a literal; a path without `=V`
//     creates a list entry or presence container.

struct Def {
    scope: Scope,
    pattern: &'static str,
    action: Action,
    sets: &'static [&'static str],
    help: &'static str,
    bare: bool,
    render_only: bool,
    undo: Option<&'static str>,
    undo_len: Option<usize>,
}

const fn def(
    scope: Scope,
    pattern: &'static str,
    sets: &'static [&'static str],
    help: &'static str,
) -> Def {
    Def {
        scope,
        pattern,
        action: Action::Config,
        sets,
        help,
        bare: false,
        render_only: false,
        undo: None,
        undo_len: None,
    }
}

const fn act(scope: Scope, pattern: &'static str, action: Action, help: &'static str) -> Def {
    Def {
        scope,
        pattern,
        action,
        sets: &[],
        help,
        bare: false,
        render_only: false,
        undo: None,
        undo_len: None,
    }
}

const fn enter(
    scope: Scope,
    pattern: &'static str,
    set: &'static [&'static str],
    kind: ViewKind,
    help: &'static str,
) -> Def {
    Def {
        scope,
        pattern,
        action: Action::Enter(kind),
        sets: set,
        help,
        bare: false,
        render_only: false,
        undo: Some("entries"),
        undo_len: None,
    }
}

impl Def {
    const fn bare(mut self) -> Self {
        self.bare = true;
        self
    }
    const fn render_only(mut self) -> Self {
        self.render_only = true;
        self.bare = true;
        self
    }
    /// `undo` deletes this path (relative to the view) and needs only `len` tokens.
    const fn undo_delete(mut self, path: &'static str, len: usize) -> Self {
        self.undo = Some(path);
        self.undo_len = Some(len);
        self
    }
    const fn undo_len(mut self, len: usize) -> Self {
        self.undo_len = Some(len);
        self
    }
}

use Scope::*;

const VRRP: &str = "ip:ipv6/vrrp:vrrp/vrrp:vrrp-instance[vrid=$2]";

macro_rules! vrrp_path {
    ($tail:literal) => {
        concat!("ip:ipv6/vrrp:vrrp/vrrp:vrrp-instance[vrid=$2]", $tail)
    };
}

const DEFS: &[Def] = &[
    // ---- any view
    act(
        Global,
        "display current-configuration",
        Action::Show(Display::Current),
        "Configuration in running, as commands",
    ),
    act(
        Global,
        "display this",
        Action::Show(Display::This),
        "Running configuration of the current view",
    ),
    act(
        Global,
        "display remote-backup-service",
        Action::Show(Display::Rbs),
        "Remote backup services and their channels",
    ),
    act(
        Global,
        "display remote-backup-service <name:str1-31>",
        Action::Show(Display::Rbs),
        "One remote backup service",
    ),
    act(
        Global,
        "display remote-backup-profile",
        Action::Show(Display::Rbp),
        "Remote backup profiles and their roles",
    ),
    act(
        Global,
        "display remote-backup-profile <name:str1-31>",
        Action::Show(Display::Rbp),
        "One remote backup profile",
    ),
    act(
        Global,
        "display vrrp6",
        Action::Show(Display::Vrrp6),
        "VRRP6 groups in detail",
    ),
    act(
        Global,
        "display vrrp6 brief",
        Action::Show(Display::Vrrp6Brief),
        "VRRP6 groups, one line each",
    ),
    act(
        Global,
        "display mld group",
        Action::Show(Display::MldGroup),
        "MLD group table",
    ),
    act(
        Global,
        "display mld group verbose",
        Action::Show(Display::MldGroupVerbose),
        "MLD group table with sources",
    ),
    act(
        Global,
        "display mld interface",
        Action::Show(Display::MldInterface),
        "MLD interfaces",
    ),
    act(
        Global,
        "display mld interface verbose",
        Action::Show(Display::MldInterfaceVerbose),
        "MLD interfaces with timers and counters",
    ),
    act(
        Global,
        "display e-trunk",
        Action::Show(Display::ETrunk),
        "E-Trunks and their Eth-Trunks",
    ),
    act(
        Global,
        "display e-trunk <id:1-128>",
        Action::Show(Display::ETrunk),
        "One E-Trunk",
    ),
    act(Global, "quit", Action::Quit, "Leave the current view"),
    act(Global, "return", Action::Return, "Return to the user view"),
    act(
        User,
        "system-view",
        Action::SystemView,
        "Enter the system view",
    ),
    act(
        Config,
        "commit",
        Action::Commit,
        "Commit the candidate configuration",
    ),
    // ---- system view
    def(
        System,
        "sysname <name:str1-64=mldhb>",
        &["sys:system/sys:sysname=$1"],
        "Name of the device",
    ),
    def(
        System,
        "multicast ipv6 routing-enable",
        &["mcast:multicast/mcast:ipv6-routing-enable=true"],
        "Enable IPv6 multicast routing",
    ),
    def(
        System,
        "multicast ipv6 forwarding-backend <backend:auto|ip6mr|nftables=auto>",
        &["mcast:multicast/mcast:forwarding-backend=$3"],
        "Kernel data plane for multicast forwarding",
    ),
    def(
        System,
        "lacp e-trunk system-id <mac:mac>",
        &["etrunk:lacp/etrunk:e-trunk-system-id=$3"],
        "LACP system ID shared by the E-Trunk pair",
    ),
    def(
        System,
        "lacp e-trunk priority <priority:0-65535=32768>",
        &["etrunk:lacp/etrunk:e-trunk-priority=$3"],
        "LACP system priority shared by the E-Trunk pair",
    ),
    enter(
        System,
        "e-trunk <id:1-128>",
        &["etrunk:e-trunk[id=$1]"],
        ViewKind::ETrunk,
        "Create or enter an E-Trunk",
    ),
    enter(
        System,
        "remote-backup-service <name:str1-31>",
        &["rbs:remote-backup/rbs:service[name=$1]"],
        ViewKind::Rbs,
        "Create or enter a remote backup service",
    ),
    enter(
        System,
        "remote-backup-profile <name:str1-31>",
        &["rbs:remote-backup/rbs:profile[name=$1]"],
        ViewKind::Rbp,
        "Create or enter a remote backup profile",
    ),
    enter(
        System,
        "interface <name:ifname>",
        &["if:interfaces/if:interface[name=$1]"],
        ViewKind::Interface,
        "Create or enter an interface",
    ),
    // ---- E-Trunk view
    def(
        ETrunk,
        "priority <priority:1-254=100>",
        &["etrunk:priority=$1"],
        "E-Trunk priority (the smaller wins)",
    ),
    def(
        ETrunk,
        "peer-ipv6 <peer:ipv6> source-ipv6 <source:ipv6>",
        &["etrunk:peer-ipv6=$1", "etrunk:source-ipv6=$3"],
        "Peer and local addresses of the E-Trunk",
    )
    .undo_len(1),
    def(
        ETrunk,
        "e-trunk port <port:1024-65535=1025>",
        &["etrunk:port=$2"],
        "UDP port of E-Trunk hellos",
    ),
    def(
        ETrunk,
        "timer hello <interval:5-100=10>",
        &["etrunk:hello-interval=$2"],
        "Hello interval, in units of 100 ms",
    ),
    def(
        ETrunk,
        "timer hold-on-failure multiplier <multiplier:3-300=20>",
        &["etrunk:hold-on-failure-multiplier=$3"],
        "Hold time as a multiple of the hello interval",
    ),
    def(
        ETrunk,
        "timer revert delay <delay:0-10800=120>",
        &["etrunk:revert-delay=$3"],
        "Delay before the better device takes the master role back, in seconds",
    ),
    def(
        ETrunk,
        "revert enable",
        &["etrunk:revert-enable=true"],
        "Let the better device take the master role back",
    ),
    def(
        ETrunk,
        "system-id <mac:mac>",
        &["etrunk:system-id=$1"],
        "System ID used in the priority tie-break",
    ),
    def(
        ETrunk,
        "security-key cipher <key:cipher>",
        &[
            "etrunk:security-key/etrunk:key-type=$2.0",
            "etrunk:security-key/etrunk:key=$2.1",
        ],
        "Authentication key in cipher text",
    )
    .undo_delete("etrunk:security-key", 1),
    def(
        ETrunk,
        "security-key simple <key:key>",
        &[
            "etrunk:security-key/etrunk:key-type=simple",
            "etrunk:security-key/etrunk:key=$2",
        ],
        "Authentication key in clear text",
    )
    .undo_delete("etrunk:security-key", 1),
    // ---- remote backup service view
    def(
        Rbs,
        "peer-ipv6 <peer:ipv6> source-ipv6 <source:ipv6> port <port:1024-55535>",
        &["rbs:peer-ipv6=$1", "rbs:source-ipv6=$3", "rbs:port=$5"],
        "Peer and local addresses and TCP port of the channel",
    )
    .undo_len(1),
    def(
        Rbs,
        "security-key cipher <key:cipher>",
        &[
            "rbs:security-key/rbs:key-type=$2.0",
            "rbs:security-key/rbs:key=$2.1",
        ],
        "Authentication key in cipher text",
    )
    .undo_delete("rbs:security-key", 1),
    def(
        Rbs,
        "security-key simple <key:key>",
        &[
            "rbs:security-key/rbs:key-type=simple",
            "rbs:security-key/rbs:key=$2",
        ],
        "Authentication key in clear text",
    )
    .undo_delete("rbs:security-key", 1),
    // ---- remote backup profile view
    def(
        Rbp,
        "service-type mld",
        &["rbs:service-type=mld"],
        "Back up MLD state",
    ),
    def(
        Rbp,
        "backup-id <id:1-4095> remote-backup-service <service:str1-31>",
        &["rbs:backup-id=$1", "rbs:remote-backup-service=$3"],
        "Backup ID (the same on both devices) and the service that carries it",
    )
    .undo_len(1),
    def(
        Rbp,
        "peer-backup hot",
        &["rbs:peer-backup=hot"],
        "Hot backup: the backup holds ready state",
    ),
    def(
        Rbp,
        "vrrp6-id <vrid:1-255> interface <interface:ifname>",
        &["rbs:vrrp6-id=$1", "rbs:interface=$3"],
        "VRRP6 group that decides the master",
    )
    .undo_len(1),
    def(
        Rbp,
        "e-trunk <etrunk:1-128> eth-trunk <trunk:0-1023>",
        &["rbs:e-trunk-id=$1", "rbs:eth-trunk-id=$3"],
        "E-Trunk and Eth-Trunk that decide the master",
    )
    .undo_len(1),
    def(
        Rbp,
        "backup-mode <mode:master-backup|active-active=master-backup>",
        &["rbs:backup-mode=$1"],
        "Backup mode",
    ),
    def(
        Rbp,
        "load-balance <policy:master-only|group-hash|source-group-hash=master-only>",
        &["rbs:load-balance=$1"],
        "Forwarder selection in active-active mode",
    ),
    // ---- interface views
    def(
        IfacePort,
        "eth-trunk <trunk:0-1023>",
        &["etrunk:member-of-eth-trunk=$1"],
        "Add the port to an Eth-Trunk",
    )
    .undo_len(1),
    def(
        IfaceTrunk,
        "mode lacp-static",
        &["etrunk:eth-trunk/etrunk:mode=lacp-static"],
        "Static LACP mode",
    )
    .undo_delete("etrunk:eth-trunk", 1),
    def(
        IfaceTrunk,
        "e-trunk <etrunk:1-128>",
        &["etrunk:eth-trunk/etrunk:e-trunk=$1"],
        "Bind the Eth-Trunk to an E-Trunk",
    )
    .undo_len(1),
    def(
        IfaceTrunk,
        "e-trunk mode <mode:auto|force-master|force-backup=auto>",
        &["etrunk:eth-trunk/etrunk:e-trunk-mode=$2"],
        "How the E-Trunk state drives the Eth-Trunk",
    ),
    def(
        Iface,
        "description <text:line>",
        &["if:description=$1"],
        "Interface description",
    ),
    def(
        Iface,
        "shutdown",
        &["if:enabled=false"],
        "Disable the interface",
    ),
    def(
        Iface,
        "ipv6 enable",
        &["ip:ipv6/ip:enabled=true"],
        "Enable IPv6 on the interface",
    ),
    def(
        Iface,
        "ipv6 address <address:ipv6pfx>",
        &["ip:ipv6/ip:address[ip=$2.0]/ip:prefix-length=$2.1"],
        "IPv6 address of the interface",
    )
    .undo_delete("ip:ipv6/ip:address[ip=$2.0]", 3),
    def(
        Iface,
        "ip address <address:ipv4> <length:0-32>",
        &["ip:ipv4/ip:address[ip=$2]/ip:prefix-length=$3"],
        "IPv4 address of the interface",
    )
    .undo_delete("ip:ipv4/ip:address[ip=$2]", 3),
    def(
        Iface,
        "vrrp6 vrid <vrid:1-255> virtual-ip <address:ipv6ll> link-local",
        &[vrrp_path!(
            "/vrrp:virtual-ipv6-addresses/vrrp:virtual-ipv6-address[ipv6-address=$4]"
        )],
        "Link-local virtual address of the VRRP6 group",
    ),
    def(
        Iface,
        "vrrp6 vrid <vrid:1-255> virtual-ip <address:ipv6>",
        &[vrrp_path!(
            "/vrrp:virtual-ipv6-addresses/vrrp:virtual-ipv6-address[ipv6-address=$4]"
        )],
        "Virtual address of the VRRP6 group",
    ),
    def(
        Iface,
        "vrrp6 vrid <vrid:1-255> priority <priority:1-254=100>",
        &[vrrp_path!("/vrrp:priority=$4")],
        "VRRP6 priority",
    ),
    def(
        Iface,
        "vrrp6 vrid <vrid:1-255> preempt-mode timer delay <delay:0-3600=0>",
        &[vrrp_path!("/vrrp:preempt/vrrp:hold-time=$6")],
        "Delay before preempting, in seconds",
    ),
    def(
        Iface,
        "vrrp6 vrid <vrid:1-255> preempt-mode disable",
        &[vrrp_path!("/vrrp:preempt/vrrp:enabled=false")],
        "Never preempt a master with a lower priority",
    ),
    def(
        Iface,
        "vrrp6 vrid <vrid:1-255> timer advertise <interval:1-4095=100>",
        &[vrrp_path!("/vrrp:advertise-interval-centi-sec=$5")],
        "Advertisement interval, in centiseconds",
    ),
    def(
        Iface,
        "vrrp6 vrid <vrid:1-255> accept-mode enable",
        &[vrrp_path!("/vrrp:accept-mode=true")],
        "Accept packets for the owner's addresses while master",
    ),
    def(
        Iface,
        "vrrp6 vrid <vrid:1-255> virtual-mac enable",
        &[vrrp_path!("/mhvrrp:virtual-mac=true")],
        "Use the VRRP virtual MAC address",
    ),
    def(
        Iface,
        "vrrp6 vrid <vrid:1-255> track interface <interface:ifname> reduced <decrement:1-254=10>",
        &[vrrp_path!(
            "/vrrp:track/vrrp:interfaces/vrrp:interface[interface=$5]/vrrp:priority-decrement=$7"
        )],
        "Track an interface, lowering the priority by this much when it is down",
    )
    .undo_delete(
        vrrp_path!("/vrrp:track/vrrp:interfaces/vrrp:interface[interface=$5]"),
        6,
    ),
    def(
        Iface,
        "vrrp6 vrid <vrid:1-255> track interface <interface:ifname>",
        &[vrrp_path!(
            "/vrrp:track/vrrp:interfaces/vrrp:interface[interface=$5]"
        )],
        "Track an interface",
    ),
    def(
        Iface,
        "vrrp6 vrid <vrid:1-255>",
        &[VRRP],
        "Create a VRRP6 group",
    )
    .bare(),
    def(
        Iface,
        "mld enable",
        &["mld:mld/mld:enable=true"],
        "Enable MLD on the interface",
    ),
    def(
        Iface,
        "mld version <version:1-2=2>",
        &["mld:mld/mld:version=$2"],
        "MLD version",
    ),
    def(
        Iface,
        "mld timer query <interval:1-31744=125>",
        &["mld:mld/mld:query-interval=$3"],
        "General query interval, in seconds",
    ),
    def(
        Iface,
        "mld robust-count <count:2-5=2>",
        &["mld:mld/mld:robust-count=$2"],
        "Robustness variable",
    ),
    def(
        Iface,
        "mld max-response-time <time:1-125=10>",
        &["mld:mld/mld:max-response-time=$2"],
        "Maximum response time of general queries, in seconds",
    ),
    def(
        Iface,
        "mld lastlistener-queryinterval <interval:1-25=1>",
        &["mld:mld/mld:last-listener-query-interval=$2"],
        "Last listener query interval, in seconds",
    ),
    def(
        Iface,
        "mld timer other-querier-present <interval:60-300>",
        &["mld:mld/mld:other-querier-present-interval=$3"],
        "Other querier present interval, in seconds",
    ),
    def(
        Iface,
        "mld require-router-alert",
        &["mld:mld/mld:require-router-alert=true"],
        "Drop MLD messages without the Router Alert option",
    ),
    def(
        Iface,
        "mld limit <entries:1-4294967295>",
        &["mld:mld/mld:max-entries=$2"],
        "Maximum number of group entries",
    ),
    def(
        Iface,
        "mld static-group <group:mcast6>",
        &["mld:mld/mld:static-group[group=$2][source=::]"],
        "Join a group statically",
    ),
    def(
        Iface,
        "mld static-group <group:mcast6> source <source:ipv6>",
        &["mld:mld/mld:static-group[group=$2][source=$4]"],
        "Join a source-specific group statically",
    ),
    def(
        Iface,
        "multicast ipv6 track vrrp6 vrid <vrid:1-255>",
        &["mld:mld/mld:track-vrrp6-vrid=$5"],
        "Act as MLD querier and forwarder only while VRRP6 master",
    ),
    def(
        Iface,
        "undo mld enable",
        &["mld:mld"],
        "MLD configured, not enabled",
    )
    .render_only(),
    def(
        Iface,
        "remote-backup-profile <name:str1-31>",
        &["rbs:remote-backup-profile=$1"],
        "Bind the interface to a remote backup profile",
    ),
];

fn parse_val(s: &'static str) -> Val {
    if let Some(rest) = s.strip_prefix('$') {
        match rest.split_once('.') {
            Some((a, b)) => Val::Part(
                a.parse().expect("token index"),
                b.parse().expect("part index"),
            ),
            None => Val::Arg(rest.parse().expect("token index")),
        }
    } else {
        Val::Lit(s)
    }
}

/// Splits at `sep` outside square brackets.
fn split_outside(s: &'static str, sep: char) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            c if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_seg(s: &'static str) -> Seg {
    let (head, preds) = match s.find('[') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let (prefix, name) = head.split_once(':').expect("prefixed node name");
    ns(prefix);
    let mut keys = Vec::new();
    for p in preds.split(']').filter(|p| !p.is_empty()) {
        let p = p.strip_prefix('[').expect("key predicate");
        let (k, v) = p.split_once('=').expect("key=value");
        keys.push((k, parse_val(v)));
    }
    Seg { prefix, name, keys }
}

/// Parses a path of the table language, with an optional `=value` on the last node.
pub fn parse_path(s: &'static str) -> (Vec<Seg>, Option<Val>) {
    let parts = split_outside(s, '/');
    let mut segs = Vec::new();
    let mut value = None;
    for (i, p) in parts.iter().enumerate() {
        let p: &'static str = p;
        if i + 1 == parts.len() {
            let eq = split_outside(p, '=');
            if eq.len() == 2 {
                segs.push(parse_seg(eq[0]));
                value = Some(parse_val(eq[1]));
                continue;
            }
        }
        segs.push(parse_seg(p));
    }
    (segs, value)
}

fn parse_type(spec: &'static str) -> ArgType {
    if let Some((a, b)) = spec.split_once('-') {
        if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
            return ArgType::Uint(a, b);
        }
    }
    if let Some(r) = spec.strip_prefix("str") {
        let (a, b) = r.split_once('-').expect("strA-B");
        return ArgType::Str(a.parse().expect("min"), b.parse().expect("max"));
    }
    match spec {
        "line" => ArgType::Line(242),
        "ipv6" => ArgType::Ipv6,
        "ipv6ll" => ArgType::Ipv6LinkLocal,
        "ipv6pfx" => ArgType::Ipv6Prefix,
        "ipv4" => ArgType::Ipv4,
        "mac" => ArgType::Mac,
        "mcast6" => ArgType::Mcast6,
        "ifname" => ArgType::IfName,
        "key" => ArgType::Key,
        "cipher" => ArgType::Cipher,
        s if s.contains('|') => ArgType::Enum(s.split('|').collect()),
        s => panic!("unknown parameter type {s} in the command table"),
    }
}

fn parse_pattern(p: &'static str) -> Vec<Token> {
    p.split_whitespace()
        .map(|t| {
            if let Some(inner) = t.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
                let (name, spec) = inner.split_once(':').expect("<name:type>");
                let (spec, default) = match spec.split_once('=') {
                    Some((s, d)) => (s, Some(d)),
                    None => (spec, None),
                };
                Token::Param {
                    name,
                    ty: parse_type(spec),
                    default,
                }
            } else {
                Token::Kw(t)
            }
        })
        .collect()
}

fn vals_of(set: &Set) -> impl Iterator<Item = &Val> {
    set.path
        .iter()
        .flat_map(|s| s.keys.iter().map(|(_, v)| v))
        .chain(set.value.iter())
}

fn key_vals(set: &Set) -> impl Iterator<Item = &Val> {
    set.path.iter().flat_map(|s| s.keys.iter().map(|(_, v)| v))
}

fn token_of(v: &Val) -> Option<usize> {
    match v {
        Val::Arg(n) | Val::Part(n, _) => Some(*n),
        Val::Lit(_) => None,
    }
}

fn build(d: &Def) -> Command {
    let tokens = parse_pattern(d.pattern);
    let sets: Vec<Set> = d
        .sets
        .iter()
        .map(|s| {
            let (path, value) = parse_path(s);
            Set { path, value }
        })
        .collect();
    let undo = match d.undo {
        _ if !matches!(d.action, Action::Config | Action::Enter(_)) => Undo::No,
        Some("entries") => Undo::DeleteEntries,
        Some(p) => Undo::Delete(parse_path(p).0),
        None if sets.iter().all(|s| s.value.is_none()) => Undo::DeleteEntries,
        None if sets
            .iter()
            .all(|s| matches!(s.value, Some(Val::Lit("true")) | Some(Val::Lit("false")))) =>
        {
            Undo::Opposite
        }
        None => Undo::RemoveLeaves,
    };
    // By default undo needs every token up to the first parameter that is only a value (the
    // keys identify what to undo), or the whole pattern up to its last key.
    let key_tokens: Vec<usize> = sets
        .iter()
        .flat_map(|s| key_vals(s).filter_map(token_of))
        .collect();
    let value_only = tokens.iter().enumerate().position(|(i, t)| {
        matches!(t, Token::Param { .. })
            && !key_tokens.contains(&i)
            && sets
                .iter()
                .any(|s| vals_of(s).filter_map(token_of).any(|n| n == i))
    });
    let last_key = key_tokens.iter().max().map(|k| k + 1).unwrap_or(0);
    let creates_only = !sets.is_empty() && sets.iter().all(|s| s.value.is_none());
    let undo_len = d.undo_len.unwrap_or(match value_only {
        Some(v) => v.max(last_key),
        None if creates_only => last_key,
        None => tokens.len(),
    });
    Command {
        scope: d.scope,
        tokens,
        action: d.action,
        sets,
        help: d.help,
        bare: d.bare,
        render_only: d.render_only,
        undo,
        undo_len,
    }
}

/// The command table.
pub fn table() -> &'static [Command] {
    static TABLE: OnceLock<Vec<Command>> = OnceLock::new();
    TABLE.get_or_init(|| DEFS.iter().map(build).collect())
}

/// Help text for a keyword at some position (the keyword's own meaning).
pub fn keyword_help(kw: &str) -> Option<&'static str> {
    const HELP: &[(&str, &str)] = &[
        ("display", "Display information"),
        ("undo", "Negate a command or set its default"),
        ("vrrp6", "VRRP for IPv6"),
        ("vrid", "Virtual router ID"),
        ("mld", "Multicast Listener Discovery"),
        ("multicast", "Multicast routing"),
        ("ipv6", "IPv6 settings"),
        ("ip", "IPv4 settings"),
        ("lacp", "Link Aggregation Control Protocol"),
        ("timer", "Timers"),
        ("security-key", "Authentication key of the channel"),
        ("e-trunk", "E-Trunk"),
        ("track", "Track an object"),
        ("preempt-mode", "Preemption"),
        ("static-group", "Static group membership"),
        ("brief", "One line per entry"),
        ("verbose", "All details"),
        ("group", "Group table"),
        ("interface", "Interface"),
    ];
    HELP.iter().find(|(k, _)| *k == kw).map(|(_, h)| *h)
}

/// Interface type a new interface gets from its name.
pub fn interface_type(name: &str) -> &'static str {
    if eth_trunk_number(name).is_some() {
        "ianaift:ieee8023adLag"
    } else if name == "lo" || name.starts_with("LoopBack") {
        "ianaift:softwareLoopback"
    } else {
        "ianaift:ethernetCsmacd"
    }
}

/// The number of an Eth-Trunk interface name (`Eth-Trunk12` → 12).
pub fn eth_trunk_number(name: &str) -> Option<u16> {
    let n = name.strip_prefix("Eth-Trunk")?;
    if n.is_empty() || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    n.parse().ok().filter(|v| *v <= 1023)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_keys_refer_to_parameters() {
        for c in table() {
            for s in &c.sets {
                for v in vals_of(s) {
                    if let Some(n) = token_of(v) {
                        assert!(
                            matches!(c.tokens.get(n), Some(Token::Param { .. })),
                            "{}: ${n} is not a parameter",
                            c.pattern()
                        );
                    }
                }
            }
            assert!(c.undo_len <= c.tokens.len(), "{}", c.pattern());
        }
    }

    #[test]
    fn undo_lengths() {
        let find = |p: &str| table().iter().find(|c| c.pattern() == p).unwrap();
        assert_eq!(find("vrrp6 vrid <vrid> priority <priority>").undo_len, 4);
        assert_eq!(
            find("peer-ipv6 <peer> source-ipv6 <source> port <port>").undo_len,
            1
        );
        assert_eq!(
            find("vrrp6 vrid <vrid> virtual-ip <address> link-local").undo_len,
            5
        );
        assert_eq!(find("mld static-group <group>").undo_len, 3);
        assert_eq!(find("mld enable").undo, Undo::Opposite);
        assert_eq!(find("interface <name>").undo, Undo::DeleteEntries);
        assert_eq!(find("interface <name>").undo_len, 2);
    }

    #[test]
    fn types_check_and_convert() {
        assert_eq!(
            ArgType::Mac.to_yang("00E0-fc12-3456").unwrap(),
            vec!["00:e0:fc:12:34:56"]
        );
        assert_eq!(
            ArgType::Mac.from_yang(&[Some("00:e0:fc:12:34:56".into())]),
            Some("00e0-fc12-3456".into())
        );
        assert!(ArgType::Uint(1, 254).check("255").is_err());
        assert!(ArgType::Uint(1, 254).check("0x1").is_err());
        assert!(ArgType::Ipv6LinkLocal.check("2001:db8::1").is_err());
        assert!(ArgType::Ipv6LinkLocal.check("fe80::1").is_ok());
        assert_eq!(
            ArgType::Ipv6Prefix.to_yang("2001:db8::1/64").unwrap(),
            vec!["2001:db8::1", "64"]
        );
        assert!(ArgType::Ipv6Prefix.check("2001:db8::1/129").is_err());
        assert!(ArgType::Mcast6.check("2001:db8::1").is_err());
        let c = ArgType::Cipher
            .from_yang(&[None, Some("mldhb-rbs-key".into())])
            .unwrap();
        assert_eq!(
            ArgType::Cipher.to_yang(&c).unwrap(),
            vec!["simple", "mldhb-rbs-key"]
        );
        assert!(ArgType::Key.check(&c).is_err());
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(eth_trunk_number("Eth-Trunk1"), Some(1));
        assert_eq!(eth_trunk_number("Eth-Trunk01"), None);
    }

    /// Every configuration leaf of the project's modules (and their augments) is set by some
    /// command of the table.
    #[test]
    fn every_project_leaf_has_a_spelling() {
        use yang3::schema::SchemaNodeKind;
        let ctx = crate::yang::context();
        let spelled: Vec<Vec<(String, String)>> = table()
            .iter()
            .flat_map(|c| {
                let ctx_path = match c.scope {
                    Iface | IfaceTrunk | IfacePort => "if:interfaces/if:interface[name=x]",
                    Rbs => "rbs:remote-backup/rbs:service[name=x]",
                    Rbp => "rbs:remote-backup/rbs:profile[name=x]",
                    ETrunk => "etrunk:e-trunk[id=x]",
                    _ => "",
                };
                let base = if ctx_path.is_empty() {
                    vec![]
                } else {
                    parse_path(ctx_path).0
                };
                c.sets
                    .iter()
                    .map(move |s| {
                        let mut out: Vec<(String, String)> = base
                            .iter()
                            .chain(s.path.iter())
                            .map(|g| (ns(g.prefix).to_string(), g.name.to_string()))
                            .collect();
                        let mut keys = Vec::new();
                        for g in base.iter().chain(s.path.iter()) {
                            for (k, _) in &g.keys {
                                let mut p: Vec<(String, String)> = Vec::new();
                                for h in base.iter().chain(s.path.iter()) {
                                    p.push((ns(h.prefix).to_string(), h.name.to_string()));
                                    if std::ptr::eq(h, g) {
                                        break;
                                    }
                                }
                                p.push((ns(g.prefix).to_string(), k.to_string()));
                                keys.push(p);
                            }
                        }
                        keys.push(std::mem::take(&mut out));
                        keys
                    })
                    .collect::<Vec<_>>()
            })
            .flatten()
            .collect();
        let mut missing = Vec::new();
        for node in ctx.traverse() {
            if !matches!(node.kind(), SchemaNodeKind::Leaf | SchemaNodeKind::LeafList)
                || !node.is_config()
            {
                continue;
            }
            let module = node.module();
            if !module.name().starts_with("mldhb-") {
                continue;
            }
            let mut path = Vec::new();
            let mut n = Some(node.clone());
            while let Some(s) = n {
                if !matches!(s.kind(), SchemaNodeKind::Choice | SchemaNodeKind::Case) {
                    path.push((s.module().namespace().to_string(), s.name().to_string()));
                }
                n = s.ancestors().next();
            }
            path.reverse();
            // The Eth-Trunk number is spelled by the interface name (Eth-Trunk<N>).
            let implied = path.last().is_some_and(|(_, n)| n == "trunk-id");
            if !spelled.contains(&path) && !implied {
                missing.push(
                    path.iter()
                        .map(|(_, n)| n.as_str())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
        }
        assert!(
            missing.is_empty(),
            "leaves without a CLI spelling: {missing:#?}"
        );
    }
}
