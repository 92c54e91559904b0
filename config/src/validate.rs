//! From the file to the model: one check per rule, each error pointing at the offending text.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::address::{check_name, parse_host_pattern, parse_listen, parse_server};
use crate::document::{Document, nearest};
use crate::duration;
use crate::error::ConfigError;
use crate::file::{AdminFile, ListenFile, RouteFile, RuntimeFile, TimeoutsFile, UpstreamFile};
use crate::key_path::{child, index};
use crate::model::{Admin, Config, HostPattern, Listen, Route, Runtime, ServerAddr, Timeouts, Upstream, Weight};

mod edge;
mod resilience;
mod rollout;
mod sticky;
#[cfg(test)]
mod tests;
mod tls;
mod transport;

impl Config {
    /// Parses and validates configuration text; `source` is the file it came from, used in errors and kept in
    /// [`Config::source`].
    pub fn from_toml(text: &str, source: Option<&Path>) -> Result<Config, ConfigError> {
        Config::try_from(Document::parse(text, source)?)
    }

    /// Reads, parses and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text, Some(path))
    }
}

impl TryFrom<Document<'_>> for Config {
    type Error = ConfigError;

    fn try_from(doc: Document<'_>) -> Result<Config, ConfigError> {
        let listen = doc.listen(doc.file.listen.as_ref())?;
        let tls = match &doc.file.listen {
            Some(listen_file) => doc.tls(doc.file.tls.as_ref(), listen_file, &listen)?,
            None => None,
        };
        doc.check_redirects(doc.file.routes.as_ref(), &listen)?;
        let upstreams = doc.upstreams(&doc.file.upstreams)?;
        let routes = doc.routes(doc.file.routes.as_ref(), &upstreams)?;
        let runtime = doc.runtime(&doc.file.runtime)?;
        let timeouts = doc.timeouts(&doc.file.timeouts)?;
        let admin = doc.file.admin.as_ref().map(|admin| doc.admin(admin)).transpose()?;
        let limits = doc.limits(&doc.file.limits)?;
        let trusted_proxies = doc.trusted_proxies(doc.file.trusted_proxies.as_ref())?;
        let access_log = doc
            .file
            .access_log
            .as_ref()
            .map(|log| doc.access_log(log))
            .transpose()?;
        let request_id = doc.request_id(doc.file.request_id.as_ref())?;
        Ok(Config {
            source: doc.source.path.map(Path::to_path_buf),
            listen,
            upstreams,
            routes,
            runtime,
            timeouts,
            admin,
            limits,
            trusted_proxies,
            access_log,
            request_id,
            tls,
        })
    }
}

