//! Active health checks: one task per upstream group with `[upstreams.NAME.health]`, probing each server with a
//! GET on its own connection and moving it out of (and back into) rotation after the configured streaks.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use sluice_config::Store;

use crate::connector::UpstreamConnector;
use crate::pool::Pool;
use crate::table::Table;

/// How often the supervisor looks for pools (new after a reload) that need a checker.
const SUPERVISE_EVERY: Duration = Duration::from_millis(500);

/// Runs until the process ends: starts a checker for every pool with health checks, as tables come and go.
pub async fn supervise(store: Arc<Store<Table>>) {
    let mut tick = tokio::time::interval(SUPERVISE_EVERY);
    loop {
        tick.tick().await;
        let table = store.load();
        for pool in table.pools() {
            if pool.health.is_some() && !pool.checker.swap(true, Ordering::Relaxed) {
                tokio::spawn(check(Arc::downgrade(pool)));
            }
        }
    }
}

/// Checks one pool's servers every interval until the pool is dropped (a reload replaced it).
async fn check(pool: Weak<Pool>) {
    let client: Client<UpstreamConnector, Empty<Bytes>> = match pool.upgrade() {
        Some(pool) => pool.probe_client(),
        None => return,
    };
    loop {
        let Some(strong) = pool.upgrade() else { return };
        let Some(health) = strong.health.clone() else { return };
        // Probes run concurrently, so one slow server does not delay the others' verdicts.
        let mut probes = tokio::task::JoinSet::new();
        for (i, server) in strong.servers.iter().enumerate() {
            let uri = format!("{}://{}{}", strong.scheme, server.authority, health.path).parse::<http::Uri>();
            let client = client.clone();
            let timeout = health.timeout;
            probes.spawn(async move {
                let Ok(uri) = uri else { return (i, false) };
                let passed = matches!(
                    tokio::time::timeout(timeout, client.get(uri)).await,
                    Ok(Ok(response)) if response.status().is_success() || response.status().is_redirection()
                );
                (i, passed)
            });
        }
        while let Some(Ok((i, passed))) = probes.join_next().await {
            record(&strong, i, passed, health.healthy, health.unhealthy);
        }
        drop(strong);
        tokio::time::sleep(health.interval).await;
    }
}

/// Applies one probe result: a server flips after `unhealthy` failures in a row, or back after `healthy` passes.
fn record(pool: &Pool, index: usize, passed: bool, healthy: u32, unhealthy: u32) {
    let server = &pool.servers[index];
    if passed {
        pool.clear_ejection(index);
    }
    let is_up = server.healthy.load(Ordering::Relaxed);
    if passed == is_up {
        server.check_streak.store(0, Ordering::Relaxed);
        return;
    }
    let streak = server.check_streak.fetch_add(1, Ordering::Relaxed) + 1;
    if streak >= if is_up { unhealthy } else { healthy } {
        server.healthy.store(passed, Ordering::Relaxed);
        server.check_streak.store(0, Ordering::Relaxed);
        pool.refresh_gauge(server);
        if passed {
            tracing::info!(upstream = &*pool.name, server = %server.addr, "health checks pass again; back in rotation");
        } else {
            tracing::warn!(upstream = &*pool.name, server = %server.addr, "health checks fail; out of rotation");
        }
    }
}
