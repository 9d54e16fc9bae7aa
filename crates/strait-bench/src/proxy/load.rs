//! Load generation: HTTP/1.1 GETs over keep-alive connections, spread over several threads,
//! each a single-threaded Tokio runtime driving its share of the connections.
//!
//! Two shapes, as the usual harnesses have: a **fixed rate**, where a stall counts against
//! every request queued behind it (latency from when a request was due, as wrk2 does, once
//! the path has fallen behind), and a **closed loop**, each connection sending its next
//! request as soon as the last answer is read, which finds the highest rate a path sustains.
//! The closed loop never sleeps, and the fixed rate sleeps only until a request that is due
//! in the future: Tokio's timer has a millisecond's granularity, and sleeping "until now"
//! would wait for the next tick and cap a connection near 1000 requests per second.
//!
//! Every connection is opened, and carries one request, before the run starts, so that
//! connection setup (which a proxy may make slow) counts in no latency.
//!
//! Requests and responses are written and parsed here ([`super::http`]) rather than through
//! an HTTP client library, so that the generator costs little next to what it measures.

mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tokio::net::TcpStream;

use self::wire::{exchange, open_all};
use super::pin::Pinning;

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where requests go: the address connected to, and the Host and path sent.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

impl Target {
    fn request(&self) -> Vec<u8> {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: strait-bench\r\n\r\n",
            self.path, self.host
        )
        .into_bytes()
    }
}

/// The shape of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `rate` requests per second over all connections.
    FixedRate(u32),
    /// Each connection sends its next request as soon as the last answer is read.
    ClosedLoop,
}

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct Plan<'a> {
    pub target: &'a Target,
    pub shape: Shape,
    pub connections: usize,
    /// Generator threads (at most one per connection).
    pub threads: usize,
    /// Unrecorded time before the measured window.
    pub warmup: Duration,
    pub duration: Duration,
    pub pin: Option<&'a Pinning>,
}

/// What a run saw during its measured window.
#[derive(Debug, Default)]
pub struct Sample {
    /// Microseconds per successful request due (fixed rate) or sent (closed loop) in the
    /// window.
    pub latencies_us: Vec<u64>,
    /// Successful requests that completed in the window.
    pub completed: u64,
    pub errors: u64,
    /// The first error, for the report.
    pub first_error: Option<String>,
}

impl Sample {
    fn merge(&mut self, other: Sample) {
        self.latencies_us.extend(other.latencies_us);
        self.completed += other.completed;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn error(&mut self, e: &anyhow::Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{e:#}"));
        }
    }
}

/// A run under way. The caller may read counters at [`Running::measure_from`] and
/// [`Running::end`], then [`Running::join`] it.
#[derive(Debug)]
pub struct Running {
    threads: Vec<std::thread::JoinHandle<anyhow::Result<Sample>>>,
    pub measure_from: Instant,
    pub end: Instant,
}

impl Running {
    /// Waits for the run to finish and merges what every connection saw.
    pub fn join(self) -> anyhow::Result<Sample> {
        let mut total = Sample::default();
        for t in self.threads {
            let sample = t
                .join()
                .map_err(|_| anyhow!("a load generator thread panicked"))??;
            total.merge(sample);
        }
        Ok(total)
    }
}

/// The times every connection works to, on Tokio's clock.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: tokio::time::Instant,
    measure_from: tokio::time::Instant,
    end: tokio::time::Instant,
}

/// How long the generator may take to open its connections before a run.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection's place in a fixed-rate schedule: its first request's offset from the start,
/// and the interval between its requests.
type Schedule = Option<(Duration, Duration)>;

/// What a generator thread tells the caller once its connections are open: how many
/// failed, or why the thread could not start.
type Ready = Result<usize, String>;

/// Starts `plan` on its own threads and returns once every connection is open and primed
/// (or failed) and the first request is due: the window starts only then, so that opening
/// connections (which can be slow through a proxy that vets each one) counts in no run.
pub fn start(plan: &Plan<'_>) -> anyhow::Result<Running> {
    let connections = plan.connections.max(1);
    let threads = plan.threads.clamp(1, connections);
    let request: Arc<[u8]> = plan.target.request().into();
    let interval = match plan.shape {
        Shape::FixedRate(rate) => Some(Duration::from_secs_f64(
            connections as f64 / f64::from(rate.max(1)),
        )),
        Shape::ClosedLoop => None,
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Ready>();
    let mut go = Vec::with_capacity(threads);
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        // Connection k runs on thread k % threads; under a fixed rate, connections start
        // staggered so that requests are spread evenly over each interval.
        let schedules: Vec<Schedule> = (t..connections)
            .step_by(threads)
            .map(|k| interval.map(|i| (i.mul_f64(k as f64 / connections as f64), i)))
            .collect();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<Window>();
        go.push(go_tx);
        let thread = Thread {
            addr: plan.target.addr,
            request: request.clone(),
            schedules,
            pin: plan.pin.cloned(),
            ready: ready_tx.clone(),
            go: go_rx,
        };
        let handle = std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || generator_thread(thread))
            .context("starting a load generator thread")?;
        handles.push(handle);
    }
    drop(ready_tx);
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut failed = 0;
    for _ in 0..threads {
        let wait = deadline.saturating_duration_since(Instant::now());
        match ready_rx.recv_timeout(wait) {
            Ok(Ok(n)) => failed += n,
            // Dropping `go` ends the threads that wait for it.
            Ok(Err(e)) => bail!("load generator: {e}"),
            Err(_) => bail!(
                "load generator: {connections} connections to {} not open within {} s",
                plan.target.addr,
                CONNECT_TIMEOUT.as_secs()
            ),
        }
    }
    if failed == connections {
        bail!(
            "load generator: no connection to {} opened",
            plan.target.addr
        );
    }
    // A little time for every thread to take the window before the first request is due.
    let start = Instant::now() + Duration::from_millis(10);
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let window = Window {
        start: start.into(),
        measure_from: measure_from.into(),
        end: end.into(),
    };
    for tx in go {
        // A thread that is gone says why when joined.
        let _ = tx.send(window);
    }
    Ok(Running {
        threads: handles,
        measure_from,
        end,
    })
}

