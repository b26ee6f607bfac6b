//! The hot-backup runtime on tokio: a config provider for profiles and tracks (applied to the
//! controller, attached to the MLD runtime as its coordinator), one watcher per role source on
//! the bus, the channel pair to the RBS sync engine, and the controller's effects carried out
//! (records to the engine, preemption gates and notifications to the bus); profile state for
//! `<get>`.

use super::controller::Input;
use super::glue::{Effect, HotBackup, Sink};
use super::northbound::{configured, merge_state, notification, touched, HotBackupConfig};
use crate::bus::{Bus, RoleSourceId};
use crate::datastore::tree::{Change, Node};
use crate::mld::tasks::MldRuntime;
use crate::northbound::commit::{ConfigProvider, OperProvider};
use crate::rbs::api::{BackupId, SyncCommand, SyncEvent};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Where the RBS sync engine plugs in: it reads the records to send per service, and reports
/// what happens per service and backup-id. Its frames must carry the MLD runtime's clock
/// (the clock the records' timers are on) as the sender clock.
pub struct RbsLink {
    pub commands: mpsc::UnboundedReceiver<(String, SyncCommand)>,
    pub events: mpsc::UnboundedSender<(String, BackupId, SyncEvent)>,
}

/// Sends the controller's effects to the effect task.
struct EffectTx(mpsc::UnboundedSender<Effect>);

impl Sink for EffectTx {
    fn effect(&mut self, e: Effect) {
        let _ = self.0.send(e);
    }
}

/// The controller as attached to the MLD runtime.
type Attached = HotBackup<EffectTx>;

#[derive(Default)]
struct State {
    pending: Option<HotBackupConfig>,
    watchers: BTreeMap<RoleSourceId, JoinHandle<()>>,
}

struct Shared {
    mld: MldRuntime,
    bus: Bus,
    state: Mutex<State>,
}

/// The runtime; clones share state (one is the config provider, one the state provider).
#[derive(Clone)]
pub struct HotBackupRuntime {
    shared: Arc<Shared>,
}

impl HotBackupRuntime {
    /// Attaches the controller to the MLD runtime and starts the effect and event tasks.
    /// Must be called inside a tokio runtime, once per MLD runtime.
    pub fn start(mld: MldRuntime, bus: Bus) -> Result<(HotBackupRuntime, RbsLink), String> {
        let (fx_tx, mut effects) = mpsc::unbounded_channel();
        mld.attach(Box::new(HotBackup::new(EffectTx(fx_tx))))?;
        let (cmd_tx, commands) = mpsc::unbounded_channel();
        let (events, mut ev_rx) = mpsc::unbounded_channel::<(String, BackupId, SyncEvent)>();
        let fx_bus = bus.clone();
        let fx = async move {
            while let Some(e) = effects.recv().await {
                match e {
                    Effect::Sync { service, cmd } => {
                        // Without a sync engine attached the records are dropped; it sends
                        // its whole table when it comes up anyway.
                        let _ = cmd_tx.send((service, cmd));
                    }
                    Effect::Gate { source, open } => fx_bus.set_preempt_gate(&source, open),
                    Effect::Notify(e) => fx_bus.notify(notification(&e)),
                }
            }
        };
        tokio::spawn(tracing::Instrument::instrument(
            fx,
            tracing::info_span!("hot-backup"),
        ));
        let ev_mld = mld.clone();
        tokio::spawn(async move {
            while let Some((service, backup_id, event)) = ev_rx.recv().await {
                ev_mld.coordinate(|c: &mut Attached, now| {
                    c.handle(
                        now,
                        Input::Sync {
                            service,
                            backup_id,
                            event,
                        },
                    )
                });
            }
        });
        let rt = HotBackupRuntime {
            shared: Arc::new(Shared {
                mld,
                bus,
                state: Mutex::default(),
            }),
        };
        Ok((rt, RbsLink { commands, events }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows every role source the configuration names, and no other.
    fn watch(&self, cfg: &HotBackupConfig) {
        let wanted: Vec<RoleSourceId> = cfg
            .profiles
            .iter()
            .map(|p| p.role_source.clone())
            .chain(cfg.tracks.iter().map(|t| t.source.clone()))
            .collect();
        let mut st = self.lock();
        st.watchers.retain(|id, h| {
            let keep = wanted.contains(id);
            if !keep {
                h.abort();
            }
            keep
        });
        for id in wanted {
            if st.watchers.contains_key(&id) {
                continue;
            }
            let mut rx = self.shared.bus.watch_role(&id);
            let mld = self.shared.mld.clone();
            let source = id.clone();
            let h = tokio::spawn(async move {
                loop {
                    let state = *rx.borrow_and_update();
                    let source = source.clone();
                    mld.coordinate(|c: &mut Attached, now| {
                        c.handle(now, Input::Role { source, state })
                    });
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            });
            st.watchers.insert(id, h);
        }
    }
}

impl ConfigProvider for HotBackupRuntime {
    fn name(&self) -> &str {
        "hot-backup"
    }

    fn prepare(&mut self, _old: &Node, new: &Node, changes: &[Change]) -> Result<(), String> {
        let pending = if touched(changes) {
            Some(configured(new)?)
        } else {
            None
        };
        self.lock().pending = pending;
        Ok(())
    }

    fn apply(&mut self, _new: &Node, _changes: &[Change]) -> Result<(), String> {
        let Some(cfg) = self.lock().pending.take() else {
            return Ok(());
        };
        let (profiles, tracks) = (cfg.profiles.clone(), cfg.tracks.clone());
        self.shared
            .mld
            .coordinate(|c: &mut Attached, _| c.configure(profiles, tracks));
        self.watch(&cfg);
        Ok(())
    }

    fn abort(&mut self) {
        self.lock().pending = None;
    }
}

impl OperProvider for HotBackupRuntime {
    fn merge_state(&self, tree: &mut Node) {
        self.shared.mld.inspect(|c: Option<&Attached>, now| {
            if let Some(c) = c {
                merge_state(tree, &c.ctl, now, SystemTime::now());
            }
        });
    }
}
