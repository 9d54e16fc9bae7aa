//! A shared stop signal: one [`StopTrigger`], any number of [`Stop`] clones.
//!
//! Built on `tokio::sync::watch` so that a task that starts listening after the trigger
//! fired still sees it (a `Notify` would lose that wake-up). Dropping the trigger counts as
//! firing it: a server whose owner is gone has nobody left to stop it.

use tokio::sync::watch;

/// The sending half: call [`StopTrigger::stop`] (or drop it) to stop everything listening.
#[derive(Debug)]
pub struct StopTrigger {
    tx: watch::Sender<bool>,
}

/// The listening half; cheap to clone, one per task that must stop.
#[derive(Clone, Debug)]
pub struct Stop {
    rx: watch::Receiver<bool>,
}

/// A new trigger and its first listener.
pub fn stop_pair() -> (StopTrigger, Stop) {
    let (tx, rx) = watch::channel(false);
    (StopTrigger { tx }, Stop { rx })
}

impl StopTrigger {
    /// Fire: every [`Stop::wait`], past and future, resolves. Idempotent.
    pub fn stop(&self) {
        self.tx.send_replace(true);
    }

    /// Another listener for this trigger.
    pub fn subscribe(&self) -> Stop {
        Stop {
            rx: self.tx.subscribe(),
        }
    }
}

impl Stop {
    /// Resolves once the trigger fired or was dropped. Cancel-safe.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        // An error means the trigger was dropped, which is a stop as well.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// Whether [`Stop::wait`] would resolve now.
    pub fn is_stopped(&self) -> bool {
        *self.rx.borrow() || self.rx.has_changed().is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_reaches_late_and_early_listeners() {
        let (trigger, early) = stop_pair();
        assert!(!early.is_stopped());
        let waiter = tokio::spawn({
            let early = early.clone();
            async move { early.wait().await }
        });
        trigger.stop();
        waiter.await.unwrap();
        let late = trigger.subscribe();
        assert!(late.is_stopped());
        late.wait().await;
    }

    #[tokio::test]
    async fn dropping_the_trigger_stops() {
        let (trigger, stop) = stop_pair();
        drop(trigger);
        assert!(stop.is_stopped());
        stop.wait().await;
    }
}
