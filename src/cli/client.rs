//! The command line's NETCONF client: SSH (russh) with a trust-on-first-use known-hosts file,
//! the `netconf` subsystem, hello exchange, base:1.0 or base:1.1 framing and `<rpc>` calls.

use crate::netconf::framing::{self, FrameDecoder, Framing};
use crate::netconf::xml::{self, Element};
use crate::netconf::{CAP_BASE_10, CAP_BASE_11, NS_BASE};
use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey};
use russh::ChannelMsg;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest reply accepted from the server.
const MAX_REPLY: usize = 256 * 1024 * 1024;

/// How the client proves who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Password(String),
    Key(PathBuf),
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub credential: Credential,
    pub known_hosts: PathBuf,
    /// Refuse a host that is not yet in the known-hosts file instead of adding it.
    pub strict: bool,
}

/// One `<rpc-error>` of a reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerError {
    pub error_type: String,
    pub tag: String,
    pub severity: String,
    pub path: Option<String>,
    pub message: Option<String>,
    pub info: Vec<(String, String)>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let msg = self.message.as_deref().unwrap_or(match self.tag.as_str() {
            "access-denied" => "Access denied",
            "lock-denied" => "The configuration is locked by another session",
            "in-use" => "The resource is in use",
            "data-missing" => "The configuration does not exist",
            "data-exists" => "The configuration already exists",
            _ => "The operation failed",
        });
        write!(f, "{msg} (error-tag {}", self.tag)?;
        if let Some(p) = &self.path {
            write!(f, ", path {p}")?;
        }
        for (k, v) in &self.info {
            if k != "session-id" || self.tag == "lock-denied" {
                write!(f, ", {k} {v}")?;
            }
        }
        write!(f, ")")
    }
}

/// Why a NETCONF exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("{0}")]
    HostKey(String),
    #[error("authentication failed for user {0}")]
    Auth(String),
    #[error("SSH: {0}")]
    Ssh(String),
    #[error("the server closed the session")]
    Closed,
    #[error("bad message from the server: {0}")]
    Protocol(String),
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Rpc(Vec<ServerError>),
}

impl ClientError {
    /// The rpc-errors of a server refusal (empty for transport failures).
    pub fn server_errors(&self) -> &[ServerError] {
        match self {
            ClientError::Rpc(v) => v,
            _ => &[],
        }
    }
}

/// Outcome of the host key check, filled in by the SSH handler.
#[derive(Default)]
struct KeyCheck {
    note: Option<String>,
    refusal: Option<String>,
}

struct Handler {
    host_id: String,
    known_hosts: PathBuf,
    strict: bool,
    check: Arc<Mutex<KeyCheck>>,
}

impl client::Handler for Handler {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, Self::Error> {
        let verdict = check_known_host(&self.known_hosts, &self.host_id, key, self.strict);
        let mut check = self.check.lock().unwrap_or_else(|e| e.into_inner());
        match verdict {
            Ok(note) => {
                check.note = note;
                Ok(true)
            }
            Err(why) => {
                check.refusal = Some(why);
                Ok(false)
            }
        }
    }
}

