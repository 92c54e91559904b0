//! The state file: runtime changes written atomically (temp file, fsync, rename, fsync directory) so that a crash
//! at any moment leaves either the old file or the new one, never a torn one.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::state::{DrainedServer, Overrides, RuntimeWeights, WeightSource};
use crate::model::Weight;
use crate::rollout::{Phase, RolloutState};

/// The state file format version this build writes and reads.
const FORMAT: u32 = 1;

/// The state file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateFileError {
    /// Reading, writing, syncing or renaming failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The state file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is not a state file this version understands.
    #[error("state file {path}: {message}")]
    Invalid {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateDoc {
    format: u32,
    #[serde(default)]
    routes: BTreeMap<String, RouteDoc>,
    #[serde(default)]
    drained: Vec<DrainedDoc>,
    #[serde(default)]
    rollouts: BTreeMap<String, RolloutDoc>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutDoc {
    phase: String,
    step: usize,
    failures: u32,
    paused_from: Option<String>,
    reason: Option<String>,
    revision: Option<String>,
    stable: String,
    canary: String,
    started_at_ms: u64,
    last_conclusive_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteDoc {
    weights: Vec<WeightDoc>,
    source: String,
    set_at_ms: u64,
    file_basis: Vec<WeightDoc>,
}

// An array of objects, not a JSON object: the order is the route's sticky layout order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightDoc {
    upstream: String,
    weight: u32,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainedDoc {
    upstream: String,
    server: String,
}

/// The state file's default place: beside the config file, `NAME.state.json` for `NAME.toml`.
pub fn default_state_path(config_path: &Path) -> PathBuf {
    let stem = config_path
        .file_stem()
        .map_or_else(|| "sluice".into(), |s| s.to_string_lossy().into_owned());
    config_path.with_file_name(format!("{stem}.state.json"))
}

/// Reads the state file; a missing file means no runtime changes.
pub(crate) fn read(path: &Path) -> Result<Overrides, StateFileError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Overrides::default()),
        Err(source) => {
            return Err(StateFileError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let invalid = |message: String| StateFileError::Invalid {
        path: path.to_owned(),
        message,
    };
    let doc: StateDoc = serde_json::from_str(&text).map_err(|e| invalid(format!("not valid sluice state: {e}")))?;
    if doc.format != FORMAT {
        return Err(invalid(format!(
            "format {} is not the format {FORMAT} this sluice reads",
            doc.format
        )));
    }
    let mut overrides = Overrides::default();
    for (name, route) in doc.routes {
        let source = WeightSource::parse(&route.source)
            .filter(|s| *s != WeightSource::File)
            .ok_or_else(|| {
                invalid(format!(
                    "route `{name}`: source `{}` is not admin or controller",
                    route.source
                ))
            })?;
        overrides.routes.insert(
            name,
            RuntimeWeights {
                weights: route.weights.into_iter().map(Weight::from).collect(),
                source,
                set_at: UNIX_EPOCH + Duration::from_millis(route.set_at_ms),
                file_basis: route.file_basis.into_iter().map(Weight::from).collect(),
            },
        );
    }
    for d in doc.drained {
        overrides.drained.insert(DrainedServer {
            upstream: d.upstream,
            server: d.server,
        });
    }
    for (name, r) in doc.rollouts {
        let phase = |text: &str| {
            Phase::parse(text).ok_or_else(|| invalid(format!("route `{name}`: unknown rollout phase `{text}`")))
        };
        let state = RolloutState {
            phase: phase(&r.phase)?,
            step: r.step,
            failures: r.failures,
            paused_from: r.paused_from.as_deref().map(phase).transpose()?,
            reason: r.reason,
            revision: r.revision,
            stable: r.stable,
            canary: r.canary,
            started_at_ms: r.started_at_ms,
            last_conclusive_ms: r.last_conclusive_ms,
        };
        overrides.rollouts.insert(name, state);
    }
    Ok(overrides)
}

/// Writes `overrides` to `path` atomically.
pub(crate) fn write(path: &Path, overrides: &Overrides) -> Result<(), StateFileError> {
    let io = |source| StateFileError::Io {
        path: path.to_owned(),
        source,
    };
    let doc = StateDoc {
        format: FORMAT,
        routes: overrides
            .routes
            .iter()
            .map(|(name, r)| {
                let set_at_ms = r.set_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
                let route = RouteDoc {
                    weights: r.weights.iter().map(WeightDoc::from).collect(),
                    source: r.source.as_str().to_owned(),
                    set_at_ms,
                    file_basis: r.file_basis.iter().map(WeightDoc::from).collect(),
                };
                (name.clone(), route)
            })
            .collect(),
        drained: overrides
            .drained
            .iter()
            .map(|d| DrainedDoc {
                upstream: d.upstream.clone(),
                server: d.server.clone(),
            })
            .collect(),
        rollouts: overrides
            .rollouts
            .iter()
            .map(|(name, r)| {
                let doc = RolloutDoc {
                    phase: r.phase.as_str().to_owned(),
                    step: r.step,
                    failures: r.failures,
                    paused_from: r.paused_from.map(|p| p.as_str().to_owned()),
                    reason: r.reason.clone(),
                    revision: r.revision.clone(),
                    stable: r.stable.clone(),
                    canary: r.canary.clone(),
                    started_at_ms: r.started_at_ms,
                    last_conclusive_ms: r.last_conclusive_ms,
                };
                (name.clone(), doc)
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&doc).expect("state documents always serialise");
    text.push('\n');
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = File::create(&temp).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&temp, path).map_err(io)?;
    // The rename itself is only durable once the directory is synced.
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

impl From<WeightDoc> for Weight {
    fn from(w: WeightDoc) -> Weight {
        Weight {
            upstream: w.upstream,
            weight: w.weight,
        }
    }
}

impl From<&Weight> for WeightDoc {
    fn from(w: &Weight) -> WeightDoc {
        WeightDoc {
            upstream: w.upstream.clone(),
            weight: w.weight,
        }
    }
}

/// Milliseconds since the Unix epoch, for display.
pub fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Overrides {
        let mut o = Overrides::default();
        o.routes.insert(
            "web".into(),
            RuntimeWeights {
                weights: vec![
                    Weight {
                        upstream: "canary".into(),
                        weight: 20,
                    },
                    Weight {
                        upstream: "blue".into(),
                        weight: 80,
                    },
                ],
                source: WeightSource::Admin,
                set_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
                file_basis: vec![Weight {
                    upstream: "blue".into(),
                    weight: 90,
                }],
            },
        );
        o.drained.insert(DrainedServer {
            upstream: "blue".into(),
            server: "127.0.0.1:9101".into(),
        });
        o.rollouts.insert(
            "web".into(),
            RolloutState {
                phase: Phase::Paused,
                step: 2,
                failures: 1,
                paused_from: Some(Phase::Progressing),
                reason: Some("held".into()),
                revision: Some("v2".into()),
                stable: "blue".into(),
                canary: "canary".into(),
                started_at_ms: 1,
                last_conclusive_ms: 2,
            },
        );
        o
    }

    #[test]
    fn round_trip_keeps_order_and_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.state.json");
        write(&path, &sample()).unwrap();
        assert_eq!(read(&path).unwrap(), sample());
        // No temp file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_file_is_no_overrides() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(&dir.path().join("none.json")).unwrap(), Overrides::default());
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.state.json");
        fs::write(&path, "{ torn").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("bad.state.json"), "{err}");
    }

    #[test]
    fn file_weights_are_not_a_runtime_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        fs::write(
            &path,
            r#"{"format":1,"routes":{"web":{"weights":[],"source":"file","set_at_ms":0,"file_basis":[]}}}"#,
        )
        .unwrap();
        assert!(read(&path).is_err());
    }

    #[test]
    fn default_path_is_beside_the_config() {
        assert_eq!(
            default_state_path(Path::new("/etc/sluice/edge.toml")),
            Path::new("/etc/sluice/edge.state.json")
        );
    }
}
