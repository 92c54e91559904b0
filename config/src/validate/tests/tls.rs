//! `listen.https`, `[[tls.certificates]]` and `redirect_http_to_https`: one test per rule, each checking the key
//! path and the line.

use super::*;

const HTTPS: &str = "[listen]\nhttp = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\n";
const CERT: &str = "[[tls.certificates]]\nhosts = [\"example.com\", \"*.example.com\"]\ncert = \"certs/example.pem\"\n\
                    key = \"certs/example.key\"\n";

/// A file with `listen`, the base upstreams and route, then `tail` (TLS tables, route keys).
fn with(listen: &str, route_extra: &str, tail: &str) -> String {
    file(&[listen, UPSTREAMS, ROUTE, route_extra, tail])
}

#[test]
fn https_with_a_certificate_is_accepted_and_paths_are_beside_the_config() {
    let text = with(HTTPS, "", CERT);
    let config = Config::from_toml(&text, Some(Path::new("/etc/sluice/sluice.toml"))).expect("valid");
    assert_eq!(config.listen.https, vec!["127.0.0.1:8443".parse().expect("address")]);
    let tls = config.tls.expect("tls");
    assert_eq!(tls.certificates.len(), 1);
    let entry = &tls.certificates[0];
    assert_eq!(
        entry.hosts,
        vec![
            HostPattern::Exact("example.com".into()),
            HostPattern::Suffix(".example.com".into())
        ]
    );
    assert_eq!(entry.cert, PathBuf::from("/etc/sluice/certs/example.pem"));
    assert_eq!(entry.key, PathBuf::from("/etc/sluice/certs/example.key"));
    assert!(!config.routes[0].redirect_http_to_https);
}

#[test]
fn http_may_be_left_out_when_there_is_https() {
    let config = accepted(&with("[listen]\nhttps = [\"0.0.0.0:443\"]\n", "", CERT));
    assert!(config.listen.http.is_empty());
    assert_eq!(config.listen.https.len(), 1);
}

#[test]
fn https_needs_a_certificate() {
    let text = with(HTTPS, "", "");
    let message = rejected(&text, "listen.https", "https =");
    assert!(message.contains("[[tls.certificates]]"), "{message}");
}

#[test]
fn certificates_need_an_https_listener() {
    let text = with(LISTEN, "", CERT);
    let message = rejected(&text, "tls", "[[tls.certificates]]");
    assert!(message.contains("no `https` listener"), "{message}");
}

#[test]
fn an_address_is_either_http_or_https() {
    let listen = "[listen]\nhttp = [\"127.0.0.1:8443\"]\nhttps = [\"127.0.0.1:8443\"]\n";
    let message = rejected(&with(listen, "", CERT), "listen.https[0]", "https =");
    assert!(message.contains("already listed as listen.http[0]"), "{message}");
}

#[test]
fn port_zero_may_be_both_http_and_https() {
    let listen = "[listen]\nhttp = [\"127.0.0.1:0\"]\nhttps = [\"127.0.0.1:0\"]\n";
    let config = accepted(&with(listen, "", CERT));
    assert_eq!(config.listen.https.len(), 1);
}

#[test]
fn https_address_is_ip_and_port() {
    let listen = "[listen]\nhttps = [\"localhost:8443\"]\n";
    let message = rejected(&with(listen, "", CERT), "listen.https[0]", "https =");
    assert!(message.contains("IP:port"), "{message}");
}

#[test]
fn certificate_hosts_must_not_be_empty() {
    let tail = "[[tls.certificates]]\nhosts = []\ncert = \"a.pem\"\nkey = \"a.key\"\n";
    let message = rejected(&with(HTTPS, "", tail), "tls.certificates[0].hosts", "hosts = []");
    assert!(message.contains("is empty"), "{message}");
}

#[test]
fn certificate_hosts_are_required() {
    let tail = "[[tls.certificates]]\ncert = \"a.pem\"\nkey = \"a.key\"\n";
    let message = rejected(
        &with(HTTPS, "", tail),
        "tls.certificates[0].hosts",
        "[[tls.certificates]]",
    );
    assert!(message.contains("missing `hosts`"), "{message}");
}

#[test]
fn certificate_host_star_is_not_a_name() {
    let tail = "[[tls.certificates]]\nhosts = [\"*\"]\ncert = \"a.pem\"\nkey = \"a.key\"\n";
    let message = rejected(
        &with(HTTPS, "", tail),
        "tls.certificates[0].hosts[0]",
        "hosts = [\"*\"]",
    );
    assert!(message.contains("first `[[tls.certificates]]` entry"), "{message}");
}

