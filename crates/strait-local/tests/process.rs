//! Supervision with real processes. The helper processes are this test binary again,
//! started with `STRAIT_LOCAL_TEST_ROLE` set so that its ignored `role` test plays a part
//! (a lifeline-watching child, an intermediate supervisor, an echo app), which exercises
//! the real `lifeline` and `child_stop` rather than a shell imitation of them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use strait_local::apps::{self, AppConfig, AppKind};
use strait_local::process::{Supervisor, child_stop, lifeline, spawn, spawn_command};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ROLE: &str = "STRAIT_LOCAL_TEST_ROLE";
const LISTEN: &str = "STRAIT_LOCAL_TEST_LISTEN";
const ROLE_ARGS: [&str; 4] = ["role", "--exact", "--ignored", "--nocapture"];

/// Not a test: the body of the helper processes. Does nothing unless `ROLE` is set.
#[test]
#[ignore = "helper process for the other tests"]
fn role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match role.as_str() {
        // A child written for strait: says it is up, then lives as long as its lifeline.
        "lifeline" => rt.block_on(async {
            println!("ready");
            lifeline().await;
        }),
        // A supervisor with one lifeline child; the test SIGKILLs it.
        "supervisor" => rt.block_on(async {
            let child = spawn("grandchild", exe(), ROLE_ARGS, [(ROLE, "lifeline")]).unwrap();
            // Once the grandchild is up it writes nothing more, so it cannot die of a
            // broken stdout pipe: only the lifeline can end it.
            while !child.last_lines().iter().any(|l| l == "ready") {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            println!("grandchild-pid={}", child.pid());
            // Bounded, so that a failing test leaves nothing running for long.
            tokio::time::sleep(Duration::from_secs(60)).await;
        }),
        // What `strait app echo` does.
        "app-echo" => rt.block_on(async {
            let listen = std::env::var(LISTEN).unwrap().parse().unwrap();
            println!("listening on {listen}");
            apps::run(AppKind::Echo, config(listen), child_stop())
                .await
                .unwrap();
            println!("stopped");
        }),
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}

#[tokio::test]
async fn stop_all_closes_lifelines_then_kills_and_leaves_nothing_behind() {
    let mut supervisor = Supervisor::new();
    supervisor.add(spawn("polite", exe(), ROLE_ARGS, [(ROLE, "lifeline")]).unwrap());
    let stubborn = ["-c", "echo ready; exec sleep 600"];
    supervisor.add(spawn("stubborn", "sh", stubborn, no_env()).unwrap());
    let pids: Vec<u32> = supervisor.children().map(|c| c.pid()).collect();
    wait_for_output(&supervisor, "ready").await;

    let exited = supervisor.stop_all(Duration::from_secs(2)).await;
    assert!(supervisor.is_empty());
    assert_eq!(exited[0].name, "polite");
    assert!(exited[0].success(), "{}", exited[0]);
    assert_eq!(exited[1].name, "stubborn");
    let killed = exited[1].status.as_ref().unwrap();
    assert_eq!(killed.signal(), Some(9), "{}", exited[1]);
    assert!(exited[1].last_lines.contains(&"ready".to_owned()));
    for pid in pids {
        assert!(!running(pid), "pid {pid} outlived stop_all");
    }
}

#[tokio::test]
async fn wait_any_reports_an_unexpected_exit_with_its_last_output() {
    let mut supervisor = Supervisor::new();
    supervisor.add(spawn("steady", "sh", ["-c", "exec sleep 600"], no_env()).unwrap());
    let script = "echo booting $STRAIT_TEST_VAR; echo 'fatal: no config' >&2; exit 3";
    let env = [("STRAIT_TEST_VAR", "with env")];
    supervisor.add(
        spawn(
            "cluster1/sample/crasher-7d9f app",
            "sh",
            ["-c", script],
            env,
        )
        .unwrap(),
    );

    let exited = tokio::time::timeout(Duration::from_secs(10), supervisor.wait_any())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exited.name, "cluster1/sample/crasher-7d9f app");
    assert_eq!(exited.status.as_ref().unwrap().code(), Some(3));
    assert!(exited.last_lines.contains(&"booting with env".to_owned()));
    assert!(exited.last_lines.contains(&"fatal: no config".to_owned()));
    let report = exited.to_string();
    assert!(report.contains("exit status: 3") && report.contains("fatal: no config"));

    assert_eq!(supervisor.len(), 1);
    let steady = supervisor.stop("steady", Duration::ZERO).await.unwrap();
    assert!(!steady.success());
    assert!(supervisor.wait_any().await.is_none());
}

