//! `protocol` and `tls` of upstreams.

use super::*;
use crate::transport::{UpstreamProtocol, UpstreamTls};

fn with_upstream(extra: &str) -> String {
    let upstream = format!("[upstreams.blue]\nservers = [\"api.internal:443\"]\n{extra}\n");
    let route = "[[routes]]\nname = \"web\"\nweights = { blue = 100 }\n";
    file(&[LISTEN, &upstream, route])
}

#[test]
fn upstreams_default_to_http1_without_tls() {
    let config = accepted(&with_upstream(""));
    assert_eq!(config.upstreams[0].protocol, UpstreamProtocol::Http1);
    assert_eq!(config.upstreams[0].tls, None);
    let config = accepted(&with_upstream("tls = false"));
    assert_eq!(config.upstreams[0].tls, None);
}

#[test]
fn h2_over_tls_and_h2c_are_accepted() {
    let config = accepted(&with_upstream("protocol = \"h2\"\ntls = true"));
    assert_eq!(config.upstreams[0].protocol, UpstreamProtocol::H2);
    assert_eq!(config.upstreams[0].tls, Some(UpstreamTls::default()));
    let config = accepted(&with_upstream("protocol = \"h2c\""));
    assert_eq!(config.upstreams[0].protocol, UpstreamProtocol::H2c);
    let config = accepted(&with_upstream("protocol = \"http1\"\ntls = true"));
    assert_eq!(config.upstreams[0].protocol, UpstreamProtocol::Http1);
}

#[test]
fn tls_table_resolves_the_ca_beside_the_config_file() {
    let text = with_upstream("[upstreams.blue.tls]\nca = \"certs/ca.pem\"\nserver_name = \"api.example\"");
    let config = Config::from_toml(&text, Some(Path::new("/etc/sluice/sluice.toml"))).expect("accepted");
    let tls = config.upstreams[0].tls.clone().expect("tls");
    assert_eq!(tls.ca, Some(PathBuf::from("/etc/sluice/certs/ca.pem")));
    assert_eq!(tls.server_name.as_deref(), Some("api.example"));
}

#[test]
fn unknown_protocol_is_rejected() {
    let text = with_upstream("protocol = \"http3\"");
    let message = rejected(&text, "upstreams.blue.protocol", "protocol");
    assert!(message.contains("`http3`") && message.contains("h2c"), "{message}");
}

#[test]
fn h2_without_tls_is_rejected() {
    let text = with_upstream("protocol = \"h2\"");
    let message = rejected(&text, "upstreams.blue.protocol", "protocol");
    assert!(message.contains("tls = true"), "{message}");
}

#[test]
fn h2c_with_tls_is_rejected() {
    let text = with_upstream("protocol = \"h2c\"\ntls = true");
    let message = rejected(&text, "upstreams.blue.protocol", "protocol");
    assert!(message.contains("cleartext"), "{message}");
}

#[test]
fn empty_ca_path_is_rejected() {
    let text = with_upstream("[upstreams.blue.tls]\nca = \"\"");
    rejected(&text, "upstreams.blue.tls.ca", "ca =");
}

#[test]
fn blank_server_name_is_rejected() {
    let text = with_upstream("[upstreams.blue.tls]\nserver_name = \" \"");
    rejected(&text, "upstreams.blue.tls.server_name", "server_name");
}

#[test]
fn unknown_tls_key_is_rejected() {
    let text = with_upstream("[upstreams.blue.tls]\ncafile = \"ca.pem\"");
    let err = Config::from_toml(&text, None).expect_err("rejected");
    assert!(err.to_string().contains("upstreams.blue.tls"), "{err}");
}
