//! `sluice check`, `sluice run` on a bad file, and `sluice demo`, as a user runs them.

use std::process::Command;

use crate::binary;

const VALID: &str = r#"
[listen]
http = ["127.0.0.1:8080"]
[upstreams.blue]
servers = ["127.0.0.1:9101"]
[upstreams.canary]
servers = ["127.0.0.1:9102", "127.0.0.1:9103"]
[[routes]]
name = "web"
weights = { blue = 9999, canary = 1 }
"#;

fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn check_summarises_a_valid_file() {
    let (_dir, path) = write(VALID);
    let out = Command::new(binary()).arg("check").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("http://127.0.0.1:8080"), "{stdout}");
    assert!(stdout.contains("99.99 %"), "{stdout}");
    assert!(stdout.contains("0.01 %"), "{stdout}");
}

#[test]
fn check_names_the_line_and_suggests_the_key_for_a_typo() {
    let (_dir, path) = write(&VALID.replace("servers = [\"127.0.0.1:9101\"]", "servrs = [\"127.0.0.1:9101\"]"));
    let out = Command::new(binary()).arg("check").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("sluice.toml:5:"),
        "the message names file and line 5: {stderr}"
    );
    assert!(stderr.contains("servers"), "the message suggests `servers`: {stderr}");
}

#[test]
fn run_refuses_a_bad_file_with_exit_64_before_binding() {
    let (_dir, path) = write(
        &VALID
            .replace("path_prefix", "x")
            .replace("name = \"web\"", "name = \"web\"\npath_prefix = \"api\""),
    );
    let out = Command::new(binary())
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("path_prefix"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
}

#[test]
fn demo_promotes_a_healthy_canary_and_exits_zero() {
    let out = Command::new(binary())
        .args(["demo", "--listen", "127.0.0.1:0", "--interval", "1", "--rate", "1500"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PROMOTED"), "{stdout}");
    assert!(
        stdout.contains("canary 100"),
        "the view showed the canary at 100: {stdout}"
    );
    // The view shows the controller's decisions; info logs repeating them between its lines stay off by default.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("INFO"), "{stderr}");
}

#[test]
fn demo_with_a_faulty_canary_rolls_back_and_exits_zero() {
    let out = Command::new(binary())
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "1",
            "--rate",
            "1500",
            "--faulty-canary",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ROLLED BACK"), "{stdout}");
}
