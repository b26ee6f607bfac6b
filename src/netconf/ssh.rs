//! NETCONF over SSH (RFC 6242): the russh server, user authentication and the `netconf`
//! subsystem; a persistent ed25519 host key.

use super::{session, Shared};
use crate::config::AgentConfig;
use russh::keys::PrivateKey;
use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("host key {0}: {1}")]
    HostKey(String, String),
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
}

/// Loads the host key from `dir`, generating an ed25519 key on first start.
pub fn host_key(dir: &Path) -> Result<PrivateKey, SshError> {
    let path = dir.join("ssh_host_ed25519_key");
    let shown = path.display().to_string();
    if path.exists() {
        return russh::keys::load_secret_key(&path, None)
            .map_err(|e| SshError::HostKey(shown, e.to_string()));
    }
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let key = PrivateKey::from(pair);
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| SshError::HostKey(shown.clone(), e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|e| SshError::HostKey(shown.clone(), e.to_string()))?;
    let tmp = dir.join("ssh_host_ed25519_key.tmp");
    crate::datastore::guard::write_private(&tmp, text.as_bytes())
        .map_err(|e| SshError::HostKey(shown.clone(), e.to_string()))?;
    std::fs::rename(&tmp, &path).map_err(|e| SshError::HostKey(shown.clone(), e.to_string()))?;
    info!(path = %shown, "generated SSH host key");
    Ok(key)
}

/// The longest spacing between password checks of one user from one source.
const MAX_GUESS_DELAY: Duration = Duration::from_secs(10);

fn russh_config(key: PrivateKey, cfg: &AgentConfig) -> russh::server::Config {
    let methods: &[MethodKind] = &[MethodKind::Password, MethodKind::PublicKey];
    russh::server::Config {
        methods: MethodSet::from(methods),
        auth_rejection_time: Duration::from_millis(cfg.auth_failure_delay_ms),
        auth_rejection_time_initial: Some(Duration::from_millis(0)),
        keys: vec![key],
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    }
}

/// Connections that have not authenticated yet, in all and per source address.
#[derive(Default)]
struct Pending {
    total: usize,
    by_source: HashMap<std::net::IpAddr, usize>,
}

/// A connection's place among the unauthenticated ones; released on authentication or when
/// the connection ends, whichever comes first.
struct PendingSlot {
    pending: Arc<std::sync::Mutex<Pending>>,
    source: std::net::IpAddr,
    held: std::sync::atomic::AtomicBool,
}

impl PendingSlot {
    /// Takes a place, or None when the caps are reached.
    fn take(
        pending: &Arc<std::sync::Mutex<Pending>>,
        source: std::net::IpAddr,
        cfg: &AgentConfig,
    ) -> Option<PendingSlot> {
        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
        let here = p.by_source.get(&source).copied().unwrap_or(0);
        if p.total >= cfg.max_unauthenticated || here >= cfg.max_unauthenticated_per_source {
            return None;
        }
        p.total += 1;
        *p.by_source.entry(source).or_default() += 1;
        Some(PendingSlot {
            pending: Arc::clone(pending),
            source,
            held: std::sync::atomic::AtomicBool::new(true),
        })
    }

    fn release(&self) {
        if !self.held.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.total = p.total.saturating_sub(1);
        if let Some(n) = p.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                p.by_source.remove(&self.source);
            }
        }
    }

    fn held(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.release();
    }
}

/// Accepts SSH connections for as long as the agent runs: an accept error (out of file
/// descriptors, say) is logged and retried after a pause, never the end of the agent. A
/// connection beyond the caps on unauthenticated ones is closed at once; one that has not
/// authenticated within `login_timeout_secs` is closed then.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    cfg: Arc<AgentConfig>,
    key: PrivateKey,
) -> Result<(), SshError> {
    let config = Arc::new(russh_config(key, &cfg));
    let pending = Arc::new(std::sync::Mutex::new(Pending::default()));
    let backoff = Arc::new(super::backoff::Backoff::new(
        Duration::from_millis(cfg.auth_failure_delay_ms),
        MAX_GUESS_DELAY,
    ));
    let mut last_refusal_log: Option<std::time::Instant> = None;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "accepting a connection failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = PendingSlot::take(&pending, peer.ip(), &cfg) else {
            if last_refusal_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                warn!(%peer, "too many connections waiting to authenticate; closing new ones");
                last_refusal_log = Some(std::time::Instant::now());
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let slot = Arc::new(slot);
        let handler = Connection {
            shared: Arc::clone(&shared),
            cfg: Arc::clone(&cfg),
            peer,
            user: None,
            channels: HashMap::new(),
            slot: Arc::clone(&slot),
            backoff: Arc::clone(&backoff),
        };
        let config = Arc::clone(&config);
        let login_timeout = Duration::from_secs(cfg.login_timeout_secs.max(1));
        tokio::spawn(async move {
            let conn = tokio::spawn(async move {
                match russh::server::run_stream(config, stream, handler).await {
                    Ok(running) => {
                        if let Err(e) = running.await {
                            tracing::debug!(%peer, error = %e, "SSH connection ended");
                        }
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "SSH handshake failed"),
                }
            });
            let abort = conn.abort_handle();
            tokio::select! {
                _ = conn => {}
                _ = tokio::time::sleep(login_timeout) => {
                    if slot.held() {
                        info!(%peer, "closing a connection that did not authenticate in time");
                        abort.abort();
                    }
                }
            }
            // Authenticated or gone: the place is free either way.
            slot.release();
        });
    }
}

