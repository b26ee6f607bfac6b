//! `mldhb cli`: a VRP-like command line that is itself a NETCONF client. Commands edit the
//! candidate through the YANG models; `commit` commits it; displays read running and state.

pub mod batch;
pub mod client;
pub mod commands;
pub mod display;
pub mod edit;
pub mod interactive;
pub mod parser;
pub mod render;
pub mod views;

use client::{Client, ClientError, Credential, Target};
use commands::{eth_trunk_number, interface_type, Action, Token, Undo, ViewKind};
use edit::{Item, Parts, RSeg, Value};
use parser::{Matched, ParseError};
use std::io::IsTerminal;
use std::path::PathBuf;
use views::{Kind, View};

/// Command-line options of `mldhb cli`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Host of the NETCONF server.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the NETCONF server.
    #[arg(long, default_value_t = 830)]
    pub port: u16,
    /// User name.
    #[arg(long)]
    pub user: String,
    /// File whose first line is the password.
    #[arg(long, conflicts_with = "key")]
    pub password_file: Option<PathBuf>,
    /// Private key file (OpenSSH format) for public key authentication.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Known-hosts file; a host seen for the first time is added to it (trust on first use).
    /// Default: ~/.ssh/mldhb_known_hosts.
    #[arg(long)]
    pub known_hosts: Option<PathBuf>,
    /// Refuse hosts that are not in the known-hosts file yet.
    #[arg(long)]
    pub strict_host_key: bool,
    /// Commands to run, separated by `;` (batch mode).
    #[arg(short = 'c', long = "command", conflicts_with = "script")]
    pub commands: Option<String>,
    /// Script file of commands, one per line (`-` for standard input); batch mode.
    pub script: Option<PathBuf>,
}

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    Parse { line: String, err: ParseError },
    Server(ClientError),
    Msg(String),
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        CliError::Server(e)
    }
}

impl CliError {
    /// The error as VRP shows it. `caret_at` is where the typed line starts on screen
    /// (the prompt's width) when it is still visible; otherwise the line is repeated.
    pub fn render(&self, caret_at: Option<usize>) -> String {
        match self {
            CliError::Parse { line, err } => {
                let mut out = String::new();
                let offset = match caret_at {
                    Some(w) => w,
                    None => {
                        out.push_str(&format!("  {}\n", line));
                        2
                    }
                };
                let col = offset + line[..err.pos().min(line.len())].chars().count();
                out.push_str(&format!("{}^\n", " ".repeat(col)));
                out.push_str(&format!("Error: {}\n", err.message()));
                out
            }
            CliError::Server(ClientError::Rpc(errors)) => {
                errors.iter().map(|e| format!("Error: {e}\n")).collect()
            }
            CliError::Server(e) => format!("Error: {e}\n"),
            CliError::Msg(m) => format!("Error: {m}\n"),
        }
    }
}

/// What the caller does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Exit,
}

/// A command-line session: the NETCONF client, the view stack and the candidate's state.
pub struct Shell {
    pub client: Client,
    pub views: Vec<View>,
    pub sysname: String,
    /// The candidate holds changes not committed yet.
    pub dirty: bool,
    /// This session holds the candidate lock.
    pub locked: bool,
    /// Batch mode: lock the candidate while editing, never ask questions.
    pub batch: bool,
}

const GET_CONFIG_TRIM: &str = "<with-defaults xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults\">trim</with-defaults>";

impl Shell {
    pub fn new(client: Client, batch: bool) -> Shell {
        let mut s = Shell {
            client,
            views: vec![View::user()],
            sysname: "mldhb".into(),
            dirty: false,
            locked: false,
            batch,
        };
        s.refresh_sysname();
        s
    }

    fn refresh_sysname(&mut self) {
        let sys = commands::ns("sys");
        let body = format!(
            "<get-config><source><running/></source><filter type=\"subtree\">\
             <system xmlns=\"{sys}\"><sysname/></system></filter></get-config>"
        );
        if let Ok(data) = self.client.data(&body) {
            self.sysname = data
                .child(sys, "system")
                .and_then(|s| s.child(sys, "sysname"))
                .map(|n| n.trimmed_text().to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "mldhb".into());
        }
    }

    pub fn view(&self) -> &View {
        self.views.last().expect("the user view is never popped")
    }

    pub fn prompt(&self) -> String {
        views::prompt(&self.sysname, self.view(), self.dirty)
    }

