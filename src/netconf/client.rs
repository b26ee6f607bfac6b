//! A NETCONF client over SSH: connect, hello (base:1.1 chunked framing when offered), and
//! `<rpc>` round trips. Used by the lab, the benchmarks and the command-line shim.

use super::framing::{self, FrameDecoder, Framing};
use super::xml::Element;
use russh::client;
use russh::ChannelMsg;
use std::sync::Arc;

const NS_BASE: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("authentication failed for user {0}")]
    Auth(String),
    #[error("SSH: {0}")]
    Ssh(#[from] russh::Error),
    #[error("framing: {0}")]
    Framing(String),
    #[error("the server closed the session")]
    Closed,
    #[error("malformed reply: {0}")]
    Malformed(String),
    /// The server answered with `<rpc-error>`: its error-message (or tag) and error-path.
    #[error("{message}{}", path.as_ref().map(|p| format!(" (path {p})")).unwrap_or_default())]
    Rpc {
        tag: String,
        message: String,
        path: Option<String>,
    },
}

/// How the server's host key is judged.
pub type HostKeyCheck =
    Box<dyn FnMut(&russh::keys::ssh_key::PublicKey) -> bool + Send + Sync + 'static>;

struct Handler {
    check: HostKeyCheck,
}

impl client::Handler for Handler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::ssh_key::PublicKey,
    ) -> Result<bool, Self::Error> {
        Ok((self.check)(key))
    }
}

/// How to log in.
pub enum Credentials {
    Password(String),
    Key(Arc<russh::keys::PrivateKey>),
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
    pub session_id: Option<u32>,
}

impl Client {
    /// Connects, authenticates, opens the `netconf` subsystem and exchanges hellos.
    pub async fn connect(
        addr: &str,
        user: &str,
        credentials: Credentials,
        host_key: HostKeyCheck,
    ) -> Result<Client, ClientError> {
        let config = client::Config {
            nodelay: true,
            window_size: 16 * 1024 * 1024,
            maximum_packet_size: 65535,
            inactivity_timeout: None,
            ..Default::default()
        };
        let mut ssh = client::connect(Arc::new(config), addr, Handler { check: host_key })
            .await
            .map_err(|e| ClientError::Connect(addr.to_string(), e.to_string()))?;
        let auth = match credentials {
            Credentials::Password(p) => ssh.authenticate_password(user, p).await?,
            Credentials::Key(k) => {
                let hash = ssh.best_supported_rsa_hash().await?.flatten();
                ssh.authenticate_publickey(user, russh::keys::PrivateKeyWithHashAlg::new(k, hash))
                    .await?
            }
        };
        if !auth.success() {
            return Err(ClientError::Auth(user.to_string()));
        }
        let channel = ssh.channel_open_session().await?;
        channel.request_subsystem(true, "netconf").await?;
        let mut c = Client {
            ssh,
            channel,
            decoder: FrameDecoder::new(1 << 30),
            framing: Framing::EndOfMessage,
            next_id: 1,
            capabilities: Vec::new(),
            session_id: None,
        };
        let hello = c.receive().await?;
        let hello = super::xml::parse(&hello).map_err(|e| ClientError::Malformed(e.to_string()))?;
        if let Some(caps) = hello.child_any_ns("capabilities") {
            c.capabilities = caps
                .children
                .iter()
                .map(|e| e.trimmed_text().to_string())
                .collect();
        }
        c.session_id = hello
            .child_any_ns("session-id")
            .and_then(|e| e.trimmed_text().parse().ok());
        let chunked = c
            .capabilities
            .iter()
            .any(|cap| cap == "urn:ietf:params:netconf:base:1.1");
        let ours = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hello xmlns=\"{NS_BASE}\"><capabilities>\
             <capability>urn:ietf:params:netconf:base:1.0</capability>{}\
             </capabilities></hello>",
            if chunked {
                "<capability>urn:ietf:params:netconf:base:1.1</capability>"
            } else {
                ""
            }
        );
        c.send(ours.as_bytes()).await?;
        if chunked {
            c.framing = Framing::Chunked;
            c.decoder.set_mode(Framing::Chunked);
        }
        Ok(c)
    }

    async fn send(&mut self, msg: &[u8]) -> Result<(), ClientError> {
        let framed = framing::encode(self.framing, msg);
        self.channel.data(&framed[..]).await?;
        Ok(())
    }

    async fn receive(&mut self) -> Result<Vec<u8>, ClientError> {
        loop {
            if let Some(m) = self
                .decoder
                .next_message()
                .map_err(|e| ClientError::Framing(e.to_string()))?
            {
                return Ok(m);
            }
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) => self
                    .decoder
                    .push(&data)
                    .map_err(|e| ClientError::Framing(e.to_string()))?,
                Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => {
                    return Err(ClientError::Closed)
                }
                Some(_) => {}
            }
        }
    }

    /// Sends one `<rpc>` with `body` (the operation element) and returns the raw reply.
    /// Notifications arriving meanwhile are skipped.
    pub async fn rpc_raw(&mut self, body: &str) -> Result<Vec<u8>, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = format!("<rpc xmlns=\"{NS_BASE}\" message-id=\"{id}\">{body}</rpc>");
        self.send(msg.as_bytes()).await?;
        loop {
            let reply = self.receive().await?;
            let head = &reply[..reply.len().min(512)];
            if head.windows(13).any(|w| w == b"<notification") {
                continue;
            }
            return Ok(reply);
        }
    }

    /// Sends one `<rpc>` and returns the parsed `<rpc-reply>`; an `<rpc-error>` is an error.
    pub async fn rpc(&mut self, body: &str) -> Result<Element, ClientError> {
        let raw = self.rpc_raw(body).await?;
        let reply = super::xml::parse(&raw).map_err(|e| ClientError::Malformed(e.to_string()))?;
        if let Some(err) = reply.child_any_ns("rpc-error") {
            let text = |n: &str| err.child_any_ns(n).map(|e| e.trimmed_text().to_string());
            let tag = text("error-tag").unwrap_or_default();
            return Err(ClientError::Rpc {
                message: text("error-message").unwrap_or_else(|| tag.clone()),
                tag,
                path: text("error-path"),
            });
        }
        Ok(reply)
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
        let reply = self.rpc(&format!("<get>{f}</get>")).await?;
        reply
            .child_any_ns("data")
            .cloned()
            .ok_or_else(|| ClientError::Malformed("reply to <get> without <data>".into()))
    }

    /// Closes the session politely.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let _ = self.rpc("<close-session/>").await;
        let _ = self
            .ssh
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        Ok(())
    }
}
