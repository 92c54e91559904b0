//! The one write path: file reloads, the admin API and the controller all change live state here.
//!
//! Every change runs the same steps under one lock: validate, build the new snapshot (the data plane's route
//! table, through [`Snapshot::build`]), persist runtime changes, then publish with a single `ArcSwap` store.
//! Readers never take the lock: they load the current snapshot.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::event::{Event, EventLog};
use super::persist::{self, StateFileError};
use super::state::{self, DrainedServer, LiveState, Overrides, RuntimeWeights, WeightSource};
use crate::error::ConfigError;
use crate::model::{Config, Weight};
use crate::rollout::RolloutState;

/// What the data plane builds from each published state: its route table.
pub trait Snapshot: Sized + Send + Sync + 'static {
    /// Builds the snapshot for `state`, reusing what it can from `previous` (e.g. connection pools).
    fn build(state: Arc<LiveState>, previous: Option<&Self>) -> Result<Self, String>;
    /// The state this snapshot was built from.
    fn state(&self) -> &Arc<LiveState>;
}

/// A change that was refused; live state is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// No route has this name.
    #[error("unknown route `{route}`")]
    UnknownRoute {
        /// The name asked for.
        route: String,
    },
    /// No upstream has this name.
    #[error("unknown upstream `{upstream}`{}", hint(.suggestion.as_deref()))]
    UnknownUpstream {
        /// The name asked for.
        upstream: String,
        /// The nearest existing name.
        suggestion: Option<String>,
    },
    /// The upstream has no such server.
    #[error("upstream `{upstream}` has no server `{server}`; its servers: {servers}")]
    UnknownServer {
        /// The upstream.
        upstream: String,
        /// The server asked for.
        server: String,
        /// The servers it has.
        servers: String,
    },
    /// A weights change named no upstream.
    #[error("no weights given; name at least one upstream, e.g. {{\"blue\": 90, \"canary\": 10}}")]
    NoWeights,
    /// The configuration file failed to load or validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data plane could not build a table for the change.
    #[error("could not build the route table: {0}")]
    Build(String),
    /// The change could not be persisted, so it was not applied.
    #[error("not applied, because it could not be persisted: {0}")]
    Persist(#[from] StateFileError),
    /// This store was made without a config file, so there is nothing to reload.
    #[error("no configuration file to reload")]
    NoFile,
}

fn hint(suggestion: Option<&str>) -> String {
    suggestion.map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
}

/// Startup failed: the file or the state file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configuration file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state file cannot be read. Starting on the file's weights alone could re-expose a rolled-back canary.
    #[error(
        "{0}\nsluice keeps runtime weights and drained servers there; fix or move the file, or start with \
         --discard-state to drop them and use the config file's weights"
    )]
    State(StateFileError),
    /// The data plane could not build its first table.
    #[error("could not build the route table: {0}")]
    Build(String),
}

/// The result of the last reload attempt, shown in the state endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// When it ran.
    pub at: SystemTime,
    /// What triggered it.
    pub trigger: String,
    /// The version it published, or the error that kept the last good config live.
    pub result: Result<u64, String>,
    /// Things the reload could not apply live or dropped (listener changes, obsolete runtime weights).
    pub notes: Vec<String>,
}

/// How to open a store from a file.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Ignore an unreadable state file and start from the config file's weights.
    pub discard_state: bool,
}

#[derive(Debug)]
struct Writer {
    config_path: Option<PathBuf>,
    state_path: Option<PathBuf>,
    events: EventLog,
    last_reload: Option<ReloadOutcome>,
}

