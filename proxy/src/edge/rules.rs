//! A route's edge settings compiled once per table: header rules with their templates, the path rewrite, and the
//! access-log sampling share. Literal header values are built here, not per request.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use sluice_config::{HeaderRules, Route, Template, TemplatePart};

use super::rewrite::rewrite_path;

/// What a template can refer to, for one request.
#[derive(Debug)]
pub(crate) struct Vars<'a> {
    pub(crate) client_ip: &'a HeaderValue,
    pub(crate) request_id: &'a HeaderValue,
    pub(crate) version: &'a str,
    pub(crate) route: &'a str,
}

#[derive(Debug)]
enum Value {
    Fixed(HeaderValue),
    Template(Vec<TemplatePart>),
}

impl Value {
    fn compile(template: &Template) -> Result<Value, String> {
        match template.as_literal() {
            Some(text) => HeaderValue::from_str(text)
                .map(Value::Fixed)
                .map_err(|e| format!("header value {text:?}: {e}")),
            None => Ok(Value::Template(template.parts.clone())),
        }
    }

    fn render(&self, vars: &Vars<'_>) -> Option<HeaderValue> {
        match self {
            Value::Fixed(value) => Some(value.clone()),
            Value::Template(parts) => {
                let mut out: Vec<u8> = Vec::with_capacity(64);
                for part in parts {
                    match part {
                        TemplatePart::Literal(text) => out.extend_from_slice(text.as_bytes()),
                        TemplatePart::ClientIp => out.extend_from_slice(vars.client_ip.as_bytes()),
                        TemplatePart::RequestId => out.extend_from_slice(vars.request_id.as_bytes()),
                        TemplatePart::Version => out.extend_from_slice(vars.version.as_bytes()),
                        TemplatePart::Route => out.extend_from_slice(vars.route.as_bytes()),
                    }
                }
                HeaderValue::from_bytes(&out).ok()
            }
        }
    }
}

/// One direction's rules, applied remove → set → add.
#[derive(Debug, Default)]
pub(crate) struct Rules {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, Value)>,
    add: Vec<(HeaderName, Value)>,
}

impl Rules {
    fn compile(remove: &[String], set: &[(String, Template)], add: &[(String, Template)]) -> Result<Rules, String> {
        let name = |n: &str| HeaderName::from_bytes(n.as_bytes()).map_err(|e| format!("header name {n:?}: {e}"));
        let pairs = |list: &[(String, Template)]| -> Result<Vec<(HeaderName, Value)>, String> {
            list.iter().map(|(n, t)| Ok((name(n)?, Value::compile(t)?))).collect()
        };
        Ok(Rules {
            remove: remove.iter().map(|n| name(n)).collect::<Result<_, _>>()?,
            set: pairs(set)?,
            add: pairs(add)?,
        })
    }

    /// Whether there is nothing to do (the common case costs one branch).
    pub(crate) fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    pub(crate) fn apply(&self, headers: &mut HeaderMap, vars: &Vars<'_>) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            if let Some(v) = value.render(vars) {
                headers.insert(name.clone(), v);
            }
        }
        for (name, value) in &self.add {
            if let Some(v) = value.render(vars) {
                headers.append(name.clone(), v);
            }
        }
    }
}

/// A route's compiled edge settings.
#[derive(Debug)]
pub(crate) struct RouteEdge {
    prefix: String,
    strip: bool,
    replacement: Option<String>,
    pub(crate) log_sample: f64,
    pub(crate) request: Rules,
    pub(crate) response: Rules,
}

impl RouteEdge {
    pub(crate) fn new(route: &Route) -> Result<RouteEdge, String> {
        let HeaderRules {
            request_set,
            request_add,
            request_remove,
            response_set,
            response_add,
            response_remove,
        } = &route.headers;
        Ok(RouteEdge {
            prefix: route.path_prefix.clone(),
            strip: route.strip_prefix,
            replacement: route.rewrite_prefix.clone(),
            log_sample: route.access_log_sample,
            request: Rules::compile(request_remove, request_set, request_add)
                .map_err(|e| format!("route `{}` request headers: {e}", route.name))?,
            response: Rules::compile(response_remove, response_set, response_add)
                .map_err(|e| format!("route `{}` response headers: {e}", route.name))?,
        })
    }

    /// The path and query to send upstream, when the route rewrites it.
    pub(crate) fn rewrite(&self, path_and_query: &str) -> Option<String> {
        (self.strip || self.replacement.is_some())
            .then(|| rewrite_path(path_and_query, &self.prefix, self.strip, self.replacement.as_deref()))
    }

    /// Whether this request goes to the access log (sampling per route).
    pub(crate) fn sampled(&self) -> bool {
        self.log_sample >= 1.0 || (self.log_sample > 0.0 && rand::random::<f64>() < self.log_sample)
    }
}
