//! `strait exec`: a command run as a workload, its exit code passed on as a shell would.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use strait_local::up::state::{self, State};

use crate::cli::ExecArgs;

pub fn run(args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let dir = args.state.state.clone().unwrap_or_else(state::default_dir);
    let st = State::load(&dir)?;
    let pod = super::target::find_proxy(&st, &args.target)?;
    if !pod.sidecar {
        bail!(
            "{}: the pod has no sidecar (not injected), and locally a workload reaches services only through one",
            args.target
        );
    }
    if pod.gateway {
        bail!(
            "{}: a gateway's pod is its proxy; there is nothing to run commands from (use a workload with a sidecar)",
            args.target
        );
    }
    let proxy = format!("http://{}", pod.outbound());
    let (program, rest) = args
        .command
        .split_first()
        .context("no command given after --")?;
    // The command runs "in the pod": in namespace mode, inside its network's namespace, so
    // it sees what the pod sees and nothing else. `ip` reports a command it cannot start as
    // its own failure (255), so the command is looked up first, where the answer is ours.
    let mut cmd = match &pod.netns {
        Some(ns) => {
            if let Err(e) = lookup(program, std::env::var_os("PATH").as_deref()) {
                return Ok(not_started(program, &e));
            }
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => std::process::Command::new(program),
    };
    let status = cmd
        .args(rest)
        .env("HTTP_PROXY", &proxy)
        .env("http_proxy", &proxy)
        .env("HTTPS_PROXY", &proxy)
        .env("https_proxy", &proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env("STRAIT_CLUSTER", &pod.cluster)
        .env("STRAIT_NAMESPACE", &pod.namespace)
        .env("STRAIT_POD", &pod.name)
        .status();
    match (status, &pod.netns) {
        (Ok(status), _) => Ok(ExitCode::from(exit_code(status))),
        (Err(e), None) => Ok(not_started(program, &e)),
        (Err(e), Some(ns)) => Err(e).with_context(|| format!("cannot run ip netns exec {ns}")),
    }
}

/// The command's exit code, or the shell's convention for a command killed by a signal:
/// 128 + the signal number.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    }
}

/// A command that could not be started: a message naming it, and the exit code a POSIX
/// shell gives it ("Command Search and Execution"): 127 when it is not found, 126 when it is
/// found but cannot be executed. Scripts around `strait exec` can tell these from the
/// command's own failures as they would around `sh -c`.
fn not_started(program: &str, e: &std::io::Error) -> ExitCode {
    let (code, why) = match e.kind() {
        ErrorKind::NotFound if program.contains('/') => (127, "no such file".to_string()),
        ErrorKind::NotFound => (127, "command not found".to_string()),
        ErrorKind::PermissionDenied => (126, "permission denied".to_string()),
        _ => (126, format!("cannot execute: {e}")),
    };
    eprintln!("error: {program}: {why}");
    ExitCode::from(code)
}

/// Where the command `program` is, found as `execvp` finds it: a name with a `/` is a path,
/// any other is searched for in `path` (an empty entry is the current directory); a match
/// that cannot be executed is skipped for a later one, and reported if there is none.
fn lookup(program: &str, path: Option<&std::ffi::OsStr>) -> std::io::Result<PathBuf> {
    if program.is_empty() {
        return Err(ErrorKind::NotFound.into());
    }
    if program.contains('/') {
        return executable(Path::new(program)).map(|()| PathBuf::from(program));
    }
    let mut denied = None;
    for dir in std::env::split_paths(path.unwrap_or_default()) {
        let candidate = if dir.as_os_str().is_empty() {
            PathBuf::from(program)
        } else {
            dir.join(program)
        };
        match executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => denied = Some(e),
            Err(_) => {}
        }
    }
    Err(denied.unwrap_or_else(|| ErrorKind::NotFound.into()))
}

/// Whether `path` is a file someone may execute (the kernel has the last word on whether
/// this user may: that failure is reported when the command starts).
fn executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)?;
    if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
        Ok(())
    } else {
        Err(ErrorKind::PermissionDenied.into())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn exit_codes_pass_through_and_signals_are_128_plus() {
        // A wait status: the exit code in the second byte, a signal in the low bits.
        for (raw, want) in [(0, 0), (3 << 8, 3), (255 << 8, 255), (9, 137), (15, 143)] {
            let status = std::process::ExitStatus::from_raw(raw);
            assert_eq!(exit_code(status), want, "{raw:#x}");
        }
    }

    #[test]
    fn lookup_tells_missing_from_not_executable() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = |name: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            path
        };
        let runnable = file("runnable", 0o755);
        let plain = file("plain", 0o644);
        std::fs::create_dir(dir.path().join("subdir")).expect("mkdir");
        let path = Some(dir.path().as_os_str());
        let kind = |program: &str| lookup(program, path).map_err(|e| e.kind());

        assert_eq!(kind("runnable"), Ok(runnable.clone()));
        assert_eq!(kind("nosuchcmd"), Err(ErrorKind::NotFound));
        assert_eq!(kind(""), Err(ErrorKind::NotFound));
        assert_eq!(kind("plain"), Err(ErrorKind::PermissionDenied));
        assert_eq!(kind("subdir"), Err(ErrorKind::PermissionDenied));
        let by_path = |p: &Path| lookup(&p.display().to_string(), None).map_err(|e| e.kind());
        assert_eq!(by_path(&runnable), Ok(runnable.clone()));
        assert_eq!(by_path(&plain), Err(ErrorKind::PermissionDenied));
        assert_eq!(by_path(&dir.path().join("gone")), Err(ErrorKind::NotFound));
        // A later directory's executable wins over an earlier one that is not.
        let later = tempfile::tempdir().expect("tmp");
        let good = later.path().join("plain");
        std::fs::copy(&runnable, &good).expect("copy");
        let both = std::env::join_paths([dir.path(), later.path()]).expect("join");
        assert_eq!(lookup("plain", Some(&both)).map_err(|e| e.kind()), Ok(good));
    }
}
