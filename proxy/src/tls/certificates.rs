//! The live certificate set: loaded at startup, swapped whole on reload, resolved per handshake from memory.
//!
//! It lives beside the route table, not in it: the table is rebuilt by every weight change, and a weight change must
//! never fail (or read a file) because a certificate on disk is broken right now. Only certificate reloads touch
//! this, and a failed one keeps the previous set serving.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, version};
use sluice_config::Tls;

use super::error::TlsError;
use super::load::{self, CertificateInfo};
use super::sni::CertSet;

/// The certificates `https` listeners serve, chosen by SNI.
#[derive(Debug)]
pub struct Certificates {
    current: ArcSwap<CertSet>,
    provider: Arc<CryptoProvider>,
    status: Mutex<Status>,
}

#[derive(Debug, Default)]
struct Status {
    loaded_at: Option<SystemTime>,
    reloads_ok: u64,
    reloads_failed: u64,
    last_error: Option<ReloadError>,
}

/// A reload that was refused; the certificates before it kept serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadError {
    /// When it was tried.
    pub at: SystemTime,
    /// What asked for it: `certificate watcher`, `SIGHUP`, `file watcher`, the admin API caller.
    pub trigger: String,
    /// Why, naming the entry and the file.
    pub message: String,
}

/// What the admin state shows about TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsStatus {
    /// The entries serving now, in file order.
    pub certificates: Vec<CertificateInfo>,
    /// When the serving set was loaded.
    pub loaded_at: SystemTime,
    /// Reloads that published a new set since start.
    pub reloads_ok: u64,
    /// Reloads refused since start.
    pub reloads_failed: u64,
    /// The last reload's error; `None` once a later reload succeeds.
    pub last_error: Option<ReloadError>,
}

impl Certificates {
    /// Reads and checks every entry; any failure refuses the whole set (startup treats it as a config error).
    pub fn load(tls: &Tls, config_file: Option<&Path>) -> Result<Certificates, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let set = build(tls, &provider, config_file)?;
        Ok(Certificates {
            current: ArcSwap::from_pointee(set),
            provider,
            status: Mutex::new(Status {
                loaded_at: Some(SystemTime::now()),
                ..Status::default()
            }),
        })
    }

    /// Checks every entry as [`Certificates::load`] would, without keeping anything: for `sluice check`.
    pub fn check(tls: &Tls, config_file: Option<&Path>) -> Result<Vec<CertificateInfo>, TlsError> {
        Certificates::load(tls, config_file).map(|c| c.current.load().infos().to_vec())
    }

    /// Re-reads the files `tls` names and serves them from the next handshake; on failure the current set keeps
    /// serving and the error is kept for [`Certificates::status`]. Reads files: call it off the async workers.
    pub fn reload(&self, tls: &Tls, config_file: Option<&Path>, trigger: &str) -> Result<(), TlsError> {
        // Held while building too, so that two reloads publish in the order they read the files.
        let mut status = self.lock();
        match build(tls, &self.provider, config_file) {
            Ok(set) => {
                self.current.store(Arc::new(set));
                status.loaded_at = Some(SystemTime::now());
                status.reloads_ok += 1;
                status.last_error = None;
                Ok(())
            }
            Err(err) => {
                status.reloads_failed += 1;
                status.last_error = Some(ReloadError {
                    at: SystemTime::now(),
                    trigger: trigger.to_owned(),
                    message: err.to_string(),
                });
                Err(err)
            }
        }
    }

    /// What is serving and how the last reload went.
    pub fn status(&self) -> TlsStatus {
        let status = self.lock();
        TlsStatus {
            certificates: self.current.load().infos().to_vec(),
            loaded_at: status.loaded_at.unwrap_or(SystemTime::UNIX_EPOCH),
            reloads_ok: status.reloads_ok,
            reloads_failed: status.reloads_failed,
            last_error: status.last_error.clone(),
        }
    }

    /// A rustls server configuration resolving through `self`: TLS 1.3 and 1.2, ALPN `h2` then `http/1.1`,
    /// stateless session tickets. Built once; reloads change what it resolves, not the configuration.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&version::TLS13, &version::TLS12])
            .expect("aws-lc-rs supports TLS 1.3 and 1.2")
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        match rustls::crypto::aws_lc_rs::Ticketer::new() {
            Ok(ticketer) => config.ticketer = ticketer,
            Err(err) => tracing::warn!("no TLS session tickets (clients resume by session id only): {err}"),
        }
        Arc::new(config)
    }

    /// The certificate a handshake naming `server_name` gets.
    #[cfg(test)]
    pub(super) fn resolve_name(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        Arc::clone(self.current.load().resolve(server_name))
    }

    fn lock(&self) -> MutexGuard<'_, Status> {
        // Status is plain data written in one place; a panic elsewhere cannot leave it half-updated.
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.current.load().resolve(hello.server_name())))
    }
}

/// Loads every entry of `tls` into a new set.
fn build(tls: &Tls, provider: &CryptoProvider, config_file: Option<&Path>) -> Result<CertSet, TlsError> {
    let now = SystemTime::now();
    let loaded = tls
        .certificates
        .iter()
        .enumerate()
        .map(|(i, entry)| load::load(i, entry, provider, now, config_file))
        .collect::<Result<Vec<_>, _>>()?;
    let hosts: Vec<_> = tls.certificates.iter().map(|c| c.hosts.clone()).collect();
    CertSet::new(loaded, &hosts).ok_or_else(|| {
        let file = config_file.unwrap_or(Path::new("<config>"));
        TlsError::new(None, "tls.certificates".to_owned(), file, "no certificates to serve")
    })
}
