//! VRRP6 (ietf-vrrp): the runtime's events rendered as the model's notifications.

use super::*;

/// `vrrp-new-master-event`.
pub fn new_master_event(address: &Ipv6Addr, reason: NewMasterReason) -> Element {
    let mut el = Element::new(NS_VRRP, "vrrp-new-master-event");
    el.push(Element::with_text(
        NS_VRRP,
        "master-ip-address",
        address.to_string(),
    ));
    el.push(Element::with_text(
        NS_VRRP,
        "new-master-reason",
        reason.as_str(),
    ));
    el
}

/// `vrrp-protocol-error-event`.
pub fn protocol_error_event(e: ProtocolError) -> Element {
    let mut el = Element::new(NS_VRRP, "vrrp-protocol-error-event");
    let mut r = Element::with_text(
        NS_VRRP,
        "protocol-error-reason",
        format!("vrrp:{}", e.identity()),
    );
    r.ns_decls.push(("vrrp".into(), NS_VRRP.into()));
    el.push(r);
    el
}
