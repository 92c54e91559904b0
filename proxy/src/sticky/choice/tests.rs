use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_config::{Config, LiveState, Weight};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::table::Table;

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn state(file: Config, effective: Config) -> Arc<LiveState> {
    Arc::new(LiveState {
        version: 1,
        published_at: SystemTime::now(),
        file: Arc::new(file),
        overrides: Default::default(),
        effective: Arc::new(effective),
    })
}

/// A directory of its own under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("sluice-proxy-sticky-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A table for a `web` route with `weights` and the `extra` route keys; `runtime` replaces the effective weights.
fn table_with(weights: &str, extra: &str, runtime: Option<&[(&str, u32)]>) -> (Table, TempDir) {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("pin.key"), KEY).unwrap();
    let text = format!(
        r#"
        [listen]
        http = ["127.0.0.1:0"]
        [upstreams.blue]
        servers = ["127.0.0.1:9101"]
        [upstreams.canary]
        servers = ["127.0.0.1:9102"]
        [upstreams.green]
        servers = ["127.0.0.1:9103"]
        [[routes]]
        name = "web"
        weights = {{ {weights} }}
        {extra}
    "#
    );
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    let file = Config::load(&path).unwrap();
    let mut effective = file.clone();
    if let Some(runtime) = runtime {
        effective.routes[0].weights = runtime
            .iter()
            .map(|&(upstream, weight)| Weight {
                upstream: upstream.into(),
                weight,
            })
            .collect();
    }
    (Table::build(state(file, effective), None).unwrap(), dir)
}

fn table(weights: &str, extra: &str) -> Table {
    table_with(weights, extra, None).0
}

fn req(headers: &[(&str, &str)]) -> http::Request<()> {
    let mut b = http::Request::builder().uri("/p?uid=7");
    for &(n, v) in headers {
        b = b.header(n, v);
    }
    b.body(()).unwrap()
}

/// The version name and `Set-Cookie` value chosen for a request with `headers`.
fn choose(t: &Table, headers: &[(&str, &str)], secure: bool) -> (String, Option<String>) {
    let route = t.route_for(None, "/").unwrap();
    let (v, cookie) = route.choose(&req(headers), secure).expect("a version");
    let cookie = cookie.map(|c| c.to_str().unwrap().to_owned());
    (route.versions[v].pool.name.to_string(), cookie)
}

/// `name=value` of a `Set-Cookie` value, as a browser sends it back.
fn cookie_pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap()
}

const BUCKET_KEY: &str = "[routes.sticky]\nkey = \"header:x-user-id\"\n";

#[test]
fn header_key_gives_a_stable_version_and_no_cookie() {
    let t = table("blue = 95, canary = 5", BUCKET_KEY);
    let mut canary = 0;
    for i in 0..10_000 {
        let id = format!("user-{i}");
        let (first, cookie) = choose(&t, &[("x-user-id", &id)], false);
        assert_eq!(cookie, None);
        assert_eq!(choose(&t, &[("x-user-id", &id)], false).0, first);
        canary += usize::from(first == "canary");
    }
    assert!(
        (450..=550).contains(&canary),
        "{canary} of 10,000 users on canary at 5 %"
    );
}

#[test]
fn same_salt_same_answer_in_independently_built_tables() {
    let (a, b) = (
        table("blue = 95, canary = 5", BUCKET_KEY),
        table("blue = 95, canary = 5", BUCKET_KEY),
    );
    let salted = table("blue = 95, canary = 5", &format!("{BUCKET_KEY}salt = \"other\"\n"));
    let mut differ = 0;
    for i in 0..2_000 {
        let h = [("x-user-id", &*format!("u{i}"))];
        assert_eq!(choose(&a, &h, false), choose(&b, &h, false));
        differ += usize::from(choose(&a, &h, false).0 != choose(&salted, &h, false).0);
    }
    assert!(
        differ > 50,
        "another salt should split users differently; {differ} of 2,000 differ"
    );
}

#[test]
fn without_a_key_the_sluice_id_cookie_is_issued_once_and_then_used() {
    let t = table("blue = 50, canary = 50", "[routes.sticky]\ncookie_max_age = \"2h\"\n");
    for _ in 0..50 {
        let (version, set) = choose(&t, &[], false);
        let set = set.expect("a sluice_id cookie is issued");
        assert!(set.starts_with("sluice_id="), "{set}");
        assert!(set.ends_with("; Path=/; Max-Age=7200; HttpOnly; SameSite=Lax"), "{set}");
        // The version was chosen with the issued id: sending it back gives the same version and no new cookie.
        for _ in 0..5 {
            assert_eq!(
                choose(&t, &[("cookie", cookie_pair(&set))], false),
                (version.clone(), None)
            );
        }
    }
    let (_, set) = choose(&t, &[], true);
    assert!(set.unwrap().ends_with("; Secure"));
}

