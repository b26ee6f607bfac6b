//! Namespace-aware XML element trees for NETCONF messages: a bounded parser and a writer.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use std::fmt::Write as _;

/// The NETCONF base namespace (RFC 6241), the home of `<rpc-error>` and the operations.
pub const NS_BASE: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
/// The with-defaults metadata namespace (RFC 6243 `wd:default`).
pub const NS_WITH_DEFAULTS_MD: &str = "urn:ietf:params:xml:ns:netconf:default:1.0";

/// The namespace bound to the reserved `xml` prefix.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Deepest element nesting accepted in one message.
pub const MAX_DEPTH: usize = 256;

/// One XML attribute with its namespace resolved (empty when unqualified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ns: String,
    pub name: String,
    pub value: String,
}

/// One XML element with its namespace resolved and its in-scope prefix declarations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<Attr>,
    /// Prefix declarations made on this element (prefix, namespace); "" is the default namespace.
    pub ns_decls: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
    /// When the text is a qualified name `prefix:local` whose prefix is in scope, that
    /// prefix's namespace (identityref values need it).
    pub text_ns: Option<String>,
}

/// Why a message is not well-formed XML.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("XML syntax error: {0}")]
    Syntax(String),
    #[error("document type declarations are not accepted")]
    DocType,
    #[error("entity reference &{0}; is not defined")]
    UnknownEntity(String),
    #[error("element nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("the message holds no element")]
    Empty,
    #[error("text after the root element")]
    TrailingContent,
    #[error("unbound namespace prefix in {0}")]
    UnboundPrefix(String),
    #[error("control character in text")]
    ControlCharacter,
}

impl Element {
    pub fn new(ns: &str, name: &str) -> Self {
        Element {
            ns: ns.to_string(),
            name: name.to_string(),
            ..Default::default()
        }
    }

