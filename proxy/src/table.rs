//! The immutable route table: built once per configuration change, shared by every request through one snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::HeaderValue;
use sluice_config::{Config, HostPattern, LiveState, Route, Snapshot, Timeouts};

use crate::edge::rules::RouteEdge;
use crate::pool::Pool;
use crate::retry::RetryBudget;
use crate::schedule::Schedule;
use crate::sticky::choice::{Sticky, compile_rule};
use crate::sticky::rule::{MatchRule, first_match};
use crate::telemetry::{Telemetry, VersionTelemetry};
use http::header::HeaderName;

/// One snapshot of everything a request needs: routes, their version schedules and the upstream pools.
#[derive(Debug)]
pub struct Table {
    state: Arc<LiveState>,
    routes: Box<[RouteEntry]>,
    /// (host pattern, path prefix, route index), most specific first: the first match wins.
    matchers: Box<[(HostPattern, String, usize)]>,
    /// Whether any route names hosts: when none does, requests are routed by path alone and their host is not
    /// looked up, lower-cased and stripped of its port on every request.
    routes_by_host: bool,
    pools: BTreeMap<Arc<str>, Arc<Pool>>,
    telemetry: Arc<Telemetry>,
    /// The request id header, parsed once.
    pub(crate) request_id: HeaderName,
}

/// A route as the data plane sees it.
///
/// Its versions are in layout order: the file's weights in file order, then upstreams that runtime weights added,
/// then upstreams only match rules name, and a version the effective weights leave out has weight 0. Sticky bucket
/// ranges are laid out in this order, so it does not change when an admin call omits an upstream.
#[derive(Debug)]
pub struct RouteEntry {
    name: Arc<str>,
    pub(crate) versions: Box<[Version]>,
    /// Each version's weight, as the effective configuration sets it.
    pub(crate) weights: Box<[u32]>,
    pub(crate) schedule: Schedule,
    /// Sticky sessions, when configured.
    pub(crate) sticky: Option<Sticky>,
    /// Match rules, tried first; their versions index `versions`.
    pub(crate) rules: Box<[MatchRule]>,
    /// Where requests go when every server of the chosen version is down, ejected or drained.
    pub(crate) fallback: Option<Version>,
    /// Retry policy and budget.
    pub(crate) retry: RetryBudget,
    /// Header rules, path rewrite and access-log sampling.
    pub(crate) edge: RouteEdge,
}

/// One version of a route: an upstream group and which of its servers take new requests.
#[derive(Debug)]
pub(crate) struct Version {
    pub(crate) pool: Arc<Pool>,
    /// Indices into `pool.servers` of the servers not drained; empty when all are.
    pub(crate) active: Box<[usize]>,
    /// Metric handles and the rolling window of this route-version, resolved here rather than per request.
    pub(crate) telemetry: Arc<VersionTelemetry>,
}

/// A route-version: the pool, its servers not drained, and the route-version's telemetry handles.
fn version(state: &LiveState, route: &str, pool: &Arc<Pool>, telemetry: &Telemetry) -> Version {
    let mut active = Vec::with_capacity(pool.servers.len());
    for (i, server) in pool.servers.iter().enumerate() {
        let drained = state.is_drained(&pool.name, &server.addr.to_string());
        server.drained.store(drained, std::sync::atomic::Ordering::Relaxed);
        pool.refresh_gauge(server);
        if !drained {
            active.push(i);
        }
    }
    Version {
        pool: Arc::clone(pool),
        active: active.into_boxed_slice(),
        telemetry: telemetry.version(route, &pool.name),
    }
}

