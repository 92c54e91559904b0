//! Running the real `sluice` binary as a child process on an ephemeral port.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `sluice run` with its config file in a temporary directory. Killed on drop.
#[derive(Debug)]
pub struct SluiceProcess {
    child: Child,
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    https: Vec<SocketAddr>,
    binary: PathBuf,
    dir: Arc<tempfile::TempDir>,
    stderr: Arc<Mutex<String>>,
}

impl SluiceProcess {
    /// Writes `config` to a file and starts `binary run --config FILE`; returns once it prints its address.
    pub fn start(binary: &Path, config: &str) -> SluiceProcess {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("sluice.toml"), config).expect("writing the test config");
        SluiceProcess::start_in(binary, Arc::new(dir), &[])
    }

    /// Starts sluice on the config file already in `dir`, with extra `args` after `run --config FILE`.
    pub fn start_in(binary: &Path, dir: Arc<tempfile::TempDir>, args: &[&str]) -> SluiceProcess {
        let path = dir.path().join("sluice.toml");
        let mut child = Command::new(binary)
            .args(["run", "--config"])
            .arg(&path)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning sluice");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let err_pipe = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().expect("stderr buffer");
                text.push_str(&line);
                text.push('\n');
            }
        });
        let out_pipe = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut admin = None;
            let mut https = Vec::new();
            for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("sluice admin listening on http://") {
                    admin = Some(addr.parse::<SocketAddr>().expect("sluice prints a socket address"));
                }
                // TLS listeners are announced before the plain ones.
                if let Some(addr) = line.strip_prefix("sluice listening on https://") {
                    https.push(addr.parse::<SocketAddr>().expect("sluice prints a socket address"));
                }
                // The proxy listener is announced last, once everything is up.
                if let Some(addr) = line.strip_prefix("sluice listening on http://") {
                    let _ = tx.send((
                        addr.parse::<SocketAddr>().expect("sluice prints a socket address"),
                        admin,
                        https.clone(),
                    ));
                }
            }
        });
        let Ok((addr, admin, https)) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            panic!(
                "sluice did not start within 20 s; stderr:\n{}",
                stderr.lock().expect("stderr buffer")
            );
        };
        SluiceProcess {
            child,
            addr,
            admin,
            https,
            binary: binary.to_owned(),
            dir,
            stderr,
        }
    }

    /// The address of the first HTTP listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the first HTTPS listener, when the config has `listen.https` (and an `http` listener, whose
    /// announcement tells the harness sluice is up).
    pub fn https_addr(&self) -> SocketAddr {
        *self.https.first().expect("the config has listen.https")
    }

    /// The admin API's address, when the config has `[admin]`.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.expect("the config has an [admin] section")
    }

    /// The directory holding the config (and state) file.
    pub fn dir(&self) -> Arc<tempfile::TempDir> {
        Arc::clone(&self.dir)
    }

    /// Replaces the config file by writing a temp file and renaming it over the original (as editors do).
    pub fn rewrite_config(&self, text: &str) {
        let temp = self.dir.path().join(".sluice.toml.tmp");
        std::fs::write(&temp, text).expect("writing the new config");
        std::fs::rename(&temp, self.config_path()).expect("renaming the new config into place");
    }

    /// Stops with SIGTERM (asserting a clean exit) and starts again on the same files with `args`.
    pub fn restart(&mut self, args: &[&str]) {
        self.signal("TERM");
        let status = self.wait_exit(Duration::from_secs(15));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "sluice did not stop cleanly: {}",
            self.stderr()
        );
        *self = SluiceProcess::start_in(&self.binary.clone(), Arc::clone(&self.dir), args);
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The config file's path.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("sluice.toml")
    }

    /// Everything sluice logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// Sends a signal by name (`TERM`, `INT`, `HUP`) with the system's `kill` command.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// Waits up to `patience` for the process to exit.
    pub fn wait_exit(&mut self, patience: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for sluice") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SluiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident memory (`VmHWM`) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}
