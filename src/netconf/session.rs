//! One NETCONF session over any byte stream: hello exchange, framing switch, rpc loop, teardown.

use super::framing::{self, FrameDecoder, FrameError, Framing};
use super::notify;
use super::ops::{self, Reply};
use super::{Shared, CAP_BASE_10, CAP_BASE_11, NS_BASE};
use crate::rpc_error::{ErrorTag, ErrorType, RpcError};
use crate::xml::{self, Element};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{debug, info, warn, Instrument};

/// Per-session protocol state.
pub struct SessionState {
    pub id: u32,
    pub user: String,
    pub base11: bool,
    /// The RFC 5277 subscription, once create-subscription succeeded; a session with one is
    /// never closed for being idle (`idle_timeout`).
    pub subscription: Option<super::notify::Subscription>,
}

fn hello(session_id: u32) -> String {
    let mut caps = String::new();
    for c in super::capabilities() {
        caps.push_str("<capability>");
        caps.push_str(&xml::escape_text(&c));
        caps.push_str("</capability>");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hello xmlns=\"{NS_BASE}\"><capabilities>{caps}</capabilities><session-id>{session_id}</session-id></hello>"
    )
}

/// Builds `<rpc-reply>` echoing every attribute of the request.
pub fn reply_xml(rpc_attrs: &[xml::Attr], body: Vec<Element>) -> String {
    let mut reply = Element::new(NS_BASE, "rpc-reply");
    reply.attrs = rpc_attrs.to_vec();
    reply.children = body;
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    reply.write_xml(&mut s, "");
    s
}

/// The next message of the session's subscription; never ready without one.
async fn next_event(
    sub: &mut Option<notify::Subscription>,
    shared: &Shared,
    user: &str,
) -> notify::Wake {
    match sub {
        Some(s) => {
            s.next(&shared.notifications, |c| {
                super::nacm::visible(shared, user, c)
            })
            .await
        }
        None => std::future::pending().await,
    }
}

enum Next {
    Continue,
    Close,
}

/// Runs a session to its end; `user` is the authenticated SSH user.
pub async fn run<S>(stream: S, shared: Arc<Shared>, user: String, source_host: Option<String>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (id, info) = shared.register(&user, source_host);
    // Whatever ends the session, a panic included, its registration and locks are released.
    let _registered = Registered {
        shared: Arc::clone(&shared),
        id,
    };
    let span = tracing::info_span!("session", id, user = %user);
    run_registered(stream, shared, user, id, info)
        .instrument(span)
        .await
}

/// Unregisters a session when dropped (again after a normal end: unregistering is idempotent).
struct Registered {
    shared: Arc<Shared>,
    id: u32,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.unregister(self.id);
    }
}

