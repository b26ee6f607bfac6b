//! The lab's commands: bring the two-device lab up and configure it over NETCONF, show its
//! status, make the master fail and measure the takeover, and tear everything down.

use super::ovs;
use super::procs::{self, state_dir};
use super::scenario::{
    Device, ETrunkScenario, LoadBalance, Mode, RoleSource, Scenario, Vrrp6Scenario,
};
use super::status::{self, DeviceStatus, ReceiverStatus};
use super::topology::{self, device_ns, mgmt_addr, CE, HOST_IF, RECEIVER, SOURCE};
use crate::netconf::client::{Client, ClientError, Credentials};
use std::time::{Duration, Instant};

/// The NETCONF port every lab agent listens on (on its management address).
pub const PORT: u16 = 830;
pub const USER: &str = "admin";
pub const PASSWORD: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab needs root: it builds network namespaces and programs kernel multicast forwarding (run it with sudo)")]
    NotRoot,
    #[error("a lab is already up (state in {0}); `mldhb lab down` removes it")]
    AlreadyUp(String),
    #[error("no lab is up; `mldhb lab` starts one")]
    NotUp,
    #[error(transparent)]
    Topology(#[from] topology::TopologyError),
    #[error(transparent)]
    Proc(#[from] procs::ProcError),
    #[error("device {0:?}: {1}")]
    Netconf(Device, ClientError),
    #[error("device {0:?} did not answer NETCONF within {1} s; its log is {2}")]
    NoAnswer(Device, u64, String),
    #[error("device {0:?}'s agent exited during start; the last lines of its log ({1}):\n{2}")]
    AgentExited(Device, String, String),
    #[error("{0}")]
    Failover(String),
}

/// What `mldhb lab up` builds.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub role_source: RoleSource,
    pub mode: Mode,
    pub groups: u32,
    /// Datagrams per second to each group.
    pub rate: u32,
    pub advertise_cs: u16,
    /// Start the receiver and the source (tests start their own).
    pub traffic: bool,
    /// The multicast forwarding backend (`auto`, `ip6mr`, `nftables`).
    pub backend: String,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            role_source: RoleSource::Vrrp6,
            mode: Mode::MasterBackup,
            groups: 100,
            rate: 10,
            advertise_cs: 100,
            traffic: true,
            backend: "auto".into(),
        }
    }
}

fn agent_name(dev: Device) -> &'static str {
    match dev {
        Device::A => "agent-a",
        Device::B => "agent-b",
    }
}

fn agent_toml(dev: Device) -> String {
    let dir = state_dir().join(agent_name(dev));
    format!(
        "# Written by `mldhb lab` for device {dev:?}.\n\
         listen = \"{}:{PORT}\"\n\
         datastore = \"{}\"\n\
         manage_interfaces = true\n\
         manage_multicast = true\n\
         auth_failure_delay_ms = 200\n\n\
         [[users]]\nname = \"{USER}\"\npassword = \"{PASSWORD}\"\ngroups = [\"admin\"]\n",
        mgmt_addr(dev),
        dir.join("datastore").display(),
    )
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

async fn connect(dev: Device) -> Result<Client, ClientError> {
    Client::connect(
        &mgmt_addr(dev),
        PORT,
        USER,
        &Credentials::Password(PASSWORD.into()),
        // The lab made this agent's host key moments ago, on this machine.
        Box::new(|_| Ok(())),
    )
    .await
}

/// Waits until the device answers NETCONF.
async fn wait_for(dev: Device, within: Duration) -> Result<Client, LabError> {
    let deadline = Instant::now() + within;
    let log = state_dir().join(format!("{}.log", agent_name(dev)));
    loop {
        if procs::pid(agent_name(dev)).is_none() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            return Err(LabError::AgentExited(dev, log.display().to_string(), tail));
        }
        match connect(dev).await {
            Ok(c) => return Ok(c),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(_) => {
                return Err(LabError::NoAnswer(
                    dev,
                    within.as_secs(),
                    log.display().to_string(),
                ))
            }
        }
    }
}

fn start_agent(dev: Device) -> Result<(), LabError> {
    let cfg = procs::write(&format!("{}.toml", agent_name(dev)), &agent_toml(dev))?;
    procs::spawn(
        device_ns(dev),
        agent_name(dev),
        &["agent".into(), "--config".into(), cfg.display().to_string()],
    )?;
    Ok(())
}

fn report_path() -> std::path::PathBuf {
    state_dir().join("receiver.json")
}

fn start_traffic(opts: &LabOptions) -> Result<(), LabError> {
    let common = |iface: &str| {
        vec![
            "--interface".to_string(),
            iface.to_string(),
            "--groups".to_string(),
            opts.groups.to_string(),
        ]
    };
    let mut recv = vec!["lab".to_string(), "receive".to_string()];
    recv.extend(common(HOST_IF));
    recv.extend(["--report".into(), report_path().display().to_string()]);
    procs::spawn(RECEIVER, "receiver", &recv)?;
    let mut send = vec!["lab".to_string(), "send".to_string()];
    send.extend(common(HOST_IF));
    send.extend(["--rate".into(), opts.rate.to_string()]);
    procs::spawn(SOURCE, "source", &send)?;
    Ok(())
}

