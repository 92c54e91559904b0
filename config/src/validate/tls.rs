//! `listen.http` and `listen.https` addresses, `[tls]` and a route's `redirect_http_to_https`: one check per rule,
//! each error pointing at the offending text.
//!
//! Only what the text says is checked here; reading the PEM files and the cryptographic checks (key matches
//! certificate, not expired) are the proxy's, which reports them with the same key paths.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::address::{parse_host_pattern, parse_listen};
use crate::document::Document;
use crate::error::ConfigError;
use crate::file::{CertificateFile, ListenFile, RouteFile, TlsFile};
use crate::key_path::{child, index};
use crate::model::{HostPattern, Listen, Tls, TlsCertificate};

impl Document<'_> {
    /// `listen.http` and `listen.https`: at least one address between them, none listed twice.
    pub(super) fn listen_addresses(
        &self,
        listen: &Spanned<ListenFile>,
    ) -> Result<(Vec<SocketAddr>, Vec<SocketAddr>), ConfigError> {
        let file = listen.get_ref();
        let http = match &file.http {
            Some(list) => self.addresses(list, "listen.http", &[])?,
            None => Vec::new(),
        };
        let https = match &file.https {
            Some(list) => self.addresses(list, "listen.https", &http)?,
            None => Vec::new(),
        };
        if http.is_empty() && https.is_empty() {
            return Err(match &file.http {
                None => self.error(
                    listen.span(),
                    "listen.http",
                    "missing `http`; add e.g. `http = [\"127.0.0.1:8080\"]` (or `https` with `[[tls.certificates]]`)",
                ),
                Some(list) => self.error(
                    list.span(),
                    "listen.http",
                    "needs at least one address, e.g. `[\"127.0.0.1:8080\"]`",
                ),
            });
        }
        Ok((http, https))
    }

    /// One list of listener addresses; `http` holds the plain ones already parsed when this is `listen.https`.
    fn addresses(
        &self,
        list: &Spanned<Vec<Spanned<String>>>,
        list_key: &str,
        http: &[SocketAddr],
    ) -> Result<Vec<SocketAddr>, ConfigError> {
        let mut addrs: Vec<SocketAddr> = Vec::with_capacity(list.get_ref().len());
        for (i, text) in list.get_ref().iter().enumerate() {
            let key = index(list_key, i);
            let addr = parse_listen(text.get_ref()).map_err(|message| self.error(text.span(), &key, message))?;
            // Port 0 asks the OS for a fresh port each time, so it never clashes.
            let clash = |a: &SocketAddr| *a == addr && addr.port() != 0;
            let first = match (addrs.iter().position(clash), http.iter().position(clash)) {
                (Some(first), _) => Some(index(list_key, first)),
                (None, Some(first)) => Some(index("listen.http", first)),
                (None, None) => None,
            };
            if let Some(first) = first {
                return Err(self.error(text.span(), key, format!("`{addr}` is already listed as {first}")));
            }
            addrs.push(addr);
        }
        Ok(addrs)
    }

    /// `[tls]`: required exactly when there are `https` listeners.
    pub(super) fn tls(
        &self,
        tls: Option<&Spanned<TlsFile>>,
        listen: &Spanned<ListenFile>,
        parsed: &Listen,
    ) -> Result<Option<Tls>, ConfigError> {
        let example = "`[[tls.certificates]]` with `hosts = [\"example.com\"]`, `cert = \"example.pem\"` and \
                       `key = \"example.key\"`";
        let Some(tls) = tls else {
            let Some(https) = listen.get_ref().https.as_ref().filter(|_| !parsed.https.is_empty()) else {
                return Ok(None);
            };
            let message = format!("`https` listeners need a certificate; add {example}");
            return Err(self.error(https.span(), "listen.https", message));
        };
        if parsed.https.is_empty() {
            let message = "certificates, but no `https` listener to serve them; add e.g. \
                           `https = [\"0.0.0.0:8443\"]` to `[listen]`, or remove `[tls]`";
            return Err(self.error(tls.span(), "tls", message));
        }
        let missing = format!("no certificates; add {example}");
        let Some(list) = &tls.get_ref().certificates else {
            return Err(self.error(tls.span(), "tls.certificates", missing));
        };
        if list.get_ref().is_empty() {
            return Err(self.error(list.span(), "tls.certificates", missing));
        }
        let mut certificates: Vec<TlsCertificate> = Vec::with_capacity(list.get_ref().len());
        for (i, entry) in list.get_ref().iter().enumerate() {
            let key = index("tls.certificates", i);
            certificates.push(self.certificate(&key, entry, &certificates)?);
        }
        Ok(Some(Tls { certificates }))
    }

    /// One `[[tls.certificates]]` entry; `earlier` are the entries before it (a name may have one certificate).
    fn certificate(
        &self,
        key: &str,
        entry: &Spanned<CertificateFile>,
        earlier: &[TlsCertificate],
    ) -> Result<TlsCertificate, ConfigError> {
        let file = entry.get_ref();
        let hosts_key = child(key, "hosts");
        let Some(list) = &file.hosts else {
            let message = "missing `hosts`; add the names this certificate serves, e.g. `[\"example.com\"]`";
            return Err(self.error(entry.span(), hosts_key, message));
        };
        if list.get_ref().is_empty() {
            let message = "is empty; list the names this certificate serves, e.g. `[\"example.com\", \
                           \"*.example.com\"]` (the first entry also serves clients that send no or an unknown name)";
            return Err(self.error(list.span(), hosts_key, message));
        }
        let mut hosts: Vec<HostPattern> = Vec::with_capacity(list.get_ref().len());
        for (k, text) in list.get_ref().iter().enumerate() {
            let host_key = index(&hosts_key, k);
            let pattern = match parse_host_pattern(text.get_ref()) {
                Ok(HostPattern::Any) => {
                    let message = "`*` is not a name a client can ask for; the first `[[tls.certificates]]` entry \
                                   already serves clients that send no or an unknown name";
                    return Err(self.error(text.span(), host_key, message));
                }
                Ok(pattern) => pattern,
                Err(message) => {
                    let message = message.replace("use \"*\", an exact name", "use an exact name");
                    return Err(self.error(text.span(), host_key, message));
                }
            };
            if let Some(first) = hosts.iter().position(|h| *h == pattern) {
                let message = format!("`{pattern}` is already listed as hosts[{first}]; list each name once");
                return Err(self.error(text.span(), host_key, message));
            }
            if let Some(first) = earlier.iter().position(|c| c.hosts.contains(&pattern)) {
                let message = format!(
                    "`{pattern}` is already served by tls.certificates[{first}]; a name can have one certificate, \
                     so remove it from one of the entries"
                );
                return Err(self.error(text.span(), host_key, message));
            }
            hosts.push(pattern);
        }
        let cert = self.pem_path(key, "cert", entry, file.cert.as_ref())?;
        let key_file = self.pem_path(key, "key", entry, file.key.as_ref())?;
        Ok(TlsCertificate {
            hosts,
            cert,
            key: key_file,
        })
    }

    /// `cert` or `key` of an entry, resolved against the config file's directory.
    fn pem_path(
        &self,
        entry_key: &str,
        name: &str,
        entry: &Spanned<CertificateFile>,
        value: Option<&Spanned<String>>,
    ) -> Result<PathBuf, ConfigError> {
        let key = child(entry_key, name);
        let what = if name == "cert" {
            "the certificate chain (PEM, leaf first), e.g. `cert = \"example.pem\"`"
        } else {
            "the private key (PEM), e.g. `key = \"example.key\"`"
        };
        let Some(value) = value else {
            return Err(self.error(entry.span(), key, format!("missing `{name}`; add {what}")));
        };
        if value.get_ref().trim().is_empty() {
            return Err(self.error(value.span(), key, format!("an empty path; give {what}")));
        }
        // Relative paths mean "beside the config file", wherever sluice was started from.
        let dir = self.source.path.and_then(Path::parent).unwrap_or(Path::new(""));
        Ok(dir.join(value.get_ref()))
    }

    /// A route may redirect plain `http` to `https` only when there is an `https` listener to send it to.
    pub(super) fn check_redirects(
        &self,
        routes: Option<&Spanned<Vec<Spanned<RouteFile>>>>,
        listen: &Listen,
    ) -> Result<(), ConfigError> {
        if !listen.https.is_empty() {
            return Ok(());
        }
        for (i, route) in routes
            .map(|r| r.get_ref().as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if let Some(flag) = route.get_ref().redirect_http_to_https.as_ref().filter(|f| *f.get_ref()) {
                let message = "there is no `https` listener to redirect to; add e.g. `https = [\"0.0.0.0:8443\"]` \
                               to `[listen]` and a `[[tls.certificates]]` entry";
                return Err(self.error(
                    flag.span(),
                    child(&index("routes", i), "redirect_http_to_https"),
                    message,
                ));
            }
        }
        Ok(())
    }
}
