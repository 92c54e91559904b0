//! Why a certificate entry could not be used: which entry, which file, what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// A `[[tls.certificates]]` entry whose files cannot serve: unreadable, not PEM, a key that does not match its
/// certificate, an expired certificate. Startup refuses it like any config error; a reload keeps the old
/// certificates and records it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TlsError {
    config_file: Option<PathBuf>,
    key_path: String,
    file: PathBuf,
    problem: String,
}

impl TlsError {
    pub(crate) fn new(config_file: Option<&Path>, key_path: String, file: &Path, problem: impl Into<String>) -> Self {
        TlsError {
            config_file: config_file.map(Path::to_path_buf),
            key_path,
            file: file.to_path_buf(),
            problem: problem.into(),
        }
    }

    /// The key the file was named by, e.g. `tls.certificates[1].key`.
    pub fn key_path(&self) -> &str {
        &self.key_path
    }

    /// The PEM file at fault.
    pub fn file(&self) -> &Path {
        &self.file
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(config) = &self.config_file {
            write!(f, "{}: ", config.display())?;
        }
        write!(f, "{}: {}: {}", self.key_path, self.file.display(), self.problem)
    }
}
