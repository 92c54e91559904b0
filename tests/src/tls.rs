//! TLS for tests: a throwaway CA that issues leaf certificates (nothing committed), PEM files written the way
//! deployments replace them (temp file + rename), and a client that trusts the CA, sends SNI, negotiates ALPN and
//! reports which certificate the server showed.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, date_time_ymd};
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::client::Answer;

/// How long a connect, handshake or request may take before the client gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// A certificate authority made for one test.
#[derive(Debug)]
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate (DER), to compare with what a server showed.
    pub der: CertificateDer<'static>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
}

impl TestCa {
    /// A fresh CA.
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sluice test CA");
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// The CA certificate, PEM (what `curl --cacert` takes).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `names` (DNS names), valid now.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.issue(names, false)
    }

    /// A leaf for `names` that expired in 2001.
    pub fn expired_leaf(&self, names: &[&str]) -> Leaf {
        self.issue(names, true)
    }

    fn issue(&self, names: &[&str], expired: bool) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf parameters");
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, first.as_str());
        }
        if expired {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf certificate");
        Leaf {
            der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

impl Leaf {
    /// Writes `DIR/STEM.pem` and `DIR/STEM.key`, each by writing a temp file and renaming it over the old one
    /// (how editors, cert-manager and `mv` replace files): a reader never sees half a file.
    pub fn write(&self, dir: &Path, stem: &str) {
        replace(&dir.join(format!("{stem}.pem")), self.cert_pem.as_bytes());
        replace(&dir.join(format!("{stem}.key")), self.key_pem.as_bytes());
    }
}

/// Replaces `path` with `bytes` by writing a temp file beside it and renaming it over `path`.
pub fn replace(path: &Path, bytes: &[u8]) {
    let name = path.file_name().expect("a file name").to_string_lossy();
    let temp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&temp, bytes).expect("writing the temp file");
    std::fs::rename(&temp, path).expect("renaming it into place");
}

/// A TLS client that trusts one CA and offers the given ALPN protocols; it never resumes a session.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient").finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Trusts `ca` and offers `alpn` (e.g. `["h2", "http/1.1"]`; empty for none, which means HTTP/1.1).
    pub fn new(ca: &TestCa, alpn: &[&str]) -> TlsClient {
        let mut roots = RootCertStore::empty();
        roots.add(ca.issuer.der().clone()).expect("the CA is a valid root");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        // Every connect is a full handshake: a resumed session would report the certificate of the session it
        // resumes, not the one the server serves now.
        config.resumption = Resumption::disabled();
        TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
        }
    }

    /// Connects to `addr` sending `sni`, verifies the certificate against the CA and `sni`, and speaks the HTTP
    /// version ALPN picked. Errors (including a certificate that does not verify) come back as text.
    pub async fn connect(&self, addr: SocketAddr, sni: &str) -> Result<TlsConnection, String> {
        let name = ServerName::try_from(sni.to_owned()).map_err(|e| format!("server name {sni}: {e}"))?;
        let connect = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let stream = self
                .connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            let (_, session) = stream.get_ref();
            let peer = session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .cloned()
                .ok_or("the server showed no certificate")?;
            let alpn = session.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
            let io = TokioIo::new(stream);
            let sender = if alpn.as_deref() == Some("h2") {
                let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| format!("h2 handshake: {e}"))?;
                tokio::spawn(conn);
                Sender::H2(sender)
            } else {
                let (sender, conn) = http1::handshake(io)
                    .await
                    .map_err(|e| format!("http1 handshake: {e}"))?;
                tokio::spawn(conn);
                Sender::H1(sender)
            };
            Ok(TlsConnection {
                sni: sni.to_owned(),
                peer,
                alpn,
                sender,
            })
        };
        tokio::time::timeout(PATIENCE, connect)
            .await
            .map_err(|_| format!("no TLS connection within {PATIENCE:?}"))?
    }
}

/// One TLS connection: which certificate the server showed, what ALPN agreed, and keep-alive requests over it.
#[derive(Debug)]
pub struct TlsConnection {
    sni: String,
    peer: CertificateDer<'static>,
    alpn: Option<String>,
    sender: Sender,
}

#[derive(Debug)]
enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl TlsConnection {
    /// The server's leaf certificate (DER).
    pub fn peer_certificate(&self) -> &CertificateDer<'static> {
        &self.peer
    }

    /// The DNS names of the server's leaf certificate.
    pub fn peer_names(&self) -> Vec<String> {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(&self.peer) else {
            return Vec::new();
        };
        let Ok(Some(san)) = cert.subject_alternative_name() else {
            return Vec::new();
        };
        san.value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(name) => Some((*name).to_owned()),
                _ => None,
            })
            .collect()
    }

    /// The protocol ALPN agreed on (`h2`, `http/1.1`), if any.
    pub fn alpn(&self) -> Option<&str> {
        self.alpn.as_deref()
    }

    /// `GET path` with the SNI name as the host; the whole answer, or the error as text.
    pub async fn get(&mut self, path: &str) -> Result<Answer, String> {
        let request = async {
            let response = match &mut self.sender {
                Sender::H1(sender) => {
                    sender.ready().await.map_err(|e| format!("connection: {e}"))?;
                    let req = Request::get(path)
                        .header(http::header::HOST, &self.sni)
                        .body(Full::default())
                        .map_err(|e| e.to_string())?;
                    sender.send_request(req).await
                }
                Sender::H2(sender) => {
                    sender.ready().await.map_err(|e| format!("connection: {e}"))?;
                    let req = Request::get(format!("https://{}{path}", self.sni))
                        .body(Full::default())
                        .map_err(|e| e.to_string())?;
                    sender.send_request(req).await
                }
            }
            .map_err(|e| format!("request: {e}"))?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(PATIENCE, request)
            .await
            .map_err(|_| format!("no answer within {PATIENCE:?}"))?
    }
}
