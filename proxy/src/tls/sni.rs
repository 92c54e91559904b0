//! One immutable set of loaded certificates and the SNI lookup over it: exact names, then `*.suffix` wildcards
//! (longest suffix first), then the first entry as the default.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use sluice_config::HostPattern;

use super::load::{CertificateInfo, Loaded};

/// Certificates by name, built once per (re)load and swapped whole.
#[derive(Debug)]
pub(crate) struct CertSet {
    exact: HashMap<Box<str>, Arc<CertifiedKey>>,
    /// Keyed by the suffix with its leading dot, e.g. `.example.com`.
    wildcard: HashMap<Box<str>, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
    infos: Vec<CertificateInfo>,
}

impl CertSet {
    /// A set from entries in file order; `None` when there are none. A name listed twice keeps its first entry
    /// (validation refuses that before it gets here).
    pub(crate) fn new(loaded: Vec<Loaded>, hosts: &[Vec<HostPattern>]) -> Option<CertSet> {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (entry, patterns) in loaded.iter().zip(hosts) {
            for pattern in patterns {
                let (map, name) = match pattern {
                    HostPattern::Exact(name) => (&mut exact, name),
                    HostPattern::Suffix(suffix) => (&mut wildcard, suffix),
                    HostPattern::Any => continue,
                };
                map.entry(name.as_str().into())
                    .or_insert_with(|| Arc::clone(&entry.key));
            }
        }
        let default = Arc::clone(&loaded.first()?.key);
        Some(CertSet {
            exact,
            wildcard,
            default,
            infos: loaded.into_iter().map(|l| l.info).collect(),
        })
    }

    /// The certificate for a client hello's server name: no name, or a name no entry lists, gets the default.
    pub(crate) fn resolve(&self, server_name: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = server_name else {
            return &self.default;
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        if let Some(key) = self.exact.get(&*name) {
            return key;
        }
        if !self.wildcard.is_empty() {
            // `a.b.example.com` tries `.b.example.com`, then `.example.com`, then `.com`.
            for (at, _) in name.match_indices('.') {
                if let Some(key) = self.wildcard.get(&name[at..]) {
                    return key;
                }
            }
        }
        &self.default
    }

    /// What each entry serves, in file order.
    pub(crate) fn infos(&self) -> &[CertificateInfo] {
        &self.infos
    }
}
