//! Sticky sessions and match rules through the real binary: exact shares by user, users that stay put, a ramp that
//! moves only the users it must, the same answer from two processes, cookies for browsers, pins, and testers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use sluice_tests::{AdminClient, Answer, SluiceProcess, TestClient, upstream};

use crate::{binary, two_version_config};

const BY_USER: &str = "[routes.sticky]\nkey = \"header:x-user-id\"\n";
const ADMIN: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n";

/// GET `/` with `headers`.
async fn get(client: &TestClient, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::get("/");
    for &(name, value) in headers {
        req = req.header(name, value);
    }
    let answer = client.send(req.body(Full::new(Bytes::new())).unwrap()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer
}

/// The version each of `users` (as `x-user-id: user-N`) gets, over 8 parallel keep-alive streams.
async fn versions(client: &TestClient, users: std::ops::Range<usize>) -> Vec<String> {
    let chunks: Vec<Vec<usize>> = users.collect::<Vec<_>>().chunks(1_250).map(<[usize]>::to_vec).collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(chunk.len());
            for user in chunk {
                let answer = get(&client, &[("x-user-id", &format!("user-{user}"))]).await;
                assert!(
                    answer.headers.get("set-cookie").is_none(),
                    "a keyed request needs no cookie"
                );
                out.push(answer.upstream().expect("x-upstream").to_owned());
            }
            out
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client task"));
    }
    all
}

fn count(versions: &[String], version: &str) -> usize {
    versions.iter().filter(|v| *v == version).count()
}

/// `name=value` of each `Set-Cookie` of an answer, as a browser would send them back.
fn set_cookies(answer: &Answer) -> Vec<String> {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn ten_thousand_users_at_95_5_get_5_percent_and_stay_on_their_version() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(blue.addr(), canary.addr(), "blue = 95, canary = 5", BY_USER),
    );
    let client = TestClient::http1(sluice.addr());
    let first = versions(&client, 0..10_000).await;
    let share = count(&first, "canary") as f64 / 100.0;
    println!("canary share of 10,000 users at 95/5: {share:.2} %");
    assert!((share - 5.0).abs() <= 0.5, "canary got {share:.2} % of users");
    assert_eq!(count(&first, "blue") + count(&first, "canary"), 10_000);

    // 1,000 users × 20 repeats: nobody moves.
    for round in 0..20 {
        let again = versions(&client, 0..1_000).await;
        assert_eq!(again[..], first[..1_000], "round {round}: a user changed version");
    }
}

#[tokio::test]
async fn ramping_the_canary_moves_only_the_users_it_must() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(
            blue.addr(),
            canary.addr(),
            "blue = 95, canary = 5",
            &format!("{BY_USER}{ADMIN}"),
        ),
    );
    let client = TestClient::http1(sluice.addr());
    let admin = AdminClient::new(sluice.admin_addr(), None);
    let at_5 = versions(&client, 0..10_000).await;

    admin
        .set_weights("web", serde_json::json!({"blue": 75, "canary": 25}))
        .await;
    // The state endpoint shows the layout: canary holds the bottom quarter of the buckets, blue the rest.
    let state = admin.state().await;
    let web = state["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "web")
        .unwrap()
        .clone();
    assert_eq!(
        web["buckets"],
        serde_json::json!([{"upstream": "canary", "from": 0, "to": 2500}, {"upstream": "blue", "from": 2500, "to": 10000}])
    );
    let at_25 = versions(&client, 0..10_000).await;
    let pairs = || at_5.iter().zip(&at_25);
    let back_to_blue = pairs().filter(|(a, b)| *a == "canary" && *b == "blue").count();
    let to_canary = pairs().filter(|(a, b)| *a == "blue" && *b == "canary").count();
    let moved = to_canary as f64 / count(&at_5, "blue") as f64;
    println!(
        "5 -> 25 %: {to_canary} of {} blue users moved ({:.2} %), {back_to_blue} canary users moved",
        count(&at_5, "blue"),
        moved * 100.0
    );
    assert_eq!(back_to_blue, 0, "every canary user stays on the canary");
    // Expected 2000 / 9500 = 21.05 % of the buckets; the users' hashes add a little noise.
    assert!(
        (0.19..=0.23).contains(&moved),
        "{:.2} % of blue users moved",
        moved * 100.0
    );

    admin
        .set_weights("web", serde_json::json!({"blue": 100, "canary": 0}))
        .await;
    let at_0 = versions(&client, 0..10_000).await;
    assert_eq!(count(&at_0, "blue"), 10_000, "at 0 % everyone is on blue");

    admin
        .set_weights("web", serde_json::json!({"blue": 95, "canary": 5}))
        .await;
    let again = versions(&client, 0..10_000).await;
    assert!(again == at_5, "back at 5 % exactly the original canary users return");
}

