//! The hot-backup runtime on tokio: a config provider for profiles and tracks (applied to the
//! controller, attached to the MLD runtime as its coordinator), one watcher per role source on
//! the bus, the channel pair to the RBS sync engine, and the controller's effects carried out
//! (record changes through the bounded [`Outbox`] to the engine, preemption gates and
//! notifications to the bus); profile state for `<get>`. Nothing the controller does waits
//! for the engine, so MLD reception never blocks on it.

use super::controller::Controller;
use super::controller::Input;
use super::glue::{Effect, HotBackup, Sink};
use super::northbound::{notification, HotBackupConfig};
use super::outbox::Outbox;
use crate::bus::{Bus, RoleSourceId};
use crate::mld::tasks::MldRuntime;
use crate::rbs::api::{BackupId, SyncCommand, SyncEvent};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

/// Record changes waiting for the sync engine, at most this many records.
const PENDING_MAX: usize = 16_384;
/// Commands on their way to the sync engine.
const COMMAND_QUEUE: usize = 256;

/// Where the RBS sync engine plugs in: it reads the records to send per service, and reports
/// what happens per service and backup-id. Its frames must carry the MLD runtime's clock
/// (the clock the records' timers are on) as the sender clock.
pub struct RbsLink {
    pub commands: mpsc::Receiver<(String, SyncCommand)>,
    pub events: mpsc::UnboundedSender<(String, BackupId, SyncEvent)>,
}

fn lock_outbox(o: &Mutex<Outbox>) -> MutexGuard<'_, Outbox> {
    o.lock().unwrap_or_else(|e| e.into_inner())
}

/// Queues a record change for the drain and wakes it; never waits.
fn queue(outbox: &Mutex<Outbox>, wake: &Notify, service: String, cmd: SyncCommand) {
    lock_outbox(outbox).push(service, cmd);
    wake.notify_one();
}

/// Carries out the controller's effects where it runs (under the MLD runtime's lock): record
/// changes into the outbox, gates and notifications to the bus, none of which waits.
struct Outlet {
    outbox: Arc<Mutex<Outbox>>,
    wake: Arc<Notify>,
    bus: Bus,
}

impl Sink for Outlet {
    fn effect(&mut self, e: Effect) {
        match e {
            Effect::Sync { service, cmd } => queue(&self.outbox, &self.wake, service, cmd),
            Effect::Gate { source, open } => self.bus.set_preempt_gate(&source, open),
            Effect::Notify(e) => self.bus.notify(notification(&e)),
        }
    }
}

/// The controller as attached to the MLD runtime.
type Attached = HotBackup<Outlet>;

/// Hands the outbox's changes to the sync engine as fast as it takes them. A service marked
/// for a rebuild first gets its whole table from `rebuild` (which takes the marks). Ends when
/// the engine is gone.
async fn drain(
    outbox: Arc<Mutex<Outbox>>,
    wake: Arc<Notify>,
    mut rebuild: impl FnMut() -> Vec<(String, SyncCommand)>,
    tx: mpsc::Sender<(String, SyncCommand)>,
) {
    loop {
        let tables = if lock_outbox(&outbox).needs_rebuild() {
            rebuild()
        } else {
            Vec::new()
        };
        for c in tables {
            if tx.send(c).await.is_err() {
                return;
            }
        }
        let next = lock_outbox(&outbox).pop();
        match next {
            Some(c) => {
                if tx.send(c).await.is_err() {
                    return;
                }
            }
            None => {
                if !lock_outbox(&outbox).needs_rebuild() {
                    wake.notified().await;
                }
            }
        }
    }
}

