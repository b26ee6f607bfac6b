//! `<get-schema>` (RFC 6022): the text of a module the server lists.

use super::{fail, Op, OpResult, Reply};
use crate::netconf::NS_MONITORING;
use crate::rpc_error::{ErrorTag, ErrorType, RpcError};
use crate::xml::Element;

pub fn run(op: &Op<'_>) -> OpResult {
    let id = op
        .el
        .child(NS_MONITORING, "identifier")
        .ok_or_else(|| fail(RpcError::missing_element(ErrorType::Protocol, "identifier")))?
        .trimmed_text()
        .to_string();
    let version = op
        .el
        .child(NS_MONITORING, "version")
        .map(|v| v.trimmed_text().to_string())
        .filter(|v| !v.is_empty());
    if let Some(f) = op.el.child(NS_MONITORING, "format") {
        let f = f.trimmed_text();
        let local = f.rsplit(':').next().unwrap_or(f);
        if local != "yang" {
            return Err(fail(
                RpcError::protocol(
                    ErrorTag::InvalidValue,
                    format!("format '{f}' is not served; only yang"),
                )
                .with_info("bad-element", "format"),
            ));
        }
    }
    let candidates: Vec<_> = crate::yang::sources()
        .iter()
        .filter(|m| m.name == id && (version.is_none() || m.revision == version.as_deref()))
        .collect();
    match candidates.as_slice() {
        [one] => {
            let mut data = Element::new(NS_MONITORING, "data");
            data.text = one.text.to_string();
            Ok(Reply::Body(vec![data]))
        }
        // libyang's built-in modules (listed in the YANG library) are printed by libyang.
        [] => match crate::yang::schema_text(&id, version.as_deref()) {
            Some(text) => {
                let mut data = Element::new(NS_MONITORING, "data");
                data.text = text.into_owned();
                Ok(Reply::Body(vec![data]))
            }
            None => Err(fail(
                RpcError::protocol(
                    ErrorTag::InvalidValue,
                    format!("no schema '{id}' with that version"),
                )
                .with_info("bad-element", "identifier"),
            )),
        },
        _ => Err(fail(
            RpcError::protocol(
                ErrorTag::OperationFailed,
                format!("more than one revision of '{id}'; give a version"),
            )
            .with_app_tag("data-not-unique"),
        )),
    }
}