#[tokio::test]
async fn two_processes_from_the_same_config_answer_identically() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let config = two_version_config(blue.addr(), canary.addr(), "blue = 70, canary = 30", BY_USER);
    let (a, b) = (
        SluiceProcess::start(binary(), &config),
        SluiceProcess::start(binary(), &config),
    );
    let from_a = versions(&TestClient::http1(a.addr()), 0..2_000).await;
    let from_b = versions(&TestClient::http1(b.addr()), 0..2_000).await;
    assert!(from_a == from_b, "the two processes disagree on some user");
    assert!(count(&from_a, "canary") > 400, "both versions are in use");
}

#[tokio::test]
async fn without_a_key_a_browser_gets_sluice_id_once_and_stays() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = SluiceProcess::start(
        binary(),
        &two_version_config(
            blue.addr(),
            canary.addr(),
            "blue = 50, canary = 50",
            "[routes.sticky]\n",
        ),
    );
    let client = TestClient::http1(sluice.addr());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..40 {
        // A cookie jar kept by hand: whatever Set-Cookie says is sent back as Cookie.
        let first = get(&client, &[]).await;
        let jar = set_cookies(&first);
        assert_eq!(jar.len(), 1, "one cookie on the first visit");
        assert!(
            jar[0].starts_with("sluice_id=") && jar[0].len() == "sluice_id=".len() + 32,
            "{jar:?}"
        );
        let raw = first.headers["set-cookie"].to_str().unwrap();
        assert!(raw.contains("; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax"), "{raw}");
        let version = first.upstream().unwrap().to_owned();
        for _ in 0..10 {
            let next = get(&client, &[("cookie", &jar.join("; "))]).await;
            assert!(set_cookies(&next).is_empty(), "the cookie is set once");
            assert_eq!(next.upstream(), Some(version.as_str()));
        }
        *seen.entry(version).or_default() += 1;
    }
    assert_eq!(seen.len(), 2, "browsers are spread over both versions: {seen:?}");
}

/// Starts sluice in pin mode (with a key file beside the config) and the admin API.
fn start_pinned(blue: std::net::SocketAddr, canary: std::net::SocketAddr, max_age: &str) -> SluiceProcess {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pin.key"),
        "a test pin key of more than 32 bytes, not secret\n",
    )
    .unwrap();
    let sticky =
        format!("[routes.sticky]\nmode = \"pin\"\ncookie_max_age = \"{max_age}\"\npin_key_file = \"pin.key\"\n{ADMIN}");
    let config = two_version_config(blue, canary, "blue = 50, canary = 50", &sticky);
    std::fs::write(dir.path().join("sluice.toml"), config).unwrap();
    SluiceProcess::start_in(binary(), Arc::new(dir), &[])
}

/// A new client's first visit: (version, pin cookie as `name=value`).
async fn pin(client: &TestClient) -> (String, String) {
    let answer = get(client, &[]).await;
    let jar = set_cookies(&answer);
    assert_eq!(jar.len(), 1, "one pin cookie");
    let version = answer.upstream().unwrap().to_owned();
    assert!(
        jar[0].starts_with(&format!("sluice_pin_web=v1.web.{version}.")),
        "{jar:?}"
    );
    (version, jar[0].clone())
}

