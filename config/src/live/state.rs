//! What is live: the last good file, the runtime changes over it, and the configuration they make together.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use crate::model::{Config, Weight};
use crate::rollout::RolloutState;

/// Who set a route's weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightSource {
    /// The configuration file.
    File,
    /// The admin API or `sluice ctl`.
    Admin,
    /// The promotion controller.
    Controller,
}

impl WeightSource {
    /// Lower-case name as shown in the API and stored in the state file.
    pub fn as_str(self) -> &'static str {
        match self {
            WeightSource::File => "file",
            WeightSource::Admin => "admin",
            WeightSource::Controller => "controller",
        }
    }

    /// Parses [`WeightSource::as_str`]'s names.
    pub fn parse(text: &str) -> Option<WeightSource> {
        match text {
            "file" => Some(WeightSource::File),
            "admin" => Some(WeightSource::Admin),
            "controller" => Some(WeightSource::Controller),
            _ => None,
        }
    }
}

/// Weights set at run time for one route, laid over the file's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeWeights {
    /// The weights in force, in the route's layout order.
    pub weights: Vec<Weight>,
    /// Admin or controller.
    pub source: WeightSource,
    /// When they were set.
    pub set_at: SystemTime,
    /// The file's weights for the route when these were set: once the file says something else, the file wins.
    pub file_basis: Vec<Weight>,
}

/// A server taken out of rotation at run time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DrainedServer {
    /// The upstream group.
    pub upstream: String,
    /// The server as written in the config (`host:port`).
    pub server: String,
}

/// Every runtime change over the file: what the state file persists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Routes whose weights were set at run time.
    pub routes: BTreeMap<String, RuntimeWeights>,
    /// Servers that get no new requests.
    pub drained: BTreeSet<DrainedServer>,
    /// Rollout progress per route.
    pub rollouts: BTreeMap<String, RolloutState>,
}

/// One published state: the version every snapshot carries.
#[derive(Debug)]
pub struct LiveState {
    /// Increases by one with every published change.
    pub version: u64,
    /// When this version was published.
    pub published_at: SystemTime,
    /// The last configuration file that validated.
    pub file: Arc<Config>,
    /// Runtime changes over the file.
    pub overrides: Overrides,
    /// The file with the overrides applied: what the data plane serves.
    pub effective: Arc<Config>,
}

impl LiveState {
    /// Who set `route`'s weights and when (`None` for the file's own weights).
    pub fn weight_origin(&self, route: &str) -> (WeightSource, Option<SystemTime>) {
        match self.overrides.routes.get(route) {
            Some(runtime) => (runtime.source, Some(runtime.set_at)),
            None => (WeightSource::File, None),
        }
    }

    /// Whether `server` of `upstream` is drained.
    pub fn is_drained(&self, upstream: &str, server: &str) -> bool {
        self.overrides
            .drained
            .iter()
            .any(|d| d.upstream == upstream && d.server == server)
    }
}

/// The file with `overrides` applied. Overrides must already be reconciled with `file` (see [`reconcile`]).
pub(crate) fn apply(file: &Config, overrides: &Overrides) -> Config {
    let mut effective = file.clone();
    for route in &mut effective.routes {
        if let Some(runtime) = overrides.routes.get(&route.name) {
            route.weights = runtime.weights.clone();
        }
    }
    effective
}

/// Drops the overrides a new file makes obsolete: runtime weights of routes whose file weights changed since they
/// were set (last writer wins), or that name routes, upstreams or servers the file no longer has. Returns the kept
/// overrides and a line per dropped one.
pub(crate) fn reconcile(file: &Config, overrides: &Overrides) -> (Overrides, Vec<String>) {
    let mut kept = Overrides::default();
    let mut dropped = Vec::new();
    for (name, runtime) in &overrides.routes {
        let Some(route) = file.routes.iter().find(|r| &r.name == name) else {
            dropped.push(format!(
                "route `{name}` is gone from the file; its runtime weights are dropped"
            ));
            continue;
        };
        if route.weights != runtime.file_basis {
            dropped.push(format!(
                "route `{name}`: the file's weights changed since the {} set theirs; the file's weights win",
                runtime.source.as_str()
            ));
            continue;
        }
        if let Some(missing) = runtime
            .weights
            .iter()
            .find(|w| !file.upstreams.iter().any(|u| u.name == w.upstream))
        {
            dropped.push(format!(
                "route `{name}`: upstream `{}` is gone from the file; runtime weights dropped",
                missing.upstream
            ));
            continue;
        }
        kept.routes.insert(name.clone(), runtime.clone());
    }
    for (name, rollout) in &overrides.rollouts {
        if file.routes.iter().any(|r| &r.name == name) {
            kept.rollouts.insert(name.clone(), rollout.clone());
        } else {
            dropped.push(format!(
                "route `{name}` is gone from the file; its rollout state is dropped"
            ));
        }
    }
    for drained in &overrides.drained {
        let exists = file
            .upstreams
            .iter()
            .any(|u| u.name == drained.upstream && u.servers.iter().any(|s| s.to_string() == drained.server));
        if exists {
            kept.drained.insert(drained.clone());
        } else {
            dropped.push(format!(
                "drained server {} of `{}` is gone from the file",
                drained.server, drained.upstream
            ));
        }
    }
    (kept, dropped)
}

/// Puts `weights` in the route's layout order: the file's order first, upstreams the file's route does not name
/// after them in the order given. Sticky buckets are laid out in this order, so it must not depend on how a
/// caller happened to order a JSON object.
pub(crate) fn in_layout_order(file_weights: &[Weight], weights: Vec<Weight>) -> Vec<Weight> {
    let mut ordered: Vec<Weight> = file_weights
        .iter()
        .filter_map(|fw| weights.iter().find(|w| w.upstream == fw.upstream).cloned())
        .collect();
    for w in weights {
        if !ordered.iter().any(|o| o.upstream == w.upstream) {
            ordered.push(w);
        }
    }
    ordered
}
