//! Checks around starting a mesh: the state directory is ours and locked, the addresses are
//! free, and parts answer their readiness endpoints.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::StatusCode;
use strait_net::netns::Vantage;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::UpError;
use super::plan::Plan;
use crate::fetch;
use crate::process::Supervisor;
use crate::stop::Stop;

/// A readiness endpoint of a part: `GET path` on `addr` answers 200 once it is ready.
#[derive(Clone, Debug)]
pub(super) struct Check {
    pub name: String,
    pub vantage: Vantage,
    pub addr: SocketAddr,
    pub path: &'static str,
}

/// Fails early, naming the address, when another process holds one the plan needs (a mesh
/// already running on the same `--net`).
pub(super) fn preflight(plan: &Plan) -> Result<(), UpError> {
    let mut addrs: Vec<SocketAddr> = plan
        .clusters
        .iter()
        .filter_map(|c| c.control_plane)
        .flat_map(|cp| [cp.grpc, cp.debug])
        .collect();
    for p in &plan.pods {
        if p.proxy {
            // Admin, outbound, health, stats, then an inbound listener per port.
            let proxy = [15000, 15001, 15021, 15090]
                .into_iter()
                .chain(p.ports.iter().copied());
            addrs.extend(proxy.map(|port| SocketAddr::new(p.ip, port)));
        }
        if p.app.is_some_and(|a| a != crate::apps::AppKind::Sleep) {
            addrs.extend(p.ports.iter().map(|port| SocketAddr::new(p.app_ip, *port)));
        }
    }
    for lb in &plan.load_balancers {
        addrs.extend(
            lb.ports
                .iter()
                .map(|(port, _)| SocketAddr::new(lb.address, *port)),
        );
    }
    for addr in addrs.into_iter().filter(|a| a.port() != 0) {
        // Only "in use" is a collision; anything else the part itself reports when it starts.
        if let Err(e) = std::net::TcpListener::bind(addr)
            && e.kind() == std::io::ErrorKind::AddrInUse
        {
            return Err(UpError::Start(format!(
                "{addr} is not available ({e}); is another mesh running on this --net? pick another with --net"
            )));
        }
    }
    Ok(())
}

/// Takes the state directory for this run: checks it is private, locks it (held by the
/// returned file for the whole run, so a second `strait up` on the same directory cannot wipe
/// this one's keys while it starts), and removes what a previous run left (its pods, tokens
/// and certificates are stale).
pub(super) fn clean(dir: &Path) -> Result<std::fs::File, UpError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| UpError::Io { path, source }
    };
    private_dir(dir)?;
    let lock_path = dir.join("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(UpError::Start(format!(
                "another strait up is using state directory {} (it holds {}); stop it first or use --state",
                dir.display(),
                lock_path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
    }
    for sub in ["clusters", "pods", "certs", "networks"] {
        let p = dir.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(io(&p))?;
        }
    }
    Ok(lock)
}

/// Creates `dir` (and its parents) if needed, and makes sure it is a real directory of this
/// user's, closed to others (0700).
///
/// A state or demo directory holds keys and tokens, and often sits in a shared temporary
/// directory under a predictable name: one created in advance by another user is refused,
/// not used.
pub fn private_dir(dir: &Path) -> Result<(), UpError> {
    std::fs::create_dir_all(dir).map_err(|source| UpError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let io = |source| UpError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let meta = std::fs::symlink_metadata(dir).map_err(io)?;
        if !meta.is_dir() {
            return Err(UpError::Start(format!(
                "state directory {} is not a directory (a symbolic link?); pick another with --state",
                dir.display()
            )));
        }
        let me = super::state::effective_uid(dir).map_err(io)?;
        if meta.uid() != me {
            return Err(UpError::Start(format!(
                "state directory {} belongs to another user (uid {}); pick one of your own with --state or STRAIT_STATE",
                dir.display(),
                meta.uid()
            )));
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

/// Polls each endpoint until it answers 200. Fails when the deadline passes (naming what is
/// not ready), when a part of `group` exits meanwhile (with its last output), or when `stop`
/// fires (Ctrl-C during startup).
pub(super) async fn wait_ready(
    group: &mut Supervisor,
    checks: &[Check],
    timeout: Duration,
    stop: &Stop,
) -> Result<(), UpError> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<Check> = checks.to_vec();
    let poll = async {
        while !pending.is_empty() {
            if Instant::now() >= deadline {
                let names: Vec<&str> = pending.iter().map(|c| c.name.as_str()).collect();
                return Err(UpError::Start(format!(
                    "not ready after {}s: {}",
                    timeout.as_secs(),
                    names.join(", ")
                )));
            }
            let mut set = JoinSet::new();
            for (i, c) in pending.iter().enumerate() {
                let (vantage, addr, path) = (c.vantage.clone(), c.addr, c.path);
                set.spawn(async move {
                    let got = fetch::get_from(&vantage, addr, path, Duration::from_secs(1)).await;
                    (i, got)
                });
            }
            let mut ready = Vec::new();
            while let Some(r) = set.join_next().await {
                if let Ok((i, Ok((StatusCode::OK, _)))) = r {
                    ready.push(i);
                }
            }
            ready.sort_unstable();
            for i in ready.into_iter().rev() {
                pending.remove(i);
            }
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    };
    tokio::select! {
        r = poll => r,
        Some(ex) = group.wait_any() => Err(UpError::Start(ex.to_string())),
        () = stop.wait() => Err(UpError::Interrupted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn state_directory_is_private_and_must_be_ours() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let lock = clean(&dir).expect("our own directory");
        let e = clean(&dir).expect_err("locked by the first");
        assert!(e.to_string().contains("another strait up"), "{e}");
        drop(lock);
        let mode = std::fs::metadata(&dir).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);

        // A symbolic link planted where the directory should be is refused.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        assert!(clean(&link).is_err());

        // Another user's directory (only root can make one to test with).
        if std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).is_ok() {
            let e = clean(&dir).expect_err("someone else's directory");
            let _ = std::fs::remove_file(dir.join("lock"));
            assert!(e.to_string().contains("another user"), "{e}");
        }
    }
}