/// The host's entry name in the known-hosts file, as OpenSSH writes it.
fn host_id(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Checks `key` against the known-hosts file; an unknown host is added (unless `strict`).
/// Returns a note to show the user when the host was added.
fn check_known_host(
    file: &Path,
    host: &str,
    key: &PublicKey,
    strict: bool,
) -> Result<Option<String>, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let fingerprint = key.fingerprint(russh::keys::HashAlg::Sha256);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((hosts, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        if !hosts.split(',').any(|h| h == host) {
            continue;
        }
        let Ok(known) = PublicKey::from_openssh(rest.trim()) else {
            continue;
        };
        if known.algorithm() != key.algorithm() {
            continue;
        }
        if known.key_data() == key.key_data() {
            return Ok(None);
        }
        return Err(format!(
            "the host key of {host} has changed (now {fingerprint}); it does not match line {} \
             of {}. If the server was reinstalled, remove that line and connect again",
            n + 1,
            file.display()
        ));
    }
    if strict {
        return Err(format!(
            "{host} is not in {} (host key {fingerprint}); add it or connect without \
             --strict-host-key",
            file.display()
        ));
    }
    let openssh = key
        .to_openssh()
        .map_err(|e| format!("cannot encode the host key: {e}"))?;
    let mut entry = format!("{host} {}\n", openssh.trim());
    if !text.is_empty() && !text.ends_with('\n') {
        entry.insert(0, '\n');
    }
    if let Some(dir) = file.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
    }
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(entry.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(Some(format!(
        "Warning: permanently added {host} ({fingerprint}) to {}",
        file.display()
    )))
}

/// A NETCONF session over SSH, driven synchronously on its own small runtime.
pub struct Client {
    rt: tokio::runtime::Runtime,
    _ssh: client::Handle<Handler>,
    channel: russh::Channel<client::Msg>,
    decoder: FrameDecoder,
    framing: Framing,
    next_id: u64,
    /// The session id the server gave in its hello.
    pub session_id: Option<String>,
    /// A note from the host key check (a newly trusted host).
    pub host_note: Option<String>,
}

impl Client {
    /// Connects, authenticates, opens the `netconf` subsystem and exchanges hellos.
    pub fn connect(t: &Target) -> Result<Client, ClientError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Ssh(e.to_string()))?;
        let check = Arc::new(Mutex::new(KeyCheck::default()));
        let handler = Handler {
            host_id: host_id(&t.host, t.port),
            known_hosts: t.known_hosts.clone(),
            strict: t.strict,
            check: Arc::clone(&check),
        };
        let config = Arc::new(client::Config {
            nodelay: true,
            window_size: 16 * 1024 * 1024,
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(60)),
            ..Default::default()
        });
        let addr = format!("{}:{}", t.host, t.port);
        let (ssh, channel) = rt.block_on(async {
            let connect = client::connect(config, (t.host.as_str(), t.port), handler);
            let mut ssh = match tokio::time::timeout(Duration::from_secs(30), connect).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    let refusal = check
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .refusal
                        .take();
                    return Err(match refusal {
                        Some(r) => ClientError::HostKey(r),
                        None => ClientError::Connect(addr.clone(), e.to_string()),
                    });
                }
                Err(_) => return Err(ClientError::Connect(addr.clone(), "timed out".into())),
            };
            let ok = match &t.credential {
                Credential::Password(p) => ssh
                    .authenticate_password(t.user.clone(), p.clone())
                    .await
                    .map_err(|e| ClientError::Ssh(e.to_string()))?
                    .success(),
                Credential::Key(path) => {
                    let key = russh::keys::load_secret_key(path, None).map_err(|e| {
                        ClientError::Ssh(format!("cannot load {}: {e}", path.display()))
                    })?;
                    let hash = ssh
                        .best_supported_rsa_hash()
                        .await
                        .map_err(|e| ClientError::Ssh(e.to_string()))?
                        .flatten();
                    ssh.authenticate_publickey(
                        t.user.clone(),
                        PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                    )
                    .await
                    .map_err(|e| ClientError::Ssh(e.to_string()))?
                    .success()
                }
            };
            if !ok {
                return Err(ClientError::Auth(t.user.clone()));
            }
            let channel = ssh
                .channel_open_session()
                .await
                .map_err(|e| ClientError::Ssh(e.to_string()))?;
            channel
                .request_subsystem(true, "netconf")
                .await
                .map_err(|e| ClientError::Ssh(e.to_string()))?;
            Ok((ssh, channel))
        })?;
        let host_note = check.lock().unwrap_or_else(|e| e.into_inner()).note.take();
        let mut c = Client {
            rt,
            _ssh: ssh,
            channel,
            decoder: FrameDecoder::new(MAX_REPLY),
            framing: Framing::EndOfMessage,
            next_id: 1,
            session_id: None,
            host_note,
        };
        c.hello()?;
        Ok(c)
    }

    fn hello(&mut self) -> Result<(), ClientError> {
        let theirs = self.receive()?;
        let hello = xml::parse(&theirs).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if hello.name != "hello" || hello.ns != NS_BASE {
            return Err(ClientError::Protocol("expected <hello>".into()));
        }
        let caps: Vec<String> = hello
            .child(NS_BASE, "capabilities")
            .map(|c| {
                c.children
                    .iter()
                    .map(|c| c.trimmed_text().to_string())
                    .collect()
            })
            .unwrap_or_default();
        self.session_id = hello
            .child(NS_BASE, "session-id")
            .map(|s| s.trimmed_text().to_string());
        let ours = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hello xmlns=\"{NS_BASE}\"><capabilities>\
             <capability>{CAP_BASE_10}</capability><capability>{CAP_BASE_11}</capability>\
             </capabilities></hello>"
        );
        self.send(ours.as_bytes())?;
        if caps.iter().any(|c| c == CAP_BASE_11) {
            self.framing = Framing::Chunked;
            self.decoder.set_mode(Framing::Chunked);
        } else if !caps.iter().any(|c| c == CAP_BASE_10) {
            return Err(ClientError::Protocol(
                "the server offers neither base:1.0 nor base:1.1".into(),
            ));
        }
        Ok(())
    }

    fn send(&mut self, msg: &[u8]) -> Result<(), ClientError> {
        let framed = framing::encode(self.framing, msg);
        self.rt
            .block_on(self.channel.data(&framed[..]))
            .map_err(|e| ClientError::Ssh(e.to_string()))
    }

    fn receive(&mut self) -> Result<Vec<u8>, ClientError> {
        loop {
            if let Some(m) = self
                .decoder
                .next_message()
                .map_err(|e| ClientError::Protocol(e.to_string()))?
            {
                return Ok(m);
            }
            match self.rt.block_on(self.channel.wait()) {
                Some(ChannelMsg::Data { data }) => self
                    .decoder
                    .push(&data)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?,
                Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => {
                    return Err(ClientError::Closed)
                }
                Some(_) => {}
            }
        }
    }

    /// Sends one operation (the `<rpc>` body, as XML text) and returns the `<rpc-reply>`.
    /// A reply with an error-severity `<rpc-error>` is `ClientError::Rpc`.
    pub fn rpc(&mut self, body: &str) -> Result<Element, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = format!("<rpc xmlns=\"{NS_BASE}\" message-id=\"{id}\">{body}</rpc>");
        self.send(msg.as_bytes())?;
        loop {
            let raw = self.receive()?;
            let reply = xml::parse(&raw).map_err(|e| ClientError::Protocol(e.to_string()))?;
            if reply.name == "notification" {
                continue;
            }
            if reply.name != "rpc-reply" {
                return Err(ClientError::Protocol(format!(
                    "expected <rpc-reply>, got <{}>",
                    reply.name
                )));
            }
            let got = reply.attr("", "message-id").unwrap_or("");
            if got != id.to_string() {
                return Err(ClientError::Protocol(format!(
                    "reply for message-id {got:?}, expected {id}"
                )));
            }
            let errors = rpc_errors(&reply);
            if errors.iter().any(|e| e.severity != "warning") {
                return Err(ClientError::Rpc(errors));
            }
            return Ok(reply);
        }
    }

    /// Like `rpc`, for operations whose reply is `<ok/>`.
    pub fn rpc_ok(&mut self, body: &str) -> Result<(), ClientError> {
        self.rpc(body).map(|_| ())
    }

    /// The `<data>` of a get or get-config reply.
    pub fn data(&mut self, body: &str) -> Result<Element, ClientError> {
        let reply = self.rpc(body)?;
        Ok(reply
            .child(NS_BASE, "data")
            .cloned()
            .unwrap_or_else(|| Element::new(NS_BASE, "data")))
    }

    /// Closes the session politely.
    pub fn close(mut self) {
        let _ = self.rpc("<close-session/>");
        let _ = self.rt.block_on(self.channel.close());
    }
}

