//! NETCONF server side: framing, sessions, operations and rpc-errors (RFC 6241, RFC 6242).

pub mod backoff;
pub mod client;

pub mod filter;
pub mod framing;
pub mod monitoring;
pub mod nacm;
pub mod notify;
pub mod ops;
pub mod password;
pub mod session;
pub mod ssh;

use crate::northbound::Northbound;
use crate::xml::Element;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub use crate::xml::{NS_BASE, NS_WITH_DEFAULTS_MD};
pub const NS_MONITORING: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring";
pub const CAP_BASE_10: &str = "urn:ietf:params:netconf:base:1.0";
pub const CAP_BASE_11: &str = "urn:ietf:params:netconf:base:1.1";

/// Limits every session honours.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest message accepted, in bytes.
    pub max_message: usize,
    /// Events kept in the notification replay log.
    pub replay_max: usize,
    /// Most NETCONF sessions open at once; more are refused at SSH channel open.
    pub max_sessions: usize,
    /// A session that sends nothing for this long is closed (`None`: never).
    pub idle_timeout: Option<std::time::Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 64 * 1024 * 1024,
            replay_max: 10_000,
            max_sessions: 64,
            idle_timeout: Some(std::time::Duration::from_secs(3600)),
        }
    }
}

/// What the server knows of one open session (for monitoring and kill-session).
pub struct SessionInfo {
    pub user: String,
    pub source_host: Option<String>,
    pub login_time: SystemTime,
    pub in_rpcs: AtomicU64,
    pub in_bad_rpcs: AtomicU64,
    pub out_rpc_errors: AtomicU64,
    pub kill: tokio::sync::Notify,
    /// The session that issued kill-session against this one (0: none).
    pub killed_by: AtomicU32,
    pub out_notifications: AtomicU64,
}

/// Server-wide counters of ietf-netconf-monitoring.
#[derive(Default)]
pub struct Statistics {
    pub in_bad_hellos: AtomicU64,
    pub in_sessions: AtomicU64,
    pub dropped_sessions: AtomicU64,
    pub in_rpcs: AtomicU64,
    pub in_bad_rpcs: AtomicU64,
    pub out_rpc_errors: AtomicU64,
    pub out_notifications: AtomicU64,
}

/// State shared by every session of one agent.
pub struct Shared {
    pub nb: Mutex<Northbound>,
    pub sessions: Mutex<HashMap<u32, Arc<SessionInfo>>>,
    pub stats: Statistics,
    pub limits: Limits,
    pub start_time: SystemTime,
    pub notifications: notify::Hub,
    /// Access control (RFC 8341) settings, compiled rules and denial counters.
    pub nacm: nacm::Nacm,
    next_session: AtomicU32,
    /// Session slots taken (sessions running or starting), at most `limits.max_sessions`.
    slots: AtomicUsize,
}

impl Shared {
    /// Without access control (embedded uses and tests); the agent uses `with_nacm`.
    pub fn new(nb: Northbound, limits: Limits) -> Arc<Shared> {
        Self::with_nacm(nb, limits, nacm::Settings::default())
    }

