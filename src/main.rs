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
    }
    Ok(())
}
