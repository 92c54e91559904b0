//! Rollout webhooks: POST a JSON description of the gate to each configured URL; every one must answer 2xx
//! within its timeout for the gate to open. A webhook that is down or hangs closes the gate, never the controller.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sluice_config::{Webhook, WebhookKind};

/// Calls webhooks; one pooled client for all of them.
#[derive(Debug, Clone)]
pub(crate) struct Hooks {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Hooks {
    pub(crate) fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        Hooks {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Calls every webhook of `kind` with `payload`; Ok when all answered 2xx (or none is configured), else the
    /// first failure's description.
    pub(crate) async fn gate(
        &self,
        hooks: &[Webhook],
        kind: WebhookKind,
        payload: &serde_json::Value,
    ) -> Result<(), String> {
        for hook in hooks.iter().filter(|h| h.kind == kind) {
            let request = http::Request::post(&hook.url)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(payload.to_string())))
                .map_err(|e| format!("{} webhook {}: {e}", kind.as_str(), hook.url))?;
            match tokio::time::timeout(hook.timeout, self.client.request(request)).await {
                Ok(Ok(response)) if response.status().is_success() => {}
                Ok(Ok(response)) => {
                    return Err(format!(
                        "{} webhook {} answered {}",
                        kind.as_str(),
                        hook.url,
                        response.status()
                    ));
                }
                Ok(Err(err)) => return Err(format!("{} webhook {} failed: {err}", kind.as_str(), hook.url)),
                Err(_) => {
                    return Err(format!(
                        "{} webhook {} did not answer within {:?}",
                        kind.as_str(),
                        hook.url,
                        hook.timeout
                    ));
                }
            }
        }
        Ok(())
    }
}