/// Builds the lab, starts and configures both agents, and starts the traffic.
pub async fn up(opts: &LabOptions) -> Result<(), LabError> {
    if !is_root() {
        return Err(LabError::NotRoot);
    }
    if procs::exists() || !topology::existing().is_empty() {
        return Err(LabError::AlreadyUp(state_dir().display().to_string()));
    }
    std::fs::create_dir_all(state_dir())
        .map_err(|e| procs::ProcError::Io(state_dir().display().to_string(), e))?;
    procs::write(
        "options",
        &format!(
            "groups={}\nrole_source={}\n",
            opts.groups,
            opts.role_source.as_str()
        ),
    )?;
    let built = topology::create(opts.role_source).and_then(|()| match opts.role_source {
        RoleSource::ETrunk => ovs::start(),
        RoleSource::Vrrp6 => Ok(()),
    });
    if let Err(e) = built {
        let _ = down();
        return Err(e.into());
    }
    let scenario = match opts.role_source {
        RoleSource::Vrrp6 => Scenario::Vrrp6(Vrrp6Scenario {
            mode: opts.mode,
            advertise_cs: opts.advertise_cs,
            backend: opts.backend.clone(),
            ..Default::default()
        }),
        RoleSource::ETrunk => Scenario::ETrunk(ETrunkScenario {
            mode: opts.mode,
            backend: opts.backend.clone(),
            ..Default::default()
        }),
    };
    for dev in [Device::A, Device::B] {
        start_agent(dev)?;
    }
    for dev in [Device::A, Device::B] {
        let mut c = wait_for(dev, Duration::from_secs(30)).await?;
        c.edit_config("running", &scenario.config(dev))
            .await
            .map_err(|e| LabError::Netconf(dev, e))?;
        c.close().await;
    }
    if opts.traffic {
        start_traffic(opts)?;
    }
    Ok(())
}

/// How to reach the agents, for the user.
pub fn reach(role_source: RoleSource) -> String {
    let downstream = match role_source {
        RoleSource::Vrrp6 => "eth1 downstream",
        RoleSource::ETrunk => "eth1 the Eth-Trunk member, Eth-Trunk1 its macvlan",
    };
    let mut out = String::new();
    for dev in [Device::A, Device::B] {
        out.push_str(&format!(
            "  device {dev:?}: NETCONF at {addr} port {PORT}, user {USER} password {PASSWORD}\n\
             \x20   ncclient: manager.connect(host=\"{addr}\", port={PORT}, username=\"{USER}\", password=\"{PASSWORD}\", hostkey_verify=False)\n\
             \x20   CLI:      mldhb cli --host {addr} --port {PORT} --user {USER}\n\
             \x20   shell:    ip netns exec {ns} bash   (interfaces eth0 upstream, {downstream}, eth2 to the peer)\n",
            addr = mgmt_addr(dev),
            ns = device_ns(dev),
        ));
    }
    out.push_str(&format!(
        "  receiver host: ip netns exec {RECEIVER} bash;  source: ip netns exec {SOURCE} bash\n"
    ));
    if role_source == RoleSource::ETrunk {
        out.push_str(&format!(
            "  customer edge: Open vSwitch in {CE}; its LAG: OVS_RUNDIR={dir} ip netns exec {CE} ovs-appctl -t {dir}/ovs-vswitchd.$(cat {dir}/ovs-vswitchd.pid).ctl bond/show {bond}\n",
            dir = ovs::dir().display(),
            bond = ovs::BOND,
        ));
    }
    out
}

/// A value from the options file `up` wrote.
fn option(key: &str) -> Option<String> {
    let text = std::fs::read_to_string(state_dir().join("options")).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
            .map(|v| v.trim().to_string())
    })
}