/// Gives a NETCONF session slot back when dropped.
struct SessionSlot(Arc<Shared>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.release_slot();
    }
}

/// One SSH connection.
struct Connection {
    shared: Arc<Shared>,
    cfg: Arc<AgentConfig>,
    peer: SocketAddr,
    user: Option<String>,
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Released once the user authenticates.
    slot: Arc<PendingSlot>,
    /// Password-guess spacing per (user, source), shared by all connections.
    backoff: Arc<super::backoff::Backoff>,
}

impl Connection {
    fn refused(&self, user: &str, method: &str) -> Auth {
        warn!(peer = %self.peer, user, method, "authentication failed");
        Auth::reject()
    }

    fn key_allowed(&self, user: &str, key: &russh::keys::PublicKey) -> bool {
        let Some(u) = self.cfg.user(user) else {
            return false;
        };
        u.authorized_keys.iter().any(|line| {
            russh::keys::ssh_key::PublicKey::from_openssh(line.trim())
                .map(|k| k.key_data() == key.key_data())
                .unwrap_or(false)
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error(transparent)]
    Ssh(#[from] russh::Error),
}

impl russh::server::Handler for Connection {
    type Error = ConnError;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let source = self.peer.ip();
        // After a failure, this user's password checks from this source take turns.
        let turn = self.backoff.turn(user, source, std::time::Instant::now());
        tokio::time::sleep_until(turn.into()).await;
        match self.cfg.user(user) {
            Some(u) if u.password_ok(password) => {
                self.backoff.succeeded(user, source);
                self.user = Some(user.to_string());
                self.slot.release();
                info!(peer = %self.peer, user, "authenticated by password");
                Ok(Auth::Accept)
            }
            _ => {
                self.backoff.failed(user, source, std::time::Instant::now());
                Ok(self.refused(user, "password"))
            }
        }
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        key: &russh::keys::PublicKey,
    ) -> Result<Auth, Self::Error> {
        if self.key_allowed(user, key) {
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: &russh::keys::PublicKey,
    ) -> Result<Auth, Self::Error> {
        if self.key_allowed(user, key) {
            self.user = Some(user.to_string());
            self.slot.release();
            info!(peer = %self.peer, user, "authenticated by public key");
            Ok(Auth::Accept)
        } else {
            Ok(self.refused(user, "publickey"))
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        if self.shared.sessions_full() {
            warn!(
                peer = %self.peer,
                max_sessions = self.shared.limits.max_sessions,
                "session channel refused: the session limit is reached"
            );
            return Ok(false);
        }
        self.channels.insert(channel.id(), channel);
        Ok(true)
    }

    async fn subsystem_request(
        &mut self,
        channel_id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(user), true) = (self.user.clone(), name == "netconf") else {
            session.channel_failure(channel_id)?;
            return Ok(());
        };
        let Some(channel) = self.channels.remove(&channel_id) else {
            session.channel_failure(channel_id)?;
            return Ok(());
        };
        // Channels opened together may all have passed the check at channel open.
        if !self.shared.take_slot() {
            warn!(
                peer = %self.peer,
                user,
                max_sessions = self.shared.limits.max_sessions,
                "netconf subsystem refused: the session limit is reached"
            );
            session.channel_failure(channel_id)?;
            let _ = channel.close().await;
            return Ok(());
        }
        session.channel_success(channel_id)?;
        let shared = Arc::clone(&self.shared);
        let peer = self.peer.ip().to_string();
        tokio::spawn(async move {
            // The session slot comes back however the session ends, a panic included.
            let _slot = SessionSlot(Arc::clone(&shared));
            let stream = channel.into_stream();
            session::run(stream, shared, user, Some(peer)).await;
        });
        Ok(())
    }
}