impl Document<'_> {
    fn listen(&self, listen: Option<&Spanned<ListenFile>>) -> Result<Listen, ConfigError> {
        let Some(listen) = listen else {
            return Err(self.error(
                0..0,
                "listen",
                "missing `[listen]`; add `[listen]` with `http = [\"127.0.0.1:8080\"]`",
            ));
        };
        let (http, https) = self.listen_addresses(listen)?;
        let proxy_protocol = listen.get_ref().proxy_protocol.as_ref().is_some_and(|b| *b.get_ref());
        Ok(Listen {
            http,
            https,
            proxy_protocol,
        })
    }

    fn upstreams(
        &self,
        upstreams: &BTreeMap<Spanned<String>, Spanned<UpstreamFile>>,
    ) -> Result<Vec<Upstream>, ConfigError> {
        if upstreams.is_empty() {
            return Err(self.error(
                0..0,
                "upstreams",
                "no upstreams; add `[upstreams.NAME]` with `servers = [\"host:port\"]`",
            ));
        }
        let mut out = Vec::with_capacity(upstreams.len());
        for (name, upstream) in upstreams {
            let key = child("upstreams", name.get_ref());
            check_name(name.get_ref()).map_err(|message| self.error(name.span(), &key, message))?;
            let servers = self.servers(&key, upstream)?;
            let health = upstream
                .get_ref()
                .health
                .as_ref()
                .map(|health| self.health(&key, health))
                .transpose()?;
            let outlier = self.outlier(&key, &upstream.get_ref().outlier)?;
            let (protocol, tls) = self.transport(&key, upstream.get_ref())?;
            out.push(Upstream {
                name: name.get_ref().clone(),
                servers,
                health,
                outlier,
                protocol,
                tls,
            });
        }
        Ok(out)
    }

    fn servers(&self, upstream_key: &str, upstream: &Spanned<UpstreamFile>) -> Result<Vec<ServerAddr>, ConfigError> {
        let key = child(upstream_key, "servers");
        let Some(servers) = &upstream.get_ref().servers else {
            return Err(self.error(
                upstream.span(),
                key,
                "missing `servers`; add e.g. `servers = [\"127.0.0.1:9101\"]`",
            ));
        };
        if servers.get_ref().is_empty() {
            return Err(self.error(
                servers.span(),
                key,
                "needs at least one server, e.g. `[\"127.0.0.1:9101\"]`",
            ));
        }
        let mut out: Vec<ServerAddr> = Vec::with_capacity(servers.get_ref().len());
        for (i, text) in servers.get_ref().iter().enumerate() {
            let key = index(&key, i);
            let server = parse_server(text.get_ref()).map_err(|message| self.error(text.span(), &key, message))?;
            if let Some(first) = out.iter().position(|s| *s == server) {
                let message = format!("`{server}` is already listed as servers[{first}]; list each server once");
                return Err(self.error(text.span(), key, message));
            }
            out.push(server);
        }
        Ok(out)
    }

    fn routes(
        &self,
        routes: Option<&Spanned<Vec<Spanned<RouteFile>>>>,
        upstreams: &[Upstream],
    ) -> Result<Vec<Route>, ConfigError> {
        let no_routes = "no routes; add at least one `[[routes]]` with `name` and `weights`";
        let Some(routes) = routes else {
            return Err(self.error(0..0, "routes", no_routes));
        };
        if routes.get_ref().is_empty() {
            return Err(self.error(routes.span(), "routes", no_routes));
        }
        let mut out: Vec<Route> = Vec::with_capacity(routes.get_ref().len());
        // (host pattern, path prefix) → index of the route that takes it.
        let mut taken: HashMap<(HostPattern, String), usize> = HashMap::new();
        for (i, route) in routes.get_ref().iter().enumerate() {
            let key = index("routes", i);
            let parsed = self.route(&key, route, upstreams)?;
            if let Some(first) = out.iter().position(|r| r.name == parsed.name) {
                let name = route.get_ref().name.as_ref().map_or(route.span(), Spanned::span);
                let message = format!(
                    "route name `{}` is already used by routes[{first}]; names must be unique",
                    parsed.name
                );
                return Err(self.error(name, child(&key, "name"), message));
            }
            let any = [HostPattern::Any];
            let patterns = if parsed.hosts.is_empty() {
                &any[..]
            } else {
                &parsed.hosts[..]
            };
            for (k, pattern) in patterns.iter().enumerate() {
                let first = *taken.entry((pattern.clone(), parsed.path_prefix.clone())).or_insert(i);
                if first == i {
                    continue;
                }
                let (span, key) = match (&route.get_ref().hosts, &route.get_ref().path_prefix) {
                    (Some(hosts), _) => (hosts.get_ref()[k].span(), index(&child(&key, "hosts"), k)),
                    (None, Some(prefix)) => (prefix.span(), child(&key, "path_prefix")),
                    (None, None) => (route.span(), key),
                };
                let message = format!(
                    "routes `{}` (routes[{first}]) and `{}` both take host `{pattern}` with path_prefix `{}`, so the \
                     proxy could not choose between them; change the hosts or the path_prefix of one",
                    out[first].name, parsed.name, parsed.path_prefix
                );
                return Err(self.error(span, key, message));
            }
            out.push(parsed);
        }
        Ok(out)
    }

    fn route(&self, key: &str, route: &Spanned<RouteFile>, upstreams: &[Upstream]) -> Result<Route, ConfigError> {
        let file = route.get_ref();
        let name_key = child(key, "name");
        let Some(name) = &file.name else {
            return Err(self.error(route.span(), name_key, "missing `name`; add e.g. `name = \"web\"`"));
        };
        check_name(name.get_ref()).map_err(|message| self.error(name.span(), &name_key, message))?;

        let hosts_key = child(key, "hosts");
        let mut hosts: Vec<HostPattern> = Vec::new();
        if let Some(patterns) = &file.hosts {
            if patterns.get_ref().is_empty() {
                let message = "is empty, which would match no request; list host patterns, or leave `hosts` out to \
                               match any host";
                return Err(self.error(patterns.span(), hosts_key, message));
            }
            for (k, text) in patterns.get_ref().iter().enumerate() {
                let key = index(&hosts_key, k);
                let pattern =
                    parse_host_pattern(text.get_ref()).map_err(|message| self.error(text.span(), &key, message))?;
                if let Some(first) = hosts.iter().position(|h| *h == pattern) {
                    let message = format!("`{pattern}` is already listed as hosts[{first}]; list each pattern once");
                    return Err(self.error(text.span(), key, message));
                }
                hosts.push(pattern);
            }
        }

        let path_prefix = match &file.path_prefix {
            None => "/".to_owned(),
            Some(prefix) => {
                let text = prefix.get_ref();
                let problem = if !text.starts_with('/') {
                    Some("must start with `/`")
                } else if text.contains(['?', '#']) || text.contains(char::is_whitespace) {
                    Some("is matched against the request path, so it cannot contain `?`, `#` or whitespace")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    let message = format!("`{text}` {problem}; e.g. \"/\" or \"/api/\"");
                    return Err(self.error(prefix.span(), child(key, "path_prefix"), message));
                }
                text.clone()
            }
        };

        let weights = self.weights(key, route, upstreams)?;
        let sticky = file
            .sticky
            .as_ref()
            .map(|sticky| self.sticky(key, name.get_ref(), sticky))
            .transpose()?;
        let matches = self.matches(key, file.matches.as_ref(), upstreams)?;
        let fallback = self.fallback(key, file.fallback.as_ref(), upstreams)?;
        let retry = self.retry(key, &file.retry)?;
        let rollout = file
            .rollout
            .as_ref()
            .map(|rollout| self.rollout(key, rollout, &weights))
            .transpose()?;
        let edge = self.route_edge(key, file, &path_prefix)?;
        Ok(Route {
            name: name.get_ref().clone(),
            hosts,
            path_prefix,
            weights,
            sticky,
            matches,
            fallback,
            retry,
            rollout,
            access_log_sample: edge.access_log_sample,
            strip_prefix: edge.strip_prefix,
            rewrite_prefix: edge.rewrite_prefix,
            headers: edge.headers,
            redirect_http_to_https: file.redirect_http_to_https.as_ref().is_some_and(|b| *b.get_ref()),
        })
    }

    fn weights(
        &self,
        key: &str,
        route: &Spanned<RouteFile>,
        upstreams: &[Upstream],
    ) -> Result<Vec<Weight>, ConfigError> {
        let key = child(key, "weights");
        let example = "e.g. `weights = { blue = 90, canary = 10 }`";
        let Some(weights) = &route.get_ref().weights else {
            return Err(self.error(route.span(), key, format!("missing `weights`; add {example}")));
        };
        if weights.get_ref().is_empty() {
            return Err(self.error(
                weights.span(),
                key,
                format!("is empty; name at least one upstream, {example}"),
            ));
        }
        // Serde hands the table over sorted by name; the model keeps the order the operator wrote.
        let mut entries: Vec<_> = weights.get_ref().iter().collect();
        entries.sort_by_key(|(name, _)| name.span().start);
        let mut out = Vec::with_capacity(entries.len());
        for (name, weight) in entries {
            let key = child(&key, name.get_ref());
            if !upstreams.iter().any(|u| u.name == *name.get_ref()) {
                let message = unknown_upstream(name.get_ref(), upstreams);
                return Err(self.error(name.span(), key, message));
            }
            let value = *weight.get_ref();
            let weight = u32::try_from(value).map_err(|_| {
                let message = if value < 0 {
                    format!("weight {value} is negative; weights are non-negative integers, e.g. 90")
                } else {
                    format!("weight {value} is too large; weights are at most {}", u32::MAX)
                };
                self.error(weight.span(), &key, message)
            })?;
            out.push(Weight {
                upstream: name.get_ref().clone(),
                weight,
            });
        }
        if out.iter().all(|w| w.weight == 0) {
            let message = format!(
                "every weight is 0, so the route could send traffic nowhere; give at least one a weight > 0, {example}"
            );
            return Err(self.error(weights.span(), key, message));
        }
        Ok(out)
    }

    fn runtime(&self, runtime: &RuntimeFile) -> Result<Runtime, ConfigError> {
        let Some(workers) = &runtime.workers else {
            return Ok(Runtime { workers: None });
        };
        let value = *workers.get_ref();
        let workers = usize::try_from(value).ok().and_then(NonZeroUsize::new).ok_or_else(|| {
            let message = format!("{value} workers; use at least 1, or leave `workers` out for one per core");
            self.error(workers.span(), "runtime.workers", message)
        })?;
        Ok(Runtime { workers: Some(workers) })
    }

    fn timeouts(&self, timeouts: &TimeoutsFile) -> Result<Timeouts, ConfigError> {
        let defaults = Timeouts::default();
        let field = |name: &str, text: &Option<Spanned<String>>, default: Duration| match text {
            None => Ok(default),
            Some(text) => duration::parse_positive(text.get_ref())
                .map_err(|why| self.error(text.span(), child("timeouts", name), why.to_string())),
        };
        Ok(Timeouts {
            connect: field("connect", &timeouts.connect, defaults.connect)?,
            response_header: field("response_header", &timeouts.response_header, defaults.response_header)?,
            idle: field("idle", &timeouts.idle, defaults.idle)?,
            drain: field("drain", &timeouts.drain, defaults.drain)?,
        })
    }
}

