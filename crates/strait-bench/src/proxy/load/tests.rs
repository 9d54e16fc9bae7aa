//! The load generator against small in-process servers.

use super::*;

/// A server answering every request on a connection with `answer`, for `n` requests.
fn serve(answer: &'static [u8]) -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut req = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    req.extend_from_slice(&chunk[..n]);
                    while let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                        req.drain(..end + 4);
                        if s.write_all(answer).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

fn run(addr: SocketAddr, shape: Shape) -> Sample {
    let target = Target {
        addr,
        host: "x".into(),
        path: "/".into(),
    };
    let running = start(&Plan {
        target: &target,
        shape,
        connections: 3,
        threads: 2,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(300),
        pin: None,
    })
    .unwrap();
    running.join().unwrap()
}

// These check what is counted, never how fast: timings decide no test.
#[test]
fn fixed_rate_counts_requests_in_the_window() {
    let addr = serve(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let s = run(addr, Shape::FixedRate(100));
    assert_eq!(s.errors, 0, "{:?}", s.first_error);
    // 100 req/s for 0.3 s: 30 due in the window, give or take the edges.
    assert!(
        (25..=35).contains(&s.latencies_us.len()),
        "{}",
        s.latencies_us.len()
    );
}

#[test]
fn closed_loop_and_errors() {
    let ok = serve(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
    let s = run(ok, Shape::ClosedLoop);
    assert_eq!(s.errors, 0, "{:?}", s.first_error);
    assert!(s.completed > 0 && !s.latencies_us.is_empty());

    let failing = serve(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 8\r\n\r\nno route");
    let s = run(failing, Shape::FixedRate(100));
    assert!(s.latencies_us.is_empty());
    assert!(s.errors > 0);
    assert_eq!(s.first_error.as_deref(), Some("status 503: no route"));
}