#[test]
fn a_configured_key_that_is_absent_falls_back_to_the_sluice_id_cookie() {
    let t = table("blue = 50, canary = 50", "[routes.sticky]\nkey = \"query:user\"\n");
    let (version, set) = choose(&t, &[], false);
    let set = set.expect("no key: a sluice_id cookie");
    assert_eq!(choose(&t, &[("cookie", cookie_pair(&set))], false), (version, None));
    let t = table("blue = 50, canary = 50", "[routes.sticky]\nkey = \"query:uid\"\n");
    assert_eq!(choose(&t, &[], false).1, None, "the query has uid=7");
}

const MATCH: &str = "[[routes.match]]\nheader = { name = \"x-canary\", value = \"always\" }\nversion = \"canary\"\n\
                     [[routes.match]]\ncookie = { name = \"cohort\", regex = \"green-[0-9]+\" }\nversion = \"green\"\n";

#[test]
fn match_rules_come_first_and_reach_a_version_of_weight_zero() {
    for sticky in ["", BUCKET_KEY] {
        let t = table("blue = 100, canary = 0", &format!("{sticky}\n{MATCH}"));
        assert_eq!(choose(&t, &[("x-canary", "always")], false), ("canary".into(), None));
        assert_eq!(
            choose(&t, &[("x-canary", "always"), ("x-user-id", "u1")], false).0,
            "canary"
        );
        // green is not in the weights: the rule adds it as a version of weight 0.
        assert_eq!(choose(&t, &[("cookie", "cohort=green-12")], false).0, "green");
        assert_eq!(
            choose(&t, &[("cookie", "cohort=green-x"), ("x-user-id", "u1")], false).0,
            "blue"
        );
        assert_eq!(
            choose(&t, &[("x-canary", "sometimes"), ("x-user-id", "u1")], false).0,
            "blue"
        );
    }
}

#[test]
fn match_only_versions_come_after_the_weights_and_get_no_buckets() {
    let t = table("blue = 90, canary = 10", &format!("{BUCKET_KEY}\n{MATCH}"));
    let route = t.route_for(None, "/").unwrap();
    let names: Vec<&str> = route.versions.iter().map(|v| &*v.pool.name).collect();
    assert_eq!(names, ["blue", "canary", "green"]);
    assert_eq!(&*route.weights, [90, 10, 0]);
    assert_eq!(
        route.bucket_ranges(),
        Some(vec![("canary", 0..1000), ("blue", 1000..10_000)])
    );
    assert_eq!(
        crate::bucket_ranges(&route.weights),
        vec![(1, 0..1000), (0, 1000..10_000)]
    );
}

#[test]
fn runtime_weights_that_omit_a_version_keep_the_layout_order() {
    let (t, _dir) = table_with(
        "blue = 80, green = 10, canary = 10",
        BUCKET_KEY,
        Some(&[("blue", 90), ("canary", 10)]),
    );
    let route = t.route_for(None, "/").unwrap();
    let names: Vec<&str> = route.versions.iter().map(|v| &*v.pool.name).collect();
    assert_eq!(
        names,
        ["blue", "green", "canary"],
        "the file's order, green kept at weight 0"
    );
    assert_eq!(&*route.weights, [90, 0, 10]);
    // canary keeps its anchor at the top of the buckets.
    assert_eq!(
        route.bucket_ranges(),
        Some(vec![("blue", 0..9000), ("canary", 9000..10_000)])
    );
}

#[test]
fn every_weight_zero_is_no_version() {
    let (t, _dir) = table_with("blue = 1, canary = 1", BUCKET_KEY, Some(&[("blue", 0), ("canary", 0)]));
    let route = t.route_for(None, "/").unwrap();
    assert!(route.choose(&req(&[("x-user-id", "u")]), false).is_none());
    assert!(route.choose(&req(&[]), false).is_none());
}

const PIN: &str = "[routes.sticky]\nmode = \"pin\"\ncookie_max_age = \"1h\"\npin_key_file = \"pin.key\"\n";

