//! A NETCONF client over SSH: connect, hello (base:1.1 chunked framing when offered), and
//! `<rpc>` round trips with every `<rpc-error>` decoded. The lab, the benchmarks and the
//! command-line shim (which adds its known-hosts policy) use it.

use super::framing::{self, FrameDecoder, Framing};
use super::{CAP_BASE_10, CAP_BASE_11, NS_BASE};
use crate::xml::{self, Element};
use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey};
use russh::ChannelMsg;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Largest reply accepted from the server.
const MAX_REPLY: usize = 256 * 1024 * 1024;

/// How the client proves who it is.
#[derive(Debug, Clone)]
pub enum Credentials {
    Password(String),
    /// A private key file (OpenSSH format).
    KeyFile(PathBuf),
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
    /// The host key check refused the server (the check's own reason).
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

/// Judges the server's host key: Ok to accept, Err with the reason to refuse.
pub type HostKeyCheck = Box<dyn FnMut(&PublicKey) -> Result<(), String> + Send + Sync + 'static>;

struct Handler {
    check: HostKeyCheck,
    refusal: Arc<std::sync::Mutex<Option<String>>>,
}

impl client::Handler for Handler {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKey) -> Result<bool, Self::Error> {
        match (self.check)(key) {
            Ok(()) => Ok(true),
            Err(why) => {
                *self.refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                Ok(false)
            }
        }
    }
}

fn ssh_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Ssh(e.to_string())
}

/// One NETCONF session.
pub struct Client {
    ssh: client::Handle<Handler>,
    channel: russh::Channel<client::Msg>,
    decoder: FrameDecoder,
    framing: Framing,
    next_id: u64,
    /// The server's `<hello>` capabilities.
    pub capabilities: Vec<String>,
    /// The session id the server gave in its hello.
    pub session_id: Option<String>,
}