fn groups_configured() -> u32 {
    option("groups").and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The running lab's role source (a lab made before the option existed is VRRP6).
fn role_source() -> RoleSource {
    option("role_source")
        .and_then(|v| RoleSource::parse(&v).ok())
        .unwrap_or(RoleSource::Vrrp6)
}

async fn device_status(dev: Device) -> Result<DeviceStatus, String> {
    let mut c = tokio::time::timeout(Duration::from_secs(3), connect(dev))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
    let data = c.get(status::FILTER).await.map_err(|e| e.to_string())?;
    c.close().await;
    Ok(DeviceStatus::from_data(&data, role_source()))
}

fn receiver_status() -> Option<ReceiverStatus> {
    std::fs::read_to_string(report_path())
        .ok()
        .and_then(|t| ReceiverStatus::from_report(&t))
}

/// The status table now.
pub async fn status() -> Result<String, LabError> {
    if !procs::exists() {
        return Err(LabError::NotUp);
    }
    let a = device_status(Device::A).await;
    let b = device_status(Device::B).await;
    let rs = role_source();
    let mut table = status::render(
        rs,
        &[("A", a), ("B", b)],
        receiver_status().as_ref(),
        groups_configured(),
    );
    if rs == RoleSource::ETrunk {
        match ovs::enabled_members() {
            Ok(m) => table.push_str(&format!(
                "customer edge LAG: {} (A is {}, B is {})\n",
                if m.is_empty() {
                    "no member".into()
                } else {
                    m.join(" ")
                },
                ovs::MEMBER_A,
                ovs::MEMBER_B
            )),
            Err(e) => table.push_str(&format!("customer edge LAG: unknown ({e})\n")),
        }
    }
    Ok(table)
}

/// Shows the status every second until interrupted.
pub async fn watch() -> Result<(), LabError> {
    loop {
        let table = status().await?;
        // Clear the screen and draw the table from the top.
        print!("\x1b[2J\x1b[H{table}\n(Ctrl-C leaves the lab running; `mldhb lab failover` fails the master; `mldhb lab down` removes it all)\n");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Kills the current role-source master's agent (VRRP6, or the E-Trunk) with SIGKILL, follows the takeover, reports the
/// receiver's longest per-group gap around the failure, then restarts the failed agent (it
/// returns as backup and preempts once its delay has passed and its batch is complete).
pub async fn failover() -> Result<String, LabError> {
    if !procs::exists() {
        return Err(LabError::NotUp);
    }
    let rs = role_source();
    let what = match rs {
        RoleSource::Vrrp6 => "VRRP6",
        RoleSource::ETrunk => "E-Trunk",
    };
    let mut master = None;
    for dev in [Device::A, Device::B] {
        if let Ok(s) = device_status(dev).await {
            if s.source_state(rs) == "master" {
                master = Some(dev);
            }
        }
    }
    let Some(failed) = master else {
        return Err(LabError::Failover(format!(
            "no device is {what} master now; nothing to fail"
        )));
    };
    let survivor = failed.peer();
    let mut out = format!("failing device {failed:?} ({what} master): kill -9 of its agent\n");
    // Count afresh from just before the failure.
    let _ = std::fs::write(report_path().with_extension("reset"), "");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t0 = Instant::now();
    procs::signal(agent_name(failed), nix::sys::signal::Signal::SIGKILL);
    let mut took_over = None;
    while t0.elapsed() < Duration::from_secs(15) {
        if let Ok(s) = device_status(survivor).await {
            if s.source_state(rs) == "master" {
                took_over = Some(t0.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match took_over {
        Some(d) => out.push_str(&format!(
            "device {survivor:?} became {what} master {:.1} s after the failure (seen by polling)\n",
            d.as_secs_f64()
        )),
        None => out.push_str(&format!(
            "device {survivor:?} did not become master within 15 s\n"
        )),
    }
    // Let the receiver's tally cover the takeover and a few seconds after.
    tokio::time::sleep(Duration::from_secs(3)).await;
    match receiver_status() {
        Some(r) => out.push_str(&format!(
            "receiver since the failure: longest gap {:.0} ms over any group, {}/{} groups flowing, {} duplicates\n",
            r.max_gap_ms,
            r.groups_flowing,
            groups_configured(),
            r.duplicates
        )),
        None => out.push_str("receiver: no report (is the traffic running?)\n"),
    }
    start_agent(failed)?;
    out.push_str(&format!(
        "device {failed:?} restarted; it comes back as backup and preempts after its delay and batch sync\n"
    ));
    Ok(out)
}

/// Stops every lab process and removes the namespaces and the state directory.
pub fn down() -> Result<String, LabError> {
    let mut out = String::new();
    for name in [
        "source",
        "receiver",
        agent_name(Device::A),
        agent_name(Device::B),
    ] {
        procs::stop(name);
    }
    ovs::stop();
    for e in topology::destroy() {
        out.push_str(&format!("warning: {e}\n"));
    }
    let dir = state_dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| procs::ProcError::Io(dir.display().to_string(), e))?;
    }
    out.push_str("lab removed\n");
    Ok(out)
}

/// Parses the `--mode` option.
pub fn parse_mode(mode: &str, load_balance: &str) -> Result<Mode, String> {
    let lb = match load_balance {
        "master-only" => LoadBalance::MasterOnly,
        "group-hash" => LoadBalance::GroupHash,
        "source-group-hash" => LoadBalance::SourceGroupHash,
        other => {
            return Err(format!(
                "unknown load-balance {other:?} (master-only, group-hash, source-group-hash)"
            ))
        }
    };
    match mode {
        "master-backup" => Ok(Mode::MasterBackup),
        "active-active" => Ok(Mode::ActiveActive(lb)),
        other => Err(format!(
            "unknown mode {other:?} (master-backup, active-active)"
        )),
    }
}
