//! Full validation of a configuration tree by libyang, with its errors mapped to rpc-errors.

use super::convert;
use crate::datastore::tree::Node;
use crate::rpc_error::{ErrorTag, RpcError};
use yang3::data::{DataFormat, DataParserFlags, DataTree, DataValidationFlags};

/// Validates `root` as a complete configuration datastore (types, must/when, leafref,
/// mandatory, unique, min/max-elements).
pub fn validate(root: &Node) -> Result<(), RpcError> {
    validate_xml(&convert::to_xml(root))
}

/// Validates configuration already printed as XML.
pub fn validate_xml(xml: &str) -> Result<(), RpcError> {
    let ctx = crate::yang::context();
    DataTree::parse_string(
        ctx,
        xml,
        DataFormat::XML,
        DataParserFlags::STRICT | DataParserFlags::NO_STATE,
        DataValidationFlags::NO_STATE,
    )
    .map(|_| ())
    .map_err(map_error)
}

/// Maps a libyang error to the rpc-error RFC 7950 §15 and RFC 6241 Appendix A ask for.
pub fn map_error(e: yang3::Error) -> RpcError {
    let message = e
        .msg
        .clone()
        .unwrap_or_else(|| "configuration is not valid".to_string());
    let app_tag = e.apptag.clone();
    let tag = match app_tag.as_deref() {
        Some("instance-required") | Some("missing-choice") => ErrorTag::DataMissing,
        Some("must-violation")
        | Some("too-many-elements")
        | Some("too-few-elements")
        | Some("data-not-unique") => ErrorTag::OperationFailed,
        _ if message.contains("Mandatory node") => ErrorTag::DataMissing,
        _ => ErrorTag::InvalidValue,
    };
    let mut err = RpcError::application(tag, message);
    if let Some(t) = app_tag {
        err = err.with_app_tag(t);
    }
    if let Some(p) = e.path.as_deref().map(qualify_path) {
        err = err.with_path(p);
    }
    err
}

/// libyang prints `/ietf-interfaces:interfaces/interface[name='x']/type`; NETCONF error-paths
/// qualify every step, so each unprefixed step takes the prefix of the step before it.
pub fn qualify_path(p: &str) -> String {
    let mut out = String::new();
    let mut current = String::new();
    for step in split_steps(p) {
        let (name, preds) = match step.find('[') {
            Some(i) => (&step[..i], &step[i..]),
            None => (step.as_str(), ""),
        };
        let qualified = match name.split_once(':') {
            Some((m, _)) => {
                current = m.to_string();
                name.to_string()
            }
            None if !current.is_empty() => format!("{current}:{name}"),
            None => name.to_string(),
        };
        out.push('/');
        out.push_str(&qualified);
        out.push_str(&qualify_predicates(preds, &current));
    }
    out
}

fn split_steps(p: &str) -> Vec<String> {
    let mut steps = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0;
    for c in p.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '[' => depth += 1,
            None if c == ']' => depth -= 1,
            None if c == '/' && depth == 0 => {
                if !cur.is_empty() {
                    steps.push(std::mem::take(&mut cur));
                }
                continue;
            }
            None => {}
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        steps.push(cur);
    }
    steps
}

fn qualify_predicates(preds: &str, module: &str) -> String {
    if preds.is_empty() || module.is_empty() {
        return preds.to_string();
    }
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut after_bracket = false;
    for c in preds.chars() {
        if quote.is_none() && after_bracket && c.is_alphabetic() {
            out.push_str(module);
            out.push(':');
        }
        after_bracket = false;
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '[' => after_bracket = true,
            None => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_fully_qualified() {
        assert_eq!(
            qualify_path("/ietf-interfaces:interfaces/interface[name='a/b']/ietf-ip:ipv6/address[ip='::1']/prefix-length"),
            "/ietf-interfaces:interfaces/ietf-interfaces:interface[ietf-interfaces:name='a/b']/ietf-ip:ipv6/ietf-ip:address[ietf-ip:ip='::1']/ietf-ip:prefix-length"
        );
    }
}
