//! Starting one network element: datastores, runtimes and the NETCONF server.

use crate::config::AgentConfig;
use crate::datastore::Store;
use crate::netconf::{self, Limits, Shared};
use crate::northbound::Northbound;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] crate::datastore::StoreError),
    #[error("startup configuration {0}: {1}")]
    Startup(String, String),
    #[error(transparent)]
    Ssh(#[from] netconf::ssh::SshError),
    #[error("runtime: {0}")]
    Runtime(String),
    #[error("cannot listen on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
}

/// Reads the startup-config XML file into a tree.
fn load_startup(path: &std::path::Path) -> Result<crate::datastore::tree::Node, AgentError> {
    let shown = path.display().to_string();
    let text =
        std::fs::read(path).map_err(|e| AgentError::Startup(shown.clone(), e.to_string()))?;
    let el =
        crate::xml::parse(&text).map_err(|e| AgentError::Startup(shown.clone(), e.to_string()))?;
    let tree = netconf::ops::inline_config(&el).map_err(|errs| {
        AgentError::Startup(
            shown.clone(),
            errs.iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    crate::northbound::validate::validate(&tree)
        .map_err(|e| AgentError::Startup(shown, e.message))?;
    Ok(tree)
}

/// Opens the datastores (a new one seeded from the startup file and the configured NACM
/// rules) and the NETCONF state around them, before any runtime is registered.
pub fn open(cfg: &AgentConfig) -> Result<(Northbound, netconf::nacm::Settings), AgentError> {
    // The datastore holds keys in clear: whatever the agent creates is its own.
    crate::datastore::guard::private_umask();
    std::fs::create_dir_all(&cfg.datastore)
        .map_err(|e| AgentError::Startup(cfg.datastore.display().to_string(), e.to_string()))?;
    // Compile the schema before accepting anyone.
    let _ = crate::yang::context();
    let store = Store::open(&cfg.datastore)?;
    let startup = match &cfg.startup_config {
        Some(p) if store.is_new() => Some(load_startup(p)?),
        _ => None,
    };
    let is_new = store.is_new();
    let mut nb = Northbound::open(store, startup)?;
    // A new datastore's running gets the agent configuration's NACM rules (unless the startup
    // file brings its own); startup stays what the file says.
    let user_groups = cfg.user_groups();
    let nacm_seed = netconf::nacm::seed(&user_groups);
    let running = nb.get(crate::datastore::Datastore::Running);
    if is_new
        && nacm_seed
            .children
            .keys()
            .all(|k| !running.children.contains_key(k))
    {
        let mut seeded = (*running).clone();
        for (k, v) in &nacm_seed.children {
            seeded.children.insert(k.clone(), v.clone());
        }
        nb.set(crate::datastore::Datastore::Running, seeded, true)
            .map_err(|e| AgentError::Startup("NACM rules".into(), e.message))?;
        // Seeding is part of creating the datastore, not a change anyone made.
        let _ = nb.take_running_changes();
    }
    drop(running);
    let fallback = nacm_seed.children.values().next().cloned();
    let nacm = netconf::nacm::Settings {
        enforce: true,
        user_groups,
        recovery_user: cfg.recovery_user.clone(),
        fallback,
    };
    Ok((nb, nacm))
}

/// The runtimes one agent runs, registered with its northbound.
pub struct Runtimes {
    /// Which started and why the others did not (`/system/runtime`).
    pub states: RuntimeStates,
    /// VRRP6, which resigns its masters on a clean stop.
    pub vrrp6: Option<crate::vrrp6::tasks::Vrrp6Runtime>,
}

/// Starts every runtime `cfg` enables and registers it with `nb` (each is brought to running).
/// A runtime that cannot start is logged and shown down; the others run. Must be called inside
/// a tokio runtime.
pub fn start_runtimes(
    nb: &mut Northbound,
    cfg: &AgentConfig,
    bus: &crate::bus::Bus,
) -> Result<Runtimes, AgentError> {
    // RBS runs always; it only acts once services are configured.
    let rbs = crate::rbs::RbsHandle::new(Some(bus.clone()));
    nb.add_oper_provider(Arc::new(rbs.clone()));
    nb.register(crate::rbs::northbound::RbsProvider::new(rbs.clone()))
        .map_err(AgentError::Runtime)?;
    let mut runtimes = RuntimeStates::default();
    if cfg.manage_interfaces {
        // Reconciles the kernel to running at start, crash restarts included.
        if let Some(ifs) = runtimes.started("interfaces", crate::interfaces::Interfaces::start()) {
            nb.add_oper_provider(Arc::new(ifs.clone()));
            nb.register(ifs).map_err(AgentError::Runtime)?;
        }
    }
    let vrrp6 = if cfg.manage_interfaces {
        let v = runtimes.started(
            "vrrp6",
            crate::vrrp6::tasks::Vrrp6Runtime::start(bus.clone()),
        );
        if let Some(v) = &v {
            nb.add_oper_provider(Arc::new(v.clone()));
            nb.register(v.clone()).map_err(AgentError::Runtime)?;
        }
        v
    } else {
        None
    };
    if cfg.manage_interfaces {
        // E-Trunks and the Eth-Trunks' LACP members; publishes their roles on the bus.
        if let Some(et) = runtimes.started(
            "e-trunk",
            crate::etrunk::tasks::ETrunkRuntime::start(bus.clone()),
        ) {
            nb.add_oper_provider(Arc::new(et.clone()));
            nb.register(et).map_err(AgentError::Runtime)?;
        }
    }
    if cfg.manage_multicast {
        if let Some(mld) = runtimes.started("mld", crate::mld::tasks::MldRuntime::start()) {
            nb.add_oper_provider(Arc::new(mld.clone()));
            nb.register(mld.clone()).map_err(AgentError::Runtime)?;
            // Remote backup profiles, their records carried by the RBS sync engine.
            if let Some((hb, rbs_link)) = runtimes.started(
                "hot-backup",
                crate::hotbackup::tasks::HotBackupRuntime::start(mld, bus.clone()),
            ) {
                rbs.attach(rbs_link.commands, rbs_link.events);
                nb.add_oper_provider(Arc::new(hb.clone()));
                nb.register(hb).map_err(AgentError::Runtime)?;
            }
        } else {
            runtimes.down("hot-backup", "needs the mld runtime".into());
        }
    }
    nb.add_oper_provider(Arc::new(runtimes.clone()));
    Ok(Runtimes {
        states: runtimes,
        vrrp6,
    })
}

/// Runs the agent until the process is stopped.
pub async fn run(cfg: AgentConfig) -> Result<(), AgentError> {
    let (mut nb, nacm) = open(&cfg)?;
    let (bus, mut bus_notifications) = crate::bus::Bus::new();
    let Runtimes { vrrp6, .. } = start_runtimes(&mut nb, &cfg, &bus)?;
    // A confirmed commit whose session died with the previous run, or whose time ran out
    // meanwhile, is rolled back now that the runtimes are up.
    nb.expire_confirmed(std::time::SystemTime::now());
    let shared = Shared::with_nacm(nb, limits(&cfg), nacm);
    let publisher = Arc::clone(&shared);
    tokio::spawn(async move {
        while let Some(event) = bus_notifications.recv().await {
            publisher.publish(event);
        }
    });
    let timer = Arc::clone(&shared);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            timer.expire_confirmed();
        }
    });
    let key = netconf::ssh::host_key(&cfg.datastore)?;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| AgentError::Listen(cfg.listen, e))?;
    tracing::info!(listen = %cfg.listen, datastore = %cfg.datastore.display(), "agent ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| AgentError::Runtime(e.to_string()))?;
    tokio::select! {
        r = netconf::ssh::serve(listener, shared, Arc::new(cfg), key) => r?,
        // A clean stop: VRRP6 masters resign so that backups take over at once.
        _ = term.recv() => tracing::info!("stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("stopping"),
    }
    if let Some(v) = vrrp6 {
        v.shutdown(std::time::Duration::from_secs(2)).await;
    }
    Ok(())
}

/// The session limits `cfg` sets.
pub fn limits(cfg: &AgentConfig) -> Limits {
    Limits {
        max_message: cfg.max_message_bytes,
        replay_max: cfg.notification_replay_max,
        max_sessions: cfg.max_sessions,
        idle_timeout: (cfg.idle_timeout_secs > 0)
            .then(|| std::time::Duration::from_secs(cfg.idle_timeout_secs)),
    }
}

/// Which runtimes started, and why the others did not: `/system/runtime` in `<get>`. A
/// runtime that cannot start is logged once and leaves the agent running.
#[derive(Debug, Clone, Default)]
pub struct RuntimeStates {
    states: Vec<(&'static str, Option<String>)>,
}

impl RuntimeStates {
    fn started<T>(&mut self, name: &'static str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(t) => {
                self.states.push((name, None));
                Some(t)
            }
            Err(e) => {
                self.down(name, e);
                None
            }
        }
    }

    /// The runtimes that did not start, with the reason.
    pub fn failed(&self) -> Vec<(&'static str, &str)> {
        self.states
            .iter()
            .filter_map(|(n, r)| Some((*n, r.as_deref()?)))
            .collect()
    }

    fn down(&mut self, name: &'static str, reason: String) {
        tracing::error!(
            runtime = name,
            %reason,
            "runtime could not start: its configuration is stored and not applied"
        );
        self.states.push((name, Some(reason)));
    }
}

impl crate::northbound::registry::OperProvider for RuntimeStates {
    fn merge_state(&self, tree: &mut crate::datastore::tree::Node) {
        const SYS: &str = "mldhb-system";
        let sys = tree.child_mut(crate::datastore::tree::NodeKey::new(SYS, "system"));
        for (name, down) in &self.states {
            let e = sys.list_entry_mut(SYS, "runtime", "name", name);
            e.set_leaf(SYS, "state", if down.is_some() { "down" } else { "up" });
            if let Some(reason) = down {
                e.set_leaf(SYS, "reason", reason.clone());
            }
        }
    }
}
