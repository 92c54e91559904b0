//! Loading and SNI resolution with certificates rcgen makes in a temporary directory.

use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, KeyPair, date_time_ymd};
use rustls_pki_types::CertificateDer;
use sluice_config::{HostPattern, Tls, TlsCertificate};

use super::Certificates;

/// A self-signed certificate for `names` written to `DIR/STEM.pem` and `DIR/STEM.key`; returns its DER.
fn write_cert(dir: &Path, stem: &str, names: &[&str]) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
    cert.der().clone()
}

fn entry(dir: &Path, stem: &str, hosts: &[&str]) -> TlsCertificate {
    let hosts = hosts
        .iter()
        .map(|h| match h.strip_prefix('*') {
            Some(suffix) => HostPattern::Suffix(suffix.to_owned()),
            None => HostPattern::Exact((*h).to_owned()),
        })
        .collect();
    TlsCertificate {
        hosts,
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}.key")),
    }
}

fn tls(entries: Vec<TlsCertificate>) -> Tls {
    Tls { certificates: entries }
}

fn config_file() -> PathBuf {
    PathBuf::from("/etc/sluice/sluice.toml")
}

#[test]
fn a_key_that_does_not_match_its_certificate_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path(), "a", &["a.test"]);
    write_cert(dir.path(), "b", &["b.test"]);
    let mut mixed = entry(dir.path(), "a", &["a.test"]);
    mixed.key = dir.path().join("b.key");
    let err = Certificates::load(
        &tls(vec![entry(dir.path(), "b", &["b.test"]), mixed]),
        Some(&config_file()),
    )
    .unwrap_err();
    assert_eq!(err.key_path(), "tls.certificates[1].key");
    assert_eq!(err.file(), dir.path().join("b.key"));
    let message = err.to_string();
    assert!(
        message.starts_with("/etc/sluice/sluice.toml: tls.certificates[1].key: "),
        "{message}"
    );
    assert!(message.contains("does not match the certificate in"), "{message}");
    assert!(message.contains("a.pem"), "{message}");
}

#[test]
fn an_expired_certificate_is_refused_naming_the_cert() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["old.test".to_owned()]).unwrap();
    params.not_before = date_time_ymd(2000, 1, 1);
    params.not_after = date_time_ymd(2001, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.path().join("old.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("old.key"), key.serialize_pem()).unwrap();
    let err = Certificates::load(&tls(vec![entry(dir.path(), "old", &["old.test"])]), None).unwrap_err();
    assert_eq!(err.key_path(), "tls.certificates[0].cert");
    assert!(err.to_string().contains("expired on"), "{err}");
    assert!(err.to_string().contains("2001"), "{err}");
}

#[test]
fn garbage_is_refused_whichever_file_it_is_in() {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path(), "a", &["a.test"]);
    let good = entry(dir.path(), "a", &["a.test"]);

    std::fs::write(dir.path().join("junk.pem"), "this is not a certificate\n").unwrap();
    let mut bad_cert = good.clone();
    bad_cert.cert = dir.path().join("junk.pem");
    let err = Certificates::load(&tls(vec![bad_cert]), None).unwrap_err();
    assert_eq!(err.key_path(), "tls.certificates[0].cert");
    assert!(err.to_string().contains("no certificate in it"), "{err}");

    std::fs::write(
        dir.path().join("broken.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let mut broken = good.clone();
    broken.cert = dir.path().join("broken.pem");
    let err = Certificates::load(&tls(vec![broken]), None).unwrap_err();
    assert!(err.to_string().contains("not valid X.509"), "{err}");

    let mut bad_key = good.clone();
    bad_key.key = dir.path().join("junk.pem");
    let err = Certificates::load(&tls(vec![bad_key]), None).unwrap_err();
    assert_eq!(err.key_path(), "tls.certificates[0].key");
    assert!(err.to_string().contains("no private key in it"), "{err}");

    let mut missing = good;
    missing.key = dir.path().join("nowhere.key");
    let err = Certificates::load(&tls(vec![missing]), None).unwrap_err();
    assert!(err.to_string().contains("cannot read the private key"), "{err}");
}

#[test]
fn exact_names_beat_wildcards_and_unknown_names_get_the_first_entry() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_cert(dir.path(), "first", &["first.test"]);
    let wild = write_cert(dir.path(), "wild", &["*.example.com"]);
    let deep = write_cert(dir.path(), "deep", &["*.api.example.com"]);
    let exact = write_cert(dir.path(), "exact", &["www.example.com"]);
    let certs = Certificates::load(
        &tls(vec![
            entry(dir.path(), "first", &["first.test"]),
            entry(dir.path(), "wild", &["*.example.com"]),
            entry(dir.path(), "deep", &["*.api.example.com"]),
            entry(dir.path(), "exact", &["www.example.com"]),
        ]),
        None,
    )
    .unwrap();
    let served = |name: Option<&str>| certs.resolve_name(name).cert[0].clone();
    assert_eq!(served(Some("www.example.com")), exact);
    assert_eq!(
        served(Some("WWW.Example.COM")),
        exact,
        "names compare case-insensitively"
    );
    assert_eq!(served(Some("shop.example.com")), wild);
    assert_eq!(served(Some("v1.api.example.com")), deep, "the longest wildcard wins");
    assert_eq!(
        served(Some("example.com")),
        first,
        "a wildcard does not cover its own suffix"
    );
    assert_eq!(served(Some("other.test")), first);
    assert_eq!(served(None), first);
    assert_eq!(served(Some("first.test")), first);
}

#[test]
fn a_failed_reload_keeps_the_old_set_until_a_good_one_clears_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let old = write_cert(dir.path(), "site", &["site.test"]);
    let spec = tls(vec![entry(dir.path(), "site", &["site.test"])]);
    let certs = Certificates::load(&spec, None).unwrap();

    std::fs::write(dir.path().join("site.pem"), "garbage").unwrap();
    let err = certs.reload(&spec, None, "test").unwrap_err();
    assert_eq!(
        certs.resolve_name(Some("site.test")).cert[0],
        old,
        "the old certificate keeps serving"
    );
    let status = certs.status();
    let last = status.last_error.expect("the error is kept");
    assert_eq!(last.message, err.to_string());
    assert!(last.message.contains("site.pem"), "{}", last.message);
    assert_eq!((status.reloads_ok, status.reloads_failed), (0, 1));

    let new = write_cert(dir.path(), "site", &["site.test"]);
    certs.reload(&spec, None, "test").unwrap();
    assert_eq!(certs.resolve_name(Some("site.test")).cert[0], new);
    let status = certs.status();
    assert_eq!(status.last_error, None);
    assert_eq!((status.reloads_ok, status.reloads_failed), (1, 1));
}

#[test]
fn hosts_the_certificate_does_not_name_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path(), "a", &["a.test", "*.b.test"]);
    let infos = Certificates::check(
        &tls(vec![entry(
            dir.path(),
            "a",
            &["a.test", "x.b.test", "*.b.test", "c.test"],
        )]),
        None,
    )
    .unwrap();
    assert_eq!(infos[0].names, ["a.test", "*.b.test"]);
    assert_eq!(infos[0].warnings.len(), 1, "{:?}", infos[0].warnings);
    assert!(
        infos[0].warnings[0].contains("hosts[3]: `c.test`"),
        "{:?}",
        infos[0].warnings
    );
}
