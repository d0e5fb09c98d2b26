//! The devices' clock: tokio's, so that a test that pauses time moves every device's deadlines
//! and measurements with it. No other clock is read in `device`.

use std::time::Instant;

/// The current instant on tokio's clock (virtual when a test pauses time).
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
