//! Child processes that cannot outlive their supervisor.
//!
//! The supervisor keeps the write end of each child's stdin and never writes to it. That
//! pipe is the *lifeline*: the kernel closes it whenever the supervisor goes away, however
//! it goes (clean exit, panic, `kill -9`, OOM killer), and the child, awaiting
//! [`lifeline`], sees end-of-file and exits. No `prctl(PR_SET_PDEATHSIG)`, no `unsafe`, and
//! it works the same on Linux and macOS. The same pipe doubles as the polite stop signal:
//! [`Child::stop`] closes it, waits a grace period, then kills.
//!
//! A child that does not await the lifeline (any program not written for strait) only gets
//! the kill after the grace period, and outlives a SIGKILLed supervisor.
//!
//! Each child runs in its own process group, so a Ctrl-C at the terminal reaches only the
//! supervisor, which then stops its children in the order it chooses instead of all of
//! them dying at once and being reported as crashes.
//!
//! A child's stdout and stderr are read line by line, written to the supervisor's stderr as
//! `[name] line`, and the last [`TAIL_LINES`] lines are kept for error reports ([`Exited`]).

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::ChildStdin;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::stop::{Stop, stop_pair};

/// Lines of output kept per child for error reports.
pub const TAIL_LINES: usize = 40;
/// Longer lines are cut to this many bytes in the tail (they are forwarded whole).
const TAIL_LINE_BYTES: usize = 1024;
/// How long to wait, after a child exited, for its last output to be read. Output can lag
/// behind the exit, or never end if a grandchild inherited the pipe.
const LOG_DRAIN: Duration = Duration::from_millis(500);

/// A starting or started child process could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The program could not be executed (missing, not executable, resource limits).
    #[error("cannot start {name} ({program}): {source}")]
    Start {
        name: String,
        program: String,
        #[source]
        source: io::Error,
    },
}

/// A running child process and the supervisor's end of its lifeline.
/// Dropping it kills the process at once (SIGKILL).
#[derive(Debug)]
pub struct Child {
    name: Arc<str>,
    pid: u32,
    process: tokio::process::Child,
    /// Taken out of `process` so that `tokio::process::Child::wait` cannot close it.
    lifeline: Option<ChildStdin>,
    tail: LogTail,
    forwarders: Vec<JoinHandle<()>>,
}

/// A child that is gone: who, how, and what it said last.
#[derive(Debug)]
pub struct Exited {
    pub name: String,
    pub pid: u32,
    /// Err only if the OS could not report the status.
    pub status: io::Result<ExitStatus>,
    /// Up to [`TAIL_LINES`] last lines of stdout and stderr, oldest first.
    pub last_lines: Vec<String>,
}

/// Kills process `pid` at once (SIGKILL), as a crash would: how a failover is shown.
pub fn crash(pid: u32) -> io::Result<()> {
    let raw = i32::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("no process {pid}")))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(raw),
        nix::sys::signal::Signal::SIGKILL,
    )
    .map_err(io::Error::from)
}

/// Starts `program` with `args` and `env` (added to the supervisor's environment) as child
/// `name`. `name` prefixes every forwarded line, e.g. `cluster1/sample/sleep-7d9f proxy`.
///
/// Must be called inside a Tokio runtime: output forwarding runs as tasks.
pub fn spawn<A, S, E, K, V>(
    name: impl Into<String>,
    program: impl AsRef<OsStr>,
    args: A,
    env: E,
) -> Result<Child, SpawnError>
where
    A: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
    E: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut command = std::process::Command::new(program);
    command.args(args).envs(env);
    spawn_command(name, command)
}

/// Like [`spawn`] for a prepared command (working directory, cleared environment, ...).
/// Its stdin, stdout and stderr settings are replaced by pipes.
pub fn spawn_command(
    name: impl Into<String>,
    command: std::process::Command,
) -> Result<Child, SpawnError> {
    let name: Arc<str> = name.into().into();
    let program = command.get_program().to_string_lossy().into_owned();
    let start_error = |source| SpawnError::Start {
        name: name.to_string(),
        program: program.clone(),
        source,
    };
    let mut command = tokio::process::Command::from(command);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A dropped Supervisor must not leave children behind either.
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    let mut process = command.spawn().map_err(start_error)?;
    let pid = process
        .id()
        .ok_or_else(|| start_error(io::Error::other("exited before its pid was read")))?;
    let tail = LogTail::default();
    let mut forwarders = Vec::with_capacity(2);
    if let Some(out) = process.stdout.take() {
        forwarders.push(forward(name.clone(), out, tail.clone()));
    }
    if let Some(err) = process.stderr.take() {
        forwarders.push(forward(name.clone(), err, tail.clone()));
    }
    debug!(%name, pid, "started");
    Ok(Child {
        lifeline: process.stdin.take(),
        name,
        pid,
        process,
        tail,
        forwarders,
    })
}

impl Child {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The last lines of output so far, oldest first.
    pub fn last_lines(&self) -> Vec<String> {
        self.tail.lines()
    }

