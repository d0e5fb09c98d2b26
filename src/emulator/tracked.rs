//! The tasks a running emulator spawned (accept loops, connections), tracked so that
//! [`EmulatorHandle::stop`](super::EmulatorHandle::stop) returns only once every one has ended:
//! mini-redis's `shutdown_complete`. Each task holds a clone of one channel's sender; the
//! receiver learns the last one dropped. IO layer: it spawns and waits, and knows nothing of MQTT
//! or DPS.

use std::future::Future;

use tokio::sync::mpsc;

/// Spawns tasks that [`Tracked::all_ended`] waits for.
#[derive(Debug, Clone)]
pub struct Tracker(mpsc::Sender<()>);

impl Tracker {
    /// Spawns `task`, holding this tracker's token until it ends.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let token = self.0.clone();
        tokio::spawn(async move {
            task.await;
            drop(token);
        });
    }
}

/// The receiving end: knows when every tracked task has ended.
#[derive(Debug)]
pub struct Tracked {
    tracker: Option<Tracker>,
    ended: mpsc::Receiver<()>,
}

impl Default for Tracked {
    fn default() -> Self {
        Self::new()
    }
}

impl Tracked {
    pub fn new() -> Self {
        let (sender, ended) = mpsc::channel(1);
        Self { tracker: Some(Tracker(sender)), ended }
    }

    /// A tracker for spawning more tasks.
    pub fn tracker(&self) -> Tracker {
        self.tracker.clone().expect("the tracker is only taken by all_ended, which consumes self")
    }

    /// Returns once every task spawned by a tracker of this one has ended (nothing is ever sent:
    /// `recv` returns `None` when the last sender is dropped).
    pub async fn all_ended(mut self) {
        drop(self.tracker.take());
        let _ = self.ended.recv().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn all_ended_waits_for_every_task_even_those_spawned_by_tasks() {
        let tracked = Tracked::new();
        let done = Arc::new(AtomicBool::new(false));
        let tracker = tracked.tracker();
        let inner = done.clone();
        tracked.tracker().spawn(async move {
            tracker.spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                inner.store(true, Ordering::Relaxed);
            });
        });
        tracked.all_ended().await;
        assert!(done.load(Ordering::Relaxed), "the nested task ended before all_ended returned");
    }
}