#[test]
fn pin_issues_a_signed_cookie_and_honours_it() {
    let t = table("blue = 50, canary = 50", PIN);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let (version, set) = choose(&t, &[], false);
        let set = set.expect("a pin cookie");
        assert!(set.starts_with(&format!("sluice_pin_web=v1.web.{version}.")), "{set}");
        assert!(set.contains("; Max-Age=3600; HttpOnly"), "{set}");
        for _ in 0..5 {
            assert_eq!(
                choose(&t, &[("cookie", cookie_pair(&set))], false),
                (version.clone(), None)
            );
        }
        seen.insert(version);
    }
    assert_eq!(seen.len(), 2, "new clients are assigned by weight");
}

#[test]
fn pin_forged_expired_or_stale_cookies_are_reassigned() {
    let t = table("blue = 50, canary = 50", PIN);
    let keys = PinKeys::new(KEY.as_bytes().to_vec(), None);
    let hour = Duration::from_secs(3600);
    let forged = PinKeys::new(b"not the key, but long enough.....".to_vec(), None);
    for value in [
        forged.sign("web", "canary", SystemTime::now() + hour),
        keys.sign("web", "canary", SystemTime::now() - hour),
        keys.sign("other", "canary", SystemTime::now() + hour),
        "garbage".to_owned(),
    ] {
        for _ in 0..4 {
            let (version, set) = choose(&t, &[("cookie", &format!("sluice_pin_web={value}"))], false);
            let set = set.expect("re-pinned with a fresh cookie");
            assert!(set.starts_with(&format!("sluice_pin_web=v1.web.{version}.")), "{set}");
        }
    }
    // A valid pin to a version that now has weight 0 moves.
    let (t, _dir) = table_with("blue = 50, canary = 50", PIN, Some(&[("blue", 100), ("canary", 0)]));
    let pinned = format!(
        "sluice_pin_web={}",
        keys.sign("web", "canary", SystemTime::now() + hour)
    );
    for _ in 0..4 {
        let (version, set) = choose(&t, &[("cookie", &pinned)], false);
        assert_eq!(version, "blue");
        assert!(set.unwrap().starts_with("sluice_pin_web=v1.web.blue."));
    }
    // ...and one to a live version stays.
    let pinned = format!("sluice_pin_web={}", keys.sign("web", "blue", SystemTime::now() + hour));
    assert_eq!(choose(&t, &[("cookie", &pinned)], false), ("blue".into(), None));
}

/// Per-request cost of the sticky choice when the key is present: header lookup, xxh3 and the layout search.
/// Prints ns/op; asserts nothing about time. Run in release: `cargo test --release -p sluice-proxy bench_ -- --nocapture`.
#[test]
fn bench_sticky_choice_with_key_present() {
    const N: u32 = 1_000_000;
    let t = table("blue = 90, green = 5, canary = 5", BUCKET_KEY);
    let route = t.route_for(None, "/").unwrap();
    let requests: Vec<http::Request<()>> = (0..64)
        .map(|i| {
            req(&[
                ("accept", "*/*"),
                ("user-agent", "bench"),
                ("cookie", "a=1; b=2"),
                ("x-user-id", &format!("user-{i:08}")),
            ])
        })
        .collect();
    let mut sum = 0usize;
    let start = Instant::now();
    for i in 0..N {
        let r = &requests[(i % 64) as usize];
        let (v, cookie) = route.choose(std::hint::black_box(r), false).unwrap();
        sum += v + usize::from(cookie.is_some());
    }
    let elapsed = start.elapsed();
    println!(
        "bench_sticky_choice_with_key_present: {:.1} ns/request over {N} requests (checksum {sum})",
        elapsed.as_nanos() as f64 / f64::from(N)
    );

    let Some(Sticky {
        mode: Mode::Bucket {
            key: Some(key),
            layout,
            seed,
        },
        ..
    }) = &route.sticky
    else {
        panic!("bucket mode with a key");
    };
    let start = Instant::now();
    for i in 0..N {
        let r = &requests[(i % 64) as usize];
        let k = key.extract(std::hint::black_box(r)).unwrap();
        sum += layout.version_for(bucket(k, *seed)).unwrap();
    }
    println!(
        "bench_sticky_choice_with_key_present: extract + hash + lookup alone {:.1} ns/request (checksum {sum})",
        start.elapsed().as_nanos() as f64 / f64::from(N)
    );
}
