//! Confirmed commit (RFC 6241 §8.4, :confirmed-commit:1.1): a commit that is rolled back unless
//! confirmed in time. The pending state (rollback configuration, deadline, persist id) is kept
//! durably so that a persistent confirmed commit keeps its deadline across restarts.

use super::{store_err, Northbound};
use crate::datastore::tree::Node;
use crate::rpc_error::{ErrorTag, RpcError, RpcResult};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The confirm-timeout used when a confirmed commit gives none (RFC 6241: 600 seconds).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A confirmed commit waiting for its confirmation.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The issuing session; `None` once that session is gone (after a restart).
    pub session: Option<u32>,
    /// The `<persist>` token: the commit then outlives its session.
    pub persist: Option<String>,
    /// Running as it was before the first confirmed commit.
    pub rollback: Arc<Node>,
    pub deadline: SystemTime,
}

/// What happened to a confirmed commit, for the netconf-confirmed-commit event (RFC 6470).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A confirmed commit started, with its timeout.
    Start { session: u32, timeout: Duration },
    /// A follow-up confirmed commit extended it.
    Extend { session: u32, timeout: Duration },
    /// A confirming commit made it permanent.
    Complete { session: u32 },
    /// `<cancel-commit>` rolled it back.
    Cancel { session: u32 },
    /// It was rolled back because the timeout ran out, or its session ended.
    Timeout,
}

/// Told of every confirmed-commit event (the notifications module registers one).
pub type Hook = Box<dyn Fn(&Event) + Send>;

/// The parameters of one `<commit>` or `<cancel-commit>`.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub session: u32,
    /// `<confirmed/>` with its `<confirm-timeout>` (or the default).
    pub confirmed: Option<Duration>,
    pub persist: Option<String>,
    pub persist_id: Option<String>,
}

fn encode(p: &Pending) -> Vec<u8> {
    let ms = p
        .deadline
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    match &p.persist {
        Some(id) => format!("{ms}\nP{id}").into_bytes(),
        None => format!("{ms}\n-").into_bytes(),
    }
}

fn decode(state: &[u8], rollback: Node) -> Option<Pending> {
    let text = std::str::from_utf8(state).ok()?;
    let (ms, rest) = text.split_once('\n')?;
    let deadline = UNIX_EPOCH + Duration::from_millis(ms.parse().ok()?);
    let persist = rest.strip_prefix('P').map(str::to_string);
    Some(Pending {
        session: None,
        persist,
        rollback: Arc::new(rollback),
        deadline,
    })
}

impl Northbound {
    /// Reads a pending confirmed commit left by an earlier run (its session is gone).
    pub(super) fn load_confirmed(&mut self) -> Result<(), crate::datastore::StoreError> {
        if let Some((state, rollback)) = self.store.load_confirmed()? {
            self.confirmed = decode(&state, rollback);
            if self.confirmed.is_none() {
                tracing::error!("unreadable confirmed-commit record ignored");
            }
        }
        Ok(())
    }

    /// The pending confirmed commit, if any.
    pub fn confirmed(&self) -> Option<&Pending> {
        self.confirmed.as_ref()
    }

    /// Registers the function told of every confirmed-commit event (notifications).
    pub fn set_confirmed_hook(&mut self, hook: Hook) {
        self.confirmed_hook = Some(hook);
    }

    fn emit(&self, e: Option<Event>) -> Option<Event> {
        if let (Some(hook), Some(e)) = (&self.confirmed_hook, &e) {
            hook(e);
        }
        e
    }

    /// Fails unless `req` may act on the pending confirmed commit: the issuing session for a
    /// plain one, any session giving the matching persist-id for a persistent one.
    fn check_owner(&self, p: &Pending, req: &Request) -> RpcResult<()> {
        match (&p.persist, &req.persist_id) {
            (Some(token), Some(given)) if token == given => Ok(()),
            (_, Some(_)) => Err(RpcError::protocol(
                ErrorTag::InvalidValue,
                "persist-id does not match the pending confirmed commit",
            )
            .with_info("bad-element", "persist-id")),
            (Some(_), None) => Err(RpcError::protocol(
                ErrorTag::InvalidValue,
                "the pending confirmed commit is persistent; give its persist-id",
            )
            .with_info("bad-element", "persist-id")),
            (None, None) if p.session == Some(req.session) => Ok(()),
            (None, None) => Err(RpcError::protocol(
                ErrorTag::InUse,
                format!(
                    "a confirmed commit of session {} is pending; only that session may confirm or cancel it",
                    p.session.unwrap_or(0)
                ),
            )
            .with_info("session-id", p.session.unwrap_or(0).to_string())),
        }
    }

