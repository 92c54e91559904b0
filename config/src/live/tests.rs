//! The write path's rules, with a snapshot that only records its state.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::model::Weight;

#[derive(Debug)]
struct Recorded(Arc<LiveState>);

impl Snapshot for Recorded {
    fn build(state: Arc<LiveState>, _previous: Option<&Self>) -> Result<Self, String> {
        Ok(Recorded(state))
    }
    fn state(&self) -> &Arc<LiveState> {
        &self.0
    }
}

fn config_text(blue: u32, canary: u32, idle: &str) -> String {
    format!(
        r#"
[listen]
http = ["127.0.0.1:0"]
[upstreams.blue]
servers = ["127.0.0.1:9101", "127.0.0.1:9102"]
[upstreams.canary]
servers = ["127.0.0.1:9103"]
[[routes]]
name = "web"
weights = {{ blue = {blue}, canary = {canary} }}
[[routes]]
name = "api"
path_prefix = "/api"
weights = {{ blue = 1 }}
[timeouts]
idle = "{idle}"
"#
    )
}

fn setup(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    fs::write(&path, text).unwrap();
    (dir, path)
}

fn open(path: &Path) -> Store<Recorded> {
    Store::open(path, &OpenOptions::default()).unwrap()
}

fn w(upstream: &str, weight: u32) -> Weight {
    Weight {
        upstream: upstream.into(),
        weight,
    }
}

fn weights_of(store: &Store<Recorded>, route: &str) -> Vec<(String, u32)> {
    let state = store.state();
    let r = state.effective.routes.iter().find(|r| r.name == route).unwrap();
    r.weights.iter().map(|w| (w.upstream.clone(), w.weight)).collect()
}

fn pairs(list: &[(&str, u32)]) -> Vec<(String, u32)> {
    list.iter().map(|(n, w)| ((*n).to_owned(), *w)).collect()
}

#[test]
fn set_weights_publishes_persists_and_marks_admin() {
    let (_dir, path) = setup(&config_text(90, 10, "60s"));
    let store = open(&path);
    assert_eq!(store.state().version, 1);
    // JSON objects arrive in any order; the layout order stays the file's.
    let v = store
        .set_weights("web", vec![w("canary", 20), w("blue", 80)], WeightSource::Admin, "test")
        .unwrap();
    assert_eq!(v, 2);
    assert_eq!(weights_of(&store, "web"), pairs(&[("blue", 80), ("canary", 20)]));
    assert_eq!(store.state().weight_origin("web").0, WeightSource::Admin);
    assert_eq!(store.state().weight_origin("api").0, WeightSource::File);
    let saved = fs::read_to_string(store.state_path().unwrap()).unwrap();
    assert!(
        saved.contains("\"admin\"") && saved.contains("\"weight\": 80"),
        "{saved}"
    );
    let events = store.events(10);
    assert_eq!(events.last().unwrap().before, "blue=90 canary=10");
    assert_eq!(events.last().unwrap().after, "blue=80 canary=20");
}

#[test]
fn all_zero_weights_are_allowed_at_run_time() {
    let (_dir, path) = setup(&config_text(90, 10, "60s"));
    let store = open(&path);
    store
        .set_weights("web", vec![w("blue", 0), w("canary", 0)], WeightSource::Admin, "test")
        .unwrap();
    assert_eq!(weights_of(&store, "web"), pairs(&[("blue", 0), ("canary", 0)]));
}

#[test]
fn refused_changes_leave_state_alone() {
    let (_dir, path) = setup(&config_text(90, 10, "60s"));
    let store = open(&path);
    let err = store
        .set_weights("wbe", vec![w("blue", 1)], WeightSource::Admin, "t")
        .unwrap_err();
    assert!(matches!(err, WriteError::UnknownRoute { .. }), "{err}");
    let err = store
        .set_weights("web", vec![w("bleu", 1)], WeightSource::Admin, "t")
        .unwrap_err();
    assert_eq!(err.to_string(), "unknown upstream `bleu`; did you mean `blue`?");
    let err = store.set_weights("web", vec![], WeightSource::Admin, "t").unwrap_err();
    assert!(matches!(err, WriteError::NoWeights));
    let err = store.set_drained("blue", "127.0.0.1:1", true, "t").unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:9101, 127.0.0.1:9102"), "{err}");
    assert_eq!(store.state().version, 1);
    assert!(!store.state_path().unwrap().exists(), "nothing was persisted");
}

