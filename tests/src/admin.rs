//! A JSON client for the admin API.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;

use crate::client::TestClient;

/// Talks to sluice's admin API, with or without a bearer token.
#[derive(Debug, Clone)]
pub struct AdminClient {
    client: TestClient,
    token: Option<String>,
}

impl AdminClient {
    /// A client for the admin listener at `addr`.
    pub fn new(addr: SocketAddr, token: Option<&str>) -> Self {
        AdminClient {
            client: TestClient::http1(addr),
            token: token.map(str::to_owned),
        }
    }

    /// Sends `method path` with an optional JSON body; returns the status and the parsed JSON (Null if none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = &self.token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let answer = self
            .client
            .send(req.body(Full::new(body)).expect("valid request"))
            .await;
        let json = serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null);
        (answer.status, json)
    }

    /// Like [`AdminClient::call`] but returns transport errors (the process may be killed mid-call).
    pub async fn call_raw(&self, method: Method, path: &str, body: serde_json::Value) -> Result<StatusCode, String> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = &self.token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        self.client.try_send(req).await.map(|a| a.status)
    }

    /// `GET path` as text (e.g. `/metrics`).
    pub async fn text(&self, path: &str) -> (StatusCode, String) {
        let req = Request::get(path).body(Full::new(Bytes::new())).expect("valid request");
        let answer = self.client.send(req).await;
        (answer.status, answer.text())
    }

    /// `GET /api/v1/state`.
    pub async fn state(&self) -> serde_json::Value {
        let (status, json) = self.call(Method::GET, "/api/v1/state", None).await;
        assert_eq!(status, 200, "{json}");
        json
    }

    /// `PUT /api/v1/routes/{route}/weights`, asserting 200; returns the answer.
    pub async fn set_weights(&self, route: &str, weights: serde_json::Value) -> serde_json::Value {
        let (status, json) = self
            .call(Method::PUT, &format!("/api/v1/routes/{route}/weights"), Some(weights))
            .await;
        assert_eq!(status, 200, "{json}");
        json
    }

    /// The weights of `route` in the state, as `(upstream, weight, source)`.
    pub async fn weights(&self, route: &str) -> (Vec<(String, u64)>, String) {
        let state = self.state().await;
        let r = state["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .find(|r| r["name"] == route)
            .expect("route");
        let weights = r["weights"]
            .as_array()
            .expect("weights")
            .iter()
            .map(|w| {
                (
                    w["upstream"].as_str().expect("upstream").to_owned(),
                    w["weight"].as_u64().expect("weight"),
                )
            })
            .collect();
        (weights, r["weights_source"].as_str().expect("source").to_owned())
    }
}
