//! `GET /metrics`: the Prometheus text exposition of the data plane's registry, plus the families the store owns.

use std::fmt::Write as _;

use prometheus::{Encoder as _, TextEncoder};
use sluice_config::Store;
use sluice_proxy::Table;

use crate::error::ApiError;

/// The exposition: every family of the telemetry registry (requests, latency, upstream errors, weights, server
/// health, process), then `sluice_config_reloads_total{result}` and `sluice_config_version`, which the store
/// keeps rather than the registry.
pub(crate) fn exposition(store: &Store<Table>) -> Result<Vec<u8>, ApiError> {
    let table = store.load();
    let families = table.telemetry().registry().gather();
    let mut out = Vec::with_capacity(16 * 1024);
    TextEncoder::new()
        .encode(&families, &mut out)
        .map_err(|e| ApiError::Internal(format!("cannot encode the metrics: {e}")))?;
    let (ok, failed) = store.reload_counts();
    let mut own = String::new();
    write!(
        own,
        "# HELP sluice_config_reloads_total Reloads of the config file, by result (a failed one keeps the last \
         good config).\n\
         # TYPE sluice_config_reloads_total counter\n\
         sluice_config_reloads_total{{result=\"ok\"}} {ok}\n\
         sluice_config_reloads_total{{result=\"failed\"}} {failed}\n\
         # HELP sluice_config_version Version of the live state; it goes up with every reload and runtime change.\n\
         # TYPE sluice_config_version gauge\n\
         sluice_config_version {}\n",
        table.version(),
    )
    .expect("writing to a String cannot fail");
    out.extend_from_slice(own.as_bytes());
    Ok(out)
}
