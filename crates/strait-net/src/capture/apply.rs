//! Applying the rules: `iptables-save` to read what is there, `iptables-restore --noflush` to
//! change it, in the calling process's network namespace. Needs `CAP_NET_ADMIN` (an init
//! container's, or root's).

use std::io::Write as _;
use std::process::{Command, Stdio};

use super::Settings;
use super::rules;

/// Why capture could not be installed or removed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "`{tool}` was not found: install iptables (Debian/Ubuntu: apt-get install iptables; Alpine: apk add iptables), or print the rules with --dry-run and apply them another way"
    )]
    Missing { tool: &'static str },
    #[error("cannot run `{tool}`: {source}")]
    Spawn {
        tool: &'static str,
        source: std::io::Error,
    },
    #[error(
        "`{tool}` failed ({status}): {stderr}\n(it needs CAP_NET_ADMIN in this network namespace: run as root or in an init container with NET_ADMIN and NET_RAW)"
    )]
    Failed {
        tool: &'static str,
        status: String,
        stderr: String,
    },
}

fn run(tool: &'static str, args: &[&str], input: Option<&str>) -> Result<String, CaptureError> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => CaptureError::Missing { tool },
            _ => CaptureError::Spawn { tool, source },
        })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|source| CaptureError::Spawn { tool, source })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|source| CaptureError::Spawn { tool, source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(CaptureError::Failed {
            tool,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn saved() -> Result<String, CaptureError> {
    run("iptables-save", &["-t", "nat"], None)
}

/// Whether capture chains exist in this network namespace.
pub fn installed() -> Result<bool, CaptureError> {
    Ok(rules::is_installed(&saved()?))
}

/// Installs capture, replacing any capture rules already there (so running it twice, as a
/// restarted init container does, leaves one set).
pub fn apply(settings: &Settings) -> Result<(), CaptureError> {
    clean()?;
    run(
        "iptables-restore",
        &["--noflush"],
        Some(&rules::install(settings)),
    )?;
    Ok(())
}

/// The `iptables-restore` input [`clean`] would apply here (`None`: nothing installed).
pub fn saved_removal() -> Result<Option<String>, CaptureError> {
    Ok(rules::remove(&saved()?))
}

/// Removes capture; `false` when there was none.
pub fn clean() -> Result<bool, CaptureError> {
    match saved_removal()? {
        Some(script) => {
            run("iptables-restore", &["--noflush"], Some(&script))?;
            Ok(true)
        }
        None => Ok(false),
    }
}