#[test]
fn certificate_host_must_be_a_name() {
    let tail = "[[tls.certificates]]\nhosts = [\"a.example.com:443\"]\ncert = \"a.pem\"\nkey = \"a.key\"\n";
    let message = rejected(&with(HTTPS, "", tail), "tls.certificates[0].hosts[0]", "hosts =");
    assert!(message.contains("has a port"), "{message}");
    assert!(!message.contains("use \"*\""), "{message}");
}

#[test]
fn a_name_is_listed_once_per_entry() {
    let tail = "[[tls.certificates]]\nhosts = [\"a.example.com\",\n  \"A.example.com\"]\ncert = \"a.pem\"\n\
                key = \"a.key\"\n";
    let message = rejected(
        &with(HTTPS, "", tail),
        "tls.certificates[0].hosts[1]",
        "  \"A.example.com\"]",
    );
    assert!(message.contains("already listed as hosts[0]"), "{message}");
}

#[test]
fn a_name_has_one_certificate() {
    let tail = format!(
        "{CERT}\n[[tls.certificates]]\nhosts = [\"api.example.org\",\n  \"*.example.com\"]\ncert = \"b.pem\"\n\
         key = \"b.key\"\n"
    );
    let message = rejected(
        &with(HTTPS, "", &tail),
        "tls.certificates[1].hosts[1]",
        "  \"*.example.com\"]",
    );
    assert!(message.contains("already served by tls.certificates[0]"), "{message}");
}

#[test]
fn an_exact_name_may_sit_under_another_entrys_wildcard() {
    let tail =
        format!("{CERT}\n[[tls.certificates]]\nhosts = [\"api.example.com\"]\ncert = \"b.pem\"\nkey = \"b.key\"\n");
    let config = accepted(&with(HTTPS, "", &tail));
    assert_eq!(config.tls.expect("tls").certificates.len(), 2);
}

#[test]
fn certificate_needs_cert_and_key() {
    let tail = "[[tls.certificates]]\nhosts = [\"a.example.com\"]\nkey = \"a.key\"\n";
    let message = rejected(
        &with(HTTPS, "", tail),
        "tls.certificates[0].cert",
        "[[tls.certificates]]",
    );
    assert!(message.contains("missing `cert`"), "{message}");

    let tail = "[[tls.certificates]]\nhosts = [\"a.example.com\"]\ncert = \"a.pem\"\nkey = \" \"\n";
    let message = rejected(&with(HTTPS, "", tail), "tls.certificates[0].key", "key = \" \"");
    assert!(message.contains("empty path"), "{message}");
}

#[test]
fn certificates_must_not_be_empty() {
    let message = rejected(
        &with(HTTPS, "", "[tls]\ncertificates = []\n"),
        "tls.certificates",
        "certificates = []",
    );
    assert!(message.contains("no certificates"), "{message}");
}

#[test]
fn certificate_entries_take_no_unknown_keys() {
    let tail = "[[tls.certificates]]\nhosts = [\"a.example.com\"]\ncert = \"a.pem\"\nkey = \"a.key\"\nchain = \"x\"\n";
    let message = rejected(&with(HTTPS, "", tail), "tls.certificates[0].chain", "chain =");
    assert!(message.contains("unknown key `chain`"), "{message}");
}

#[test]
fn redirect_needs_an_https_listener() {
    let text = with(LISTEN, "redirect_http_to_https = true\n", "");
    let message = rejected(&text, "routes[0].redirect_http_to_https", "redirect_http_to_https");
    assert!(message.contains("no `https` listener"), "{message}");
}

#[test]
fn redirect_is_read() {
    let config = accepted(&with(HTTPS, "redirect_http_to_https = true\n", CERT));
    assert!(config.routes[0].redirect_http_to_https);
}

#[test]
fn example_file_parses() {
    let config = accepted(include_str!("../../../../examples/tls.toml"));
    assert_eq!(config.listen.https, vec!["0.0.0.0:8443".parse().expect("address")]);
    assert_eq!(config.tls.expect("tls").certificates.len(), 2);
    assert!(config.routes[0].redirect_http_to_https);
    assert!(!config.routes[1].redirect_http_to_https);
}
