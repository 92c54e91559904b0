//! A configuration text parsed into the file types, and how positions in it become locations.

use std::ops::Range;
use std::path::Path;

use toml::de::DeTable;

use crate::error::{ConfigError, Location};
use crate::file::{File, expected_at};
use crate::key_path;

/// Names closer than this (Jaro-Winkler) to a valid one get a "did you mean".
const SUGGEST_SIMILARITY: f64 = 0.75;

/// A parsed file with the text and path it came from, so that spans can become locations.
#[derive(Debug)]
pub(crate) struct Document<'a> {
    pub(crate) source: Source<'a>,
    pub(crate) file: File,
}

impl<'a> Document<'a> {
    /// Parses `text` into the file types: syntax errors, type errors and unknown keys are reported here.
    pub(crate) fn parse(text: &'a str, path: Option<&'a Path>) -> Result<Document<'a>, ConfigError> {
        let source = Source { text, path };
        match toml::from_str::<File>(text) {
            Ok(file) => Ok(Document { source, file }),
            Err(err) => Err(source.toml_error(&err)),
        }
    }

    /// An error about the text at `span`.
    pub(crate) fn error(
        &self,
        span: Range<usize>,
        key_path: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        self.source.error(span, key_path, message)
    }
}

/// The configuration text and where it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub(crate) text: &'a str,
    pub(crate) path: Option<&'a Path>,
}

impl Source<'_> {
    fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let span = err.span().unwrap_or(0..0);
        let (key_path, message) = match DeTable::parse(self.text) {
            // The text is valid TOML, so serde refused it: name the key from the parsed tree.
            Ok(tree) => {
                let key_path = key_path::at_offset(&tree, span.start);
                let message = explain_serde(err.message(), &key_path);
                (key_path, message)
            }
            Err(_) => {
                let key_path = key_path::from_lines(self.text, span.start);
                let mut message = err.message().to_owned();
                if message == "duplicate key" {
                    let key = self.text.get(span.clone()).unwrap_or_default().trim();
                    message = format!(
                        "duplicate key `{key}`; each key and each table (such as `[upstreams.NAME]`) may be \
                         defined only once"
                    );
                }
                (key_path, format!("invalid TOML: {message}"))
            }
        };
        self.error(span, key_path, message)
    }

    /// An error about the text at `span`.
    fn error(&self, span: Range<usize>, key_path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            location: self.location(span.start),
            key_path: key_path.into(),
            message: message.into(),
        }
    }

    /// The 1-based line and column (in characters) of byte `offset`.
    fn location(&self, offset: usize) -> Location {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |at| at + 1);
        Location {
            file: self.path.map(Path::to_path_buf),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// Rewrites serde's messages into sluice's: unknown keys get a suggestion, type errors say what is expected.
fn explain_serde(message: &str, key_path: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let Some((unknown, rest)) = rest.split_once('`') else {
            return message.to_owned();
        };
        // serde lists the valid names in backticks: "expected `a`" or "expected one of `a`, `b`".
        let valid: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        let mut out = format!("unknown key `{unknown}`");
        match nearest(unknown, &valid) {
            Some(near) => out.push_str(&format!("; did you mean `{near}`? valid keys: ")),
            None if valid.is_empty() => out.push_str("; this table takes no keys"),
            None => out.push_str("; valid keys: "),
        }
        out.push_str(&valid.join(", "));
        return out;
    }
    let Some(expected) = expected_at(key_path) else {
        return message.to_owned();
    };
    match message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.rsplit_once(", expected "))
    {
        Some((found, _)) => format!("found {found}; expected {expected}"),
        None => format!("{message}; expected {expected}"),
    }
}

/// The valid name closest to `name`, when one is close enough to be a likely typo.
pub(crate) fn nearest<'n>(name: &str, valid: &[&'n str]) -> Option<&'n str> {
    valid
        .iter()
        .map(|&v| (strsim::jaro_winkler(name, v), v))
        .filter(|&(score, _)| score >= SUGGEST_SIMILARITY)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}
