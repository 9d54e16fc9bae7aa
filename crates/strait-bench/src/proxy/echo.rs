//! A standalone echo app: the same binary and app the mesh runs behind its sidecar
//! (`strait app echo`), started without a network table so that it admits anyone. The "no
//! proxy" path and the server-side Envoy use it, since the mesh's own app admits only its
//! sidecar; so all three paths end at the same kind of app.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{http, procs};

/// A running echo app. Dropping it stops the app.
#[derive(Debug)]
pub struct EchoApp {
    child: Child,
    lifeline: Option<ChildStdin>,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl EchoApp {
    /// Starts `strait app echo` on `addr`, logging to `dir`, and waits until it answers.
    pub fn start(strait: &Path, dir: &Path, addr: SocketAddr) -> anyhow::Result<EchoApp> {
        let log = dir.join("echo-standalone.log");
        let log_file = std::fs::File::create(&log)?;
        let mut child = Command::new(strait)
            .arg("app")
            .arg("echo")
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--pod", "echo-standalone", "--namespace", "bench"])
            .args(["--cluster", "bench", "--workload", "echo"])
            .args(["--version", "v1", "--service-account", "echo"])
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("running {} app echo", strait.display()))?;
        let lifeline = child.stdin.take();
        let mut app = EchoApp {
            child,
            lifeline,
            addr,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if http::get_ok(addr, "/?size=1", Duration::from_secs(1)).is_ok() {
                return Ok(app);
            }
            if let Some(status) = app.child.try_wait()? {
                bail!(
                    "the standalone echo app exited with {status}:\n{}",
                    std::fs::read_to_string(&app.log).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("the standalone echo app did not answer on {addr} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EchoApp {
    fn drop(&mut self) {
        procs::stop_child(&mut self.child, &mut self.lifeline, Duration::from_secs(5));
    }
}
