//! One client connection on its own `TcpStream`, HTTP/1.1 or h2c, through hyper's connection-level API so the
//! number of connections is exactly the number asked for; and the request every connection sends.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::spec::{LoadSpec, Protocol};

/// Boxed error from opening a connection.
pub(crate) type ConnectError = Box<dyn std::error::Error + Send + Sync>;

/// An open connection. Dropping it closes the socket at once, even mid-response.
#[derive(Debug)]
pub(crate) struct Connection {
    /// Sends requests.
    sender: Sender,
    /// Drives the connection; aborted on drop.
    driver: JoinHandle<()>,
}

/// The request half of a connection.
#[derive(Debug)]
enum Sender {
    /// HTTP/1.1.
    H1(http1::SendRequest<Full<Bytes>>),
    /// h2c.
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Connection {
    /// Connect to `addr` and do the handshake.
    pub(crate) async fn open(addr: SocketAddr, protocol: Protocol) -> Result<Self, ConnectError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let io = TokioIo::new(stream);
        match protocol {
            Protocol::Http1 => {
                let (sender, connection) = http1::handshake(io).await?;
                let driver = tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%addr, %error, "connection ended with an error");
                    }
                });
                Ok(Self {
                    sender: Sender::H1(sender),
                    driver,
                })
            }
            Protocol::H2 => {
                let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await?;
                let driver = tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%addr, %error, "connection ended with an error");
                    }
                });
                Ok(Self {
                    sender: Sender::H2(sender),
                    driver,
                })
            }
        }
    }

    /// Send `request` and read the response to the end of its body. Returns the status and the value of
    /// `tally`, if asked for and present.
    pub(crate) async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
        tally: Option<&HeaderName>,
    ) -> Result<(u16, Option<HeaderValue>), hyper::Error> {
        let response = match &mut self.sender {
            Sender::H1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
            Sender::H2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
        };
        let status = response.status().as_u16();
        let value = tally.and_then(|name| response.headers().get(name).cloned());
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame?;
        }
        Ok((status, value))
    }
}

/// Everything needed to build the same request again and again cheaply.
#[derive(Debug)]
pub(crate) struct RequestTemplate {
    /// Method.
    method: Method,
    /// Origin form for HTTP/1.1, absolute for h2 (hyper takes `:scheme` and `:authority` from it).
    uri: Uri,
    /// Headers, including `host` for HTTP/1.1 and `content-length` when there is a body.
    headers: HeaderMap,
    /// The body, shared by every request.
    body: Bytes,
}

impl RequestTemplate {
    /// The request described by `spec`.
    pub(crate) fn new(spec: &LoadSpec) -> Result<Self, String> {
        let target = &spec.target;
        let uri: Uri = match spec.protocol {
            Protocol::Http1 => target.path().as_str().parse(),
            Protocol::H2 => format!("http://{}{}", target.authority(), target.path()).parse(),
        }
        .map_err(|error| format!("cannot build the request URI: {error}"))?;
        let mut headers = spec.headers.clone();
        if spec.protocol == Protocol::Http1 && !headers.contains_key(HOST) {
            let host = HeaderValue::from_str(target.authority())
                .map_err(|error| format!("cannot send `{}` as Host: {error}", target.authority()))?;
            headers.insert(HOST, host);
        }
        if spec.body_size > 0 {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(spec.body_size));
        }
        Ok(Self {
            method: spec.method.clone(),
            uri,
            headers,
            body: Bytes::from(vec![b'x'; spec.body_size]),
        })
    }

    /// A fresh request.
    pub(crate) fn build(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}