impl Table {
    /// Builds a table for `state`, carrying over the pools of `previous` whose upstream did not change, so a
    /// reload reconnects nothing.
    pub fn build(state: Arc<LiveState>, previous: Option<&Table>) -> Result<Table, String> {
        let config = Arc::clone(&state.effective);
        // The registry outlives tables: counters keep counting across reloads.
        let telemetry = previous.map_or_else(Telemetry::new, |t| Arc::clone(&t.telemetry));
        let mut pools = BTreeMap::new();
        for upstream in &config.upstreams {
            let reused = previous
                .and_then(|t| t.pools.get(upstream.name.as_str()))
                .filter(|p| p.same_as(upstream, &config.timeouts))
                .cloned();
            let pool = match reused {
                Some(pool) => pool,
                None => Arc::new(Pool::new(upstream, &config.timeouts, &telemetry)?),
            };
            pools.insert(Arc::clone(&pool.name), pool);
        }
        let mut routes = Vec::with_capacity(config.routes.len());
        let mut matchers = Vec::new();
        for (index, route) in config.routes.iter().enumerate() {
            let file_route = state.file.routes.iter().find(|r| r.name == route.name);
            let (names, weights) = layout_order(route, file_route);
            for (name, share) in names.iter().zip(sluice_config::shares(&weights)) {
                telemetry.set_weight(&route.name, name, share);
            }
            let mut versions = Vec::with_capacity(names.len());
            for name in &names {
                let pool = pools
                    .get(name.as_str())
                    .ok_or_else(|| format!("route `{}` names unknown upstream `{name}`", route.name))?;
                versions.push(version(&state, &route.name, pool, &telemetry));
            }
            let rules = route
                .matches
                .iter()
                .map(|rule| {
                    let version = names
                        .iter()
                        .position(|n| *n == rule.version)
                        .expect("layout_order includes every match rule's version");
                    compile_rule(rule, version).map_err(|e| format!("route `{}`: {e}", route.name))
                })
                .collect::<Result<Vec<_>, String>>()?;
            let sticky = route
                .sticky
                .as_ref()
                .map(|sticky| Sticky::new(&route.name, sticky, &weights))
                .transpose()?;
            let fallback = route
                .fallback
                .as_ref()
                .map(|name| {
                    let pool = pools
                        .get(name.as_str())
                        .ok_or_else(|| format!("route `{}` falls back to unknown upstream `{name}`", route.name))?;
                    Ok::<_, String>(version(&state, &route.name, pool, &telemetry))
                })
                .transpose()?;
            routes.push(RouteEntry {
                edge: RouteEdge::new(route)?,
                fallback,
                retry: RetryBudget::new(&route.retry),
                name: Arc::from(route.name.as_str()),
                versions: versions.into_boxed_slice(),
                schedule: Schedule::new(&weights),
                weights: weights.into_boxed_slice(),
                sticky,
                rules: rules.into_boxed_slice(),
            });
            if route.hosts.is_empty() {
                matchers.push((HostPattern::Any, route.path_prefix.clone(), index));
            }
            for host in &route.hosts {
                matchers.push((host.clone(), route.path_prefix.clone(), index));
            }
        }
        matchers.sort_by(|a, b| (b.0.specificity(), b.1.len(), a.2).cmp(&(a.0.specificity(), a.1.len(), b.2)));
        Ok(Table {
            state,
            routes: routes.into_boxed_slice(),
            routes_by_host: matchers.iter().any(|m| m.0 != HostPattern::Any),
            matchers: matchers.into_boxed_slice(),
            pools,
            telemetry,
            request_id: HeaderName::from_bytes(config.request_id.header.as_bytes())
                .map_err(|e| format!("request_id.header: {e}"))?,
        })
    }

    /// Whether route choice depends on the request's host (some route names hosts).
    pub(crate) fn routes_by_host(&self) -> bool {
        self.routes_by_host
    }

    /// The route for a request: the most specific host pattern first, then the longest path prefix.
    pub fn route_for(&self, host: Option<&str>, path: &str) -> Option<&RouteEntry> {
        self.matchers
            .iter()
            .find(|(pattern, prefix, _)| {
                path.starts_with(prefix.as_str())
                    && match host {
                        Some(h) => pattern.matches(h),
                        None => *pattern == HostPattern::Any,
                    }
            })
            .map(|&(_, _, index)| &self.routes[index])
    }

    /// The route named `name`, e.g. for the admin state view's [`RouteEntry::bucket_ranges`].
    pub fn route(&self, name: &str) -> Option<&RouteEntry> {
        self.routes.iter().find(|r| r.name() == name)
    }

    /// The upstream pools.
    pub(crate) fn pools(&self) -> impl Iterator<Item = &Arc<Pool>> {
        self.pools.values()
    }

    /// The state of `server` (as written in the config) of `upstream`: `active`, `drained`, `down` (failing health
    /// checks) or `ejected` (failing requests); `None` when there is no such server.
    pub fn server_state(&self, upstream: &str, server: &str) -> Option<&'static str> {
        let pool = self.pools.get(upstream)?;
        let index = pool.servers.iter().position(|s| s.addr.to_string() == server)?;
        Some(pool.state_of(index))
    }

    /// Metrics and rolling windows, shared by every table of the process.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// The version number of the state this table was built from.
    pub fn version(&self) -> u64 {
        self.state.version
    }

    /// The configuration in force: the file with runtime changes applied.
    pub fn config(&self) -> &Arc<Config> {
        &self.state.effective
    }

    /// The timeouts requests use.
    pub fn timeouts(&self) -> &Timeouts {
        &self.state.effective.timeouts
    }
}

impl Snapshot for Table {
    fn build(state: Arc<LiveState>, previous: Option<&Self>) -> Result<Self, String> {
        Table::build(state, previous)
    }

    fn state(&self) -> &Arc<LiveState> {
        &self.state
    }
}

impl RouteEntry {
    /// The route's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The route's name, shared (for log lines that outlive the table).
    pub(crate) fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// The version for `req`, and a `Set-Cookie` value when a sticky cookie is issued; `None` when no version has
    /// weight (and no match rule applies). In order: the first matching rule (even for a version of weight 0),
    /// then the sticky mode, then the smooth weighted schedule. `secure`: the request came over TLS.
    pub(crate) fn choose<B>(&self, req: &http::Request<B>, secure: bool) -> Option<(usize, Option<HeaderValue>)> {
        if let Some(version) = first_match(&self.rules, req) {
            return Some((version, None));
        }
        match &self.sticky {
            Some(sticky) => sticky.choose(req, self, secure),
            None => self.schedule.next().map(|v| (v, None)),
        }
    }