/// A wait cancelled while the exited child's output is still draining (a background
/// process keeps its stdout open) must not lose the child: the next wait reports it.
#[tokio::test]
async fn an_exit_seen_by_a_cancelled_wait_is_reported_by_the_next() {
    let mut supervisor = Supervisor::new();
    let script = ["-c", "echo bye; sleep 2 & exit 3"];
    supervisor.add(spawn("short", "sh", script, no_env()).unwrap());
    tokio::select! {
        ex = supervisor.wait_any() => panic!("the drain should outlast the timer: {ex:?}"),
        () = tokio::time::sleep(Duration::from_millis(200)) => {}
    }
    assert_eq!(
        supervisor.len(),
        1,
        "the exited child is still to be reported"
    );
    let ex = supervisor.wait_any().await.expect("reported");
    assert_eq!(ex.name, "short");
    assert_eq!(ex.status.as_ref().unwrap().code(), Some(3));
    assert!(ex.last_lines.iter().any(|l| l == "bye"), "{ex}");
    assert!(supervisor.is_empty());
    assert!(supervisor.wait_any().await.is_none());
}

#[test]
fn children_exit_on_their_own_when_their_supervisor_is_sigkilled() {
    let mut supervisor = Command::new(exe())
        .args(ROLE_ARGS)
        .env(ROLE, "supervisor")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(supervisor.stdout.take().unwrap());
    let grandchild: u32 = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("grandchild-pid=")?.parse().ok())
        .expect("the supervisor reports its child's pid");
    assert!(running(grandchild));

    supervisor.kill().unwrap(); // SIGKILL: no chance to clean up
    supervisor.wait().unwrap();
    let killed = Instant::now();
    // Typically a few milliseconds; the bound is generous for a loaded machine.
    while running(grandchild) {
        if killed.elapsed() > Duration::from_secs(5) {
            let _ = Command::new("kill")
                .args(["-9", &grandchild.to_string()])
                .status();
            panic!("grandchild {grandchild} outlived its SIGKILLed supervisor");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test]
async fn an_app_process_stops_cleanly_on_stdin_close_and_on_sigterm() {
    // The fake sidecar: checks the app sent an absolute-form request to HTTP_PROXY.
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_env = format!("http://{}", proxy.local_addr().unwrap());
    let fake_proxy = tokio::spawn(async move {
        let (mut conn, _) = proxy.accept().await.unwrap();
        let mut head = vec![0u8; 4096];
        let n = conn.read(&mut head).await.unwrap();
        let body = "Hello version: v2, instance: helloworld-v2-x\n";
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(response.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&head[..n]).into_owned()
    });

    let mut supervisor = Supervisor::new();
    let (by_stdin, by_signal) = (free_addr(), free_addr());
    for (name, addr) in [("by-stdin", by_stdin), ("by-signal", by_signal)] {
        let mut command = Command::new(exe());
        // The lower-case variables win over HTTP_PROXY (as in curl): clear the host's.
        for var in ["http_proxy", "no_proxy", "NO_PROXY"] {
            command.env_remove(var);
        }
        command
            .args(ROLE_ARGS)
            .env(ROLE, "app-echo")
            .env(LISTEN, addr.to_string())
            .env("HTTP_PROXY", &proxy_env);
        supervisor.add(spawn_command(name, command).unwrap());
    }
    let body = http_get(by_stdin, "/?call=http://helloworld.sample:5000/hello").await;
    assert!(body.contains(r#""body":"Hello version: v2"#), "{body}");
    let head = fake_proxy.await.unwrap();
    assert!(
        head.starts_with("GET http://helloworld.sample:5000/hello HTTP/1.1\r\n"),
        "{head}"
    );
    http_get(by_signal, "/").await;

    // Exit code 0 within the grace period means the app stopped itself: a kill would
    // show as a signal.
    let exited = supervisor
        .stop("by-stdin", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(exited.success(), "{exited}");
    assert_eq!(
        exited.last_lines.last().map(String::as_str),
        Some("stopped")
    );

    let pid = supervisor.children().next().unwrap().pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exited = tokio::time::timeout(Duration::from_secs(10), supervisor.wait_any())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exited.name, "by-signal");
    assert!(exited.success(), "{exited}");
}

fn exe() -> std::path::PathBuf {
    std::env::current_exe().expect("test binary path")
}

fn no_env() -> [(&'static str, &'static str); 0] {
    []
}

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

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback port");
    listener.local_addr().expect("bound address")
}

/// GET with retries until the server is up; returns the body.
async fn http_get(addr: SocketAddr, target: &str) -> String {
    let started = Instant::now();
    let mut stream = loop {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => break stream,
            Err(e) if started.elapsed() > Duration::from_secs(10) => panic!("{addr}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let request = format!("GET {target} HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("receive");
    let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    body.to_owned()
}

async fn wait_for_output(supervisor: &Supervisor, line: &str) {
    let started = Instant::now();
    while !supervisor
        .children()
        .all(|c| c.last_lines().iter().any(|l| l == line))
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "children did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether `pid` is a live process. A zombie (exited, not yet reaped by whoever inherited
/// it) counts as gone.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) if Path::new("/proc/self").exists() => false,
        Err(_) => Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    }
}