/// Every `<rpc-error>` of a reply.
pub fn rpc_errors(reply: &Element) -> Vec<ServerError> {
    reply
        .children
        .iter()
        .filter(|c| c.ns == NS_BASE && c.name == "rpc-error")
        .map(|e| {
            let text = |n: &str| {
                e.child(NS_BASE, n)
                    .map(|c| c.trimmed_text().to_string())
                    .filter(|s| !s.is_empty())
            };
            ServerError {
                error_type: text("error-type").unwrap_or_default(),
                tag: text("error-tag").unwrap_or_default(),
                severity: text("error-severity").unwrap_or_else(|| "error".into()),
                path: text("error-path"),
                message: text("error-message"),
                info: e
                    .child(NS_BASE, "error-info")
                    .map(|i| {
                        i.children
                            .iter()
                            .map(|c| (c.name.clone(), c.trimmed_text().to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]);
        russh::keys::PrivateKey::from(pair).public_key().clone()
    }

    #[test]
    fn trust_on_first_use_then_pin() {
        let dir = std::env::temp_dir().join(format!("mldhb-kh-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = dir.join("known_hosts");
        let h = host_id("127.0.0.1", 8830);
        assert_eq!(h, "[127.0.0.1]:8830");
        assert!(check_known_host(&file, &h, &key(1), true).is_err());
        let note = check_known_host(&file, &h, &key(1), false).unwrap();
        assert!(note.unwrap().contains("permanently added"));
        assert_eq!(check_known_host(&file, &h, &key(1), true), Ok(None));
        let changed = check_known_host(&file, &h, &key(2), false).unwrap_err();
        assert!(changed.contains("has changed"), "{changed}");
        // Another port is another host.
        assert!(check_known_host(&file, "[127.0.0.1]:8831", &key(2), false).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn errors_of_a_reply() {
        let reply = xml::parse(
            format!(
                "<rpc-reply xmlns=\"{NS_BASE}\" message-id=\"1\"><rpc-error>\
                 <error-type>application</error-type><error-tag>invalid-value</error-tag>\
                 <error-severity>error</error-severity><error-path>/a:b</error-path>\
                 <error-message xml:lang=\"en\">bad</error-message></rpc-error></rpc-reply>"
            )
            .as_bytes(),
        )
        .unwrap();
        let e = rpc_errors(&reply);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].to_string(), "bad (error-tag invalid-value, path /a:b)");
    }
}
