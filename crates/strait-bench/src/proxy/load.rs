//! Load generation: HTTP/1.1 GETs over a fixed number of keep-alive connections.
//!
//! Two shapes, as the usual harnesses do: a fixed request rate where a stall counts against
//! every request queued behind it (latency from when a request was due, as wrk2 does, once
//! the path has fallen behind), and a closed loop that finds the highest rate a path
//! sustains.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Where requests go: the address connected to, and the Host and path sent.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

/// What one connection or one run saw during the measured window.
#[derive(Debug, Default)]
pub struct Sample {
    /// Microseconds per completed request.
    pub latencies_us: Vec<u64>,
    pub errors: u64,
    /// The first error, for the report.
    pub first_error: Option<String>,
}

impl Sample {
    fn merge(&mut self, other: Sample) {
        self.latencies_us.extend(other.latencies_us);
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

/// The shape of a run.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// `rate` requests per second over all connections.
    FixedRate(u32),
    /// Each connection sends its next request as soon as the last answer is read.
    ClosedLoop,
}

/// Runs `shape` against `target` over `connections` connections: `warmup` unrecorded, then
/// `duration` recorded.
pub async fn run(
    target: &Target,
    shape: Shape,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Sample> {
    let connections = connections.max(1);
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::with_capacity(connections);
    for k in 0..connections {
        let target = target.clone();
        let schedule = match shape {
            Shape::FixedRate(rate) => {
                let interval = Duration::from_secs_f64(connections as f64 / f64::from(rate.max(1)));
                // Connections start staggered so that requests are spread evenly.
                Some((
                    start + interval.mul_f64(k as f64 / connections as f64),
                    interval,
                ))
            }
            Shape::ClosedLoop => None,
        };
        tasks.push(tokio::spawn(async move {
            connection(&target, schedule, start, measure_from, end).await
        }));
    }
    let mut total = Sample::default();
    for task in tasks {
        total.merge(task.await.context("load task")?);
    }
    if total.latencies_us.is_empty() {
        bail!(
            "no request to {} succeeded: {}",
            target.addr,
            total.first_error.as_deref().unwrap_or("no answer")
        );
    }
    Ok(total)
}

async fn connection(
    target: &Target,
    schedule: Option<(Instant, Duration)>,
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> Sample {
    let mut sample = Sample::default();
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    tokio::time::sleep_until(start).await;
    let mut i: u32 = 0;
    let mut last_done = start;
    loop {
        let due = match schedule {
            Some((first, interval)) => first + interval * i,
            None => Instant::now(),
        };
        i = i.wrapping_add(1);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due).await;
        // Latency counts from when the request was due if the previous answer came late
        // (the path held it up: coordinated omission), else from when it was sent, so the
        // timer's millisecond granularity does not count against the path.
        let sent = if last_done > due { due } else { Instant::now() };
        let result = match sender.as_mut() {
            Some(s) => request(s, target).await,
            None => match connect(target.addr).await {
                Ok(mut s) => {
                    let r = request(&mut s, target).await;
                    sender = Some(s);
                    r
                }
                Err(e) => Err(e),
            },
        };
        last_done = Instant::now();
        let measured = due >= measure_from;
        match result {
            Ok(()) if measured => {
                let us = last_done.duration_since(sent).as_micros();
                sample
                    .latencies_us
                    .push(u64::try_from(us).unwrap_or(u64::MAX));
            }
            Ok(()) => {}
            Err(e) => {
                // A failed connection is not reused; the next request opens a new one.
                sender = None;
                if measured {
                    sample.error(&e);
                }
            }
        }
    }
    sample
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    tcp.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .with_context(|| format!("HTTP handshake with {addr}"))?;
    tokio::spawn(async move {
        // The request that used the connection reports its failure.
        let _ = conn.await;
    });
    Ok(sender)
}

async fn request(sender: &mut SendRequest<Empty<Bytes>>, target: &Target) -> anyhow::Result<()> {
    sender.ready().await.context("connection closed")?;
    let req = Request::get(&target.path)
        .header(header::HOST, &target.host)
        .body(Empty::new())
        .context("building the request")?;
    let resp = sender.send_request(req).await.context("sending")?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .context("reading the body")?;
    if !status.is_success() {
        let text = body.to_bytes();
        bail!(
            "status {status}: {}",
            String::from_utf8_lossy(&text[..text.len().min(200)]).trim()
        );
    }
    Ok(())
}

/// The `q` quantile (0..=1) of sorted values; 0 for none.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_by_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.9), 90);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&v, 0.0), 1);
        assert_eq!(quantile(&[], 0.5), 0);
        assert_eq!(quantile(&[7], 0.99), 7);
    }
}