    fn save(&self, p: &Pending, with_rollback: bool) -> RpcResult<()> {
        let rollback = with_rollback.then(|| &*p.rollback);
        self.store
            .save_confirmed(&encode(p), rollback)
            .map_err(store_err)
    }

    /// `<commit>` with its confirmed-commit parameters: a plain commit, a (follow-up) confirmed
    /// commit, or the confirming commit of a pending one.
    pub fn commit_confirmed(&mut self, req: &Request) -> RpcResult<Option<Event>> {
        let pending = self.confirmed.clone();
        if let Some(p) = &pending {
            self.check_owner(p, req)?;
        } else if req.persist_id.is_some() {
            return Err(RpcError::protocol(
                ErrorTag::InvalidValue,
                "no confirmed commit is pending for this persist-id",
            )
            .with_info("bad-element", "persist-id"));
        }
        let Some(timeout) = req.confirmed else {
            // A plain commit, or the confirming commit.
            self.commit()?;
            if pending.is_none() {
                return Ok(None);
            }
            self.confirmed = None;
            self.store.clear_confirmed().map_err(store_err)?;
            return Ok(self.emit(Some(Event::Complete {
                session: req.session,
            })));
        };
        let rollback = match &pending {
            Some(p) => Arc::clone(&p.rollback),
            None => Arc::clone(&self.running),
        };
        let p = Pending {
            session: Some(req.session),
            persist: req.persist.clone(),
            rollback,
            deadline: SystemTime::now() + timeout,
        };
        if pending.is_none() {
            // The rollback point is durable before running changes: a crash in between
            // leaves a pending commit whose rollback is a no-op, never an unguarded change.
            self.save(&p, true)?;
            if let Err(e) = self.commit() {
                if let Err(se) = self.store.clear_confirmed() {
                    tracing::error!(error = %se, "could not clear the confirmed-commit record");
                }
                return Err(e);
            }
        } else {
            self.commit()?;
            self.save(&p, false)?;
        }
        self.confirmed = Some(p);
        let event = if pending.is_some() {
            Event::Extend {
                session: req.session,
                timeout,
            }
        } else {
            Event::Start {
                session: req.session,
                timeout,
            }
        };
        Ok(self.emit(Some(event)))
    }

    /// `<cancel-commit>`: rolls the pending confirmed commit back.
    pub fn cancel_commit(&mut self, req: &Request) -> RpcResult<Option<Event>> {
        let Some(p) = self.confirmed.clone() else {
            return Err(RpcError::protocol(
                ErrorTag::OperationFailed,
                "no confirmed commit is pending",
            ));
        };
        self.check_owner(&p, req)?;
        self.roll_back(&p)?;
        Ok(self.emit(Some(Event::Cancel {
            session: req.session,
        })))
    }

    /// Re-applies the configuration from before the confirmed commit through the pipeline.
    fn roll_back(&mut self, p: &Pending) -> RpcResult<()> {
        self.commit_tree((*p.rollback).clone())?;
        self.confirmed = None;
        self.store.clear_confirmed().map_err(store_err)?;
        tracing::info!("confirmed commit rolled back");
        Ok(())
    }

    /// Rolls back a pending confirmed commit whose deadline has passed, or whose session is
    /// gone without persist. Called periodically and at start.
    pub fn expire_confirmed(&mut self, now: SystemTime) -> Option<Event> {
        let p = self.confirmed.clone()?;
        let orphaned = p.persist.is_none() && p.session.is_none();
        if !orphaned && now < p.deadline {
            return None;
        }
        if let Err(e) = self.roll_back(&p) {
            // Keep the record: the next attempt may succeed (a runtime refused for now).
            tracing::error!(error = %e.message, "confirmed-commit rollback failed");
            return None;
        }
        self.emit(Some(Event::Timeout))
    }

