//! The sockets of a gateway's listeners, started and stopped as the configuration changes.
//!
//! Every listener binds the pod address at its target port (its own network reaches it there)
//! and each public address at the server port (anyone reaches it there, as through a cloud
//! load balancer). Public sockets set `SO_REUSEPORT`: every replica of the gateway binds the
//! same public address and the kernel spreads connections over them, as a load balancer
//! spreads them over its targets.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use strait_config::ListenerKind;
use strait_net::Door;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::context::Shared;

/// Ports the proxy itself serves on the pod address: a listener never takes them.
const OWN_PORTS: [u16; 3] = [15000, 15021, 15090];

/// How long the connections of a listener that went away may live on. Envoy drains a removed
/// listener for its drain time (Istio's `drainDuration`, 45 s); a local mesh follows edits in
/// seconds, so a removed Gateway server stops carrying traffic in seconds too.
const DRAIN: Duration = Duration::from_secs(3);

/// A bound listener: its accept loop, and the signal its connections watch to close.
#[derive(Debug)]
struct Running {
    accept: JoinHandle<()>,
    close: watch::Sender<bool>,
}

/// One socket to hold: where, which listener it serves, and who may knock.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Want {
    addr: SocketAddr,
    listener: String,
    public: bool,
}

/// The running sockets.
#[derive(Debug, Default)]
pub struct Listeners {
    running: HashMap<Want, Running>,
}

impl Listeners {
    /// Binds what the current configuration asks for and closes what it no longer does.
    pub fn reconcile(&mut self, px: &Shared) {
        let snap = px.snapshot.load();
        let mut wanted = Vec::new();
        for (key, l) in &snap.config.listeners {
            if l.kind != ListenerKind::Health
                && let Ok(port) = u16::try_from(l.bind_port)
            {
                if OWN_PORTS.contains(&port) || port == px.outbound.port() {
                    tracing::warn!(
                        listener = %key, port,
                        "a Gateway server uses a port the proxy itself serves; not bound on the pod address"
                    );
                } else {
                    wanted.push(Want {
                        addr: SocketAddr::new(px.pod_ip, port),
                        listener: key.clone(),
                        public: false,
                    });
                }
            }
            let Ok(port) = u16::try_from(l.port) else {
                continue;
            };
            for a in &l.public {
                let Ok(ip) = a.parse::<IpAddr>() else {
                    continue;
                };
                wanted.push(Want {
                    addr: SocketAddr::new(ip, port),
                    listener: key.clone(),
                    public: true,
                });
            }
        }
        self.running.retain(|w, r| {
            let keep = wanted.contains(w);
            if !keep {
                tracing::info!(addr = %w.addr, listener = %w.listener, "gateway listener closed; draining its connections");
                r.accept.abort();
                let close = r.close.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(DRAIN).await;
                    let _ = close.send(true);
                });
            }
            keep
        });
        for w in wanted {
            if self.running.contains_key(&w) {
                continue;
            }
            match bind(w.addr, w.public) {
                Ok(l) => {
                    tracing::info!(addr = %w.addr, listener = %w.listener, public = w.public, "gateway listener up");
                    let (close, closing) = watch::channel(false);
                    let accept = tokio::spawn(accept_loop(px.clone(), l, w.clone(), closing));
                    self.running.insert(w, Running { accept, close });
                }
                Err(e) => {
                    tracing::error!(addr = %w.addr, listener = %w.listener, error = %e, "cannot bind gateway listener");
                }
            }
        }
    }
}

fn bind(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let s = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    s.set_reuseaddr(true)?;
    if reuse_port {
        s.set_reuseport(true)?;
    }
    s.bind(addr)?;
    s.listen(strait_net::LISTEN_BACKLOG)
}

async fn accept_loop(px: Shared, l: TcpListener, w: Want, closing: watch::Receiver<bool>) {
    let door = if w.public { Door::Public } else { Door::Mesh };
    loop {
        let (stream, peer) = px.reach.accept(&l, door, "gateway").await;
        let _ = stream.set_nodelay(true);
        let (px2, key) = (px.clone(), w.listener.clone());
        let mut closing = closing.clone();
        let serve = move |stream| async move {
            let px = px2;
            let kind = px
                .snapshot
                .load()
                .config
                .listeners
                .get(&key)
                .map(|l| l.kind.clone());
            let result = match kind {
                Some(ListenerKind::Health) => super::http::health(px, stream).await,
                Some(ListenerKind::Http { .. }) => {
                    super::http::serve(px, stream, key.clone(), peer).await
                }
                Some(ListenerKind::Tls { chains }) => {
                    super::tls::serve(px, stream, &key, &chains, peer).await
                }
                Some(ListenerKind::Tcp { route }) => {
                    let client = super::http::Client::plain(&stream, peer);
                    if super::tls::authorized(&px, &client, &key) {
                        super::relay::to_route(&px, stream, &route, None).await
                    } else {
                        Ok(())
                    }
                }
                None => Ok(()),
            };
            if let Err(e) = result {
                tracing::debug!(%peer, listener = %key, error = %e, "gateway connection ended");
            }
        };
        px.workers
            .spawn_connection(stream, move |stream| async move {
                tokio::select! {
                    () = serve(stream) => {}
                    _ = closing.wait_for(|c| *c) => {}
                }
            });
    }
}
