//! When certificates are re-read: their files changed (watched like the config file, including replacement by
//! rename or symlink swap), or the config was reloaded (file watcher, SIGHUP, admin API).
//!
//! One task does every reload, so two triggers never race to publish an older set, and requests that queue up
//! while one runs share the next. The files to watch follow the live config: a reload that names other files
//! moves the watch.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sluice_config::{FileWatcher, Store, Tls, watch_files};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::certificates::Certificates;
use crate::table::Table;

/// What a trigger asked, and where to say how it went.
#[derive(Debug)]
struct Request {
    trigger: String,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// Asks the reload task to re-read the certificates; cheap to clone into callbacks.
#[derive(Debug, Clone)]
pub struct CertificateReloader {
    certificates: Arc<Certificates>,
    requests: mpsc::UnboundedSender<Request>,
}

impl CertificateReloader {
    /// Starts the reload task on the current runtime: it watches the files the live config names (from before this
    /// returns) and re-reads them (from `store`'s current config) on every request. Stop it by aborting the handle.
    pub fn spawn(
        store: Arc<Store<Table>>,
        certificates: Arc<Certificates>,
        debounce: Duration,
    ) -> (CertificateReloader, JoinHandle<()>) {
        let (requests, rx) = mpsc::unbounded_channel();
        let reloader = CertificateReloader {
            certificates: Arc::clone(&certificates),
            requests: requests.clone(),
        };
        // Watching before returning: a file replaced right after startup must not go unseen.
        let mut watch = Watch::default();
        watch.follow(store.state().effective.tls.as_ref(), &requests, debounce);
        let task = tokio::spawn(run(store, certificates, watch, rx, requests, debounce));
        (reloader, task)
    }

    /// The certificates this reloader reloads.
    pub fn certificates(&self) -> &Arc<Certificates> {
        &self.certificates
    }

    /// Asks for a reload without waiting for it (from a watcher thread or a signal handler).
    pub fn request(&self, trigger: &str) {
        let _ = self.requests.send(Request {
            trigger: trigger.to_owned(),
            done: None,
        });
    }

    /// Reloads and waits for the outcome: the error names the entry and file that kept the old set serving.
    pub async fn reload(&self, trigger: &str) -> Result<(), String> {
        let (done, outcome) = oneshot::channel();
        let request = Request {
            trigger: trigger.to_owned(),
            done: Some(done),
        };
        if self.requests.send(request).is_err() {
            return Err("the certificate reload task has stopped".to_owned());
        }
        outcome
            .await
            .unwrap_or_else(|_| Err("the certificate reload task has stopped".to_owned()))
    }
}

async fn run(
    store: Arc<Store<Table>>,
    certificates: Arc<Certificates>,
    mut watch: Watch,
    mut rx: mpsc::UnboundedReceiver<Request>,
    requests: mpsc::UnboundedSender<Request>,
    debounce: Duration,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        // Requests that queued during the last reload share this one; the log names every trigger.
        let mut triggers: Vec<&str> = Vec::with_capacity(batch.len());
        for request in &batch {
            if !triggers.contains(&request.trigger.as_str()) {
                triggers.push(&request.trigger);
            }
        }
        let trigger = triggers.join(", ");
        let config = Arc::clone(&store.state().effective);
        let Some(tls) = config.tls.clone() else {
            // A reload removed `[tls]`: listeners change only on restart, so the running ones keep their set.
            tracing::warn!(
                trigger,
                "the config has no [tls] any more; certificates stay as they are until restart"
            );
            reply(batch, &Ok(()));
            continue;
        };
        let source = config.source.clone();
        let certs = Arc::clone(&certificates);
        let task_trigger = trigger.clone();
        let reloaded = tokio::task::spawn_blocking(move || certs.reload(&tls, source.as_deref(), &task_trigger)).await;
        let outcome = match reloaded {
            Ok(Ok(())) => {
                tracing::info!(trigger, "certificates reloaded; new handshakes use them");
                Ok(())
            }
            Ok(Err(err)) => {
                tracing::error!(trigger, "certificates rejected, the previous ones keep serving: {err}");
                Err(err.to_string())
            }
            Err(join) => Err(format!("the certificate reload failed: {join}")),
        };
        reply(batch, &outcome);
        watch.follow(config.tls.as_ref(), &requests, debounce);
    }
}

fn reply(batch: Vec<Request>, outcome: &Result<(), String>) {
    for request in batch {
        if let Some(done) = request.done {
            let _ = done.send(outcome.clone());
        }
    }
}

/// The watch on the certificate and key files of the live config.
#[derive(Default)]
struct Watch {
    files: Vec<PathBuf>,
    _watcher: Option<FileWatcher>,
}

impl Watch {
    /// Watches the files `tls` names, unless they are the ones already watched.
    fn follow(&mut self, tls: Option<&Tls>, requests: &mpsc::UnboundedSender<Request>, debounce: Duration) {
        let files: Vec<PathBuf> = tls
            .map(|tls| {
                tls.certificates
                    .iter()
                    .flat_map(|c| [c.cert.clone(), c.key.clone()])
                    .collect()
            })
            .unwrap_or_default();
        if files == self.files {
            return;
        }
        let sender = requests.clone();
        let on_change = move || {
            let _ = sender.send(Request {
                trigger: "certificate watcher".to_owned(),
                done: None,
            });
        };
        self._watcher = match watch_files(&files, debounce, on_change) {
            Ok(watcher) => Some(watcher),
            Err(err) => {
                tracing::warn!("{err}; certificates reload with SIGHUP or the admin API's reload instead");
                None
            }
        };
        self.files = files;
    }
}
