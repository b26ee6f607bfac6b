//! The lab's processes: agents, receiver and sender started inside their namespaces, detached
//! from the terminal, with pid and log files in the lab's state directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the lab keeps pid files, agent configurations, datastores and logs.
pub fn state_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("MLDHB_LAB_DIR").unwrap_or_else(|| "/run/mldhb-lab".into()))
}

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProcError {
    let what = what.into();
    move |e| ProcError::Io(what, e)
}

/// Starts `mldhb ARGS` in namespace `ns` as its own process group, logging to
/// `<state>/<name>.log`, and records its pid in `<state>/<name>.pid`.
pub fn spawn(ns: &str, name: &str, args: &[String]) -> Result<u32, ProcError> {
    let dir = state_dir();
    let exe = std::env::current_exe().map_err(io("locating the mldhb binary"))?;
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io(log_path.display().to_string()))?;
    let err = log.try_clone().map_err(io("log file"))?;
    let child = std::os::unix::process::CommandExt::process_group(
        Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err),
        0,
    )
    .spawn()
    .map_err(io(format!("starting {name}")))?;
    let pid = child.id();
    let pid_path = dir.join(format!("{name}.pid"));
    std::fs::write(&pid_path, pid.to_string()).map_err(io(pid_path.display().to_string()))?;
    // The child is reaped by whoever outlives it; the lab only needs its pid.
    std::mem::forget(child);
    Ok(pid)
}

/// The recorded pid of a lab process, if it is still alive.
pub fn pid(name: &str) -> Option<i32> {
    let text = std::fs::read_to_string(state_dir().join(format!("{name}.pid"))).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    alive(pid).then_some(pid)
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Sends a signal to a lab process's whole group (the `ip netns exec` wrapper execs into
/// mldhb, so the group is the process itself).
pub fn signal(name: &str, sig: nix::sys::signal::Signal) -> bool {
    match pid(name) {
        Some(p) => nix::sys::signal::killpg(nix::unistd::Pid::from_raw(p), sig).is_ok(),
        None => false,
    }
}

/// Stops a lab process: SIGTERM, then SIGKILL after two seconds.
pub fn stop(name: &str) {
    use nix::sys::signal::Signal;
    if !signal(name, Signal::SIGTERM) {
        return;
    }
    for _ in 0..20 {
        if pid(name).is_none() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    signal(name, Signal::SIGKILL);
}

/// Writes a file under the state directory.
pub fn write(rel: &str, text: &str) -> Result<PathBuf, ProcError> {
    let p = state_dir().join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent.display().to_string()))?;
    }
    std::fs::write(&p, text).map_err(io(p.display().to_string()))?;
    Ok(p)
}

/// True when the lab's state directory exists.
pub fn exists() -> bool {
    Path::new(&state_dir()).exists()
}
