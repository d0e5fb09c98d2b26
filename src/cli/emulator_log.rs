//! The emulator's log while it serves: one line a second on stderr while it has traffic, built
//! from its totals (`emulator::activity`). The only IO here is that line.

use std::sync::Arc;

use crate::emulator::{self, Service};

/// Logs one line a second on stderr while the emulator has traffic (nothing while idle), and
/// the last part-second when `stopped` turns true.
pub(super) async fn log_activity(service: Arc<Service>, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut before = emulator::activity::Totals::of(&service.stats);
    loop {
        let stopping = tokio::select! {
            _ = ticker.tick() => false,
            _ = stopped.changed() => true,
        };
        let now = emulator::activity::Totals::of(&service.stats);
        if let Some(line) = now.line_since(&before) {
            eprintln!("{line}");
        }
        if stopping {
            return;
        }
        before = now;
    }
}