impl Document<'_> {
    fn admin(&self, admin: &Spanned<AdminFile>) -> Result<Admin, ConfigError> {
        let Some(listen) = &admin.get_ref().listen else {
            return Err(self.error(
                admin.span(),
                "admin.listen",
                "missing `listen`; add e.g. `listen = \"127.0.0.1:9901\"`",
            ));
        };
        let addr =
            parse_listen(listen.get_ref()).map_err(|message| self.error(listen.span(), "admin.listen", message))?;
        let path = |key: &str, value: &Option<Spanned<String>>| -> Result<Option<PathBuf>, ConfigError> {
            let Some(value) = value else { return Ok(None) };
            if value.get_ref().trim().is_empty() {
                return Err(self.error(value.span(), child("admin", key), "an empty path; give a file name"));
            }
            let relative = Path::new(value.get_ref());
            // Relative paths mean "beside the config file", wherever sluice was started from.
            let dir = self.source.path.and_then(Path::parent).unwrap_or(Path::new(""));
            Ok(Some(dir.join(relative)))
        };
        let token_file = path("token_file", &admin.get_ref().token_file)?;
        if token_file.is_none() && !addr.ip().is_loopback() {
            let message = format!(
                "`{addr}` is reachable from other hosts, so the admin API needs a bearer token: add \
                 `token_file = \"admin.token\"`, or listen on 127.0.0.1"
            );
            return Err(self.error(listen.span(), "admin.token_file", message));
        }
        let state_file = path("state_file", &admin.get_ref().state_file)?;
        Ok(Admin {
            listen: addr,
            token_file,
            state_file,
        })
    }
}

/// The message for a weight naming an upstream that does not exist.
fn unknown_upstream(name: &str, upstreams: &[Upstream]) -> String {
    let names: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
    let mut message = format!("unknown upstream `{name}`");
    match nearest(name, &names) {
        Some(near) => message.push_str(&format!("; did you mean `{near}`? upstreams: ")),
        None => message.push_str("; upstreams: "),
    }
    message.push_str(&names.join(", "));
    message
}
