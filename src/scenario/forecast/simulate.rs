//! The forecast's simulation: a plan's devices against a model of the target's service, event
//! by event on a virtual clock. A register takes a token from the registration bucket (the
//! emulator's own [`Bucket`]) or is answered 429 with the seconds until one; the device then
//! waits as its retry profile says, or gives up. An accepted register is polled after its
//! `retry-after` until the assignment is due; a poll takes an operations token and counts
//! against the per-device poll limit. No IO and no randomness: a retry's jitter draw is its
//! mean, and the clock is virtual (an arbitrary origin; only differences count).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::device::{Decision, RetryPolicy};
use crate::emulator::config::{PollLimit, QuotaConfig};
use crate::emulator::service::Bucket;

/// What the target answers, as the simulation needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Service {
    /// `retry-after` on every 202.
    pub retry_after_seconds: u32,
    /// Register to assignment.
    pub assign_delay: Duration,
    pub quota: Option<QuotaConfig>,
    pub poll_limit: PollLimit,
    /// The registration bucket holds no token at the start (the emulator's starts full).
    pub starts_empty: bool,
}

/// One device of the plan: when it starts and how it retries.
#[derive(Debug, Clone, Copy)]
pub struct Device {
    /// Its intended start, from the plan's zero.
    pub start: Duration,
    pub retry: RetryPolicy,
    /// The flow's deadline, from its start.
    pub flow_limit: Duration,
}

/// What the simulation predicts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outcome {
    pub started: u64,
    pub assigned: u64,
    /// Gave up after a 429 (or 5xx) their retry profile does not retry.
    pub gave_up: u64,
    /// Reached the flow's deadline.
    pub timed_out: u64,
    /// Still in flight when the run limit ended the run.
    pub aborted: u64,
    /// 429 replies received.
    pub throttled: u64,
    /// When the last device finished (the run limit when some were aborted), in seconds.
    pub seconds: f64,
}

/// Time from a device's start to its register request: TCP, TLS, CONNECT and SUBSCRIBE on
/// this machine (a few round trips).
const CONNECTING: Duration = Duration::from_millis(10);

/// A retry's jitter draw, in `[0, 1)`: its mean.
const JITTER: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Request {
    Register,
    Poll,
}

/// A device's state between its events.
struct Flow {
    retries: u32,
    /// When its assignment is due, once a register was accepted.
    due: Option<Duration>,
    /// Its recent polls, for the poll limit.
    recent: VecDeque<Duration>,
}

/// The target: its buckets (on a virtual clock from `origin`) and poll limit.
struct Target {
    service: Service,
    origin: Instant,
    registrations: Option<Bucket>,
    operations: Option<Bucket>,
}

impl Target {
    fn new(service: Service) -> Self {
        let origin = Instant::now();
        let registrations = service.quota.map(|q| {
            let mut bucket = Bucket::new(q.registrations_per_minute);
            if service.starts_empty {
                for _ in 0..q.registrations_per_minute {
                    let _ = bucket.take(origin);
                }
            }
            bucket
        });
        let operations = service.quota.map(|q| Bucket::new(q.operations_per_minute));
        Self { service, origin, registrations, operations }
    }

    /// A register at `at`: accepted, or the seconds of the 429's `retry-after`.
    fn register(&mut self, at: Duration) -> Result<(), u32> {
        self.registrations.as_mut().map_or(Ok(()), |bucket| bucket.take(self.origin + at))
    }

    /// A poll at `at` by a device with `recent` polls: counted, or the 429's `retry-after`.
    fn poll(&mut self, at: Duration, recent: &mut VecDeque<Duration>) -> Result<(), u32> {
        if let Some(bucket) = &mut self.operations {
            bucket.take(self.origin + at)?;
        }
        let limit = self.service.poll_limit;
        if !limit.enforced(self.service.retry_after_seconds) {
            return Ok(());
        }
        let window = Duration::from_secs(limit.window_seconds.into());
        while recent.front().is_some_and(|&polled| at.saturating_sub(polled) >= window) {
            recent.pop_front();
        }
        match recent.front() {
            Some(&oldest) if recent.len() >= limit.polls as usize => {
                let wait = (oldest + window).saturating_sub(at).as_secs_f64().ceil();
                Err((wait as u32).clamp(1, 300))
            }
            _ => {
                recent.push_back(at);
                Ok(())
            }
        }
    }
}

/// Runs `devices` (in order of their start) against `service` until each finished or
/// `run_limit` passed. Devices are taken as their turn comes and let go when they finish, so
/// memory follows the devices in flight, not the plan.
pub fn simulate(service: Service, devices: impl IntoIterator<Item = Device>, run_limit: Duration) -> Outcome {
    let mut target = Target::new(service);
    let mut devices = devices.into_iter().enumerate().peekable();
    let mut live: HashMap<usize, (Device, Flow)> = HashMap::new();
    let mut events = BinaryHeap::new();
    let mut outcome = Outcome::default();
    let mut last = Duration::ZERO;
    loop {
        // Every device whose register comes before the next event joins.
        while let Some((_, device)) = devices.peek()
            && events.peek().is_none_or(|Reverse((at, _, _))| device.start + CONNECTING <= *at)
        {
            let (index, device) = devices.next().expect("peeked");
            outcome.started += 1;
            events.push(Reverse((device.start + CONNECTING, index, Request::Register)));
            live.insert(index, (device, Flow { retries: 0, due: None, recent: VecDeque::new() }));
        }
        let Some(Reverse((at, index, request))) = events.pop() else { break };
        let (device, flow) = live.get_mut(&index).expect("a device with an event is live");
        let device = *device;
        let deadline = device.start + device.flow_limit;
        if at >= run_limit.min(deadline) {
            match at >= run_limit && run_limit <= deadline {
                true => outcome.aborted += 1,
                false => outcome.timed_out += 1,
            }
            last = last.max(run_limit.min(deadline));
            live.remove(&index);
            continue;
        }
        let answer = match request {
            Request::Register => target.register(at),
            Request::Poll => target.poll(at, &mut flow.recent),
        };
        let retry_after = Some(Some(service.retry_after_seconds));
        let next = match (answer, request) {
            (Err(seconds), _) => {
                outcome.throttled += 1;
                match device.retry.after_error(Some(Some(seconds)), flow.retries, JITTER) {
                    Decision::GiveUp => {
                        outcome.gave_up += 1;
                        None
                    }
                    Decision::Wait(wait) => {
                        flow.retries += 1;
                        Some((at + wait, request))
                    }
                }
            }
            (Ok(()), Request::Register) => {
                flow.retries = 0;
                flow.due = Some(at + service.assign_delay);
                Some((at + device.retry.poll_wait(retry_after, true, JITTER), Request::Poll))
            }
            (Ok(()), Request::Poll) if flow.due.is_some_and(|due| at >= due) => {
                outcome.assigned += 1;
                None
            }
            (Ok(()), Request::Poll) => {
                flow.retries = 0;
                Some((at + device.retry.poll_wait(retry_after, false, JITTER), Request::Poll))
            }
        };
        match next {
            Some((when, request)) => events.push(Reverse((when, index, request))),
            None => {
                last = last.max(at);
                live.remove(&index);
            }
        }
    }
    outcome.seconds = last.as_secs_f64();
    outcome
}
