//! Views as on VRP: user view, system view and the configuration sub-views, each with its
//! scopes in the command table, its place in the configuration tree and its prompt.

use super::commands::{eth_trunk_number, Scope, ViewKind};
use super::edit::{RSeg, Value};

/// Which view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    User,
    System,
    Sub(ViewKind),
}

/// One view on the stack.
#[derive(Debug, Clone)]
pub struct View {
    pub kind: Kind,
    /// The entry's name (interface, service, profile) or E-Trunk ID.
    pub name: String,
    /// The entry's path in the configuration.
    pub ctx: Vec<RSeg>,
    /// Interface views: the interface type (as stored, or inferred from the name).
    pub if_type: Option<Value>,
    /// Eth-Trunk interface views: the trunk number (as stored, or from the name).
    pub trunk_id: Option<String>,
}

impl View {
    pub fn user() -> View {
        View {
            kind: Kind::User,
            name: String::new(),
            ctx: Vec::new(),
            if_type: None,
            trunk_id: None,
        }
    }

    pub fn system() -> View {
        View {
            kind: Kind::System,
            ..View::user()
        }
    }

    /// True for an Eth-Trunk interface view.
    pub fn is_trunk(&self) -> bool {
        self.kind == Kind::Sub(ViewKind::Interface) && eth_trunk_number(&self.name).is_some()
    }

    /// The table scopes of this view's own commands.
    pub fn own_scopes(&self) -> Vec<Scope> {
        match &self.kind {
            Kind::User => vec![Scope::User],
            Kind::System => vec![Scope::System],
            Kind::Sub(ViewKind::Interface) if self.is_trunk() => {
                vec![Scope::Iface, Scope::IfaceTrunk]
            }
            Kind::Sub(ViewKind::Interface) => vec![Scope::Iface, Scope::IfacePort],
            Kind::Sub(ViewKind::Rbs) => vec![Scope::Rbs],
            Kind::Sub(ViewKind::Rbp) => vec![Scope::Rbp],
            Kind::Sub(ViewKind::ETrunk) => vec![Scope::ETrunk],
        }
    }

    /// Everything valid here without leaving the view.
    pub fn scopes(&self) -> Vec<Scope> {
        let mut s = self.own_scopes();
        if self.kind != Kind::User {
            s.push(Scope::Config);
        }
        s.push(Scope::Global);
        s
    }

    pub fn is_config(&self) -> bool {
        self.kind != Kind::User
    }

    /// The part of the prompt after the device name.
    pub fn label(&self) -> String {
        match &self.kind {
            Kind::User | Kind::System => String::new(),
            Kind::Sub(ViewKind::Interface) => format!("-{}", self.name),
            Kind::Sub(ViewKind::Rbs) => format!("-rbs-{}", self.name),
            Kind::Sub(ViewKind::Rbp) => format!("-rbp-{}", self.name),
            Kind::Sub(ViewKind::ETrunk) => format!("-e-trunk-{}", self.name),
        }
    }
}

/// The prompt of the innermost view: `<name>` in user view, `[~name…]` in configuration
/// views, `[*name…]` while the candidate holds uncommitted changes.
pub fn prompt(sysname: &str, view: &View, dirty: bool) -> String {
    match view.kind {
        Kind::User => format!("<{sysname}>"),
        _ => format!(
            "[{}{sysname}{}]",
            if dirty { '*' } else { '~' },
            view.label()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts() {
        let mut v = View::system();
        assert_eq!(prompt("A", &View::user(), false), "<A>");
        assert_eq!(prompt("A", &v, false), "[~A]");
        assert_eq!(prompt("A", &v, true), "[*A]");
        v.kind = Kind::Sub(ViewKind::Interface);
        v.name = "Eth-Trunk1".into();
        assert!(v.is_trunk());
        assert_eq!(prompt("A", &v, true), "[*A-Eth-Trunk1]");
        assert!(v.own_scopes().contains(&Scope::IfaceTrunk));
    }
}
