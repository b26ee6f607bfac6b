//! `<filter>` for get and get-config: subtree filtering (RFC 6241 §6) and XPath 1.0 (libyang).

use super::NS_BASE;
use crate::datastore::tree::Node;
use crate::northbound::convert;
use crate::rpc_error::{ErrorTag, ErrorType, RpcError, RpcResult};
use crate::xml::{self, Element};
use crate::yang::schema;
use yang3::data::{
    Data, DataFormat, DataParserFlags, DataPrinterFlags, DataTree, DataValidationFlags,
};

/// A parsed filter.
pub enum Filter {
    None,
    Subtree(Vec<Element>),
    /// An XPath expression with module names as prefixes (the form libyang evaluates).
    XPath(String),
}

impl Filter {
    /// Reads the `<filter>` parameter of an operation.
    pub fn from_op(rpc: &Element, op: &Element) -> RpcResult<Filter> {
        let Some(f) = super::ops::base_child(op, "filter") else {
            return Ok(Filter::None);
        };
        let ftype = f
            .attr("", "type")
            .or_else(|| f.attr(NS_BASE, "type"))
            .unwrap_or("subtree");
        match ftype {
            "subtree" => Ok(Filter::Subtree(f.children.clone())),
            "xpath" => {
                let select = xpath_select(f)?;
                Ok(Filter::XPath(to_module_prefixes(
                    select,
                    &prefix_scope(&[rpc, op, f]),
                )?))
            }
            other => Err(unsupported_type(other)),
        }
    }

    /// Applies the filter to a data tree and prints the selected data as XML.
    pub fn apply(&self, tree: &Node) -> RpcResult<String> {
        let elements = match self {
            Filter::None => return Ok(convert::to_xml(tree)),
            Filter::Subtree(f) => subtree(tree, f),
            Filter::XPath(select) => xpath(tree, select)?,
        };
        let mut out = String::new();
        for e in elements {
            e.write_xml(&mut out, NS_BASE);
        }
        Ok(out)
    }
}

/// The `select` attribute of an XPath `<filter>`.
pub(crate) fn xpath_select(f: &Element) -> RpcResult<&str> {
    f.attr("", "select")
        .or_else(|| f.attr(NS_BASE, "select"))
        .ok_or_else(|| {
            RpcError::protocol(
                ErrorTag::MissingAttribute,
                "xpath filter without a select attribute",
            )
            .with_info("bad-attribute", "select")
            .with_info("bad-element", "filter")
        })
}

/// The prefix declarations in scope for a filter: those of its ancestors and its own.
pub(crate) fn prefix_scope(elements: &[&Element]) -> Vec<(String, String)> {
    elements
        .iter()
        .flat_map(|e| e.ns_decls.iter().cloned())
        .collect()
}

/// The rpc-error for a filter `type` other than subtree or xpath.
pub(crate) fn unsupported_type(other: &str) -> RpcError {
    RpcError::protocol(
        ErrorTag::BadAttribute,
        format!("filter type '{other}' is not supported"),
    )
    .with_info("bad-attribute", "type")
    .with_info("bad-element", "filter")
}