    /// The index of the version served by upstream `name`.
    pub(crate) fn version_index(&self, name: &str) -> Option<usize> {
        self.versions.iter().position(|v| &*v.pool.name == name)
    }

    /// In bucket mode, each version's bucket range (of 10,000) in bucket order, as `(upstream, range)`; versions of
    /// weight 0 are left out. `None` for routes without sticky buckets.
    pub fn bucket_ranges(&self) -> Option<Vec<(&str, std::ops::Range<u16>)>> {
        let layout = self.sticky.as_ref()?.layout()?;
        Some(
            layout
                .ranges()
                .into_iter()
                .map(|(v, range)| (&*self.versions[v].pool.name, range))
                .collect(),
        )
    }
}

/// The versions of `route` in layout order with their effective weights (see [`RouteEntry`]). `file_route` is the
/// same route as the file has it, before runtime weights.
fn layout_order(route: &Route, file_route: Option<&Route>) -> (Vec<String>, Vec<u32>) {
    let mut names: Vec<String> = Vec::with_capacity(route.weights.len() + route.matches.len());
    let file_names = file_route
        .into_iter()
        .flat_map(|r| r.weights.iter().map(|w| &w.upstream));
    let effective = route.weights.iter().map(|w| &w.upstream);
    let matched = route.matches.iter().map(|m| &m.version);
    for name in file_names.chain(effective).chain(matched) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let weights = names
        .iter()
        .map(|n| route.weights.iter().find(|w| w.upstream == *n).map_or(0, |w| w.weight))
        .collect();
    (names, weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Arc<LiveState> {
        let config = Arc::new(Config::from_toml(text, None).expect("valid test config"));
        Arc::new(LiveState {
            version: 1,
            published_at: std::time::SystemTime::now(),
            file: Arc::clone(&config),
            overrides: Default::default(),
            effective: config,
        })
    }

    const BASE: &str = r#"
        [listen]
        http = ["127.0.0.1:0"]
        [upstreams.blue]
        servers = ["127.0.0.1:9101"]
        [upstreams.canary]
        servers = ["127.0.0.1:9102"]
    "#;

    fn table(routes: &str) -> Table {
        Table::build(config(&format!("{BASE}{routes}")), None).unwrap()
    }

    fn matched(t: &Table, host: Option<&str>, path: &str) -> Option<String> {
        t.route_for(host, path).map(|r| r.name().to_owned())
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table(
            r#"
            [[routes]]
            name = "root"
            weights = { blue = 1 }
            [[routes]]
            name = "api"
            path_prefix = "/api"
            weights = { blue = 1 }
        "#,
        );
        assert_eq!(matched(&t, Some("x"), "/api/users").as_deref(), Some("api"));
        assert_eq!(matched(&t, Some("x"), "/apple").as_deref(), Some("root"));
        assert_eq!(matched(&t, None, "/").as_deref(), Some("root"));
    }

    #[test]
    fn exact_host_beats_wildcard_beats_any() {
        let t = table(
            r#"
            [[routes]]
            name = "any"
            weights = { blue = 1 }
            [[routes]]
            name = "wild"
            hosts = ["*.example.com"]
            weights = { blue = 1 }
            [[routes]]
            name = "exact"
            hosts = ["api.example.com"]
            weights = { blue = 1 }
        "#,
        );
        assert_eq!(matched(&t, Some("api.example.com"), "/").as_deref(), Some("exact"));
        assert_eq!(matched(&t, Some("www.example.com"), "/").as_deref(), Some("wild"));
        assert_eq!(matched(&t, Some("example.com"), "/").as_deref(), Some("any"));
    }

    #[test]
    fn no_match_is_none() {
        let t = table(
            r#"
            [[routes]]
            name = "api"
            hosts = ["api.example.com"]
            path_prefix = "/api"
            weights = { blue = 1 }
        "#,
        );
        assert_eq!(matched(&t, Some("api.example.com"), "/other"), None);
        assert_eq!(matched(&t, Some("other.com"), "/api"), None);
        assert_eq!(matched(&t, None, "/api"), None);
    }

    #[test]
    fn unchanged_pools_are_carried_over() {
        let first = table("[[routes]]\nname = \"r\"\nweights = { blue = 1, canary = 1 }\n");
        let text = format!(
            "{}[[routes]]\nname = \"r\"\nweights = {{ blue = 5, canary = 1 }}\n",
            BASE.replace("9102", "9109")
        );
        let second = Table::build(config(&text), Some(&first)).unwrap();
        assert!(Arc::ptr_eq(&first.pools["blue"], &second.pools["blue"]));
        assert!(!Arc::ptr_eq(&first.pools["canary"], &second.pools["canary"]));
    }
}