/// One generator thread's share of a run.
struct Thread {
    addr: SocketAddr,
    request: Arc<[u8]>,
    schedules: Vec<Schedule>,
    pin: Option<Pinning>,
    ready: std::sync::mpsc::Sender<Ready>,
    go: std::sync::mpsc::Receiver<Window>,
}

fn generator_thread(t: Thread) -> anyhow::Result<Sample> {
    let runtime = match setup(t.pin.as_ref()) {
        Ok(r) => r,
        Err(e) => {
            let _ = t.ready.send(Err(format!("{e:#}")));
            return Err(e);
        }
    };
    let Thread {
        addr,
        request,
        schedules,
        ready,
        go,
        ..
    } = t;
    runtime.block_on(async move {
        let opened = open_all(addr, &request, schedules.len()).await;
        let failed = opened.iter().filter(|c| c.is_none()).count();
        // The caller stops waiting if this fails; `go` then says so.
        let _ = ready.send(Ok(failed));
        // Blocking this thread is fine: nothing else runs on its runtime yet.
        let Ok(window) = go.recv() else {
            return Ok(Sample::default());
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (schedule, conn) in schedules.into_iter().zip(opened) {
            tasks.spawn(connection(addr, request.clone(), conn, schedule, window));
        }
        let mut total = Sample::default();
        while let Some(sample) = tasks.join_next().await {
            total.merge(sample.context("load task")?);
        }
        Ok(total)
    })
}

/// Pins the thread when asked, and builds its runtime.
fn setup(pin: Option<&Pinning>) -> anyhow::Result<tokio::runtime::Runtime> {
    if let Some(p) = pin {
        p.pin_generator_thread()?;
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a load generator runtime")
}

async fn connection(
    addr: SocketAddr,
    request: Arc<[u8]>,
    mut conn: Option<TcpStream>,
    schedule: Schedule,
    w: Window,
) -> Sample {
    use tokio::time::Instant;
    let mut sample = Sample::default();
    let mut buf = Vec::with_capacity(16 * 1024);
    let schedule = schedule.map(|(offset, interval)| (w.start + offset, interval));
    tokio::time::sleep_until(w.start).await;
    let mut i: u32 = 0;
    let mut last_done = w.start;
    loop {
        let now = Instant::now();
        let due = match schedule {
            Some((first, interval)) => {
                let due = first + interval * i;
                i = i.wrapping_add(1);
                if due >= w.end {
                    break;
                }
                // A path that fell far behind: what it never got to send fails, so that a
                // stalled path cannot hold the run (nor the next) for long.
                if now > w.end + REQUEST_TIMEOUT {
                    let unsent = w.end.duration_since(due).as_secs_f64() / interval.as_secs_f64();
                    let unsent = unsent.ceil() as u64;
                    if due >= w.measure_from {
                        sample.error(&anyhow!(
                            "the path fell behind: requests still unsent {} s after the window",
                            REQUEST_TIMEOUT.as_secs()
                        ));
                        sample.errors += unsent.saturating_sub(1);
                    }
                    break;
                }
                if due > now {
                    tokio::time::sleep_until(due).await;
                }
                Some(due)
            }
            None if now >= w.end => break,
            None => None,
        };
        let sent = Instant::now();
        // Latency counts from when the request was due if the previous answer came late
        // (the path held it up: coordinated omission), else from when it was sent, so the
        // timer's granularity does not count against the path.
        let from = match due {
            Some(d) if last_done > d => d,
            _ => sent,
        };
        let result = match tokio::time::timeout(
            REQUEST_TIMEOUT,
            exchange(&mut conn, addr, &request, &mut buf),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => {
                conn = None;
                Err(anyhow!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))
            }
        };
        let done = Instant::now();
        last_done = done;
        let counted = due.unwrap_or(sent) >= w.measure_from;
        match result {
            Ok((status, _)) if (200..300).contains(&status) => {
                if counted {
                    let us = done.duration_since(from).as_micros();
                    sample
                        .latencies_us
                        .push(u64::try_from(us).unwrap_or(u64::MAX));
                }
                if done >= w.measure_from && done <= w.end {
                    sample.completed += 1;
                }
            }
            Ok((status, body)) => {
                if counted {
                    let text = String::from_utf8_lossy(&buf[body]);
                    let text: String = text.trim().chars().take(200).collect();
                    sample.error(&anyhow!("status {status}: {text}"));
                }
            }
            Err(e) => {
                if counted {
                    sample.error(&e);
                }
                // Do not spin on a path that refuses connections.
                if schedule.is_none() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    sample
}

#[cfg(test)]
mod tests;