    /// Closes the lifeline, waits up to `grace` for the child to exit, then kills it.
    /// `Duration::ZERO` kills at once, like a crash (for failover tests).
    pub async fn stop(mut self, grace: Duration) -> Exited {
        self.lifeline.take();
        let status = self.wait_until(Instant::now() + grace).await;
        self.finish(status, Instant::now() + LOG_DRAIN).await
    }

    async fn wait_until(&mut self, deadline: Instant) -> io::Result<ExitStatus> {
        if let Ok(status) = tokio::time::timeout_at(deadline, self.process.wait()).await {
            return status;
        }
        debug!(name = %self.name, pid = self.pid, "grace period over, killing");
        // Fails only if the child already exited, which `wait` then reports.
        let _ = self.process.start_kill();
        self.process.wait().await
    }

    /// Collects the last output of an exited child into its report.
    async fn finish(mut self, status: io::Result<ExitStatus>, drain_until: Instant) -> Exited {
        self.drain(drain_until).await;
        self.report(status)
    }

    /// Waits (until `drain_until`) for the output forwarders to reach end-of-file, aborting
    /// those still running then. Cancel-safe: a forwarder is dropped only once finished or
    /// aborted, so a cancelled drain resumes where it stopped.
    async fn drain(&mut self, drain_until: Instant) {
        while let Some(forwarder) = self.forwarders.last_mut() {
            if tokio::time::timeout_at(drain_until, &mut *forwarder)
                .await
                .is_err()
            {
                forwarder.abort();
            }
            self.forwarders.pop();
        }
    }

    fn report(self, status: io::Result<ExitStatus>) -> Exited {
        Exited {
            name: self.name.to_string(),
            pid: self.pid,
            status,
            last_lines: self.tail.lines(),
        }
    }
}

impl Exited {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.status.as_ref().is_ok_and(ExitStatus::success)
    }
}

impl fmt::Display for Exited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (pid {}) ", self.name, self.pid)?;
        match &self.status {
            Ok(status) => write!(f, "exited with {status}")?,
            Err(e) => write!(f, "exited, status unknown: {e}")?,
        }
        if !self.last_lines.is_empty() {
            f.write_str("; last output:")?;
            for line in &self.last_lines {
                write!(f, "\n    {line}")?;
            }
        }
        Ok(())
    }
}

/// The children of one supervisor. Stop order across groups of children (apps, then
/// proxies, then control planes) is expressed by using one `Supervisor` per group.
#[derive(Debug, Default)]
pub struct Supervisor {
    children: Vec<Child>,
    /// A child that has exited and whose output is still being drained: kept here, not on
    /// the stack of `wait_any`, so that a `select!` cancelling the wait cannot lose it.
    exited: Option<Draining>,
}

#[derive(Debug)]
struct Draining {
    child: Child,
    status: io::Result<ExitStatus>,
    until: Instant,
}

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, child: Child) {
        self.children.push(child);
    }

    /// The children still running.
    pub fn children(&self) -> impl Iterator<Item = &Child> {
        self.children.iter()
    }

    /// Children running or exited but not yet reported by [`Supervisor::wait_any`].
    pub fn len(&self) -> usize {
        self.children.len() + usize::from(self.exited.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the first child called `name` (see [`Child::stop`]); None if there is none.
    pub async fn stop(&mut self, name: &str, grace: Duration) -> Option<Exited> {
        let i = self.children.iter().position(|c| &*c.name == name)?;
        Some(self.children.remove(i).stop(grace).await)
    }

    /// Waits until any child exits and returns it, no longer supervised. Returns None at
    /// once when there are no children: guard it in a `select!` loop. Cancel-safe: a child
    /// seen exiting is reported by the next call if this one is cancelled.
    pub async fn wait_any(&mut self) -> Option<Exited> {
        if self.exited.is_none() {
            if self.children.is_empty() {
                return None;
            }
            let (i, status) = {
                let mut waits: Vec<Pin<Box<_>>> = self
                    .children
                    .iter_mut()
                    .map(|c| Box::pin(c.process.wait()))
                    .collect();
                std::future::poll_fn(|cx| {
                    for (i, wait) in waits.iter_mut().enumerate() {
                        if let Poll::Ready(status) = wait.as_mut().poll(cx) {
                            return Poll::Ready((i, status));
                        }
                    }
                    Poll::Pending
                })
                .await
            };
            self.exited = Some(Draining {
                child: self.children.remove(i),
                status,
                until: Instant::now() + LOG_DRAIN,
            });
        }
        let draining = self.exited.as_mut()?;
        draining.child.drain(draining.until).await;
        let done = self.exited.take()?;
        Some(done.child.report(done.status))
    }

    /// Closes every lifeline at once, gives all children `grace` in total to exit, kills
    /// the rest, and returns every child's report: one already exited but not yet reported first,
    /// then the others in the order they were added.
    pub async fn stop_all(&mut self, grace: Duration) -> Vec<Exited> {
        let mut exited = Vec::with_capacity(self.len());
        if let Some(done) = self.exited.take() {
            exited.push(done.child.finish(done.status, done.until).await);
        }
        let mut children = std::mem::take(&mut self.children);
        for child in &mut children {
            child.lifeline.take();
        }
        let deadline = Instant::now() + grace;
        let mut statuses = Vec::with_capacity(children.len());
        for child in &mut children {
            statuses.push(child.wait_until(deadline).await);
        }
        let drain_until = Instant::now() + LOG_DRAIN;
        for (child, status) in children.into_iter().zip(statuses) {
            exited.push(child.finish(status, drain_until).await);
        }
        exited
    }
}

/// The child side of the lifeline: resolves when stdin reaches end-of-file (or fails),
/// which happens when the supervisor closed it or died. Call it once per process; it
/// consumes stdin.
///
/// Reads on a dedicated thread, not `tokio::io::stdin`: a pending Tokio stdin read cannot
/// be cancelled and would keep the runtime from shutting down when the process stops for
/// another reason (a signal).
pub fn lifeline() -> impl Future<Output = ()> + Send + 'static {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("lifeline".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = [0u8; 256];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Err(e) if e.kind() != io::ErrorKind::Interrupted => break,
                    _ => {}
                }
            }
            let _ = tx.send(());
        });
    if let Err(e) = &spawned {
        // The sender was dropped with the closure, so the lifeline counts as cut: a
        // process that cannot tell whether its supervisor lives must not linger.
        warn!(error = %e, "cannot watch stdin, stopping");
    }
    async move {
        let _ = rx.await;
    }
}