    pub fn with_nacm(nb: Northbound, limits: Limits, nacm: nacm::Settings) -> Arc<Shared> {
        let log = match nb.store().notification_log() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "no notification replay log");
                None
            }
        };
        let notifications = notify::Hub::new(log, limits.replay_max);
        Arc::new(Shared {
            notifications,
            nb: Mutex::new(nb),
            sessions: Mutex::new(HashMap::new()),
            stats: Statistics::default(),
            limits,
            start_time: SystemTime::now(),
            nacm: nacm::Nacm::new(nacm),
            next_session: AtomicU32::new(1),
            slots: AtomicUsize::new(0),
        })
    }

    /// True while every session slot is taken.
    pub fn sessions_full(&self) -> bool {
        self.slots.load(Ordering::Relaxed) >= self.limits.max_sessions
    }

    /// Takes a session slot unless all are taken; give it back with `release_slot`.
    pub fn take_slot(&self) -> bool {
        self.slots
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limits.max_sessions).then_some(n + 1)
            })
            .is_ok()
    }

    pub fn release_slot(&self) {
        self.slots.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn northbound(&self) -> std::sync::MutexGuard<'_, Northbound> {
        self.nb.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register(&self, user: &str, source_host: Option<String>) -> (u32, Arc<SessionInfo>) {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(SessionInfo {
            user: user.to_string(),
            source_host,
            login_time: SystemTime::now(),
            in_rpcs: AtomicU64::new(0),
            in_bad_rpcs: AtomicU64::new(0),
            out_rpc_errors: AtomicU64::new(0),
            kill: tokio::sync::Notify::new(),
            killed_by: AtomicU32::new(0),
            out_notifications: AtomicU64::new(0),
        });
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::clone(&info));
        self.stats.in_sessions.fetch_add(1, Ordering::Relaxed);
        (id, info)
    }

    /// Forgets a session and releases its locks.
    pub fn unregister(&self, id: u32) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        self.northbound().release_session(id);
    }

    /// Publishes netconf-confirmed-commit (RFC 6470) for what happened to a confirmed commit.
    pub fn confirmed_event(&self, ev: &crate::northbound::confirmed::Event) {
        use crate::northbound::confirmed::Event;
        let (session, name, timeout) = match ev {
            Event::Start { session, timeout } => (Some(*session), "start", Some(timeout)),
            Event::Extend { session, timeout } => (Some(*session), "extend", Some(timeout)),
            Event::Complete { session } => (Some(*session), "complete", None),
            Event::Cancel { session } => (Some(*session), "cancel", None),
            Event::Timeout => (None, "timeout", None),
        };
        let by = session.map(|id| self.session_by(id));
        let secs = timeout.map(|t| t.as_secs().min(u32::MAX as u64) as u32);
        self.publish(notify::confirmed_commit(by.as_ref(), name, secs));
    }

    /// Rolls back a confirmed commit whose time ran out or whose session is gone, and tells
    /// subscribers (the agent calls this on a timer).
    pub fn expire_confirmed(&self) {
        let (ev, changes) = {
            let mut nb = self.northbound();
            let ev = nb.expire_confirmed(SystemTime::now());
            (ev, nb.take_running_changes())
        };
        if let Some(ev) = ev {
            self.config_changed(None, &changes);
            self.confirmed_event(&ev);
        }
    }

    /// Sends an event (the content element of a `<notification>`) to every subscriber and
    /// into the replay log.
    pub fn publish(&self, event: Element) {
        self.notifications.publish(event);
    }

    /// Who a session is, for RFC 6470 events.
    pub fn session_by(&self, id: u32) -> notify::By {
        let info = self.session(id);
        notify::By {
            user: info.as_ref().map(|i| i.user.clone()).unwrap_or_default(),
            session_id: id,
            source_host: info.and_then(|i| i.source_host.clone()),
        }
    }

    /// Publishes netconf-config-change for what a write to running changed; `session` None
    /// means the server made the change on its own.
    pub fn config_changed(&self, session: Option<u32>, changes: &[crate::datastore::tree::Change]) {
        if !changes.is_empty() {
            let by = session.map(|id| self.session_by(id));
            self.publish(notify::config_change(by.as_ref(), "running", changes));
        }
    }

    pub fn session(&self, id: u32) -> Option<Arc<SessionInfo>> {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }
}

/// The capabilities announced in the server's `<hello>`.
pub fn capabilities() -> Vec<String> {
    let mut caps: Vec<String> = [
        CAP_BASE_10,
        CAP_BASE_11,
        "urn:ietf:params:netconf:capability:writable-running:1.0",
        "urn:ietf:params:netconf:capability:candidate:1.0",
        "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
        "urn:ietf:params:netconf:capability:validate:1.1",
        "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
        "urn:ietf:params:netconf:capability:startup:1.0",
        "urn:ietf:params:netconf:capability:xpath:1.0",
        notify::CAP_NOTIFICATION,
        notify::CAP_INTERLEAVE,
        "urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit&also-supported=report-all,report-all-tagged,trim",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    caps.push(format!(
        "urn:ietf:params:netconf:capability:yang-library:1.0?revision=2019-01-04&module-set-id={}",
        monitoring::module_set_id()
    ));
    caps.extend(monitoring::yang10_module_capabilities());
    caps
}
