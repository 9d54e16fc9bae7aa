//! Sockets inside a network namespace.
//!
//! A socket belongs to the namespace its creating thread was in when it was made, and stays
//! there. So a process can reach into a namespace without living in it: a short-lived thread
//! enters the namespace (`setns(2)`), creates the socket and exits; the socket is then used as
//! any other. `strait up --netns` and the commands that talk to a running mesh (`exec`,
//! `proxy-config`, `proxy-status`) reach pods this way; the parts themselves are started inside
//! their network's namespace and never need this.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sched::{CloneFlags, setns};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Where `ip netns` keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// A named network namespace (`ip netns add <name>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn named(name: impl Into<String>) -> Netns {
        Netns { name: name.into() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    pub fn exists(&self) -> bool {
        self.path().exists()
    }

    /// Runs `f` on a thread inside the namespace and returns what it made.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let path = self.path();
        let ns = File::open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let name = self.name.clone();
        std::thread::Builder::new()
            .name(format!("netns-{name}"))
            .spawn(move || {
                // The thread exits right after: it never has to find its way back.
                setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| {
                    io::Error::other(format!("entering network namespace {name}: {e}"))
                })?;
                f()
            })?
            .join()
            .map_err(|_| io::Error::other("network namespace thread panicked"))?
    }

    /// A TCP socket of the namespace, ready for tokio.
    pub fn tcp_socket(&self, v4: bool) -> io::Result<TcpSocket> {
        let socket = self.run(move || {
            let domain = if v4 { Domain::IPV4 } else { Domain::IPV6 };
            let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
            s.set_nonblocking(true)?;
            Ok(s)
        })?;
        Ok(TcpSocket::from_std_stream(socket.into()))
    }

    /// Connects to `addr` from inside the namespace.
    pub async fn connect(&self, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        let socket = self.tcp_socket(addr.is_ipv4())?;
        tokio::time::timeout(timeout, socket.connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connect to {addr}")))?
    }

    /// A listener bound to `addr` inside the namespace.
    pub fn listen(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let socket = self.tcp_socket(addr.is_ipv4())?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(crate::LISTEN_BACKLOG)
    }
}

/// Where to open connections from: this process's own namespace, or a named one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Vantage {
    #[default]
    Here,
    In(Netns),
}

impl Vantage {
    /// Connects to `addr`, with a deadline.
    pub async fn connect(&self, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        match self {
            Vantage::Here => tokio::time::timeout(timeout, TcpStream::connect(addr))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, format!("connect to {addr}"))
                })?,
            Vantage::In(ns) => ns.connect(addr, timeout).await,
        }
    }
}