impl Client {
    /// Connects (within 30 s), authenticates, opens the `netconf` subsystem and exchanges
    /// hellos.
    pub async fn connect(
        host: &str,
        port: u16,
        user: &str,
        credentials: &Credentials,
        host_key: HostKeyCheck,
    ) -> Result<Client, ClientError> {
        let config = Arc::new(client::Config {
            nodelay: true,
            window_size: 16 * 1024 * 1024,
            maximum_packet_size: 65535,
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(60)),
            ..Default::default()
        });
        let addr = format!("{host}:{port}");
        let refusal = Arc::default();
        let handler = Handler {
            check: host_key,
            refusal: Arc::clone(&refusal),
        };
        let connect = client::connect(config, (host, port), handler);
        let mut ssh = match tokio::time::timeout(Duration::from_secs(30), connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let why = refusal.lock().unwrap_or_else(|e| e.into_inner()).take();
                return Err(match why {
                    Some(r) => ClientError::HostKey(r),
                    None => ClientError::Connect(addr, e.to_string()),
                });
            }
            Err(_) => return Err(ClientError::Connect(addr, "timed out".into())),
        };
        let ok = match credentials {
            Credentials::Password(p) => ssh
                .authenticate_password(user, p.clone())
                .await
                .map_err(ssh_err)?
                .success(),
            Credentials::KeyFile(path) => {
                let key = russh::keys::load_secret_key(path, None).map_err(|e| {
                    ClientError::Ssh(format!("cannot load {}: {e}", path.display()))
                })?;
                let hash = ssh
                    .best_supported_rsa_hash()
                    .await
                    .map_err(ssh_err)?
                    .flatten();
                ssh.authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                    .await
                    .map_err(ssh_err)?
                    .success()
            }
        };
        if !ok {
            return Err(ClientError::Auth(user.to_string()));
        }
        let channel = ssh.channel_open_session().await.map_err(ssh_err)?;
        channel
            .request_subsystem(true, "netconf")
            .await
            .map_err(ssh_err)?;
        let mut c = Client {
            ssh,
            channel,
            decoder: FrameDecoder::new(MAX_REPLY),
            framing: Framing::EndOfMessage,
            next_id: 1,
            capabilities: Vec::new(),
            session_id: None,
        };
        c.hello().await?;
        Ok(c)
    }

    async fn hello(&mut self) -> Result<(), ClientError> {
        let theirs = self.receive().await?;
        let hello = xml::parse(&theirs).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if hello.name != "hello" || hello.ns != NS_BASE {
            return Err(ClientError::Protocol("expected <hello>".into()));
        }
        self.capabilities = hello
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
        self.send(ours.as_bytes()).await?;
        if self.capabilities.iter().any(|c| c == CAP_BASE_11) {
            self.framing = Framing::Chunked;
            self.decoder.set_mode(Framing::Chunked);
        } else if !self.capabilities.iter().any(|c| c == CAP_BASE_10) {
            return Err(ClientError::Protocol(
                "the server offers neither base:1.0 nor base:1.1".into(),
            ));
        }
        Ok(())
    }

    async fn send(&mut self, msg: &[u8]) -> Result<(), ClientError> {
        let framed = framing::encode(self.framing, msg);
        self.channel.data(&framed[..]).await.map_err(ssh_err)
    }

    async fn receive(&mut self) -> Result<Vec<u8>, ClientError> {
        loop {
            if let Some(m) = self
                .decoder
                .next_message()
                .map_err(|e| ClientError::Protocol(e.to_string()))?
            {
                return Ok(m);
            }
            match self.channel.wait().await {
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

    /// Sends one operation (the `<rpc>` body, as XML text) and returns the raw reply, skipping
    /// notifications that arrive meanwhile. For callers that must not pay for parsing a large
    /// reply (benchmarks).
    pub async fn rpc_raw(&mut self, body: &str) -> Result<Vec<u8>, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = format!("<rpc xmlns=\"{NS_BASE}\" message-id=\"{id}\">{body}</rpc>");
        self.send(msg.as_bytes()).await?;
        loop {
            let raw = self.receive().await?;
            let head = &raw[..raw.len().min(512)];
            if head.windows(13).any(|w| w == b"<notification") {
                continue;
            }
            let want = format!("message-id=\"{id}\"");
            if !head.windows(want.len()).any(|w| w == want.as_bytes()) {
                return Err(ClientError::Protocol(format!(
                    "reply without {want}: {}",
                    String::from_utf8_lossy(head)
                )));
            }
            return Ok(raw);
        }
    }

    /// Sends one operation and returns the `<rpc-reply>`. A reply with an error-severity
    /// `<rpc-error>` is `ClientError::Rpc`.
    pub async fn rpc(&mut self, body: &str) -> Result<Element, ClientError> {
        let raw = self.rpc_raw(body).await?;
        let reply = xml::parse(&raw).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if reply.name != "rpc-reply" {
            return Err(ClientError::Protocol(format!(
                "expected <rpc-reply>, got <{}>",
                reply.name
            )));
        }
        let errors = rpc_errors(&reply);
        if errors.iter().any(|e| e.severity != "warning") {
            return Err(ClientError::Rpc(errors));
        }
        Ok(reply)
    }

    /// The `<data>` of a get or get-config reply (empty when the reply has none).
    pub async fn data(&mut self, body: &str) -> Result<Element, ClientError> {
        let reply = self.rpc(body).await?;
        Ok(reply
            .child(NS_BASE, "data")
            .cloned()
            .unwrap_or_else(|| Element::new(NS_BASE, "data")))
    }

    /// `<edit-config>` of `target` with `config` (the content of `<config>`).
    pub async fn edit_config(&mut self, target: &str, config: &str) -> Result<(), ClientError> {
        self.rpc(&format!(
            "<edit-config><target><{target}/></target>\
             <config xmlns=\"{NS_BASE}\">{config}</config></edit-config>"
        ))
        .await
        .map(|_| ())
    }

    /// `<get>` with a subtree filter (empty: everything); returns the `<data>` element.
    pub async fn get(&mut self, filter: &str) -> Result<Element, ClientError> {
        let f = if filter.is_empty() {
            String::new()
        } else {
            format!("<filter type=\"subtree\">{filter}</filter>")
        };
        self.data(&format!("<get>{f}</get>")).await
    }

    /// Closes the session politely.
    pub async fn close(mut self) {
        let _ = self.rpc("<close-session/>").await;
        let _ = self.channel.close().await;
        let _ = self
            .ssh
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
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
