//! TLS termination: certificates chosen by SNI from an in-memory set, checked when loaded, reloaded when their
//! files or the config change; and the `http` → `https` redirect of routes that ask for it.

mod certificates;
mod error;
mod load;
pub(crate) mod redirect;
mod reloader;
mod sni;

#[cfg(test)]
mod tests;

pub use certificates::{Certificates, ReloadError, TlsStatus};
pub use error::TlsError;
pub use load::CertificateInfo;
pub use reloader::CertificateReloader;
