//! The command line's NETCONF session: the library client driven synchronously on a small
//! runtime, with a trust-on-first-use known-hosts file for the server's key.

pub use crate::netconf::client::{ClientError, Credentials as Credential, ServerError};
use crate::xml::Element;
use russh::keys::PublicKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    inner: crate::netconf::client::Client,
    /// The session id the server gave in its hello.
    pub session_id: Option<String>,
    /// A note from the host key check (a newly trusted host).
    pub host_note: Option<String>,
}

impl Client {
    /// Connects, checks the host key against the known-hosts file, authenticates and
    /// exchanges hellos.
    pub fn connect(t: &Target) -> Result<Client, ClientError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Ssh(e.to_string()))?;
        let note = Arc::new(Mutex::new(None));
        let (file, id, strict, noted) = (
            t.known_hosts.clone(),
            host_id(&t.host, t.port),
            t.strict,
            Arc::clone(&note),
        );
        let check = Box::new(move |key: &PublicKey| {
            let n = check_known_host(&file, &id, key, strict)?;
            *noted.lock().unwrap_or_else(|e| e.into_inner()) = n;
            Ok(())
        });
        let inner = rt.block_on(crate::netconf::client::Client::connect(
            &t.host,
            t.port,
            &t.user,
            &t.credential,
            check,
        ))?;
        let host_note = note.lock().unwrap_or_else(|e| e.into_inner()).take();
        Ok(Client {
            session_id: inner.session_id.clone(),
            rt,
            inner,
            host_note,
        })
    }

    /// Sends one operation (the `<rpc>` body, as XML text) and returns the `<rpc-reply>`.
    /// A reply with an error-severity `<rpc-error>` is `ClientError::Rpc`.
    pub fn rpc(&mut self, body: &str) -> Result<Element, ClientError> {
        self.rt.block_on(self.inner.rpc(body))
    }

    /// Like `rpc`, for operations whose reply is `<ok/>`.
    pub fn rpc_ok(&mut self, body: &str) -> Result<(), ClientError> {
        self.rpc(body).map(|_| ())
    }

    /// The `<data>` of a get or get-config reply.
    pub fn data(&mut self, body: &str) -> Result<Element, ClientError> {
        self.rt.block_on(self.inner.data(body))
    }

    /// Closes the session politely.
    pub fn close(self) {
        let Client { rt, inner, .. } = self;
        rt.block_on(inner.close());
    }
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
}