    /// True when candidate and running differ.
    fn candidate_differs(&mut self) -> Result<bool, ClientError> {
        let c = self
            .client
            .data("<get-config><source><candidate/></source></get-config>")?;
        let r = self
            .client
            .data("<get-config><source><running/></source></get-config>")?;
        Ok(c.to_xml() != r.to_xml())
    }

    /// Runs one line. Lines starting with `#` (separators and comments) do nothing.
    pub fn execute(&mut self, line: &str) -> Result<(String, Flow), CliError> {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok((String::new(), Flow::Continue));
        }
        let line = line.trim_start();
        let top = self.views.len() - 1;
        let mut best: Option<ParseError> = None;
        for depth in (0..=top).rev() {
            let scopes = if depth == top {
                self.views[depth].scopes()
            } else {
                self.views[depth].own_scopes()
            };
            match parser::parse(line, &scopes) {
                Ok(m) => {
                    let leaves_view = depth < top
                        && !matches!(
                            m.cmd.scope,
                            commands::Scope::Global | commands::Scope::Config
                        );
                    if leaves_view {
                        self.views.truncate(depth + 1);
                    }
                    return self.run(m);
                }
                Err(e) => {
                    best = Some(match best {
                        None => e,
                        Some(b) => b.deeper(e),
                    })
                }
            }
        }
        Err(CliError::Parse {
            line: line.to_string(),
            err: best.unwrap_or(ParseError::Unrecognized(0)),
        })
    }

    fn run(&mut self, m: Matched) -> Result<(String, Flow), CliError> {
        let ok = |s: String| Ok((s, Flow::Continue));
        match m.cmd.action {
            Action::Show(d) => {
                let arg = m.args.get(2).map(String::as_str);
                match d {
                    commands::Display::Current => {
                        let data = self.client.data(&format!(
                            "<get-config><source><running/></source>{GET_CONFIG_TRIM}</get-config>"
                        ))?;
                        ok(render::current_configuration(&data))
                    }
                    commands::Display::This => {
                        let data = self.client.data(&format!(
                            "<get-config><source><running/></source>{GET_CONFIG_TRIM}</get-config>"
                        ))?;
                        ok(render::this(&data, &self.view().ctx))
                    }
                    _ => ok(display::show(&mut self.client, d, arg)?),
                }
            }
            Action::SystemView => {
                if self.batch && !self.locked {
                    self.client
                        .rpc_ok("<lock><target><candidate/></target></lock>")?;
                    self.locked = true;
                }
                self.dirty = self.candidate_differs()?;
                self.views.push(View::system());
                ok(String::new())
            }
            Action::Commit => {
                self.client.rpc_ok("<commit/>")?;
                self.dirty = false;
                self.refresh_sysname();
                ok(String::new())
            }
            Action::Quit => {
                if self.views.len() == 1 {
                    return Ok((String::new(), Flow::Exit));
                }
                if self.views.len() == 2 && !self.leave_config()? {
                    return ok(String::new());
                }
                self.views.pop();
                ok(String::new())
            }
            Action::Return => {
                if self.views.len() > 1 && !self.leave_config()? {
                    return ok(String::new());
                }
                self.views.truncate(1);
                ok(String::new())
            }
            Action::Config => {
                self.config(&m)?;
                ok(String::new())
            }
            Action::Enter(kind) => {
                self.enter(&m, kind)?;
                ok(String::new())
            }
        }
    }

    /// Asks what to do with uncommitted changes when leaving the configuration views
    /// interactively; false keeps the session in its view.
    fn leave_config(&mut self) -> Result<bool, CliError> {
        if !self.dirty || self.batch {
            return Ok(true);
        }
        loop {
            let answer = interactive::ask(
                "Warning: Uncommitted configurations found. Commit them before exiting? \
                 [Y(yes)/N(no)/C(cancel)]:",
            );
            match answer.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("y") | Some("yes") => {
                    self.client.rpc_ok("<commit/>")?;
                    self.dirty = false;
                    self.refresh_sysname();
                    return Ok(true);
                }
                Some("n") | Some("no") => {
                    self.client.rpc_ok("<discard-changes/>")?;
                    self.dirty = false;
                    return Ok(true);
                }
                Some("c") | Some("cancel") | None => return Ok(false),
                _ => continue,
            }
        }
    }

    /// The YANG values of the typed words.
    fn parts(m: &Matched) -> Result<Parts, CliError> {
        m.cmd
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| match (t, m.args.get(i)) {
                (_, None) => Ok(Vec::new()),
                (Token::Kw(k), Some(_)) => Ok(vec![k.to_string()]),
                (Token::Param { ty, .. }, Some(a)) => ty.to_yang(a).map_err(CliError::Msg),
            })
            .collect()
    }

    /// Leaves the CLI sets along with what a command sets: the interface type, the VRRP
    /// version, the Eth-Trunk number.
    fn implied(&self, view: &View, items: &mut Vec<Item>) {
        let mut extra = Vec::new();
        for it in items.iter().filter(|it| it.op.is_none()) {
            let full = &it.path;
            if full.len() >= 2 && full[1].name == "interface" && full[1].ns == commands::ns("if") {
                if let Some(t) = &view.if_type {
                    extra.push(Item {
                        path: vec![full[0].clone(), full[1].clone(), leaf("if", "type")],
                        value: Some(t.clone()),
                        op: None,
                    });
                }
            }
            for (i, s) in full.iter().enumerate() {
                if s.name == "vrrp-instance" && s.ns == commands::ns("vrrp") && i + 1 < full.len() {
                    let mut p = full[..=i].to_vec();
                    p.push(leaf("vrrp", "version"));
                    extra.push(Item {
                        path: p,
                        value: Some(Value::literal("vrrp:vrrp-v3")),
                        op: None,
                    });
                }
                if s.name == "eth-trunk" && s.ns == commands::ns("etrunk") {
                    if let Some(id) = &view.trunk_id {
                        let mut p = full[..=i].to_vec();
                        p.push(leaf("etrunk", "trunk-id"));
                        extra.push(Item {
                            path: p,
                            value: Some(Value::Text(id.clone())),
                            op: None,
                        });
                    }
                }
            }
        }
        for e in extra {
            if !items.contains(&e) {
                items.push(e);
            }
        }
    }

    fn send(&mut self, items: &[Item], default_op: &str) -> Result<(), CliError> {
        self.client.rpc_ok(&edit::edit_config(items, default_op))?;
        self.dirty = true;
        Ok(())
    }

    fn config(&mut self, m: &Matched) -> Result<(), CliError> {
        let view = self.view().clone();
        let parts = Self::parts(m)?;
        let resolve = |segs: &[commands::Seg]| -> Result<Vec<RSeg>, CliError> {
            let mut p = view.ctx.clone();
            p.extend(edit::resolve(segs, &parts).ok_or_else(|| {
                CliError::Msg("Incomplete command: the words that identify it are missing.".into())
            })?);
            Ok(p)
        };
        let mut items = Vec::new();
        let mut default_op = "merge";
        let undo = if m.undo { &m.cmd.undo } else { &Undo::No };
        match undo {
            Undo::No => {
                for s in &m.cmd.sets {
                    items.push(Item {
                        path: resolve(&s.path)?,
                        value: s.value.as_ref().and_then(|v| edit::value_of(v, &parts)),
                        op: None,
                    });
                }
                self.implied(&view, &mut items);
            }
            Undo::Opposite => {
                for s in &m.cmd.sets {
                    let v = match s.value {
                        Some(commands::Val::Lit("true")) => "false",
                        _ => "true",
                    };
                    items.push(Item {
                        path: resolve(&s.path)?,
                        value: Some(Value::Text(v.into())),
                        op: None,
                    });
                }
                self.implied(&view, &mut items);
            }
            Undo::RemoveLeaves => {
                default_op = "none";
                for s in m.cmd.sets.iter().filter(|s| s.value.is_some()) {
                    items.push(Item {
                        path: resolve(&s.path)?,
                        value: None,
                        op: Some("remove"),
                    });
                }
            }
            Undo::DeleteEntries => {
                default_op = "none";
                for s in &m.cmd.sets {
                    items.push(Item {
                        path: resolve(&s.path)?,
                        value: None,
                        op: Some("delete"),
                    });
                }
            }
            Undo::Delete(path) => {
                default_op = "none";
                items.push(Item {
                    path: resolve(path)?,
                    value: None,
                    op: Some("delete"),
                });
            }
        }
        self.send(&items, default_op)
    }

    fn enter(&mut self, m: &Matched, kind: ViewKind) -> Result<(), CliError> {
        let parts = Self::parts(m)?;
        let set = &m.cmd.sets[0];
        let path = edit::resolve(&set.path, &parts)
            .ok_or_else(|| CliError::Msg("Incomplete command.".into()))?;
        if m.undo {
            return self.send(
                &[Item {
                    path,
                    value: None,
                    op: Some("delete"),
                }],
                "none",
            );
        }
        let name = parts
            .get(1)
            .and_then(|p| p.first())
            .cloned()
            .unwrap_or_default();
        let data = self.client.data(&format!(
            "<get-config><source><candidate/></source>{}</get-config>",
            edit::filter_xml(&path).to_xml()
        ))?;
        let existing = edit::find(&data, &path);
        let mut view = View {
            kind: Kind::Sub(kind),
            name: name.clone(),
            ctx: path.clone(),
            if_type: None,
            trunk_id: None,
        };
        if kind == ViewKind::Interface {
            let ifns = commands::ns("if");
            view.if_type = Some(
                existing
                    .and_then(|e| e.child(ifns, "type"))
                    .map(Value::of_leaf)
                    .unwrap_or_else(|| Value::literal(interface_type(&name))),
            );
            let etns = commands::ns("etrunk");
            view.trunk_id = existing
                .and_then(|e| e.child(etns, "eth-trunk"))
                .and_then(|t| t.child(etns, "trunk-id"))
                .map(|t| t.trimmed_text().to_string())
                .or_else(|| eth_trunk_number(&name).map(|n| n.to_string()));
        }
        if existing.is_none() {
            let mut items = vec![Item {
                path: path.clone(),
                value: None,
                op: None,
            }];
            self.implied(&view, &mut items);
            self.send(&items, "merge")?;
        }
        self.views.push(view);
        Ok(())
    }

    /// Ends a batch run: uncommitted changes are discarded and the lock released.
    pub fn abort(&mut self) {
        if self.dirty || self.locked {
            let _ = self.client.rpc_ok("<discard-changes/>");
            self.dirty = false;
        }
        self.release();
    }

    /// Releases the candidate lock if held.
    pub fn release(&mut self) {
        if self.locked {
            let _ = self
                .client
                .rpc_ok("<unlock><target><candidate/></target></unlock>");
            self.locked = false;
        }
    }
}

