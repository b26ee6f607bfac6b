//! The agent's own configuration file (TOML): listen address, datastore directory, users, limits.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// One local user allowed to open NETCONF sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    /// Plain-text password: for tests and labs only.
    pub password: Option<String>,
    /// PBKDF2 hash from `mldhb hash-password`: use this (or keys) in production.
    pub password_hash: Option<String>,
    /// OpenSSH public keys (`ssh-ed25519 AAAA... comment`).
    #[serde(default)]
    pub authorized_keys: Vec<String>,
    /// NACM groups (RFC 8341) the user belongs to, besides those in `/nacm/groups`.
    #[serde(default)]
    pub groups: Vec<String>,
}

fn default_listen() -> SocketAddr {
    "0.0.0.0:830".parse().expect("literal address")
}

fn default_datastore() -> PathBuf {
    PathBuf::from("/var/lib/mldhb")
}

fn default_max_message() -> usize {
    64 * 1024 * 1024
}

fn default_replay_max() -> usize {
    10_000
}

fn default_true() -> bool {
    true
}

fn default_auth_delay_ms() -> u64 {
    1000
}

fn default_max_sessions() -> usize {
    64
}

fn default_idle_timeout_secs() -> u64 {
    3600
}

fn default_login_timeout_secs() -> u64 {
    30
}

fn default_max_unauthenticated() -> usize {
    128
}

fn default_max_unauthenticated_per_source() -> usize {
    64
}

/// The agent configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default = "default_datastore")]
    pub datastore: PathBuf,
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    #[serde(default = "default_auth_delay_ms")]
    pub auth_failure_delay_ms: u64,
    /// Events kept in the notification replay log (oldest dropped first).
    #[serde(default = "default_replay_max")]
    pub notification_replay_max: usize,
    /// Most NETCONF sessions open at once; more are refused at SSH channel open.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Seconds without a message after which a session is closed; 0 turns this off.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Seconds a connection has to complete the SSH handshake and authenticate before it is
    /// closed.
    #[serde(default = "default_login_timeout_secs")]
    pub login_timeout_secs: u64,
    /// Most connections not yet authenticated, in all and from one source address; more are
    /// closed as they arrive.
    #[serde(default = "default_max_unauthenticated")]
    pub max_unauthenticated: usize,
    #[serde(default = "default_max_unauthenticated_per_source")]
    pub max_unauthenticated_per_source: usize,
    /// Apply ietf-interfaces configuration (admin state, addresses) to the kernel.
    #[serde(default = "default_true")]
    pub manage_interfaces: bool,
    /// Run MLD on the interfaces that enable it and program IPv6 multicast forwarding (ip6mr or
    /// the agent's nftables table, as configured).
    #[serde(default = "default_true")]
    pub manage_multicast: bool,
    /// XML configuration that seeds startup and running on a new datastore.
    pub startup_config: Option<PathBuf>,
    #[serde(default)]
    pub users: Vec<User>,
    /// A user whose sessions bypass NACM (the RFC 8341 recovery session).
    pub recovery_user: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("invalid agent configuration {0}: {1}")]
    Parse(PathBuf, String),
}

impl AgentConfig {
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_path_buf(), e))?;
        Self::parse(&text).map_err(|e| ConfigError::Parse(path.to_path_buf(), e))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let cfg: AgentConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        for u in &cfg.users {
            if u.password.is_none() && u.password_hash.is_none() && u.authorized_keys.is_empty() {
                return Err(format!("user '{}' has no password, hash or key", u.name));
            }
        }
        Ok(cfg)
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Each user's NACM groups from this file.
    pub fn user_groups(&self) -> std::collections::HashMap<String, Vec<String>> {
        self.users
            .iter()
            .filter(|u| !u.groups.is_empty())
            .map(|u| (u.name.clone(), u.groups.clone()))
            .collect()
    }
}

impl User {
    pub fn password_ok(&self, password: &str) -> bool {
        if let Some(h) = &self.password_hash {
            if crate::netconf::password::verify(password, h) {
                return true;
            }
        }
        match &self.password {
            Some(p) => crate::bytes::constant_time_eq(p.as_bytes(), password.as_bytes()),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let cfg = AgentConfig::parse(include_str!("../examples/agent.toml")).unwrap();
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8830");
        assert_eq!(cfg.max_sessions, 64);
        assert_eq!(cfg.idle_timeout_secs, 3600);
        assert!(cfg.user("admin").unwrap().password_ok("admin"));
        assert!(!cfg.user("admin").unwrap().password_ok("wrong"));
        assert_eq!(cfg.user("admin").unwrap().groups, ["admin"]);
        assert!(cfg.user("operator").unwrap().password_ok("operator"));
        assert_eq!(cfg.user("operator").unwrap().groups, ["operator"]);
    }

    #[test]
    fn session_limits_default() {
        let cfg = AgentConfig::parse("").unwrap();
        assert_eq!((cfg.max_sessions, cfg.idle_timeout_secs), (64, 3600));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(AgentConfig::parse("lisen = \"1.2.3.4:5\"").is_err());
    }
}