/// Live state and the snapshot built from it, changed only through this type's methods.
#[derive(Debug)]
pub struct Store<T> {
    current: ArcSwap<T>,
    writer: Mutex<Writer>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

impl<T: Snapshot> Store<T> {
    /// Loads `config_path` and its state file, applies the state over the file, and builds the first snapshot.
    pub fn open(config_path: &Path, options: &OpenOptions) -> Result<Store<T>, OpenError> {
        let file = Arc::new(Config::load(config_path)?);
        let state_path = state_path(&file, config_path);
        let (overrides, notes) = match persist::read(&state_path) {
            Ok(saved) => state::reconcile(&file, &saved),
            Err(err) if options.discard_state => (
                Overrides::default(),
                vec![format!("discarded unreadable state ({err}) as --discard-state asked")],
            ),
            Err(err) => return Err(OpenError::State(err)),
        };
        let store = Store::build_first(file, overrides, Some(config_path.to_owned()), Some(state_path))
            .map_err(OpenError::Build)?;
        {
            let mut writer = store.lock();
            for note in notes {
                writer.events.push(event(Some(1), "startup", "state file", "", &note));
            }
        }
        Ok(store)
    }

    /// A store for a configuration that did not come from a file: nothing to reload, nothing persisted.
    pub fn from_config(config: Config) -> Result<Store<T>, String> {
        Store::build_first(Arc::new(config), Overrides::default(), None, None)
    }

    fn build_first(
        file: Arc<Config>,
        overrides: Overrides,
        config_path: Option<PathBuf>,
        state_path: Option<PathBuf>,
    ) -> Result<Store<T>, String> {
        let effective = Arc::new(state::apply(&file, &overrides));
        let live = LiveState {
            version: 1,
            published_at: SystemTime::now(),
            file,
            overrides,
            effective,
        };
        let snapshot = T::build(Arc::new(live), None)?;
        Ok(Store {
            current: ArcSwap::from_pointee(snapshot),
            writer: Mutex::new(Writer {
                config_path,
                state_path,
                events: EventLog::default(),
                last_reload: None,
            }),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        })
    }

