//! Watching the config file for edits, the way files really change in production.
//!
//! Editors save by writing a temp file and renaming it over the original, and Kubernetes swaps a ConfigMap by
//! re-pointing the `..data` symlink: both replace the file's inode, which a watch on the file itself would lose.
//! So the parent directory is watched, events are debounced, and the change callback runs only when the file's
//! bytes (read through any symlinks) differ from the last ones seen.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

/// Keeps the watch alive; dropping it stops watching.
pub struct FileWatcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

impl std::fmt::Debug for FileWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWatcher").finish_non_exhaustive()
    }
}

/// The watch could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {dir} for changes to {file}: {source}")]
pub struct WatchError {
    dir: PathBuf,
    file: PathBuf,
    source: notify::Error,
}

/// Calls `on_change` (on the watcher's thread) after `path`'s content changes, at most once per `debounce`.
pub fn watch_file(
    path: &Path,
    debounce: Duration,
    on_change: impl FnMut() + Send + 'static,
) -> Result<FileWatcher, WatchError> {
    watch_files(&[path.to_path_buf()], debounce, on_change)
}

/// Like [`watch_file`] for several files, in any directories (certificates and keys live apart from the config):
/// one watch per distinct parent directory, and one call per debounced batch in which any file's content changed.
pub fn watch_files(
    paths: &[PathBuf],
    debounce: Duration,
    mut on_change: impl FnMut() + Send + 'static,
) -> Result<FileWatcher, WatchError> {
    let mut files: Vec<(PathBuf, Option<u64>)> = Vec::with_capacity(paths.len());
    // (directory, a file in it) for each distinct directory; the file names the watch in errors.
    let mut dirs: Vec<(PathBuf, PathBuf)> = Vec::new();
    for path in paths {
        if !files.iter().any(|(f, _)| f == path) {
            files.push((path.clone(), fingerprint(path)));
        }
        let dir = parent(path);
        if !dirs.iter().any(|(d, _)| *d == dir) {
            dirs.push((dir, path.clone()));
        }
    }
    // Logs and other busy files may share a directory with the config: events about them alone are ignored, so
    // the files are not re-read many times a second. A watched symlink (a Kubernetes ConfigMap) changes when
    // another name (`..data`) is re-pointed, so then every event counts.
    let names: Vec<std::ffi::OsString> = files
        .iter()
        .filter_map(|(f, _)| f.file_name())
        .map(Into::into)
        .collect();
    let any_event = files.iter().any(|(f, _)| f.is_symlink());
    let handler = move |result: DebounceEventResult| {
        // An error means events were lost (e.g. queue overflow): check the files then.
        if let Ok(events) = &result
            && !any_event
            && !names_any(events.iter().flat_map(|event| &event.paths), &names)
        {
            return;
        }
        let mut changed = false;
        for (file, last) in &mut files {
            let now = fingerprint(file);
            // A file caught mid-replace (missing for a moment) is not a change; the next event brings the new one.
            if now.is_some() && now != *last {
                *last = now;
                changed = true;
            }
        }
        if changed {
            on_change();
        }
    };
    let error = |(dir, file): &(PathBuf, PathBuf), source| WatchError {
        dir: dir.clone(),
        file: file.clone(),
        source,
    };
    let first = dirs.first().cloned().unwrap_or_default();
    let mut debouncer = new_debouncer(debounce, None, handler).map_err(|e| error(&first, e))?;
    for entry in &dirs {
        debouncer
            .watch(&entry.0, RecursiveMode::NonRecursive)
            .map_err(|e| error(entry, e))?;
    }
    Ok(FileWatcher { _debouncer: debouncer })
}

/// Whether any of `paths` has one of the file names in `names`.
fn names_any<'a>(mut paths: impl Iterator<Item = &'a PathBuf>, names: &[std::ffi::OsString]) -> bool {
    paths.any(|path| path.file_name().is_some_and(|name| names.iter().any(|n| n == name)))
}

/// The directory to watch for `path`: its parent, or the working directory for a bare file name.
fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn fingerprint(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use super::*;

    fn wait_for(count: &AtomicUsize, n: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if count.load(Ordering::SeqCst) >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn watched(path: &Path) -> (FileWatcher, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        let watcher = watch_file(path, Duration::from_millis(50), move || {
            seen.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        (watcher, count)
    }

    #[test]
    fn only_events_naming_a_watched_file_count() {
        let names = ["sluice.toml".into(), "site.pem".into()];
        let paths = |list: &[&str]| list.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert!(names_any(
            paths(&["/etc/sluice/access.log", "/etc/sluice/sluice.toml"]).iter(),
            &names
        ));
        assert!(names_any(paths(&["/certs/site.pem"]).iter(), &names));
        assert!(!names_any(
            paths(&["/etc/sluice/access.log", "/etc/sluice/.sluice.toml.swp"]).iter(),
            &names
        ));
        assert!(!names_any(paths(&["/etc/sluice"]).iter(), &names));
    }

    #[test]
    fn rename_over_the_file_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, "a").unwrap();
        let (_w, count) = watched(&path);
        let temp = dir.path().join(".sluice.toml.swp");
        std::fs::write(&temp, "b").unwrap();
        std::fs::rename(&temp, &path).unwrap();
        assert!(wait_for(&count, 1), "no change seen after an atomic rename");
    }

    #[test]
    fn symlink_swap_like_a_configmap_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("v1")).unwrap();
        std::fs::create_dir(dir.path().join("v2")).unwrap();
        std::fs::write(dir.path().join("v1/sluice.toml"), "a").unwrap();
        std::fs::write(dir.path().join("v2/sluice.toml"), "b").unwrap();
        std::os::unix::fs::symlink("v1", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/sluice.toml", dir.path().join("sluice.toml")).unwrap();
        let (_w, count) = watched(&dir.path().join("sluice.toml"));
        std::os::unix::fs::symlink("v2", dir.path().join("..data_tmp")).unwrap();
        std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
        assert!(wait_for(&count, 1), "no change seen after a ..data symlink swap");
    }

    #[test]
    fn unchanged_content_is_not_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, "same").unwrap();
        let (_w, count) = watched(&path);
        std::fs::write(&path, "same").unwrap();
        std::fs::write(dir.path().join("other.txt"), "x").unwrap();
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(count.load(Ordering::SeqCst), 0);
        std::fs::write(&path, "changed").unwrap();
        assert!(wait_for(&count, 1));
    }

    #[test]
    fn files_in_two_directories_are_watched() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        let cert = dir.path().join("certs/site.pem");
        let key = dir.path().join("keys/site.key");
        std::fs::write(&cert, "cert 1").unwrap();
        std::fs::write(&key, "key 1").unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        let _w = watch_files(&[cert.clone(), key.clone()], Duration::from_millis(50), move || {
            seen.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        std::fs::write(dir.path().join("keys/.site.key.tmp"), "key 2").unwrap();
        std::fs::rename(dir.path().join("keys/.site.key.tmp"), &key).unwrap();
        assert!(wait_for(&count, 1), "no change seen in the second directory");
        std::fs::write(&cert, "cert 2").unwrap();
        assert!(wait_for(&count, 2), "no change seen in the first directory");
    }
}
