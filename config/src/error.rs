//! Why a configuration was refused, and where in the file.

use std::fmt;
use std::path::PathBuf;

/// A configuration that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    // The reason is in the message as well as in `source()`: most callers print only the top-level message.
    #[error("{}: cannot read the configuration file: {source}", path.display())]
    Io {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A problem at a place in the file: bad syntax, an unknown key, or a value that breaks a rule.
    #[error("{location}: {key_path}: {message}")]
    Invalid {
        /// Where the offending text starts.
        location: Location,
        /// The key it belongs to, e.g. `routes[0].weights.canary`; empty for the document itself.
        key_path: String,
        /// What is wrong and what would be valid.
        message: String,
    },
}

impl ConfigError {
    /// Where in the file the problem is, when it is about the file's content.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::Invalid { location, .. } => Some(location),
            ConfigError::Io { .. } => None,
        }
    }

    /// The key path the problem is about, e.g. `upstreams.blue.servers[1]`, when it is about the file's content.
    pub fn key_path(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key_path, .. } => Some(key_path),
            ConfigError::Io { .. } => None,
        }
    }
}

/// A position in a configuration file, 1-based, column counted in characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, when the configuration came from one.
    pub file: Option<PathBuf>,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}:{}:{}", file.display(), self.line, self.column),
            None => write!(f, "<config>:{}:{}", self.line, self.column),
        }
    }
}
