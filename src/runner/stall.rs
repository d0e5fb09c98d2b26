//! Watching the runtime for saturation while a run goes on.

use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::watch;

use super::timer::PreciseTimer;
use crate::device::driver::now;

/// Measures runtime saturation: how late a precise 10 ms timer is served while the run goes on
/// (tokio's own timer would add its 1 ms tick and millisecond park to every reading).
pub(super) struct StallMonitor {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Histogram<u64>>,
}

impl StallMonitor {
    const PERIOD: Duration = Duration::from_millis(10);

    pub(super) fn start() -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut stalls = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
            let mut timer = PreciseTimer::new();
            loop {
                let due = now() + Self::PERIOD;
                tokio::select! {
                    () = timer.sleep_until(due) => {
                        let late = now().saturating_duration_since(due);
                        stalls.saturating_record((late.as_micros() as u64).max(1));
                    }
                    _ = stopped.changed() => return stalls,
                }
            }
        });
        Self { stop, task }
    }

    /// Stops the monitor; returns the stall p99 in microseconds.
    pub(super) async fn stop(self) -> u64 {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(stalls) if !stalls.is_empty() => stalls.value_at_quantile(0.99),
            _ => 0,
        }
    }
}
