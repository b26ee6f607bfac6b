//! `<create-subscription>` (RFC 5277): subscribes the session to the NETCONF event stream,
//! replaying logged events first when a startTime is given.

use super::{fail, OpResult, Reply};
use crate::netconf::notify::{self, Subscription};
use crate::netconf::session::SessionState;
use crate::netconf::Shared;
use crate::rpc_error::{ErrorTag, RpcError};
use crate::xml::Element;
use std::collections::VecDeque;

pub fn run(shared: &Shared, session: &mut SessionState, rpc: &Element, el: &Element) -> OpResult {
    if session.subscription.is_some() {
        return Err(fail(RpcError::protocol(
            ErrorTag::OperationFailed,
            "this session already has a subscription",
        )));
    }
    let req = notify::parse_request(rpc, el).map_err(fail)?;
    // Subscribe before reading the log so that no event falls between the two.
    let rx = shared.notifications.subscribe();
    let mut pending = VecDeque::new();
    let mut replayed_upto = 0;
    if let Some(start) = req.start {
        for ev in shared.notifications.replay(start, req.stop) {
            replayed_upto = replayed_upto.max(ev.seq);
            if !req.filter.matches(&ev.content) {
                continue;
            }
            if let Some(part) = crate::netconf::nacm::visible(shared, &session.user, &ev.content) {
                pending.push_back(ev.to_xml_with(part.as_ref()));
            }
        }
        // notificationComplete follows as soon as stopTime has passed (see Subscription::next).
        pending.push_back(notify::signal("replayComplete"));
    }
    session.subscription = Some(Subscription {
        rx,
        filter: req.filter,
        stop: req.stop,
        pending,
        replayed_upto,
    });
    Ok(Reply::Ok)
}
