//! Reading one `[[tls.certificates]]` entry's PEM files and checking them before they can serve: the chain parses,
//! the leaf has not expired, the key parses and matches the leaf.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject as _};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sluice_config::{HostPattern, TlsCertificate};
use x509_parser::prelude::{GeneralName, X509Certificate, parse_x509_certificate};

use super::error::TlsError;

/// One entry, checked and ready to serve.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) info: CertificateInfo,
}

/// What an entry serves, as `sluice check` and the admin state show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The entry's `hosts`, as written (`*.example.com` for wildcards).
    pub hosts: Vec<String>,
    /// The certificate file.
    pub cert: std::path::PathBuf,
    /// The key file.
    pub key: std::path::PathBuf,
    /// The leaf's subject, e.g. `CN=example.com`.
    pub subject: String,
    /// The leaf's DNS names (subject alternative names).
    pub names: Vec<String>,
    /// When the leaf expires.
    pub not_after: SystemTime,
    /// Hosts of the entry the certificate does not name: clients that check names will refuse it for them.
    pub warnings: Vec<String>,
}

/// Reads and checks entry `index` of `[[tls.certificates]]`; errors name `config_file` and the key path.
pub(crate) fn load(
    index: usize,
    entry: &TlsCertificate,
    provider: &CryptoProvider,
    now: SystemTime,
    config_file: Option<&Path>,
) -> Result<Loaded, TlsError> {
    let cert_key = format!("tls.certificates[{index}].cert");
    let key_key = format!("tls.certificates[{index}].key");
    let cert_error = |problem: String| TlsError::new(config_file, cert_key.clone(), &entry.cert, problem);
    let key_error = |problem: String| TlsError::new(config_file, key_key.clone(), &entry.key, problem);

    let bytes = std::fs::read(&entry.cert).map_err(|e| cert_error(format!("cannot read the certificate: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(format!("not a PEM certificate file: {}", pem_problem(&e))))?;
    if chain.is_empty() {
        return Err(cert_error(
            "no certificate in it; expected PEM blocks `-----BEGIN CERTIFICATE-----`, the leaf first".to_owned(),
        ));
    }
    let mut leaf = None;
    for (i, der) in chain.iter().enumerate() {
        let parsed = parse_x509_certificate(der)
            .map_err(|e| cert_error(format!("certificate {} of the chain is not valid X.509: {e}", i + 1)))?
            .1;
        if i == 0 {
            leaf = Some(parsed);
        }
    }
    let leaf = leaf.expect("the chain is not empty");
    let not_after = leaf.validity().not_after;
    let expires = UNIX_EPOCH + Duration::from_secs(u64::try_from(not_after.timestamp()).unwrap_or(0));
    if expires <= now {
        return Err(cert_error(format!(
            "the certificate expired on {not_after}; renew it (the file is re-read when it changes)"
        )));
    }

    let bytes = std::fs::read(&entry.key).map_err(|e| key_error(format!("cannot read the private key: {e}")))?;
    let der = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => key_error(
            "no private key in it; expected a PEM block `-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or \
             `EC PRIVATE KEY`"
                .to_owned(),
        ),
        other => key_error(format!("not a PEM private key: {}", pem_problem(&other))),
    })?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| key_error(format!("the private key cannot be used: {e}")))?;
    let certified = CertifiedKey::new(chain.clone(), signing);
    match certified.keys_match() {
        // A key type that cannot show its public half is taken on trust, as rustls itself does.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(key_error(format!(
                "the private key does not match the certificate in {}",
                entry.cert.display()
            )));
        }
        Err(other) => {
            return Err(key_error(format!(
                "cannot check the key against the certificate: {other}"
            )));
        }
    }

    let names = dns_names(&leaf);
    let hosts: Vec<String> = entry.hosts.iter().map(ToString::to_string).collect();
    let warnings = entry
        .hosts
        .iter()
        .enumerate()
        .filter(|(_, host)| !names.iter().any(|name| covers(name, host)))
        .map(|(k, host)| {
            format!(
                "tls.certificates[{index}].hosts[{k}]: `{host}` is not among the certificate's names ({}); clients \
                 that check names will refuse it",
                names.join(", ")
            )
        })
        .collect();
    Ok(Loaded {
        key: Arc::new(certified),
        info: CertificateInfo {
            hosts,
            cert: entry.cert.clone(),
            key: entry.key.clone(),
            subject: leaf.subject().to_string(),
            names,
            not_after: expires,
            warnings,
        },
    })
}

/// The leaf's DNS subject alternative names, lower-cased; its common names when it has none (old certificates).
fn dns_names(leaf: &X509Certificate<'_>) -> Vec<String> {
    let mut names: Vec<String> = match leaf.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some(name.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names = leaf
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .map(str::to_ascii_lowercase)
            .collect();
    }
    names
}

/// Whether certificate name `name` (possibly `*.example.com`) is valid for every name `host` stands for.
fn covers(name: &str, host: &HostPattern) -> bool {
    match host {
        HostPattern::Exact(host) => {
            name == host
                || name.strip_prefix('*').is_some_and(|suffix| {
                    // A certificate wildcard stands for exactly one label.
                    host.strip_suffix(suffix)
                        .is_some_and(|label| !label.is_empty() && !label.contains('.'))
                })
        }
        HostPattern::Suffix(suffix) => name.strip_prefix('*') == Some(suffix.as_str()),
        HostPattern::Any => false,
    }
}

/// pki-types' PEM errors, in words.
fn pem_problem(err: &pem::Error) -> String {
    match err {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!("a block has no end line `{}`", String::from_utf8_lossy(end_marker))
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("malformed begin line `{}`", String::from_utf8_lossy(line))
        }
        pem::Error::Base64Decode(why) => format!("bad base64 inside a block ({why})"),
        other => other.to_string(),
    }
}
