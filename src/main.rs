//! The `mldhb` command: subcommands only.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "mldhb", version, about = "MLD dual-device hot backup agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one network element.
    Agent {
        /// Agent configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Listen address, overriding the file.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Datastore directory, overriding the file.
        #[arg(long)]
        datastore: Option<PathBuf>,
    },
    /// Read a password from standard input and print its hash for `password_hash`.
    HashPassword,
    /// VRP-like command line over NETCONF (interactive, or batch with -c, a script or stdin).
    Cli(mldhb::cli::Options),
    /// The two-device lab on this machine (no action: `up`, then a live status).
    Lab {
        #[command(subcommand)]
        action: Option<LabAction>,
    },
}

#[derive(Subcommand)]
enum LabAction {
    /// Build the lab (namespaces, two agents, receiver, source; with E-Trunk an Open vSwitch
    /// customer edge), configure the scenario over NETCONF, and show a live status.
    Up {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Groups the receiver joins and the source sends to.
        #[arg(long, default_value_t = 100)]
        groups: u32,
        /// Datagrams per second to each group.
        #[arg(long, default_value_t = 10)]
        rate: u32,
        /// Do not start the receiver and the source.
        #[arg(long)]
        no_traffic: bool,
        /// Return once the lab is up instead of showing the live status.
        #[arg(long)]
        detach: bool,
    },
    /// Show the status once.
    Status,
    /// Make the role-source master fail (kill -9 of its agent), show the takeover and the
    /// measured gap, then restart it.
    Failover,
    /// Remove everything the lab made.
    Down,
    /// Print a device's NETCONF configuration for the scenario (the content of <config>).
    Config {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Device A (intended master) or B.
        #[arg(long, value_parser = ["a", "b"])]
        device: String,
    },
    /// Send sequence-numbered UDP to many groups (the lab's multicast source).
    Send {
        #[command(flatten)]
        traffic: TrafficArgs,
        /// Datagrams per second to each group.
        #[arg(long, default_value_t = 20)]
        rate: u32,
    },
    /// Join many groups and count what arrives (the lab's receiver host).
    Receive {
        #[command(flatten)]
        traffic: TrafficArgs,
        /// Where to write the per-group tally (JSON), rewritten every second.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ScenarioArgs {
    /// Role source: vrrp6 (scenarios 1 and 2) or e-trunk (3 and 4; active-active sets
    /// `e-trunk mode force-master` on both devices).
    #[arg(long, default_value = "vrrp6")]
    role_source: String,
    /// Backup mode: master-backup or active-active.
    #[arg(long, default_value = "master-backup")]
    mode: String,
    /// Forwarder selection in active-active mode.
    #[arg(long, default_value = "group-hash")]
    load_balance: String,
    /// VRRP6 advertisement interval, centiseconds.
    #[arg(long, default_value_t = 100)]
    advertise: u16,
    /// Multicast forwarding backend: auto (ip6mr when the kernel has it, else nftables),
    /// ip6mr or nftables.
    #[arg(long, default_value = "auto", value_parser = ["auto", "ip6mr", "nftables"])]
    backend: String,
}

impl ScenarioArgs {
    fn scenario(&self) -> anyhow::Result<mldhb::lab::scenario::Scenario> {
        use mldhb::lab::scenario::{ETrunkScenario, RoleSource, Scenario, Vrrp6Scenario};
        let mode = mldhb::lab::control::parse_mode(&self.mode, &self.load_balance)
            .map_err(anyhow::Error::msg)?;
        Ok(
            match RoleSource::parse(&self.role_source).map_err(anyhow::Error::msg)? {
                RoleSource::Vrrp6 => Scenario::Vrrp6(Vrrp6Scenario {
                    mode,
                    advertise_cs: self.advertise,
                    backend: self.backend.clone(),
                    ..Default::default()
                }),
                RoleSource::ETrunk => Scenario::ETrunk(ETrunkScenario {
                    mode,
                    backend: self.backend.clone(),
                    ..Default::default()
                }),
            },
        )
    }
}

#[derive(clap::Args)]
struct TrafficArgs {
    /// Interface to send on or join on.
    #[arg(long)]
    interface: String,
    /// First group; the others count up from it.
    #[arg(long, default_value = "ff0e::db8:1:0")]
    group_base: std::net::Ipv6Addr,
    /// Number of groups.
    #[arg(long, default_value_t = 1000)]
    groups: u32,
    /// UDP destination port.
    #[arg(long, default_value_t = 5001)]
    port: u16,
    /// Stop after this many seconds (default: run until stopped).
    #[arg(long)]
    duration: Option<f64>,
}

fn lab(action: LabAction) -> anyhow::Result<()> {
    use mldhb::lab::{control, traffic};
    let secs = |d: Option<f64>| d.map(std::time::Duration::from_secs_f64);
    let rt = || tokio::runtime::Runtime::new();
    match action {
        LabAction::Up {
            scenario,
            groups,
            rate,
            no_traffic,
            detach,
        } => {
            let s = scenario.scenario()?;
            let opts = control::LabOptions {
                role_source: s.role_source(),
                mode: s.mode(),
                groups,
                rate,
                advertise_cs: scenario.advertise,
                traffic: !no_traffic,
                backend: scenario.backend.clone(),
            };
            let rt = rt()?;
            eprintln!("mldhb lab: building namespaces, starting agents A and B, configuring them over NETCONF...");
            rt.block_on(control::up(&opts))?;
            println!(
                "mldhb lab is up: {} {} scenario in network namespaces with kernel forwarding.\n{}",
                opts.role_source.as_str(),
                scenario.mode,
                control::reach(opts.role_source)
            );
            if !detach {
                rt.block_on(control::watch())?;
            }
        }
        LabAction::Status => print!("{}", rt()?.block_on(control::status())?),
        LabAction::Failover => print!("{}", rt()?.block_on(control::failover())?),
        LabAction::Down => print!("{}", control::down()?),
        LabAction::Config { scenario, device } => {
            let dev = if device == "a" {
                mldhb::lab::scenario::Device::A
            } else {
                mldhb::lab::scenario::Device::B
            };
            println!("{}", scenario.scenario()?.config(dev));
        }
        LabAction::Send { traffic: t, rate } => {
            let sent = traffic::send(&traffic::SendSpec {
                interface: t.interface,
                base: t.group_base,
                groups: t.groups,
                port: t.port,
                rate,
                duration: secs(t.duration),
            })?;
            println!("sent {sent} datagrams");
        }
        LabAction::Receive { traffic: t, report } => {
            let r = traffic::receive(&traffic::ReceiveSpec {
                interface: t.interface,
                base: t.group_base,
                groups: t.groups,
                port: t.port,
                duration: secs(t.duration),
                report,
            })?;
            let received: u64 = r.groups.iter().map(|g| g.received).sum();
            println!(
                "received {received} datagrams in {:.1} s",
                r.elapsed.as_secs_f64()
            );
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Cli(opts) = cli.command {
        std::process::exit(mldhb::cli::run(opts));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Agent {
            config,
            listen,
            datastore,
        } => {
            let mut cfg = mldhb::config::AgentConfig::load(&config)?;
            if let Some(l) = listen {
                cfg.listen = l;
            }
            if let Some(d) = datastore {
                cfg.datastore = d;
            }
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(mldhb::agent::run(cfg))?;
        }
        Command::HashPassword => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let pw = line.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(!pw.is_empty(), "empty password");
            println!("{}", mldhb::netconf::password::hash(pw));
        }
        Command::Cli(_) => {}
        Command::Lab { action } => lab(action.unwrap_or(LabAction::Up {
            scenario: ScenarioArgs {
                role_source: "vrrp6".into(),
                mode: "master-backup".into(),
                load_balance: "group-hash".into(),
                advertise: 100,
                backend: "auto".into(),
            },
            groups: 100,
            rate: 10,
            no_traffic: false,
            detach: false,
        }))?,
    }
    Ok(())
}
