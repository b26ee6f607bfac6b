//! E-Trunk (mldhb-etrunk): operational state printed as the model's `config false` nodes.

use super::*;

/// Adds every E-Trunk's and Eth-Trunk's state to `tree`.
pub fn merge_state(tree: &mut Node, node: &ETrunkNode, now: Time) {
    for (id, inst) in &node.instances {
        let e = tree.child_mut(NodeKey::with_id(ET, "e-trunk", vec![id.to_string()]));
        e.set_leaf(ET, "id", id.to_string());
        e.set_leaf(ET, "state", inst.state.as_str());
        e.set_leaf(ET, "cause", inst.cause.as_str());
        e.set_leaf(ET, "local-system-id", mac_str(&inst.cfg.system_id));
        if let Some(p) = &inst.peer {
            let st = match p.state {
                super::super::packet::WireState::Initialize => "initialize",
                super::super::packet::WireState::Backup => "backup",
                super::super::packet::WireState::Master => "master",
            };
            e.set_leaf(ET, "peer-state", st);
            e.set_leaf(ET, "peer-priority", p.priority.to_string());
            e.set_leaf(ET, "peer-system-id", mac_str(&p.system_id));
            e.set_leaf(ET, "peer-hold-time", p.hold_time().as_millis().to_string());
        }
        let authenticated = node.cfg.etrunks.get(id).is_some_and(|c| c.key.is_some());
        e.set_leaf(ET, "authenticated", authenticated.to_string());
        if let Some((left, _)) = inst.revert_wait(now) {
            e.set_leaf(ET, "revert-delay-remaining", left.to_string());
        }
        let s = &inst.stats;
        let mut st = Node::default();
        st.set_leaf(ET, "hellos-sent", s.hellos_sent.to_string());
        st.set_leaf(ET, "hellos-received", s.hellos_received.to_string());
        st.set_leaf(ET, "auth-failures", s.auth_failures.to_string());
        st.set_leaf(ET, "decode-errors", s.decode_errors.to_string());
        st.set_leaf(ET, "state-changes", s.state_changes.to_string());
        e.children
            .insert(NodeKey::new(ET, "statistics"), Arc::new(st));
    }
    if node.cfg.trunks.is_empty() {
        return;
    }
    let ifs = tree.child_mut(NodeKey::new(IF, "interfaces"));
    for t in node.cfg.trunks.values() {
        let et = ifs
            .list_entry_mut(IF, "interface", "name", &t.name)
            .child_mut(NodeKey::new(ET, "eth-trunk"));
        if t.etrunk.is_some() {
            et.set_leaf(ET, "oper-role", role_str(node.trunk_role(t)));
        }
        let mut system = None;
        for name in &t.members {
            let Some(m) = node.members.get(name) else {
                continue;
            };
            system = Some(m.actor.cfg.system);
            let me = et.child_mut(NodeKey::with_id(ET, "member", vec![name.clone()]));
            let a = &m.actor;
            me.set_leaf(ET, "name", name.clone());
            me.set_leaf(ET, "selected", a.selected().to_string());
            me.set_leaf(ET, "actor-state", bits(a.actor_state()));
            me.set_leaf(ET, "actor-port-priority", a.cfg.port_priority.to_string());
            me.set_leaf(ET, "actor-port-number", a.cfg.port.to_string());
            if let Some(p) = a.partner.filter(|_| a.up() || a.partner_state() != 0) {
                me.set_leaf(ET, "partner-system-id", mac_str(&p.system));
                me.set_leaf(ET, "partner-system-priority", p.system_priority.to_string());
                me.set_leaf(ET, "partner-key", p.key.to_string());
                me.set_leaf(ET, "partner-port-number", p.port.to_string());
            }
            me.set_leaf(ET, "partner-state", bits(a.partner_state()));
            me.set_leaf(ET, "lacpdus-received", a.stats.received.to_string());
            me.set_leaf(ET, "lacpdus-sent", a.stats.sent.to_string());
            me.set_leaf(ET, "lacpdu-errors", a.stats.errors.to_string());
        }
        if let Some(s) = system {
            et.set_leaf(ET, "actor-system-id", mac_str(&s));
        }
        et.set_leaf(ET, "actor-key", actor_key(t.id).to_string());
    }
}

impl OperProvider for ETrunkRuntime {
    fn merge_state(&self, tree: &mut Node) {
        self.with_node(|node, now| merge_state(tree, node, now));
    }
}