#[derive(Default)]
struct State {
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
    /// Attaches the controller to the MLD runtime and starts the drain and event tasks.
    /// Must be called inside a tokio runtime, once per MLD runtime.
    pub fn start(mld: MldRuntime, bus: Bus) -> Result<(HotBackupRuntime, RbsLink), String> {
        let outbox = Arc::new(Mutex::new(Outbox::new(PENDING_MAX)));
        let wake = Arc::new(Notify::new());
        mld.attach(Box::new(HotBackup::new(Outlet {
            outbox: Arc::clone(&outbox),
            wake: Arc::clone(&wake),
            bus: bus.clone(),
        })))?;
        let (cmd_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (events, mut ev_rx) = mpsc::unbounded_channel::<(String, BackupId, SyncEvent)>();
        let (rb_mld, rb_outbox) = (mld.clone(), Arc::clone(&outbox));
        // Under the MLD runtime's lock, so that no change falls between the marks and the
        // tables read.
        let rebuild = move || {
            rb_mld.inspect(|c: Option<&Attached>, _| {
                let services = lock_outbox(&rb_outbox).take_rebuild();
                let Some(c) = c else {
                    return Vec::new();
                };
                let mut out = Vec::new();
                for s in services {
                    for (backup_id, records) in c.ctl.records(&s) {
                        out.push((s.clone(), SyncCommand::Replace { backup_id, records }));
                    }
                }
                out
            })
        };
        tokio::spawn(tracing::Instrument::instrument(
            drain(outbox, wake, rebuild, cmd_tx),
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

    /// Hands new profiles and tracks to the controller (a commit applied them) and follows
    /// the role sources they name.
    pub fn configure(&self, cfg: &HotBackupConfig) {
        let (profiles, tracks) = (cfg.profiles.clone(), cfg.tracks.clone());
        self.shared
            .mld
            .coordinate(|c: &mut Attached, _| c.configure(profiles, tracks));
        self.watch(cfg);
    }

    /// Reads the controller (when attached) with the MLD runtime's clock.
    pub fn with_controller(&self, f: impl FnOnce(&Controller, crate::time::Time)) {
        self.shared.mld.inspect(|c: Option<&Attached>, now| {
            if let Some(c) = c {
                f(&c.ctl, now);
            }
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    type Table = BTreeMap<Vec<u8>, Vec<u8>>;

    /// A sync engine's local table as the commands leave it.
    fn apply(t: &mut Table, cmd: SyncCommand) {
        match cmd {
            SyncCommand::Upsert { key, value, .. } => {
                t.insert(key, value);
            }
            SyncCommand::Remove { key, .. } => {
                t.remove(&key);
            }
            SyncCommand::Replace { records, .. } => *t = records.into_iter().collect(),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_flood_stays_bounded_and_the_engine_ends_with_the_owners_table() {
        const CAP: usize = 64;
        let outbox = Arc::new(Mutex::new(Outbox::new(CAP)));
        let wake = Arc::new(Notify::new());
        // The owner's tables per service (what the controller holds), shared with the rebuild
        // as the MLD runtime's lock shares them.
        let owner: Arc<Mutex<HashMap<String, Table>>> = Arc::default();
        let rebuild = {
            let (owner, outbox) = (Arc::clone(&owner), Arc::clone(&outbox));
            move || {
                let owner = owner.lock().unwrap();
                let services = lock_outbox(&outbox).take_rebuild();
                services
                    .into_iter()
                    .map(|s| {
                        let records = owner
                            .get(&s)
                            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                            .unwrap_or_default();
                        (
                            s,
                            SyncCommand::Replace {
                                backup_id: 1,
                                records,
                            },
                        )
                    })
                    .collect()
            }
        };
        let (tx, mut rx) = mpsc::channel(4);
        tokio::spawn(drain(Arc::clone(&outbox), Arc::clone(&wake), rebuild, tx));
        // The engine: takes one command, then lets everything else run twice.
        let engine: Arc<Mutex<HashMap<String, Table>>> = Arc::default();
        let replaces = Arc::new(Mutex::new(0usize));
        {
            let (engine, replaces) = (Arc::clone(&engine), Arc::clone(&replaces));
            tokio::spawn(async move {
                while let Some((s, cmd)) = rx.recv().await {
                    if matches!(cmd, SyncCommand::Replace { .. }) {
                        *replaces.lock().unwrap() += 1;
                    }
                    apply(engine.lock().unwrap().entry(s).or_default(), cmd);
                    tokio::task::yield_now().await;
                    tokio::task::yield_now().await;
                }
            });
        }
        // 50,000 changes over 1,000 records of two services, 200 between turns of the others.
        let mut x: u64 = 1;
        for i in 0..50_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let service = ["s", "t"][(x >> 60) as usize & 1].to_string();
            let key = format!("g{}", (x >> 33) % 500).into_bytes();
            let cmd = if (x >> 20).is_multiple_of(4) {
                SyncCommand::Remove { backup_id: 1, key }
            } else {
                SyncCommand::Upsert {
                    backup_id: 1,
                    key,
                    value: i.to_be_bytes().to_vec(),
                }
            };
            {
                let mut owner = owner.lock().unwrap();
                apply(owner.entry(service.clone()).or_default(), cmd.clone());
                queue(&outbox, &wake, service, cmd);
            }
            assert!(lock_outbox(&outbox).len() <= CAP);
            if i % 200 == 199 {
                tokio::task::yield_now().await;
            }
        }
        assert!(lock_outbox(&outbox).overflows > 0, "the flood overflowed");
        for _ in 0..100_000 {
            tokio::task::yield_now().await;
            let done = {
                let o = lock_outbox(&outbox);
                o.is_empty() && !o.needs_rebuild()
            };
            if done && *engine.lock().unwrap() == *owner.lock().unwrap() {
                break;
            }
        }
        {
            let (engine, owner) = (engine.lock().unwrap(), owner.lock().unwrap());
            assert_eq!(engine.len(), 2);
            assert_eq!(*engine, *owner);
        }
        assert!(*replaces.lock().unwrap() > 0, "tables were rebuilt");
    }
}