/// Which signal asked the process to shut down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so from then on neither signal kills the process outright.
/// Must be called inside a Tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ShutdownSignal> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            tokio::select! {
                () = recv_or_pending(interrupt) => ShutdownSignal::Interrupt,
                () = recv_or_pending(terminate) => ShutdownSignal::Terminate,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        ShutdownSignal::Interrupt
    }
}

#[cfg(unix)]
async fn recv_or_pending(signal: io::Result<tokio::signal::unix::Signal>) {
    match signal {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(e) => {
            // Without a handler the signal keeps its default action (exit), which is the
            // next best thing to a clean shutdown.
            warn!(error = %e, "cannot install signal handler");
            std::future::pending::<()>().await;
        }
    }
}

/// The [`Stop`] a supervised strait process runs under: it fires when the lifeline is cut
/// or on SIGINT/SIGTERM. Must be called inside a Tokio runtime.
pub fn child_stop() -> Stop {
    process_stop(true)
}

/// The [`Stop`] a long-running command runs under: SIGINT/SIGTERM, and with `watch_stdin`
/// also the lifeline. A command an operator may start by hand (in the background, with
/// stdin at end-of-file already) watches stdin only when its supervisor asks for it.
/// Must be called inside a Tokio runtime.
pub fn process_stop(watch_stdin: bool) -> Stop {
    let (trigger, stop) = stop_pair();
    let lifeline = if watch_stdin {
        lifeline_or_never(Some(lifeline()))
    } else {
        lifeline_or_never(None)
    };
    let signal = shutdown_signal();
    tokio::spawn(async move {
        tokio::select! {
            () = lifeline => debug!("stdin closed, stopping"),
            signal = signal => debug!(?signal, "signal received, stopping"),
        }
        trigger.stop();
    });
    stop
}

/// The lifeline when there is one, else a future that never resolves.
async fn lifeline_or_never(lifeline: Option<impl Future<Output = ()>>) {
    match lifeline {
        Some(l) => l.await,
        None => std::future::pending().await,
    }
}

/// Shared tail of one child's output.
#[derive(Clone, Debug, Default)]
struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl LogTail {
    fn push(&self, line: &str) {
        let mut cut = line.len().min(TAIL_LINE_BYTES);
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        // A panic elsewhere cannot leave a VecDeque of strings inconsistent.
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line[..cut].to_owned());
    }

    fn lines(&self) -> Vec<String> {
        let lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect()
    }
}

fn forward(
    name: Arc<str>,
    stream: impl AsyncRead + Unpin + Send + 'static,
    tail: LogTail,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                buf.pop();
            }
            let line = String::from_utf8_lossy(&buf);
            // One locked write per line keeps lines of different children from
            // interleaving; a blocking write is acceptable for a terminal or a file.
            let _ = writeln!(io::stderr().lock(), "[{name}] {line}");
            tail.push(&line);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_and_cuts_long_ones_on_char_boundaries() {
        let tail = LogTail::default();
        for i in 0..TAIL_LINES + 5 {
            tail.push(&format!("line {i}"));
        }
        let lines = tail.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines[0], "line 5");
        // "a" then two-byte characters: the byte limit falls inside one.
        tail.push(&format!("a{}", "é".repeat(TAIL_LINE_BYTES)));
        let last = tail.lines().pop().unwrap();
        assert_eq!(last.len(), TAIL_LINE_BYTES - 1);
    }
}