#[tokio::test]
async fn pin_cookies_hold_and_forged_ones_are_reassigned_with_200() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = start_pinned(blue.addr(), canary.addr(), "24h");
    let client = TestClient::http1(sluice.addr());
    let mut pins = Vec::new();
    for _ in 0..20 {
        let (version, cookie) = pin(&client).await;
        for _ in 0..5 {
            let next = get(&client, &[("cookie", &cookie)]).await;
            assert_eq!(next.upstream(), Some(version.as_str()));
            assert!(set_cookies(&next).is_empty());
        }
        pins.push((version, cookie));
    }
    assert!(pins.iter().any(|(v, _)| v == "blue") && pins.iter().any(|(v, _)| v == "canary"));

    let (version, cookie) = pins.iter().find(|(v, _)| v == "canary").unwrap();
    let forged = [
        cookie.replace(&format!(".{version}."), ".blue."),
        "sluice_pin_web=v1.web.canary.99999999999.AAAA".to_owned(),
        "sluice_pin_web=garbage".to_owned(),
    ];
    for cookie in forged {
        let answer = get(&client, &[("cookie", &cookie)]).await; // 200, never an error page
        let jar = set_cookies(&answer);
        assert_eq!(jar.len(), 1, "re-pinned with a fresh cookie: {cookie}");
        let version = answer.upstream().unwrap();
        assert!(
            jar[0].starts_with(&format!("sluice_pin_web=v1.web.{version}.")),
            "{jar:?}"
        );
    }
}

#[tokio::test]
async fn expired_pins_are_reassigned_and_a_pinned_version_at_weight_0_moves_its_users() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let sluice = start_pinned(blue.addr(), canary.addr(), "1s");
    let client = TestClient::http1(sluice.addr());
    let (_, cookie) = pin(&client).await;
    // The signed expiry is in whole seconds: 2 s later it has passed whatever the rounding.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let answer = get(&client, &[("cookie", &cookie)]).await;
    assert_eq!(set_cookies(&answer).len(), 1, "an expired pin is replaced");

    let sluice = start_pinned(blue.addr(), canary.addr(), "24h");
    let client = TestClient::http1(sluice.addr());
    let mut pinned_to_canary = Vec::new();
    while pinned_to_canary.len() < 5 {
        let (version, cookie) = pin(&client).await;
        if version == "canary" {
            pinned_to_canary.push(cookie);
        }
    }
    let admin = AdminClient::new(sluice.admin_addr(), None);
    admin
        .set_weights("web", serde_json::json!({"blue": 100, "canary": 0}))
        .await;
    for cookie in &pinned_to_canary {
        let answer = get(&client, &[("cookie", cookie)]).await;
        assert_eq!(answer.upstream(), Some("blue"), "a pin to a version at weight 0 moves");
        let jar = set_cookies(&answer);
        assert!(
            jar.len() == 1 && jar[0].starts_with("sluice_pin_web=v1.web.blue."),
            "{jar:?}"
        );
        let again = get(&client, &[("cookie", &jar[0])]).await;
        assert_eq!(again.upstream(), Some("blue"));
        assert!(set_cookies(&again).is_empty());
    }
}

#[tokio::test]
async fn x_canary_always_reaches_the_canary_at_weight_0() {
    let blue = upstream("blue").spawn().await.unwrap();
    let canary = upstream("canary").spawn().await.unwrap();
    let rule = "[[routes.match]]\nheader = { name = \"x-canary\", value = \"always\" }\nversion = \"canary\"\n";
    for sticky in ["", BY_USER] {
        let sluice = SluiceProcess::start(
            binary(),
            &two_version_config(
                blue.addr(),
                canary.addr(),
                "blue = 100, canary = 0",
                &format!("{sticky}{rule}"),
            ),
        );
        let client = TestClient::http1(sluice.addr());
        for i in 0..20 {
            let user = format!("user-{i}");
            let tester = get(&client, &[("x-canary", "always"), ("x-user-id", &user)]).await;
            assert_eq!(tester.upstream(), Some("canary"), "with sticky = {sticky:?}");
            let other = get(&client, &[("x-canary", "never"), ("x-user-id", &user)]).await;
            assert_eq!(other.upstream(), Some("blue"));
        }
    }
}

#[test]
fn check_shows_the_bucket_ranges() {
    let blue = "127.0.0.1:9101".parse().unwrap();
    let canary = "127.0.0.1:9102".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(
        &path,
        two_version_config(blue, canary, "blue = 95, canary = 5", BY_USER),
    )
    .unwrap();
    let out = std::process::Command::new(binary())
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("buckets        canary 0..500  blue 500..10000\n"),
        "{stdout}"
    );
}