    /// A session ended: its non-persistent confirmed commit is rolled back.
    pub(super) fn confirmed_session_ended(&mut self, session: u32) -> Option<Event> {
        let p = self.confirmed.as_mut()?;
        if p.session != Some(session) {
            return None;
        }
        p.session = None;
        if p.persist.is_some() {
            return None;
        }
        self.expire_confirmed(SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::{Datastore, Store};

    fn tree(names: &[&str]) -> Node {
        let entries: String = names
            .iter()
            .map(|n| {
                format!("<interface><name>{n}</name><type>t:ethernetCsmacd</type></interface>")
            })
            .collect();
        let xml = format!(
            r#"<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces" xmlns:t="urn:ietf:params:xml:ns:yang:iana-if-type">{entries}</interfaces></config>"#
        );
        crate::netconf::ops::inline_config(&crate::xml::parse(xml.as_bytes()).unwrap()).unwrap()
    }

    fn open(dir: &std::path::Path) -> Northbound {
        Northbound::open(Store::open(dir).unwrap(), None).unwrap()
    }

    #[test]
    fn persistent_commit_survives_reopen_and_expires() {
        let dir = std::env::temp_dir().join(format!("mldhb-confirmed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let deadline;
        {
            let mut nb = open(&dir);
            nb.set(Datastore::Running, tree(&["a"]), true).unwrap();
            nb.set(Datastore::Candidate, tree(&["a", "b"]), true)
                .unwrap();
            let req = Request {
                session: 7,
                confirmed: Some(Duration::from_secs(600)),
                persist: Some("p".into()),
                persist_id: None,
            };
            let e = nb.commit_confirmed(&req).unwrap();
            assert_eq!(
                e,
                Some(Event::Start {
                    session: 7,
                    timeout: Duration::from_secs(600)
                })
            );
            deadline = nb.confirmed().unwrap().deadline;
        }
        let mut nb = open(&dir);
        let p = nb.confirmed().unwrap().clone();
        assert_eq!(p.session, None);
        assert_eq!(p.persist.as_deref(), Some("p"));
        // Stored with millisecond precision.
        let drift = deadline
            .duration_since(p.deadline)
            .unwrap_or_else(|e| e.duration());
        assert!(drift < Duration::from_millis(1));
        assert_eq!(*p.rollback, tree(&["a"]));
        assert_eq!(*nb.get(Datastore::Running), tree(&["a", "b"]));
        // Not before the deadline; after it, running is back to before the commit.
        assert_eq!(nb.expire_confirmed(SystemTime::now()), None);
        let later = p.deadline + Duration::from_secs(1);
        assert_eq!(nb.expire_confirmed(later), Some(Event::Timeout));
        assert_eq!(*nb.get(Datastore::Running), tree(&["a"]));
        assert!(nb.confirmed().is_none());
        drop(nb);
        let nb = open(&dir);
        assert!(nb.confirmed().is_none());
        assert_eq!(*nb.get(Datastore::Running), tree(&["a"]));
        drop(nb);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn session_bound_commit_ends_with_its_session() {
        let dir = std::env::temp_dir().join(format!("mldhb-confirmed-s-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut nb = open(&dir);
        nb.set(Datastore::Candidate, tree(&["x"]), true).unwrap();
        let req = Request {
            session: 3,
            confirmed: Some(DEFAULT_TIMEOUT),
            ..Default::default()
        };
        nb.commit_confirmed(&req).unwrap();
        let other = Request {
            session: 4,
            ..Default::default()
        };
        assert_eq!(nb.cancel_commit(&other).unwrap_err().tag, ErrorTag::InUse);
        nb.release_session(4);
        assert_eq!(*nb.get(Datastore::Running), tree(&["x"]));
        nb.release_session(3);
        assert_eq!(*nb.get(Datastore::Running), Node::default());
        assert!(nb.confirmed().is_none());
        drop(nb);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn record_round_trips() {
        let p = Pending {
            session: Some(3),
            persist: Some("a b\nc".into()),
            rollback: Arc::new(Node::default()),
            deadline: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        };
        let back = decode(&encode(&p), Node::default()).unwrap();
        assert_eq!(back.persist, p.persist);
        assert_eq!(back.deadline, p.deadline);
        assert_eq!(back.session, None);
        let q = Pending { persist: None, ..p };
        assert_eq!(decode(&encode(&q), Node::default()).unwrap().persist, None);
    }
}
