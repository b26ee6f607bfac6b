//! `<rpc-error>` values as RFC 6241 Appendix A defines them: what the northbound refuses with and
//! NETCONF sends. They live below both so that the northbound needs no NETCONF module.

use crate::xml::{Element, NS_BASE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Transport,
    Rpc,
    Protocol,
    Application,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Transport => "transport",
            ErrorType::Rpc => "rpc",
            ErrorType::Protocol => "protocol",
            ErrorType::Application => "application",
        }
    }
}

/// The error-tag values of RFC 6241 Appendix A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorTag {
    InUse,
    InvalidValue,
    TooBig,
    MissingAttribute,
    BadAttribute,
    UnknownAttribute,
    MissingElement,
    BadElement,
    UnknownElement,
    UnknownNamespace,
    AccessDenied,
    LockDenied,
    ResourceDenied,
    RollbackFailed,
    DataExists,
    DataMissing,
    OperationNotSupported,
    OperationFailed,
    MalformedMessage,
}

impl ErrorTag {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorTag::InUse => "in-use",
            ErrorTag::InvalidValue => "invalid-value",
            ErrorTag::TooBig => "too-big",
            ErrorTag::MissingAttribute => "missing-attribute",
            ErrorTag::BadAttribute => "bad-attribute",
            ErrorTag::UnknownAttribute => "unknown-attribute",
            ErrorTag::MissingElement => "missing-element",
            ErrorTag::BadElement => "bad-element",
            ErrorTag::UnknownElement => "unknown-element",
            ErrorTag::UnknownNamespace => "unknown-namespace",
            ErrorTag::AccessDenied => "access-denied",
            ErrorTag::LockDenied => "lock-denied",
            ErrorTag::ResourceDenied => "resource-denied",
            ErrorTag::RollbackFailed => "rollback-failed",
            ErrorTag::DataExists => "data-exists",
            ErrorTag::DataMissing => "data-missing",
            ErrorTag::OperationNotSupported => "operation-not-supported",
            ErrorTag::OperationFailed => "operation-failed",
            ErrorTag::MalformedMessage => "malformed-message",
        }
    }
}

/// One `<rpc-error>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub error_type: ErrorType,
    pub tag: ErrorTag,
    pub app_tag: Option<String>,
    /// Instance path with module names as prefixes, e.g. `/ietf-interfaces:interfaces/...`.
    pub path: Option<String>,
    pub message: String,
    /// error-info children.
    pub info: Vec<Element>,
}

pub type RpcResult<T> = Result<T, RpcError>;

impl RpcError {
    pub fn new(error_type: ErrorType, tag: ErrorTag, message: impl Into<String>) -> Self {
        RpcError {
            error_type,
            tag,
            app_tag: None,
            path: None,
            message: message.into(),
            info: Vec::new(),
        }
    }

    pub fn protocol(tag: ErrorTag, message: impl Into<String>) -> Self {
        Self::new(ErrorType::Protocol, tag, message)
    }

    pub fn application(tag: ErrorTag, message: impl Into<String>) -> Self {
        Self::new(ErrorType::Application, tag, message)
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn with_app_tag(mut self, tag: impl Into<String>) -> Self {
        self.app_tag = Some(tag.into());
        self
    }

    pub fn with_info(mut self, name: &str, value: impl Into<String>) -> Self {
        self.info.push(Element::with_text(NS_BASE, name, value));
        self
    }

    /// An unknown element, with bad-element in error-info.
    pub fn unknown_element(error_type: ErrorType, name: &str, message: impl Into<String>) -> Self {
        Self::new(error_type, ErrorTag::UnknownElement, message).with_info("bad-element", name)
    }

    pub fn missing_element(error_type: ErrorType, name: &str) -> Self {
        Self::new(
            error_type,
            ErrorTag::MissingElement,
            format!("missing element <{name}>"),
        )
        .with_info("bad-element", name)
    }

    pub fn bad_element(error_type: ErrorType, name: &str, message: impl Into<String>) -> Self {
        Self::new(error_type, ErrorTag::BadElement, message).with_info("bad-element", name)
    }

    pub fn operation_failed(message: impl Into<String>) -> Self {
        Self::application(ErrorTag::OperationFailed, message)
    }

    pub fn to_element(&self) -> Element {
        let mut e = Element::new(NS_BASE, "rpc-error");
        e.push(Element::with_text(
            NS_BASE,
            "error-type",
            self.error_type.as_str(),
        ));
        e.push(Element::with_text(NS_BASE, "error-tag", self.tag.as_str()));
        e.push(Element::with_text(NS_BASE, "error-severity", "error"));
        if let Some(t) = &self.app_tag {
            e.push(Element::with_text(NS_BASE, "error-app-tag", t.clone()));
        }
        if let Some(p) = &self.path {
            let mut pe = Element::with_text(NS_BASE, "error-path", p.clone());
            for m in path_modules(p) {
                if let Some(ns) = crate::yang::schema::namespace_of(&m) {
                    pe.ns_decls.push((m.clone(), ns.to_string()));
                }
            }
            e.push(pe);
        }
        let mut msg = Element::with_text(NS_BASE, "error-message", self.message.clone());
        msg.attrs.push(super::xml::Attr {
            ns: super::xml::XML_NS.into(),
            name: "lang".into(),
            value: "en".into(),
        });
        e.push(msg);
        if !self.info.is_empty() {
            let mut info = Element::new(NS_BASE, "error-info");
            info.children = self.info.clone();
            e.push(info);
        }
        e
    }
}

/// Module-name prefixes used in a path such as `/m:a/m:b[m:k='v']`.
fn path_modules(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let bytes: Vec<char> = path.chars().collect();
    let mut i = 0;
    let mut in_quote: Option<char> = None;
    let mut token = String::new();
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = in_quote {
            if c == q {
                in_quote = None;
            }
        } else if c == '\'' || c == '"' {
            in_quote = Some(c);
            token.clear();
        } else if c == ':' {
            if !token.is_empty() && !out.contains(&token) {
                out.push(token.clone());
            }
            token.clear();
        } else if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
            token.push(c);
        } else {
            token.clear();
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prefixes_are_collected_outside_quotes() {
        assert_eq!(
            path_modules("/ietf-interfaces:interfaces/ietf-interfaces:interface[ietf-interfaces:name='a:b']/ietf-ip:ipv6"),
            vec!["ietf-interfaces".to_string(), "ietf-ip".to_string()]
        );
    }
}
