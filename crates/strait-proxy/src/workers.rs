//! Connection workers: each accepted connection is served, start to end, by one worker
//! thread running its own single-threaded runtime, with its own upstream connection pools
//! (Envoy's threading model).
//!
//! Why not one work-stealing runtime: a request then typically wakes tasks on both threads
//! (the client connection on one, the pooled upstream connection on the other), and each
//! such wake-up is a futex call and often a context switch. Profiles of the sidecar pair
//! under load put the scheduler and wake-ups near a fifth of all CPU. With a connection
//! and the upstream connections it uses on one thread, a request wakes nobody else.
//!
//! The listeners, the control-plane stream, certificate renewal and the admin ports stay on
//! the main runtime; a connection is handed to the next worker right after `accept`.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::runtime::Handle;

thread_local! {
    /// The worker this thread is (1-based), 0 on any other thread.
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// The worker the calling thread is: 1..=n on worker threads, 0 elsewhere. Per-worker state
/// (connection pools) is indexed by it.
pub fn current() -> usize {
    WORKER.with(Cell::get)
}

/// The worker threads of a proxy.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `n` worker threads. With `n == 0`, connections are served on the caller's
    /// runtime (embedding, tests).
    pub fn start(n: usize) -> std::io::Result<Workers> {
        let mut handles = Vec::with_capacity(n);
        for id in 1..=n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(rt.handle().clone());
            std::thread::Builder::new()
                .name(format!("proxy-worker-{id}"))
                .spawn(move || {
                    WORKER.with(|w| w.set(id));
                    // A worker lives as long as the process: the proxy exits by ending it.
                    rt.block_on(std::future::pending::<()>());
                })?;
        }
        Ok(Workers {
            handles,
            next: AtomicUsize::new(0),
        })
    }

    /// How many pools per-worker state needs: one per worker, plus one for other threads.
    pub fn slots(&self) -> usize {
        self.handles.len() + 1
    }

    /// Serves `stream` with `serve` on the next worker, in turn.
    pub fn spawn_connection<F, Fut>(&self, stream: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if self.handles.is_empty() {
            tokio::spawn(serve(stream));
            return;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        // The socket is registered with the accepting runtime's reactor: move it over.
        let std = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand a connection to a worker");
                return;
            }
        };
        self.handles[i].spawn(async move {
            match TcpStream::from_std(std) {
                Ok(stream) => serve(stream).await,
                Err(e) => tracing::warn!(error = %e, "worker cannot take a connection"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn connections_are_served_on_worker_threads_in_turn() {
        let workers = Workers::start(2).expect("worker threads");
        assert_eq!(workers.slots(), 3);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut client = TcpStream::connect(addr).await.expect("connect");
            let (server, _) = listener.accept().await.expect("accept");
            workers.spawn_connection(server, |mut s| async move {
                let id = u8::try_from(current()).unwrap_or(u8::MAX);
                let _ = s.write_all(&[id]).await;
            });
            let mut id = [0u8; 1];
            client
                .read_exact(&mut id)
                .await
                .expect("the worker answers");
            seen.push(id[0]);
        }
        assert_eq!(seen, [1, 2, 1, 2]);
        assert_eq!(current(), 0, "the test's thread is no worker");
    }
}