fn leaf(prefix: &str, name: &str) -> RSeg {
    RSeg {
        ns: commands::ns(prefix).to_string(),
        name: name.to_string(),
        keys: Vec::new(),
    }
}

fn default_known_hosts() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".ssh").join("mldhb_known_hosts")
}

fn credential(o: &Options) -> Result<Credential, String> {
    if let Some(k) = &o.key {
        return Ok(Credential::KeyFile(k.clone()));
    }
    if let Some(f) = &o.password_file {
        let text =
            std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        let pw = text.lines().next().unwrap_or("").to_string();
        if pw.is_empty() {
            return Err(format!("{} holds no password", f.display()));
        }
        return Ok(Credential::Password(pw));
    }
    if std::io::stdin().is_terminal() {
        return interactive::read_password(&format!("{}'s password: ", o.user))
            .map(Credential::Password)
            .map_err(|e| format!("cannot read the password: {e}"));
    }
    Err("no credential: give --password-file or --key".into())
}

/// Splits `-c` text into commands at `;` outside quotes.
pub fn split_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Runs `mldhb cli`; returns the process exit status.
pub fn run(o: Options) -> i32 {
    let credential = match credential(&o) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {e}");
            return 2;
        }
    };
    let target = Target {
        host: o.host.clone(),
        port: o.port,
        user: o.user.clone(),
        credential,
        known_hosts: o.known_hosts.clone().unwrap_or_else(default_known_hosts),
        strict: o.strict_host_key,
    };
    let batch_lines: Option<Result<Vec<String>, String>> = if let Some(c) = &o.commands {
        Some(Ok(split_commands(c)))
    } else if let Some(s) = &o.script {
        Some(if s.as_os_str() == "-" {
            batch::read_all(std::io::stdin().lock())
        } else {
            std::fs::read_to_string(s)
                .map(|t| t.lines().map(str::to_string).collect())
                .map_err(|e| format!("cannot read {}: {e}", s.display()))
        })
    } else if !std::io::stdin().is_terminal() {
        Some(batch::read_all(std::io::stdin().lock()))
    } else {
        None
    };
    let lines = match batch_lines.transpose() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Error: {e}");
            return 2;
        }
    };
    let client = match Client::connect(&target) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {e}");
            return 2;
        }
    };
    if let Some(note) = &client.host_note {
        eprintln!("{note}");
    }
    match lines {
        Some(lines) => {
            let mut shell = Shell::new(client, true);
            let code = batch::run(&mut shell, &lines);
            shell.client.close();
            code
        }
        None => {
            let mut shell = Shell::new(client, false);
            let code = interactive::run(&mut shell);
            shell.client.close();
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_at_semicolons_outside_quotes() {
        assert_eq!(
            split_commands("system-view; description \"a;b\" ;commit;"),
            vec!["system-view", "description \"a;b\"", "commit"]
        );
    }
}
