//! A sleep that ends when its deadline comes, for the arrival schedule and the stall probe.
//!
//! Tokio's timer rounds a deadline up to its next 1 ms tick and its driver parks in
//! `epoll_wait` with a timeout in whole milliseconds, so one of its sleeps ends 0 to 2 ms after
//! the deadline even on an idle runtime (measured with 50 arrivals a second: starts 0.7 ms late
//! at the median, 1.2 ms at p99). On Linux a `timerfd` armed for the deadline wakes the
//! runtime's I/O driver at that instant instead (the kernel's high-resolution timer): 0.06 ms
//! and 0.14 ms. Where there is no `timerfd`, and under tokio's paused clock (tests, where only
//! tokio's timer moves virtual time), tokio's sleep is the timer.

use std::time::Instant;

/// One reusable precise timer (one file descriptor on Linux).
pub(super) struct PreciseTimer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
    /// The deadline the timerfd is armed for: the arrival loop asks again for the same start
    /// after every report it collects, and that needs no new system call.
    #[cfg(target_os = "linux")]
    armed_for: Option<Instant>,
}

impl PreciseTimer {
    /// A timer for the current runtime; tokio's alone where the kernel offers no `timerfd`
    /// or the runtime's clock is paused.
    pub(super) fn new() -> Self {
        Self {
            #[cfg(target_os = "linux")]
            fd: (!clock_paused()).then(linux::timerfd).and_then(Result::ok).and_then(|fd| {
                // SAFETY: an OwnedFd's descriptor stays open and the same until it is dropped,
                // which happens only with the AsyncFd that owns it.
                unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.ok()
            }),
            #[cfg(target_os = "linux")]
            armed_for: None,
        }
    }

    /// Sleeps until `deadline` (an instant of `runner::now`): returns at once when it has
    /// passed, never before it.
    pub(super) async fn sleep_until(&mut self, deadline: Instant) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            let remaining = deadline.saturating_duration_since(crate::device::driver::now());
            if remaining.is_zero() {
                return;
            }
            if self.armed_for == Some(deadline) || linux::arm(fd.get_ref(), remaining).is_ok() {
                self.armed_for = Some(deadline);
                linux::expired(fd).await;
                self.armed_for = None;
                return;
            }
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
    }
}

/// Whether tokio's clock is paused (`tokio::time::pause`, tests): it then stands still while
/// the real clock moves on, and jumps ahead whenever the runtime waits (on sockets too).
pub(super) fn clock_paused() -> bool {
    let (before, real) = (tokio::time::Instant::now(), std::time::Instant::now());
    while std::time::Instant::now() == real {
        std::hint::spin_loop();
    }
    tokio::time::Instant::now() == before
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
    use std::time::Duration;

    use tokio::io::unix::AsyncFd;

    /// A non-blocking monotonic timerfd (the clock `std::time::Instant` reads).
    pub(super) fn timerfd() -> io::Result<OwnedFd> {
        // SAFETY: timerfd_create takes no pointers.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a non-negative result is a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Arms the timer to expire once, `after` from now (re-arming resets a pending expiry).
    pub(super) fn arm(fd: &OwnedFd, after: Duration) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                // A zero it_value disarms: never arm for less than a nanosecond.
                tv_nsec: after.subsec_nanos().max(u32::from(after.as_secs() == 0)) as libc::c_long,
            },
        };
        // SAFETY: `fd` is a live timerfd; `spec` is a valid itimerspec for the call's duration
        // and the old value is not asked for (null).
        let rc = unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    }

    /// Completes when the armed timer expires.
    pub(super) async fn expired(fd: &AsyncFd<OwnedFd>) {
        loop {
            let Ok(mut ready) = fd.readable().await else { return std::future::pending().await };
            let mut expirations = 0u64;
            let read = ready.try_io(|fd| {
                // SAFETY: reads 8 bytes into a live u64, as timerfd(2) requires.
                let n = unsafe { libc::read(fd.as_raw_fd(), (&raw mut expirations).cast(), 8) };
                if n == 8 { Ok(()) } else { Err(io::Error::last_os_error()) }
            });
            match read {
                // Expired, or the read failed for another reason than "not yet" (callers check
                // the clock again, so an early return is safe where waiting forever is not).
                Ok(_) => return,
                // Readiness was stale (an earlier expiry, since re-armed): wait again.
                Err(_) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::device::driver::now;

    #[tokio::test]
    async fn a_real_clock_gets_the_kernel_timer_and_never_wakes_early() {
        let mut timer = PreciseTimer::new();
        #[cfg(target_os = "linux")]
        assert!(timer.fd.is_some(), "a running clock on Linux uses a timerfd");
        for micros in [0, 1, 150, 900, 2_500] {
            let deadline = now() + Duration::from_micros(micros);
            timer.sleep_until(deadline).await;
            assert!(now() >= deadline, "woke before a deadline {micros} us away");
        }
        // A deadline already past returns at once, and the timer is reusable after it.
        timer.sleep_until(now() - Duration::from_millis(5)).await;
        let deadline = now() + Duration::from_millis(1);
        timer.sleep_until(deadline).await;
        assert!(now() >= deadline);
    }

    #[tokio::test]
    async fn a_wait_dropped_and_asked_again_still_ends_at_its_deadline() {
        let mut timer = PreciseTimer::new();
        let deadline = now() + Duration::from_millis(200);
        // Dropped before the deadline, as the arrival loop drops it when a report comes first.
        let cut_short = tokio::time::timeout(Duration::from_millis(2), timer.sleep_until(deadline)).await;
        assert!(cut_short.is_err());
        timer.sleep_until(deadline).await;
        assert!(now() >= deadline);
        // Then a nearer deadline re-arms it.
        let nearer = now() + Duration::from_micros(300);
        timer.sleep_until(nearer).await;
        assert!(now() >= nearer);
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_is_driven_by_tokio_alone() {
        #[cfg(target_os = "linux")]
        assert!(clock_paused());
        let mut timer = PreciseTimer::new();
        #[cfg(target_os = "linux")]
        assert!(timer.fd.is_none(), "virtual time only moves through tokio's timer");
        let start = now();
        timer.sleep_until(start + Duration::from_secs(3600)).await;
        // An hour of virtual time, at once and to the tick.
        assert_eq!(now() - start, Duration::from_secs(3600));
    }
}
