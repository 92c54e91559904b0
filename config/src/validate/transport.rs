//! `[upstreams.NAME] protocol` and `tls`: which combinations make sense, each error pointing at the key.

use std::path::Path;

use crate::document::Document;
use crate::error::ConfigError;
use crate::file::{UpstreamFile, UpstreamTlsFile};
use crate::key_path::child;
use crate::transport::{UpstreamProtocol, UpstreamTls};

impl Document<'_> {
    /// The protocol and TLS settings of `upstreams.NAME`.
    pub(super) fn transport(
        &self,
        upstream_key: &str,
        upstream: &UpstreamFile,
    ) -> Result<(UpstreamProtocol, Option<UpstreamTls>), ConfigError> {
        let protocol_key = child(upstream_key, "protocol");
        let tls_key = child(upstream_key, "tls");
        let protocol = match &upstream.protocol {
            None => UpstreamProtocol::default(),
            Some(text) => match text.get_ref().as_str() {
                "http1" => UpstreamProtocol::Http1,
                "h2" => UpstreamProtocol::H2,
                "h2c" => UpstreamProtocol::H2c,
                other => {
                    let message = format!("unknown protocol `{other}`; use \"http1\", \"h2\" (over TLS) or \"h2c\"");
                    return Err(self.error(text.span(), protocol_key, message));
                }
            },
        };
        let tls = match upstream.tls.as_ref().map(|tls| tls.get_ref()) {
            None | Some(UpstreamTlsFile::Enabled(false)) => None,
            Some(UpstreamTlsFile::Enabled(true)) => Some(UpstreamTls::default()),
            Some(UpstreamTlsFile::Settings(settings)) => {
                let ca = match &settings.ca {
                    None => None,
                    Some(ca) if ca.get_ref().trim().is_empty() => {
                        return Err(self.error(ca.span(), child(&tls_key, "ca"), "an empty path; give a PEM file"));
                    }
                    // Relative paths mean "beside the config file", wherever sluice was started from.
                    Some(ca) => {
                        let dir = self.source.path.and_then(Path::parent).unwrap_or(Path::new(""));
                        Some(dir.join(ca.get_ref()))
                    }
                };
                let server_name = match &settings.server_name {
                    None => None,
                    Some(name) if name.get_ref().trim().is_empty() || name.get_ref().contains(char::is_whitespace) => {
                        return Err(self.error(
                            name.span(),
                            child(&tls_key, "server_name"),
                            "needs a DNS name or IP address, e.g. \"api.internal\"",
                        ));
                    }
                    Some(name) => Some(name.get_ref().clone()),
                };
                Some(UpstreamTls { ca, server_name })
            }
        };
        match (protocol, &tls, &upstream.protocol) {
            (UpstreamProtocol::H2, None, Some(text)) => Err(self.error(
                text.span(),
                protocol_key,
                "\"h2\" runs over TLS: add `tls = true`, or use \"h2c\" for cleartext HTTP/2",
            )),
            (UpstreamProtocol::H2c, Some(_), Some(text)) => Err(self.error(
                text.span(),
                protocol_key,
                "\"h2c\" is cleartext HTTP/2: remove `tls`, or use \"h2\" for HTTP/2 over TLS",
            )),
            _ => Ok((protocol, tls)),
        }
    }
}