async fn run_registered<S>(
    stream: S,
    shared: Arc<Shared>,
    user: String,
    id: u32,
    info: Arc<super::SessionInfo>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    info!("session started");
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut state = SessionState {
        id,
        user,
        base11: false,
        subscription: None,
    };
    // The RFC 6470 termination-reason, as far as the loop below knows it.
    let mut reason = "dropped";
    let mut decoder = FrameDecoder::new(shared.limits.max_message);
    let mut got_hello = false;
    let mut buf = vec![0u8; 64 * 1024];
    let outcome: Result<(), String> = async {
        write_msg(&mut wr, Framing::EndOfMessage, hello(id).as_bytes()).await?;
        loop {
            // Handle every complete message already buffered.
            loop {
                let msg = match decoder.next_message() {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(e) => {
                        reason = "other";
                        return framing_failure(&mut wr, &state, e).await;
                    }
                };
                if !got_hello {
                    match parse_hello(&msg) {
                        Ok(base11) => {
                            got_hello = true;
                            state.base11 = base11;
                            if base11 {
                                decoder.set_mode(Framing::Chunked);
                            }
                            debug!(base11, "hello received");
                            shared.publish(notify::session_start(&shared.session_by(id)));
                            continue;
                        }
                        Err(e) => {
                            shared.stats.in_bad_hellos.fetch_add(1, Ordering::Relaxed);
                            reason = "bad-hello";
                            return Err(format!("bad hello: {e}"));
                        }
                    }
                }
                let mode = decoder.mode();
                let outcome = handle_message(&shared, &mut state, &msg);
                let size = msg.len().max(outcome.0.as_ref().map_or(0, String::len));
                drop(msg);
                match outcome {
                    (Some(reply), next) => {
                        write_msg(&mut wr, mode, reply.as_bytes()).await?;
                        drop(reply);
                        crate::memory::after_message(size);
                        if let Next::Close = next {
                            reason = "closed";
                            return Ok(());
                        }
                    }
                    (None, Next::Close) => {
                        reason = "closed";
                        return Ok(());
                    }
                    (None, Next::Continue) => {}
                }
            }
            // Interleave: replies and notifications share the session, one whole message at a
            // time; a notification is only written between two replies.
            let idle = match shared.limits.idle_timeout {
                Some(t) if state.subscription.is_none() => t,
                _ => std::time::Duration::MAX,
            };
            let n = tokio::select! {
                r = rd.read(&mut buf) => r.map_err(|e| e.to_string())?,
                _ = info.kill.notified() => {
                    reason = "killed";
                    return Err("killed by kill-session".to_string());
                }
                _ = idle_for(idle) => {
                    info!(idle_secs = idle.as_secs(), "closing an idle session");
                    reason = "timeout";
                    return Err("idle timeout".to_string());
                }
                wake = next_event(&mut state.subscription, &shared, &state.user) => {
                    let (msg, done) = match wake {
                        notify::Wake::Message(m) => (m, false),
                        notify::Wake::Complete(m) => (m, true),
                    };
                    if done {
                        state.subscription = None;
                    }
                    write_msg(&mut wr, decoder.mode(), msg.as_bytes()).await?;
                    info.out_notifications.fetch_add(1, Ordering::Relaxed);
                    shared.stats.out_notifications.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            if n == 0 {
                return Ok(());
            }
            if let Err(e) = decoder.push(&buf[..n]) {
                reason = "other";
                return framing_failure(&mut wr, &state, e).await;
            }
        }
    }
    .await;
    let _ = wr.shutdown().await;
    let by = shared.session_by(id);
    shared.unregister(id);
    let killed_by = match info.killed_by.load(Ordering::Relaxed) {
        0 => None,
        k => Some(k),
    };
    let reason = if killed_by.is_some() {
        "killed"
    } else {
        reason
    };
    shared.publish(notify::session_end(&by, reason, killed_by));
    match outcome {
        Ok(()) => info!("session ended"),
        Err(reason) => {
            shared
                .stats
                .dropped_sessions
                .fetch_add(1, Ordering::Relaxed);
            warn!(%reason, "session dropped");
        }
    }
}

/// Completes after `d` (never, for `Duration::MAX`).
async fn idle_for(d: std::time::Duration) {
    if d == std::time::Duration::MAX {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(d).await;
}

async fn write_msg<W: AsyncWrite + Unpin>(
    wr: &mut W,
    mode: Framing,
    msg: &[u8],
) -> Result<(), String> {
    let framed = framing::encode(mode, msg);
    wr.write_all(&framed).await.map_err(|e| e.to_string())?;
    wr.flush().await.map_err(|e| e.to_string())
}

/// Sends a last rpc-error for a framing failure, then ends the session.
async fn framing_failure<W: AsyncWrite + Unpin>(
    wr: &mut W,
    state: &SessionState,
    e: FrameError,
) -> Result<(), String> {
    let tag = match e {
        FrameError::TooLarge(_) => ErrorTag::TooBig,
        FrameError::Malformed(_) if state.base11 => ErrorTag::MalformedMessage,
        FrameError::Malformed(_) => ErrorTag::OperationFailed,
    };
    let err = RpcError::new(ErrorType::Rpc, tag, format!("{e}; closing the session"));
    let mode = if state.base11 {
        Framing::Chunked
    } else {
        Framing::EndOfMessage
    };
    let _ = write_msg(wr, mode, reply_xml(&[], vec![err.to_element()]).as_bytes()).await;
    Err(e.to_string())
}

fn parse_hello(msg: &[u8]) -> Result<bool, String> {
    let el = xml::parse(msg).map_err(|e| e.to_string())?;
    if el.ns != NS_BASE || el.name != "hello" {
        return Err(format!("expected <hello>, got <{}>", el.name));
    }
    if el.child(NS_BASE, "session-id").is_some() {
        return Err("a client hello must not carry a session-id".into());
    }
    let caps = el
        .child(NS_BASE, "capabilities")
        .ok_or("hello without capabilities")?;
    let list: Vec<&str> = caps.children.iter().map(|c| c.text.trim()).collect();
    let base10 = list.contains(&CAP_BASE_10);
    let base11 = list.contains(&CAP_BASE_11);
    if !base10 && !base11 {
        return Err("no common base capability".into());
    }
    Ok(base11)
}

/// Handles one message after the hello; returns the reply to send, if any.
fn handle_message(shared: &Shared, state: &mut SessionState, msg: &[u8]) -> (Option<String>, Next) {
    let info = shared.session(state.id);
    let count_bad = |n: u64| {
        shared.stats.in_bad_rpcs.fetch_add(1, Ordering::Relaxed);
        shared.stats.out_rpc_errors.fetch_add(n, Ordering::Relaxed);
        if let Some(i) = &info {
            i.in_bad_rpcs.fetch_add(1, Ordering::Relaxed);
            i.out_rpc_errors.fetch_add(n, Ordering::Relaxed);
        }
    };
    let rpc = match xml::parse(msg) {
        Ok(el) => el,
        Err(e) => {
            count_bad(1);
            let tag = if state.base11 {
                ErrorTag::MalformedMessage
            } else {
                ErrorTag::OperationFailed
            };
            let err = RpcError::new(ErrorType::Rpc, tag, format!("malformed message: {e}"));
            return (Some(reply_xml(&[], vec![err.to_element()])), Next::Continue);
        }
    };
    if rpc.ns != NS_BASE || rpc.name != "rpc" {
        count_bad(1);
        let err = RpcError::unknown_element(
            ErrorType::Rpc,
            &rpc.name,
            format!("expected <rpc> in namespace {NS_BASE}, got <{}>", rpc.name),
        );
        return (Some(reply_xml(&[], vec![err.to_element()])), Next::Continue);
    }
    if rpc.attr("", "message-id").is_none() {
        count_bad(1);
        let err = RpcError::new(
            ErrorType::Rpc,
            ErrorTag::MissingAttribute,
            "<rpc> has no message-id attribute",
        )
        .with_info("bad-attribute", "message-id")
        .with_info("bad-element", "rpc");
        return (
            Some(reply_xml(&rpc.attrs, vec![err.to_element()])),
            Next::Continue,
        );
    }
    shared.stats.in_rpcs.fetch_add(1, Ordering::Relaxed);
    if let Some(i) = &info {
        i.in_rpcs.fetch_add(1, Ordering::Relaxed);
    }
    let result = ops::dispatch(shared, state, &rpc);
    match result {
        Ok(Reply::Ok) => (
            Some(reply_xml(&rpc.attrs, vec![Element::new(NS_BASE, "ok")])),
            Next::Continue,
        ),
        Ok(Reply::Data(content)) => {
            let empty = reply_xml(&rpc.attrs, vec![Element::new(NS_BASE, "data")]);
            let full = empty.replacen("<data/>", &format!("<data>{content}</data>"), 1);
            (Some(full), Next::Continue)
        }
        Ok(Reply::Body(children)) => (Some(reply_xml(&rpc.attrs, children)), Next::Continue),
        Ok(Reply::Close) => (
            Some(reply_xml(&rpc.attrs, vec![Element::new(NS_BASE, "ok")])),
            Next::Close,
        ),
        Err(errors) => {
            shared
                .stats
                .out_rpc_errors
                .fetch_add(errors.len() as u64, Ordering::Relaxed);
            if let Some(i) = &info {
                i.out_rpc_errors
                    .fetch_add(errors.len() as u64, Ordering::Relaxed);
            }
            let body = errors.iter().map(RpcError::to_element).collect();
            (Some(reply_xml(&rpc.attrs, body)), Next::Continue)
        }
    }
}
