//! The apps over real loopback sockets, with a hand-written client and fake proxy so that
//! what goes over the wire is what is checked.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::onward::{Onward, Proxy};
use super::*;
use crate::stop::{StopTrigger, stop_pair};

fn config(listen: SocketAddr) -> AppConfig {
    AppConfig {
        listen,
        pod: "echo-v1-7d9f-x2x4p".into(),
        namespace: "sample".into(),
        cluster: "cluster1".into(),
        workload: "echo-v1".into(),
        version: "v1".into(),
        service_account: "echo".into(),
        trust_domain: "cluster.local".into(),
        reach: strait_net::Reach::default(),
        calls: Vec::new(),
    }
}

/// A port nobody listens on right now; the app binds it itself.
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Starts an app and waits until it accepts connections.
async fn start(
    run: impl Future<Output = Result<(), AppError>> + Send + 'static,
    addr: SocketAddr,
) -> tokio::task::JoinHandle<Result<(), AppError>> {
    let task = tokio::spawn(run);
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_ok() {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("app on {addr} did not start");
}

async fn stop_and_join(trigger: StopTrigger, task: tokio::task::JoinHandle<Result<(), AppError>>) {
    trigger.stop();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("app stops promptly")
        .unwrap()
        .unwrap();
}

/// One HTTP/1.1 request; returns status and body.
async fn get(addr: SocketAddr, target: &str, headers: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: app.sample:8080\r\nConnection: close\r\n{headers}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, body.to_owned())
}

#[tokio::test]
async fn helloworld_answers_like_istios_sample() {
    let addr = free_addr();
    let (trigger, stop) = stop_pair();
    let task = start(run(AppKind::Helloworld, config(addr), stop), addr).await;
    assert_eq!(
        get(addr, "/hello", "").await,
        (
            200,
            "Hello version: v1, instance: echo-v1-7d9f-x2x4p\n".to_owned()
        )
    );
    assert_eq!(get(addr, "/health", "").await.0, 200);
    assert_eq!(get(addr, "/", "").await.0, 404);
    stop_and_join(trigger, task).await;
}

#[tokio::test]
async fn echo_describes_itself_and_the_request() {
    let addr = free_addr();
    let (trigger, stop) = stop_pair();
    let task = start(echo::run(config(addr), Onward::default(), stop), addr).await;
    let (status, body) = get(addr, "/a/b?x=1", "x-request-id: r1\r\n").await;
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["cluster"], "cluster1");
    assert_eq!(json["workload"], "echo-v1");
    assert_eq!(json["identity"], "spiffe://cluster.local/ns/sample/sa/echo");
    assert_eq!(json["method"], "GET");
    assert_eq!(json["path"], "/a/b");
    assert_eq!(json["query"], "x=1");
    assert_eq!(json["host"], "app.sample:8080");
    assert_eq!(json["headers"]["x-request-id"], "r1");

    let (status, _) = get(addr, "/?status=503&delay=10ms", "").await;
    assert_eq!(status, 503);
    let (status, body) = get(addr, "/?delay=soon", "").await;
    assert_eq!((status, body.contains("delay=soon")), (400, true));
    stop_and_join(trigger, task).await;
}

#[tokio::test]
async fn echo_calls_onward_directly_and_embeds_the_answer() {
    let (back, front) = (free_addr(), free_addr());
    let (trigger, stop) = stop_pair();
    let back_cfg = AppConfig {
        workload: "back".into(),
        ..config(back)
    };
    let back_task = start(echo::run(back_cfg, Onward::default(), stop.clone()), back).await;
    let front_task = start(
        echo::run(config(front), Onward::default(), trigger.subscribe()),
        front,
    )
    .await;

    let target = format!("/?call=http://{back}/next");
    let (status, body) = get(front, &target, "x-request-id: r2\r\nauthorization: t\r\n").await;
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&body).unwrap();
    let upstream = &json["upstream"];
    assert_eq!(upstream["status"], 200);
    assert_eq!(upstream["body"]["workload"], "back");
    assert_eq!(upstream["body"]["path"], "/next");
    assert_eq!(upstream["body"]["headers"]["x-request-id"], "r2");
    assert!(upstream["body"]["headers"].get("authorization").is_none());

    // Nothing listens on a fresh free port: the echo says so as a 502.
    let (status, body) = get(front, &format!("/?call={}", free_addr()), "").await;
    assert_eq!(status, 502);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert!(
        json["upstream"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot connect")
    );

    stop_and_join(trigger, front_task).await;
    back_task.await.unwrap().unwrap();
}

#[tokio::test]
async fn echo_calls_through_the_proxy_in_absolute_form() {
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let fake_proxy = tokio::spawn(async move {
        let (mut conn, _) = proxy.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            conn.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let body = "plain text from helloworld";
        let response = format!(
            "HTTP/1.1 418 I'm a teapot\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(response.as_bytes()).await.unwrap();
        String::from_utf8(head).unwrap()
    });
    let addr = free_addr();
    let (trigger, stop) = stop_pair();
    let onward = Onward::via(Proxy::parse(&format!("http://{proxy_addr}")).unwrap());
    let task = start(echo::run(config(addr), onward, stop), addr).await;

    let (status, body) = get(
        addr,
        "/?call=helloworld.sample:5000/hello",
        "traceparent: 00-abc-def-01\r\n",
    )
    .await;
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["upstream"]["status"], 418);
    assert_eq!(json["upstream"]["body"], "plain text from helloworld");

    let head = fake_proxy.await.unwrap().to_ascii_lowercase();
    assert!(
        head.starts_with("get http://helloworld.sample:5000/hello http/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\nhost: helloworld.sample:5000\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\ntraceparent: 00-abc-def-01\r\n"),
        "{head}"
    );
    stop_and_join(trigger, task).await;
}

#[tokio::test]
async fn sleep_returns_when_stopped_and_bind_errors_name_the_address() {
    let (trigger, stop) = stop_pair();
    let task = tokio::spawn(run(AppKind::Sleep, config(free_addr()), stop));
    stop_and_join(trigger, task).await;

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (_trigger, stop) = stop_pair();
    let err = run(AppKind::Helloworld, config(addr), stop)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot listen on {addr}")),
        "{err}"
    );
}