/// Rewrites XML prefixes in an XPath expression into module names.
fn to_module_prefixes(select: &str, scope: &[(String, String)]) -> RpcResult<String> {
    let chars: Vec<char> = select.chars().collect();
    let mut out = String::with_capacity(select.len());
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            quote = Some(c);
            out.push(c);
            i += 1;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.'))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let is_prefix = i + 1 < chars.len() && chars[i] == ':' && chars[i + 1] != ':';
            if is_prefix {
                let ns = scope
                    .iter()
                    .rev()
                    .find(|(p, _)| *p == word)
                    .map(|(_, ns)| ns.as_str());
                // An unbound prefix that is itself a module name is taken as that module.
                let module = ns
                    .and_then(schema::module_of)
                    .or_else(|| schema::namespace_of(&word).and(Some(word.as_str())))
                    .ok_or_else(|| {
                    RpcError::protocol(
                        ErrorTag::InvalidValue,
                        format!("prefix '{word}' in the XPath filter is not bound to a known module"),
                    )
                    .with_info("bad-element", "filter")
                })?;
                out.push_str(module);
            } else {
                out.push_str(&word);
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    Ok(out)
}

fn xpath(tree: &Node, select: &str) -> RpcResult<Vec<Element>> {
    let ctx = crate::yang::context();
    let text = convert::to_xml(tree);
    let dtree = DataTree::parse_string(
        ctx,
        &text,
        DataFormat::XML,
        DataParserFlags::NO_VALIDATION,
        DataValidationFlags::empty(),
    )
    .map_err(|e| RpcError::operation_failed(format!("cannot evaluate the filter: {e}")))?;
    let set = dtree.find_xpath(select).map_err(|e| {
        RpcError::new(
            ErrorType::Protocol,
            ErrorTag::InvalidValue,
            format!("invalid XPath filter: {e}"),
        )
        .with_info("bad-element", "filter")
    })?;
    let mut result = DataTree::new(ctx);
    for node in set {
        let dup = node
            .duplicate(true)
            .map_err(|e| RpcError::operation_failed(format!("filter: {e}")))?;
        result
            .merge(&dup)
            .map_err(|e| RpcError::operation_failed(format!("filter: {e}")))?;
    }
    if result.reference().is_none() {
        return Ok(Vec::new());
    }
    let printed = result
        .print_string(
            DataFormat::XML,
            DataPrinterFlags::WITH_SIBLINGS | DataPrinterFlags::SHRINK,
        )
        .map_err(|e| RpcError::operation_failed(format!("filter: {e}")))?;
    let wrapped = format!("<d>{printed}</d>");
    let el = xml::parse(wrapped.as_bytes())
        .map_err(|e| RpcError::operation_failed(format!("filter output: {e}")))?;
    Ok(el.children)
}

fn subtree(tree: &Node, filter: &[Element]) -> Vec<Element> {
    if filter.is_empty() {
        return Vec::new();
    }
    // Print only the top-level nodes some filter element can match.
    let mut data = Vec::new();
    for (k, child) in &tree.children {
        let ns = schema::namespace_of(&k.module).unwrap_or_default();
        if filter
            .iter()
            .any(|f| f.name == k.name && (f.ns.is_empty() || f.ns == ns))
        {
            if let Some(s) = schema::find_child(None, &k.module, &k.name) {
                data.push(convert::to_element(k, child, &s));
            }
        }
    }
    filter_siblings(&data, filter)
}

fn matches(f: &Element, d: &Element) -> bool {
    f.name == d.name && (f.ns.is_empty() || f.ns == d.ns)
}

fn is_content_match(f: &Element) -> bool {
    f.children.is_empty() && !f.text.trim().is_empty()
}

/// Filters data siblings by filter siblings.
pub(crate) fn filter_siblings(data: &[Element], filter: &[Element]) -> Vec<Element> {
    let mut out = Vec::new();
    for d in data {
        let relevant: Vec<&Element> = filter.iter().filter(|f| matches(f, d)).collect();
        if relevant.is_empty() {
            continue;
        }
        let mut merged: Option<Element> = None;
        for f in relevant {
            if let Some(r) = filter_node(d, f) {
                match &mut merged {
                    None => merged = Some(r),
                    Some(m) => merge_into(m, r),
                }
            }
        }
        if let Some(m) = merged {
            out.push(m);
        }
    }
    out
}

/// Applies one filter node to one data node that it names.
fn filter_node(d: &Element, f: &Element) -> Option<Element> {
    if is_content_match(f) {
        return (d.text.trim() == f.text.trim()).then(|| d.clone());
    }
    if f.children.is_empty() {
        // Selection node: the whole subtree.
        return Some(d.clone());
    }
    // Containment node: every content-match child must match.
    let content: Vec<&Element> = f.children.iter().filter(|c| is_content_match(c)).collect();
    for cm in &content {
        let ok = d
            .children
            .iter()
            .any(|dc| matches(cm, dc) && dc.text.trim() == cm.text.trim());
        if !ok {
            return None;
        }
    }
    let others: Vec<Element> = f
        .children
        .iter()
        .filter(|c| !is_content_match(c))
        .cloned()
        .collect();
    let mut r = Element {
        ns: d.ns.clone(),
        name: d.name.clone(),
        ns_decls: d.ns_decls.clone(),
        ..Default::default()
    };
    if others.is_empty() {
        // Only content-match nodes: the whole entry is selected.
        r.children = d.children.clone();
        return Some(r);
    }
    // Content-match leaves are part of the output, then what the other nodes select.
    let selected = filter_siblings(&d.children, &others);
    for dc in &d.children {
        if content.iter().any(|cm| matches(cm, dc)) {
            r.children.push(dc.clone());
        }
    }
    if selected.is_empty() {
        return None;
    }
    r.children.extend(selected);
    Some(r)
}

fn merge_into(into: &mut Element, other: Element) {
    for c in other.children {
        if !into.children.contains(&c) {
            into.children.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        xml::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn subtree_selection_containment_and_content_match() {
        let data = el("<top xmlns=\"urn:t\"><users><user><name>a</name><type>admin</type><x>1</x></user><user><name>b</name><type>op</type><x>2</x></user></users><other/></top>");
        let f =
            el("<top xmlns=\"urn:t\"><users><user><type>admin</type><name/></user></users></top>");
        let r = filter_siblings(std::slice::from_ref(&data), std::slice::from_ref(&f));
        assert_eq!(r.len(), 1);
        let users = &r[0].children[0];
        assert_eq!(users.children.len(), 1);
        let u = &users.children[0];
        assert_eq!(u.children.len(), 2, "{u:?}");
        assert_eq!(u.child("urn:t", "name").unwrap().text, "a");

        let f = el("<top xmlns=\"urn:t\"><users><user><name>b</name></user></users></top>");
        let r = filter_siblings(std::slice::from_ref(&data), std::slice::from_ref(&f));
        assert_eq!(r[0].children[0].children[0].children.len(), 3);

        let f = el("<top xmlns=\"urn:other\"/>");
        assert!(filter_siblings(std::slice::from_ref(&data), std::slice::from_ref(&f)).is_empty());
    }

    #[test]
    fn xpath_prefixes_become_module_names() {
        let scope = vec![(
            "if".to_string(),
            "urn:ietf:params:xml:ns:yang:ietf-interfaces".to_string(),
        )];
        assert_eq!(
            to_module_prefixes("/if:interfaces/if:interface[if:name='a:b']", &scope).unwrap(),
            "/ietf-interfaces:interfaces/ietf-interfaces:interface[ietf-interfaces:name='a:b']"
        );
        assert!(to_module_prefixes("/x:y", &scope).is_err());
    }
}