    pub fn with_text(ns: &str, name: &str, text: impl Into<String>) -> Self {
        let mut e = Element::new(ns, name);
        e.text = text.into();
        e
    }

    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.ns == ns && c.name == name)
    }

    pub fn child_any_ns(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn attr(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns == ns && a.name == name)
            .map(|a| a.value.as_str())
    }

    pub fn trimmed_text(&self) -> &str {
        self.text.trim()
    }

    pub fn push(&mut self, child: Element) -> &mut Self {
        self.children.push(child);
        self
    }

    /// Serialises the element; namespaces are declared where they change.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write_xml(&mut out, "");
        out
    }

    pub fn write_xml(&self, out: &mut String, parent_ns: &str) {
        out.push('<');
        out.push_str(&self.name);
        if self.ns != parent_ns {
            let _ = write!(out, " xmlns=\"{}\"", escape_attr(&self.ns));
        }
        for (prefix, ns) in &self.ns_decls {
            if !prefix.is_empty() {
                let _ = write!(out, " xmlns:{}=\"{}\"", prefix, escape_attr(ns));
            }
        }
        for a in &self.attrs {
            if a.ns.is_empty() {
                let _ = write!(out, " {}=\"{}\"", a.name, escape_attr(&a.value));
            } else if a.ns == XML_NS {
                let _ = write!(out, " xml:{}=\"{}\"", a.name, escape_attr(&a.value));
            } else {
                let prefix = attr_prefix(&a.ns);
                let _ = write!(
                    out,
                    " xmlns:{p}=\"{}\" {p}:{}=\"{}\"",
                    escape_attr(&a.ns),
                    a.name,
                    escape_attr(&a.value),
                    p = prefix
                );
            }
        }
        if self.children.is_empty() && self.text.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        out.push_str(&escape_text(&self.text));
        for c in &self.children {
            c.write_xml(out, &self.ns);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

fn attr_prefix(ns: &str) -> &'static str {
    match ns {
        NS_BASE => "nc",
        NS_WITH_DEFAULTS_MD => "wd",
        _ => "a",
    }
}

/// Appends `s` to `out` with `<`, `>` and `&` escaped.
pub fn push_escaped(out: &mut String, s: &str) {
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

pub fn escape_text(s: &str) -> String {
    if !s.contains(['<', '>', '&']) {
        return s.to_string();
    }
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn escape_attr(s: &str) -> String {
    escape_text(s).replace('"', "&quot;")
}

fn syntax<E: std::fmt::Display>(e: E) -> XmlError {
    XmlError::Syntax(e.to_string())
}

fn resolved_ns(r: ResolveResult<'_>, what: &[u8]) -> Result<String, XmlError> {
    match r {
        ResolveResult::Bound(ns) => Ok(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(_) => Err(XmlError::UnboundPrefix(
            String::from_utf8_lossy(what).into_owned(),
        )),
    }
}

fn check_text(s: &str) -> Result<(), XmlError> {
    // XML 1.0 Char excludes the C0 controls but tab, newline and return, and U+FFFE/U+FFFF.
    if s.chars().any(|c| {
        ((c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r')
            || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }) {
        return Err(XmlError::ControlCharacter);
    }
    Ok(())
}

fn entity(name: &str) -> Result<String, XmlError> {
    let s = match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok()
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse::<u32>().ok()
            } else {
                None
            };
            let c = code
                .and_then(char::from_u32)
                .ok_or_else(|| XmlError::UnknownEntity(name.to_string()))?;
            // A reference cannot smuggle in what the text may not hold.
            let s = c.to_string();
            check_text(&s)?;
            return Ok(s);
        }
    };
    Ok(s.to_string())
}

fn start_element(
    reader: &NsReader<&[u8]>,
    e: &quick_xml::events::BytesStart<'_>,
) -> Result<Element, XmlError> {
    let (r, local) = reader.resolver().resolve_element(e.name());
    let ns = resolved_ns(r, e.name().as_ref())?;
    let mut el = Element {
        ns,
        name: String::from_utf8_lossy(local.as_ref()).into_owned(),
        ..Default::default()
    };
    for a in e.attributes() {
        let a = a.map_err(syntax)?;
        let key = a.key;
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(syntax)?
            .into_owned();
        check_text(&value)?;
        if key.as_ref() == b"xmlns" {
            el.ns_decls.push((String::new(), value));
            continue;
        }
        if let Some(prefix) = key.as_ref().strip_prefix(b"xmlns:") {
            el.ns_decls
                .push((String::from_utf8_lossy(prefix).into_owned(), value));
            continue;
        }
        let (r, local) = reader.resolver().resolve_attribute(key);
        let ns = resolved_ns(r, key.as_ref())?;
        el.attrs.push(Attr {
            ns,
            name: String::from_utf8_lossy(local.as_ref()).into_owned(),
            value,
        });
    }
    Ok(el)
}

fn resolve_text_prefix(ancestors: &[Element], el: &mut Element) {
    let t = el.text.trim();
    let Some((prefix, local)) = t.split_once(':') else {
        return;
    };
    if prefix.is_empty()
        || local.is_empty()
        || local.contains(':')
        || !prefix
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return;
    }
    let found = std::iter::once(&*el)
        .chain(ancestors.iter().rev())
        .find_map(|e| {
            e.ns_decls
                .iter()
                .find(|(p, _)| p == prefix)
                .map(|(_, ns)| ns.clone())
        });
    el.text_ns = found;
}

/// Parses one XML document into its root element. Never expands DTDs or external entities.
pub fn parse(input: &[u8]) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_reader(input);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let finish = |stack: &[Element], mut el: Element| -> Element {
        resolve_text_prefix(stack, &mut el);
        el
    };
    loop {
        let ev = reader.read_event().map_err(syntax)?;
        match ev {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(XmlError::TrailingContent);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let el = start_element(&reader, &e)?;
                stack.push(el);
            }
            Event::Empty(e) => {
                if root.is_some() {
                    return Err(XmlError::TrailingContent);
                }
                let el = finish(&stack, start_element(&reader, &e)?);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| syntax("unexpected end tag"))?;
                let el = finish(&stack, el);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t.xml10_content().map_err(syntax)?;
                check_text(&s)?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(XmlError::TrailingContent),
                }
            }
            Event::CData(t) => {
                let s = t.decode().map_err(syntax)?;
                check_text(&s)?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None => return Err(XmlError::TrailingContent),
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(syntax)?;
                let s = entity(&name)?;
                check_text(&s)?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None => return Err(XmlError::TrailingContent),
                }
            }
            Event::DocType(_) => return Err(XmlError::DocType),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(syntax("unexpected end of document"));
    }
    root.ok_or(XmlError::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixed_rpc_with_attributes() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<nc:rpc xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" nc:message-id="7" foo="bar"><nc:get/></nc:rpc>"#;
        let el = parse(doc).unwrap();
        assert_eq!(el.name, "rpc");
        assert_eq!(el.ns, "urn:ietf:params:xml:ns:netconf:base:1.0");
        assert_eq!(
            el.attr("urn:ietf:params:xml:ns:netconf:base:1.0", "message-id"),
            Some("7")
        );
        assert_eq!(el.attr("", "foo"), Some("bar"));
        assert_eq!(el.children[0].name, "get");
    }

    #[test]
    fn expands_only_predefined_and_character_entities() {
        let el = parse(b"<a>x &lt; y &#65;&#x42;</a>").unwrap();
        assert_eq!(el.text, "x < y AB");
        assert_eq!(
            parse(b"<a>&foo;</a>"),
            Err(XmlError::UnknownEntity("foo".into()))
        );
    }

    #[test]
    fn refuses_doctype_and_bad_nesting() {
        let doc = b"<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>";
        assert_eq!(parse(doc), Err(XmlError::DocType));
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"<a/><b/>").is_err());
        assert!(parse(b"").is_err());
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn qualified_text_resolves_its_prefix() {
        let el = parse(b"<a xmlns:x=\"urn:x\"><b>x:val</b><c>y:val</c></a>").unwrap();
        assert_eq!(el.children[0].text_ns.as_deref(), Some("urn:x"));
        assert_eq!(el.children[1].text_ns, None);
    }

    #[test]
    fn writer_round_trips() {
        let mut e = Element::new("urn:x", "top");
        e.push(Element::with_text("urn:x", "leaf", "a<b"));
        e.push(Element::with_text("urn:y", "other", "1"));
        let xml = e.to_xml();
        assert_eq!(
            xml,
            "<top xmlns=\"urn:x\"><leaf>a&lt;b</leaf><other xmlns=\"urn:y\">1</other></top>"
        );
        assert_eq!(parse(xml.as_bytes()).unwrap().children[0].text, "a<b");
    }

    #[test]
    fn character_references_to_control_characters_are_refused() {
        for bad in ["&#0;", "&#x0;", "&#1;", "&#x1F;", "&#xFFFE;", "&#65535;"] {
            let doc = format!("<a>x{bad}y</a>");
            assert_eq!(
                parse(doc.as_bytes()),
                Err(XmlError::ControlCharacter),
                "{bad}"
            );
            let doc = format!("<a b=\"x{bad}y\"/>");
            assert!(parse(doc.as_bytes()).is_err(), "attribute {bad}");
        }
        for good in ["&#9;", "&#xA;", "&#13;", "&#x20;", "&#xE9;", "&#x1F600;"] {
            let doc = format!("<a>{good}</a>");
            assert!(parse(doc.as_bytes()).is_ok(), "{good}");
        }
    }
}