    /// The current snapshot. Load it once per request and keep the `Arc`, never a guard across `.await`.
    pub fn load(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// The current live state.
    pub fn state(&self) -> Arc<LiveState> {
        Arc::clone(self.current.load().state())
    }

    /// Re-reads the config file. On success the new file is live (with runtime changes kept unless the file's
    /// weights for their route changed); on failure the last good config stays live and the error is recorded.
    pub fn reload(&self, trigger: &str) -> Result<u64, WriteError> {
        let mut writer = self.lock();
        let path = writer.config_path.clone().ok_or(WriteError::NoFile)?;
        let result = self.reload_locked(&mut writer, &path, trigger);
        let (result_for_outcome, notes) = match &result {
            Ok((version, notes)) => (Ok(*version), notes.clone()),
            Err(err) => (Err(err.to_string()), Vec::new()),
        };
        match &result {
            Ok(_) => self.reloads_ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.reloads_failed.fetch_add(1, Ordering::Relaxed),
        };
        writer.last_reload = Some(ReloadOutcome {
            at: SystemTime::now(),
            trigger: trigger.to_owned(),
            result: result_for_outcome,
            notes,
        });
        result.map(|(version, _)| version)
    }

    fn reload_locked(&self, writer: &mut Writer, path: &Path, trigger: &str) -> Result<(u64, Vec<String>), WriteError> {
        let current = self.current.load_full();
        let old = current.state();
        let file = match Config::load(path) {
            Ok(file) => Arc::new(file),
            Err(err) => {
                writer.events.push(event(
                    None,
                    trigger,
                    "reload",
                    &format!("version {}", old.version),
                    &err.to_string(),
                ));
                return Err(err.into());
            }
        };
        let (overrides, mut notes) = state::reconcile(&file, &old.overrides);
        if file.listen != old.file.listen || file.admin != old.file.admin || file.runtime != old.file.runtime {
            notes.push("listen, admin or runtime settings changed; they take effect on restart".to_owned());
        }
        let before = format!("version {}", old.version);
        let version = self.commit(writer, &current, file, overrides)?;
        let mut after = format!("version {version}");
        for note in &notes {
            after.push_str("; ");
            after.push_str(note);
        }
        writer
            .events
            .push(event(Some(version), trigger, "reload", &before, &after));
        Ok((version, notes))
    }

    /// Sets a route's weights at run time. Weights may all be 0 (the route then answers 503); every name must be
    /// an existing upstream. Persisted before it is published.
    pub fn set_weights(
        &self,
        route: &str,
        weights: Vec<Weight>,
        source: WeightSource,
        who: &str,
    ) -> Result<u64, WriteError> {
        let mut writer = self.lock();
        let current = self.current.load_full();
        let old = current.state();
        let Some(file_route) = old.file.routes.iter().find(|r| r.name == route) else {
            return Err(WriteError::UnknownRoute {
                route: route.to_owned(),
            });
        };
        if weights.is_empty() {
            return Err(WriteError::NoWeights);
        }
        let names: Vec<&str> = old.file.upstreams.iter().map(|u| u.name.as_str()).collect();
        if let Some(unknown) = weights.iter().find(|w| !names.contains(&w.upstream.as_str())) {
            return Err(WriteError::UnknownUpstream {
                upstream: unknown.upstream.clone(),
                suggestion: crate::document::nearest(&unknown.upstream, &names).map(str::to_owned),
            });
        }
        let weights = state::in_layout_order(&file_route.weights, weights);
        let before = describe(
            old.effective
                .routes
                .iter()
                .find(|r| r.name == route)
                .map_or(&[][..], |r| &r.weights),
        );
        let after = describe(&weights);
        let mut overrides = old.overrides.clone();
        overrides.routes.insert(
            route.to_owned(),
            RuntimeWeights {
                weights,
                source,
                set_at: SystemTime::now(),
                file_basis: file_route.weights.clone(),
            },
        );
        let file = Arc::clone(&old.file);
        let version = self.commit(&mut writer, &current, file, overrides)?;
        writer.events.push(event(
            Some(version),
            who,
            &format!("weights of route {route} ({})", source.as_str()),
            &before,
            &after,
        ));
        Ok(version)
    }

    /// Records a rollout transition and, when given, the weights it sets (as `controller` weights), in one
    /// commit: persisted together, so a restart resumes at the same step with the same weights.
    pub fn set_rollout(
        &self,
        route: &str,
        rollout: RolloutState,
        weights: Option<Vec<Weight>>,
        who: &str,
        what: &str,
    ) -> Result<u64, WriteError> {
        let mut writer = self.lock();
        let current = self.current.load_full();
        let old = current.state();
        let Some(file_route) = old.file.routes.iter().find(|r| r.name == route) else {
            return Err(WriteError::UnknownRoute {
                route: route.to_owned(),
            });
        };
        let mut overrides = old.overrides.clone();
        let before = old
            .overrides
            .rollouts
            .get(route)
            .map_or("none".to_owned(), describe_rollout);
        let after = describe_rollout(&rollout);
        if let Some(weights) = weights {
            let weights = state::in_layout_order(&file_route.weights, weights);
            overrides.routes.insert(
                route.to_owned(),
                RuntimeWeights {
                    weights,
                    source: WeightSource::Controller,
                    set_at: SystemTime::now(),
                    file_basis: file_route.weights.clone(),
                },
            );
        }
        overrides.rollouts.insert(route.to_owned(), rollout);
        let file = Arc::clone(&old.file);
        let version = self.commit(&mut writer, &current, file, overrides)?;
        writer.events.push(event(
            Some(version),
            who,
            &format!("rollout of route {route}: {what}"),
            &before,
            &after,
        ));
        Ok(version)
    }

    /// Drains (`drained = true`) or re-enables a server: a drained server gets no new requests; its in-flight
    /// requests finish.
    pub fn set_drained(&self, upstream: &str, server: &str, drained: bool, who: &str) -> Result<u64, WriteError> {
        let mut writer = self.lock();
        let current = self.current.load_full();
        let old = current.state();
        let names: Vec<&str> = old.file.upstreams.iter().map(|u| u.name.as_str()).collect();
        let Some(group) = old.file.upstreams.iter().find(|u| u.name == upstream) else {
            return Err(WriteError::UnknownUpstream {
                upstream: upstream.to_owned(),
                suggestion: crate::document::nearest(upstream, &names).map(str::to_owned),
            });
        };
        let Some(addr) = group.servers.iter().map(ToString::to_string).find(|s| s == server) else {
            let servers: Vec<String> = group.servers.iter().map(ToString::to_string).collect();
            return Err(WriteError::UnknownServer {
                upstream: upstream.to_owned(),
                server: server.to_owned(),
                servers: servers.join(", "),
            });
        };
        let mut overrides = old.overrides.clone();
        let key = DrainedServer {
            upstream: upstream.to_owned(),
            server: addr,
        };
        let was = overrides.drained.contains(&key);
        if drained {
            overrides.drained.insert(key);
        } else {
            overrides.drained.remove(&key);
        }
        let (before, after) = (
            if was { "drained" } else { "enabled" },
            if drained { "drained" } else { "enabled" },
        );
        let file = Arc::clone(&old.file);
        let version = self.commit(&mut writer, &current, file, overrides)?;
        writer.events.push(event(
            Some(version),
            who,
            &format!("server {server} of {upstream}"),
            before,
            after,
        ));
        Ok(version)
    }

    /// Build → persist → publish. Persisting first means nothing live is ever missing from the state file.
    fn commit(
        &self,
        writer: &mut Writer,
        current: &Arc<T>,
        file: Arc<Config>,
        overrides: Overrides,
    ) -> Result<u64, WriteError> {
        let old = current.state();
        let version = old.version + 1;
        let effective = Arc::new(state::apply(&file, &overrides));
        let persist_needed = overrides != old.overrides;
        let live = LiveState {
            version,
            published_at: SystemTime::now(),
            file,
            overrides,
            effective,
        };
        let snapshot = T::build(Arc::new(live), Some(current)).map_err(WriteError::Build)?;
        if persist_needed && let Some(path) = &writer.state_path {
            persist::write(path, &snapshot.state().overrides)?;
        }
        self.current.store(Arc::new(snapshot));
        Ok(version)
    }

    /// The last `limit` changes, oldest first.
    pub fn events(&self, limit: usize) -> Vec<Event> {
        self.lock().events.recent(limit)
    }

    /// The last reload attempt, if any.
    pub fn last_reload(&self) -> Option<ReloadOutcome> {
        self.lock().last_reload.clone()
    }

    /// Reloads that succeeded and failed since start.
    pub fn reload_counts(&self) -> (u64, u64) {
        (
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
        )
    }

    /// Where runtime changes are persisted, if anywhere.
    pub fn state_path(&self) -> Option<PathBuf> {
        self.lock().state_path.clone()
    }

    /// The config file this store reloads, if any.
    pub fn config_path(&self) -> Option<PathBuf> {
        self.lock().config_path.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        // A panic while holding the lock cannot leave state half-written: publishing is one store at the end.
        self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn state_path(file: &Config, config_path: &Path) -> PathBuf {
    file.admin
        .as_ref()
        .and_then(|a| a.state_file.clone())
        .unwrap_or_else(|| persist::default_state_path(config_path))
}

fn describe_rollout(r: &RolloutState) -> String {
    format!("{} step {} failures {}", r.phase.as_str(), r.step, r.failures)
}

fn describe(weights: &[Weight]) -> String {
    let parts: Vec<String> = weights.iter().map(|w| format!("{}={}", w.upstream, w.weight)).collect();
    parts.join(" ")
}

fn event(version: Option<u64>, who: &str, what: &str, before: &str, after: &str) -> Event {
    Event {
        version,
        at: SystemTime::now(),
        who: who.to_owned(),
        what: what.to_owned(),
        before: before.to_owned(),
        after: after.to_owned(),
    }
}
