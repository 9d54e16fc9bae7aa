use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::*;

fn key(port: u16) -> PoolKey {
    (
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        "outbound_.80_._.svc".to_string(),
    )
}

/// A real HTTP/2 client connection over an in-memory pipe to a server that answers 200.
async fn connection() -> (SendRequest<Body>, tokio::task::JoinHandle<()>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(|_req| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<
                bytes::Bytes,
            >::new()))
        });
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(server), svc)
            .await;
    });
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(client))
        .await
        .expect("h2 handshake over a pipe");
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, task)
}

fn expect_dial<'a>(c: Checkout<'a>) -> Dial<'a> {
    match c {
        Checkout::Dial(d) => d,
        Checkout::Ready(_) => panic!("expected a dial, got a pooled connection"),
        Checkout::Wait(_) => panic!("expected a dial, got a wait"),
    }
}

fn expect_wait(c: Checkout<'_>) -> Waiter {
    match c {
        Checkout::Wait(w) => w,
        Checkout::Ready(_) => panic!("expected a wait, got a pooled connection"),
        Checkout::Dial(_) => panic!("expected a wait, got a dial"),
    }
}

#[tokio::test]
async fn concurrent_misses_dial_once_and_share_the_connection() {
    let pool = H2Pool::default();
    let k = key(1);
    let dial = expect_dial(pool.checkout(&k, None));
    let waiters: Vec<Waiter> = (0..3)
        .map(|_| expect_wait(pool.checkout(&k, None)))
        .collect();
    let (sender, _task) = connection().await;
    let id = dial.done(Ok(sender));
    for w in waiters {
        assert_eq!(w.wait().await, Ok(()));
        assert!(matches!(pool.checkout(&k, None), Checkout::Ready(_)));
    }
    assert_eq!(pool.len(), 1);
    // Another key is dialled on its own.
    let _other = expect_dial(pool.checkout(&key(2), None));
    assert_eq!(pool.len(), 2);
    pool.handle().closed(&k, id);
    assert_eq!(pool.len(), 1, "a closed connection leaves the pool");
}

#[tokio::test]
async fn a_failed_dial_fails_its_waiters_and_frees_the_key() {
    let pool = H2Pool::default();
    let k = key(1);
    let dial = expect_dial(pool.checkout(&k, None));
    let waiter = expect_wait(pool.checkout(&k, None));
    dial.done(Err("connection refused".into()));
    assert_eq!(waiter.wait().await, Err("connection refused".to_string()));
    assert_eq!(pool.len(), 0);
    let _again = expect_dial(pool.checkout(&k, None));
}

#[tokio::test]
async fn an_abandoned_dial_lets_the_next_request_dial() {
    let pool = H2Pool::default();
    let k = key(1);
    let dial = expect_dial(pool.checkout(&k, None));
    let waiter = expect_wait(pool.checkout(&k, None));
    drop(dial);
    assert_eq!(waiter.wait().await, Ok(()), "the waiter checks out again");
    let _next = expect_dial(pool.checkout(&k, None));
}

#[tokio::test]
async fn max_requests_per_connection_recycles() {
    let pool = H2Pool::default();
    let k = key(1);
    let (sender, _task) = connection().await;
    expect_dial(pool.checkout(&k, Some(2))).done(Ok(sender));
    assert!(matches!(pool.checkout(&k, Some(2)), Checkout::Ready(_)));
    let _third = expect_dial(pool.checkout(&k, Some(2)));
}

#[tokio::test]
async fn idle_connections_are_evicted_and_a_replaced_one_is_not_touched() {
    let pool = H2Pool::default();
    let k = key(1);
    let handle = pool.handle();
    let (first, _t1) = connection().await;
    let old = expect_dial(pool.checkout(&k, Some(1))).done(Ok(first));
    let now = Instant::now();
    assert!(!handle.evict_if_idle(&k, old, now), "in use: stays");
    // Used up, so the next request replaces it; the old connection's task must not remove
    // its successor.
    let (second, _t2) = connection().await;
    let new = expect_dial(pool.checkout(&k, Some(1))).done(Ok(second));
    handle.closed(&k, old);
    assert!(handle.evict_if_idle(&k, old, now), "the old one is gone");
    assert_eq!(pool.len(), 1);
    assert!(!handle.evict_if_idle(&k, new, now));
    let later = now + IDLE_TIMEOUT + Duration::from_secs(1);
    assert!(handle.evict_if_idle(&k, new, later));
    assert_eq!(pool.len(), 0);
}

#[tokio::test]
async fn a_closed_connection_is_not_handed_out() {
    let pool = H2Pool::default();
    let k = key(1);
    let (sender, task) = connection().await;
    expect_dial(pool.checkout(&k, None)).done(Ok(sender));
    task.abort();
    let _ = task.await;
    // Dropping the connection closes the sender's channel: the pool sees it at once.
    let _redial = expect_dial(pool.checkout(&k, None));
}

#[tokio::test]
async fn a_connection_whose_senders_are_gone_closes() {
    // `drive` relies on this to close an evicted connection once its last request is done.
    let (sender, task) = connection().await;
    let in_flight = sender.clone();
    drop(sender);
    assert!(!in_flight.is_closed(), "one sender left keeps it open");
    drop(in_flight);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the connection closes when no sender is left")
        .expect("connection task");
}