#[test]
fn unrelated_file_edit_keeps_runtime_weights_and_a_weight_edit_wins() {
    let (_dir, path) = setup(&config_text(90, 10, "60s"));
    let store = open(&path);
    store
        .set_weights("web", vec![w("blue", 50), w("canary", 50)], WeightSource::Admin, "t")
        .unwrap();
    fs::write(&path, config_text(90, 10, "30s")).unwrap();
    store.reload("test").unwrap();
    assert_eq!(weights_of(&store, "web"), pairs(&[("blue", 50), ("canary", 50)]));
    assert_eq!(store.state().effective.timeouts.idle.as_secs(), 30);
    fs::write(&path, config_text(75, 25, "30s")).unwrap();
    let reloaded = store.reload("test").unwrap();
    assert_eq!(weights_of(&store, "web"), pairs(&[("blue", 75), ("canary", 25)]));
    assert_eq!(store.state().weight_origin("web").0, WeightSource::File);
    let outcome = store.last_reload().unwrap();
    assert_eq!(outcome.result, Ok(reloaded));
    assert!(
        outcome.notes.iter().any(|n| n.contains("file's weights win")),
        "{outcome:?}"
    );
}

#[test]
fn invalid_reload_keeps_the_last_good_config_and_says_where() {
    let (_dir, path) = setup(&config_text(90, 10, "60s"));
    let store = open(&path);
    fs::write(
        &path,
        config_text(90, 10, "60s").replace("path_prefix = \"/api\"", "path_prefix = \"api\""),
    )
    .unwrap();
    let err = store.reload("test").unwrap_err().to_string();
    assert!(
        err.contains("sluice.toml:13:") && err.contains("routes[1].path_prefix"),
        "{err}"
    );
    assert_eq!(store.state().version, 1);
    assert_eq!(store.reload_counts(), (0, 1));
    let outcome = store.last_reload().unwrap();
    assert!(outcome.result.unwrap_err().contains("routes[1].path_prefix"));
}

#[test]
fn restart_applies_saved_state_over_the_file() {
    let (_dir, path) = setup(&config_text(90, 10, "60s"));
    {
        let store = open(&path);
        store
            .set_weights(
                "web",
                vec![w("blue", 0), w("canary", 100)],
                WeightSource::Controller,
                "t",
            )
            .unwrap();
        store.set_drained("blue", "127.0.0.1:9102", true, "t").unwrap();
    }
    let store = open(&path);
    assert_eq!(weights_of(&store, "web"), pairs(&[("blue", 0), ("canary", 100)]));
    assert_eq!(store.state().weight_origin("web").0, WeightSource::Controller);
    assert!(store.state().is_drained("blue", "127.0.0.1:9102"));
    store.set_drained("blue", "127.0.0.1:9102", false, "t").unwrap();
    assert!(!open(&path).state().is_drained("blue", "127.0.0.1:9102"));
}

#[test]
fn file_weights_changed_while_stopped_win_on_start() {
    let (_dir, path) = setup(&config_text(90, 10, "60s"));
    open(&path)
        .set_weights("web", vec![w("blue", 50), w("canary", 50)], WeightSource::Admin, "t")
        .unwrap();
    fs::write(&path, config_text(80, 20, "60s")).unwrap();
    assert_eq!(weights_of(&open(&path), "web"), pairs(&[("blue", 80), ("canary", 20)]));
}

#[test]
fn unreadable_state_stops_startup_unless_discarded() {
    let (dir, path) = setup(&config_text(90, 10, "60s"));
    fs::write(dir.path().join("sluice.state.json"), "{ torn").unwrap();
    let err = Store::<Recorded>::open(&path, &OpenOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sluice.state.json") && err.contains("--discard-state"),
        "{err}"
    );
    let store = Store::<Recorded>::open(&path, &OpenOptions { discard_state: true }).unwrap();
    assert_eq!(weights_of(&store, "web"), pairs(&[("blue", 90), ("canary", 10)]));
}

#[test]
fn a_change_that_cannot_be_persisted_is_not_applied() {
    let (dir, path) = setup(&config_text(90, 10, "60s"));
    let store = open(&path);
    // A directory where the state file should go: the rename fails.
    fs::create_dir(dir.path().join("sluice.state.json")).unwrap();
    fs::write(dir.path().join("sluice.state.json").join("x"), "").unwrap();
    let err = store
        .set_weights("web", vec![w("blue", 1)], WeightSource::Admin, "t")
        .unwrap_err();
    assert!(matches!(err, WriteError::Persist(_)), "{err}");
    assert_eq!(store.state().version, 1);
    assert_eq!(weights_of(&store, "web"), pairs(&[("blue", 90), ("canary", 10)]));
}

#[test]
fn versions_only_grow() {
    let (_dir, path) = setup(&config_text(90, 10, "60s"));
    let store = open(&path);
    let mut last = store.state().version;
    for i in 0..20 {
        let v = if i % 3 == 0 {
            store.reload("t").unwrap()
        } else {
            store
                .set_weights("web", vec![w("blue", i), w("canary", 1)], WeightSource::Admin, "t")
                .unwrap()
        };
        assert!(v > last);
        last = v;
    }
}
