//! The lookahead of prepared devices: each device's identity (registration ID, key, SAS token,
//! register body, X.509 certificate and its TLS config) is built a bounded window ahead of its
//! start, not the whole plan up front, so a run's memory and setup time follow its rate and
//! concurrency, not the size of its plan.
//!
//! [`Lookahead`] keeps at most `window` devices prepared, in the order they start. It is filled
//! before the clock starts, then by the arrival loop while it waits for a start, and only while
//! the slowest recent preparation would still end before that start is due, so preparing does
//! not make a start late (short of one preparation far slower than the recent ones). A start
//! that finds nothing prepared (the loop had no time to spare) prepares its device then; its
//! schedule lag shows the cost and [`Lookahead::behind`] counts it. [`DevicePreparer`] is what
//! one device's preparation is.
//!
//! `Lookahead` takes its clock as an argument and does no IO; `DevicePreparer` reads and writes
//! the X.509 certificate cache. A device that asks for an operational certificate gets its key
//! pair and CSR here too, ahead of its start (not cached: a P-256 key and its CSR take tens of
//! microseconds, and a cache would keep private keys on disk for no gain).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::error::RunError;
use crate::certificates::CertificateRequest;
use crate::credentials::SasToken;
use crate::device::DeviceIdentity;
use crate::device::driver::now;
use crate::scenario::{Load, Plan};
use crate::shard::Part;
use crate::tls;
use crate::x509::{CertificateAuthority, DeviceCertificate};

/// How far ahead the window reaches, at the plan's peak rate.
const LOOKAHEAD: Duration = Duration::from_secs(1);
/// The least a window holds: enough that a slow preparation now and then never empties it.
const MIN_WINDOW: usize = 256;
/// The most a window holds (a few tens of MB of identities): past it, the fastest plans prepare
/// some devices as they start.
const MAX_WINDOW: usize = 65_536;
/// How fast the cost of a slow preparation is forgotten: the estimate halves every this long, so
/// a preparation held up once (the process preempted on a busy machine) pauses the lookahead for
/// a fraction of a second, not until the window has run dry.
const COST_HALF_LIFE: Duration = Duration::from_millis(100);
/// The most the arrival loop prepares in one wait (a few hundred microseconds of SAS tokens), so
/// refilling a large window never holds the loop, and the worker it runs on, for long.
pub(super) const FILL_BATCH: usize = 64;

/// Prepares the device of one global index.
pub(super) trait Prepare {
    type Item;
    type Error;
    fn prepare(&mut self, index: u64) -> Result<Self::Item, Self::Error>;
}

/// Devices prepared ahead of their start, at most `window` of them.
pub(super) struct Lookahead<P: Prepare> {
    preparer: P,
    /// The global indexes still to prepare, in start order.
    indexes: Box<dyn Iterator<Item = u64> + Send>,
    ready: VecDeque<Result<P::Item, P::Error>>,
    window: usize,
    /// What one preparation costs: the slowest recent one, as of `cost_at` (see
    /// [`COST_HALF_LIFE`] and [`Self::cost`]).
    cost: Duration,
    cost_at: Option<Instant>,
    /// Set after a preparation failed: nothing after it is prepared.
    failed: bool,
    behind: u64,
    most_held: usize,
}

impl<P: Prepare> Lookahead<P> {
    pub(super) fn new(preparer: P, indexes: impl Iterator<Item = u64> + Send + 'static, window: usize) -> Self {
        let window = window.max(1);
        Self {
            preparer,
            indexes: Box::new(indexes),
            ready: VecDeque::with_capacity(window.min(MAX_WINDOW)),
            window,
            cost: Duration::ZERO,
            cost_at: None,
            failed: false,
            behind: 0,
            most_held: 0,
        }
    }

    /// Prepares up to `most` devices, until the window is full or the plan has none left; with
    /// `due` (the next start), only while the next preparation, at the cost of the slowest
    /// recent one, still ends before it. A start already due prepares nothing.
    pub(super) fn fill(&mut self, due: Option<Instant>, most: usize, clock: &impl Fn() -> Instant) {
        for _ in 0..most {
            if self.ready.len() >= self.window {
                return;
            }
            let at = clock();
            if due.is_some_and(|due| at + self.cost(at) >= due) {
                return;
            }
            let Some(prepared) = self.prepare_next(at, clock) else { return };
            self.ready.push_back(prepared);
            self.most_held = self.most_held.max(self.ready.len());
        }
    }

    /// The next device to start, in order: the first prepared one, or (when the loop had no
    /// time to prepare it ahead) one prepared now. `None` when the plan has no more; an error
    /// when its preparation failed, after which there are no more.
    pub(super) fn take(&mut self, clock: &impl Fn() -> Instant) -> Option<Result<P::Item, P::Error>> {
        if let Some(prepared) = self.ready.pop_front() {
            return Some(prepared);
        }
        let prepared = self.prepare_next(clock(), clock)?;
        self.behind += 1;
        Some(prepared)
    }

    /// The next device to start, when it is prepared and its preparation went well (the
    /// preflight connects as it).
    pub(super) fn first(&self) -> Option<&P::Item> {
        self.ready.front()?.as_ref().ok()
    }

    /// Devices prepared and not yet taken.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.ready.len()
    }

    /// The most devices held prepared at once.
    pub(super) fn most_held(&self) -> usize {
        self.most_held
    }

    /// Starts that found their device unprepared and prepared it as they started.
    pub(super) fn behind(&self) -> u64 {
        self.behind
    }

    /// The cost estimate at `now`: the slowest recent preparation, halved for every
    /// [`COST_HALF_LIFE`] since it was last raised.
    fn cost(&self, now: Instant) -> Duration {
        let since = self.cost_at.map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        let halvings = since.as_nanos() / COST_HALF_LIFE.as_nanos();
        self.cost.checked_div(1 << halvings.min(31)).unwrap_or_default()
    }

    fn prepare_next(&mut self, at: Instant, clock: &impl Fn() -> Instant) -> Option<Result<P::Item, P::Error>> {
        if self.failed {
            return None;
        }
        let index = self.indexes.next()?;
        let prepared = self.preparer.prepare(index);
        let took = clock().saturating_duration_since(at);
        (self.cost, self.cost_at) = (took.max(self.cost(at)), Some(at));
        self.failed = prepared.is_err();
        Some(prepared)
    }
}

/// How many devices a shard's lookahead holds: a second of starts at its peak rate (the whole
/// share of a closed model's concurrency, which starts at once), within bounds, and never more
/// than the shard has.
pub(super) fn window(part: &Part) -> usize {
    let ahead = match part.load() {
        Load::Open(arrivals) => (arrivals.peak_rate() * LOOKAHEAD.as_secs_f64()).ceil() as u64,
        Load::Closed { concurrency } => *concurrency,
    };
    let window = (ahead as usize).clamp(MIN_WINDOW, MAX_WINDOW);
    window.min(part.devices() as usize).max(1)
}

/// A plan's lookahead over its shard's devices, filled before the clock starts: a device that
/// cannot be prepared then stops the run before anything started.
pub(super) fn lookahead(
    plan: &Arc<Plan>,
    part: &Part,
    roots: &Arc<rustls::RootCertStore>,
) -> Result<Lookahead<DevicePreparer>, RunError> {
    let preparer = DevicePreparer::new(plan.clone(), roots)?;
    let mut devices = Lookahead::new(preparer, part.shard().indexes(plan.stop.devices), window(part));
    devices.fill(None, usize::MAX, &now);
    // A failure is the last one prepared (nothing is prepared after it).
    match devices.ready.pop_back() {
        Some(Err(error)) => Err(error),
        Some(last) => {
            devices.ready.push_back(last);
            Ok(devices)
        }
        None => Ok(devices),
    }
}

/// Builds one device's identity and SAS token, or its X.509 certificate and TLS config.
pub(super) struct DevicePreparer {
    plan: Arc<Plan>,
    /// When SAS tokens expire (Unix seconds): an hour past the run's longest end.
    expiry: u64,
    x509: Option<X509Devices>,
}

/// What X.509 devices are prepared from.
struct X509Devices {
    ca: CertificateAuthority,
    cache: std::path::PathBuf,
    roots: Arc<rustls::RootCertStore>,
}

impl DevicePreparer {
    fn new(plan: Arc<Plan>, roots: &Arc<rustls::RootCertStore>) -> Result<Self, RunError> {
        let now_unix =
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let expiry = super::misbehaving::expiry(plan.flow.misbehave, now_unix, plan.max_duration.as_secs() + 3600);
        let x509 = match &plan.x509 {
            Some(x509) => Some(X509Devices {
                ca: CertificateAuthority::load(&x509.ca_dir)?,
                cache: x509.cache.clone(),
                roots: roots.clone(),
            }),
            None => None,
        };
        Ok(Self { plan, expiry, x509 })
    }
}

impl Prepare for DevicePreparer {
    type Item = DeviceIdentity;
    type Error = RunError;

    /// Device `n` of the plan. An X.509 device gets its certificate (loaded from the cache, or
    /// minted and cached) and its own TLS config presenting it, and sends no password.
    fn prepare(&mut self, n: u64) -> Result<DeviceIdentity, RunError> {
        let plan = &self.plan;
        let registration_id = plan.registration_id(n);
        let personality = plan.personalities.of(n);
        let payload = plan.payload.as_ref().map(|template| template.render(&registration_id, n));
        // The credential names another device under a misbehaviour (failing controls).
        let misbehave = plan.flow.misbehave;
        let signed_for = super::misbehaving::signed_for(misbehave, &registration_id);
        let (password, client_tls) = match &self.x509 {
            None => {
                let device_key = plan.device_key(n, &registration_id);
                let sas_style = super::misbehaving::sas_style(misbehave, personality.sas_style());
                (Some(SasToken::build(&plan.id_scope, &signed_for, &device_key, self.expiry, sas_style)), None)
            }
            Some(x509) => {
                let certificate = DeviceCertificate::load_or_mint(&x509.ca, &x509.cache, &signed_for)?;
                let config = tls::client_config_with_certificate(
                    x509.roots.clone(),
                    plan.tls.clone(),
                    certificate.chain.clone(),
                    certificate.key(),
                )?;
                (None, Some(config))
            }
        };
        let mut register_body = personality.register_body(&registration_id, payload.as_ref());
        let certificate_request = match plan.certificates.request {
            Some(key_type) => {
                let request = CertificateRequest::generate(key_type, registration_id.as_str())
                    .map_err(|e| RunError::Certificate(format!("{registration_id}: {e}")))?;
                register_body = crate::certificates::register_body_with_csr(&register_body, &request.csr_base64);
                Some(Arc::new(request))
            }
            None => None,
        };
        Ok(DeviceIdentity {
            register_body: super::misbehaving::register_body(misbehave, &registration_id, register_body),
            registration_id,
            id_scope: plan.id_scope.clone(),
            password,
            source_address: match plan.source_addresses.len() {
                0 => None,
                pool => Some(plan.source_addresses[(n % pool as u64) as usize]),
            },
            personality,
            payload,
            client_tls,
            certificate_request,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// Prepares index `n` as `n`, costing `cost` on the test's clock; fails at `fail_at`.
    struct Counting<'a> {
        clock: &'a Cell<Instant>,
        cost: Duration,
        prepared: &'a Cell<u64>,
        fail_at: Option<u64>,
    }

    impl Prepare for Counting<'_> {
        type Item = u64;
        type Error = String;
        fn prepare(&mut self, n: u64) -> Result<u64, String> {
            self.clock.set(self.clock.get() + self.cost);
            self.prepared.set(self.prepared.get() + 1);
            if self.fail_at == Some(n) { Err(format!("device {n}")) } else { Ok(n) }
        }
    }

    // The lookahead's boxed index iterator must be 'static, the preparer need not be.
    fn counting<'a>(
        clock: &'a Cell<Instant>,
        prepared: &'a Cell<u64>,
        cost_ms: u64,
        devices: u64,
        window: usize,
    ) -> Lookahead<Counting<'a>> {
        let preparer = Counting { clock, cost: Duration::from_millis(cost_ms), prepared, fail_at: None };
        Lookahead::new(preparer, 0..devices, window)
    }

    #[test]
    fn the_lookahead_holds_at_most_its_window_of_a_large_plan() {
        let (clock, prepared) = (Cell::new(Instant::now()), Cell::new(0));
        let read = || clock.get();
        let mut devices = counting(&clock, &prepared, 0, 1_000_000, 64);
        devices.fill(None, 5, &read);
        assert_eq!(devices.held(), 5, "one fill prepares at most the batch it is given");
        devices.fill(None, usize::MAX, &read);
        assert_eq!((devices.held(), prepared.get()), (64, 64), "the window, not the plan, is prepared first");
        let mut taken = 0;
        for round in 0..5_000u64 {
            // Starts come one to three at a time between the loop's waits.
            for _ in 0..1 + round % 3 {
                assert_eq!(devices.take(&read), Some(Ok(taken)), "devices come in start order");
                taken += 1;
            }
            devices.fill(None, usize::MAX, &read);
            assert!(devices.held() <= 64 && prepared.get() - taken <= 64, "round {round}: {}", devices.held());
        }
        assert_eq!(devices.most_held(), 64);
        assert_eq!(devices.behind(), 0);
        assert_eq!(prepared.get(), taken + 64, "prepared = started + the window, whatever the plan's size");
    }

    #[test]
    fn filling_never_runs_into_a_due_start() {
        let (clock, prepared) = (Cell::new(Instant::now()), Cell::new(0));
        let read = || clock.get();
        let mut devices = counting(&clock, &prepared, 1, 100, 50);
        // Before the clock: the window fills whatever it costs, and the lookahead learns the cost.
        devices.take(&read);
        let mut taken = 1;
        assert_eq!(devices.behind(), 1, "taken before any fill, the first was prepared as it started");
        // The next start is due in 3.5 ms and one preparation costs 1 ms: three fit before it.
        let due = clock.get() + Duration::from_micros(3_500);
        devices.fill(Some(due), usize::MAX, &read);
        assert_eq!(devices.held(), 3);
        assert!(clock.get() <= due, "filling ended before the start was due");
        // A start that is due (or overdue) gets no preparation before it.
        let before = prepared.get();
        devices.fill(Some(clock.get()), usize::MAX, &read);
        devices.fill(Some(clock.get() - Duration::from_millis(5)), usize::MAX, &read);
        assert_eq!(prepared.get(), before);
        // Every gap between starts longer than a preparation is used, and no fill passes a start.
        for _ in 0..40 {
            let due = clock.get() + Duration::from_micros(2_500);
            devices.fill(Some(due), usize::MAX, &read);
            assert!(clock.get() <= due);
            clock.set(due);
            assert!(matches!(devices.take(&read), Some(Ok(_))));
            taken += 1;
        }
        assert_eq!(devices.behind(), 1, "each of the 40 starts found its device prepared");
        assert!(devices.held() <= 50);
        assert_eq!(prepared.get(), taken + devices.held() as u64);
    }

    #[test]
    fn a_slow_outlier_pauses_the_lookahead_only_for_a_while() {
        let (clock, prepared) = (Cell::new(Instant::now()), Cell::new(0));
        let read = || clock.get();
        let preparer = Counting { clock: &clock, cost: Duration::from_millis(40), prepared: &prepared, fail_at: None };
        let mut devices = Lookahead::new(preparer, 0..1000, 8);
        devices.fill(None, usize::MAX, &read);
        devices.preparer.cost = Duration::from_micros(100);
        for n in 0..4 {
            assert_eq!(devices.take(&read), Some(Ok(n)));
        }
        // With 40 ms as the cost, a start 10 ms ahead leaves no room: the loop prepares nothing.
        let held = devices.held();
        assert_eq!(held, 4);
        devices.fill(Some(clock.get() + Duration::from_millis(10)), usize::MAX, &read);
        assert_eq!(devices.held(), held);
        // A tenth of a second later the estimate is half (20 ms), still no room; three tenths
        // later it is 5 ms, and filling resumes, at the new cost.
        clock.set(clock.get() + Duration::from_millis(100));
        devices.fill(Some(clock.get() + Duration::from_millis(10)), usize::MAX, &read);
        assert_eq!(devices.held(), held);
        clock.set(clock.get() + Duration::from_millis(200));
        devices.fill(Some(clock.get() + Duration::from_millis(10)), usize::MAX, &read);
        assert_eq!(devices.held(), 8, "the estimate decayed: {:?}", devices.cost);
        assert_eq!(devices.cost(clock.get()), Duration::from_millis(5), "the slowest recent one, halved three times");
    }

    #[test]
    fn a_failed_preparation_comes_in_its_turn_and_ends_the_devices() {
        let (clock, prepared) = (Cell::new(Instant::now()), Cell::new(0));
        let read = || clock.get();
        let preparer = Counting { clock: &clock, cost: Duration::ZERO, prepared: &prepared, fail_at: Some(2) };
        let mut devices = Lookahead::new(preparer, 0..10, 8);
        devices.fill(None, usize::MAX, &read);
        assert_eq!(devices.held(), 3, "nothing is prepared after a failure");
        assert_eq!(devices.first(), Some(&0));
        assert_eq!(devices.take(&read), Some(Ok(0)));
        assert_eq!(devices.take(&read), Some(Ok(1)));
        assert_eq!(devices.take(&read), Some(Err("device 2".into())));
        assert_eq!(devices.take(&read), None);
    }

    #[test]
    fn the_window_is_a_second_of_starts_within_bounds() {
        let plan = |arrival: &str, count: u64| {
            let text = format!(
                "name = \"w\"\n[target]\nkind = \"embedded\"\n[devices]\ncount = {count}\n[arrival]\n{arrival}\n"
            );
            let file = crate::toml_file::parse(&text).expect("the scenario parses");
            Plan::resolve(file, std::path::Path::new("w.toml"), &|_| None).expect("the scenario resolves")
        };
        assert_eq!(window(&Part::whole(&plan("rate = 50", 1_000_000))), MIN_WINDOW);
        assert_eq!(window(&Part::whole(&plan("rate = 5000", 1_000_000))), 5000);
        assert_eq!(window(&Part::whole(&plan("rate = 500000", 10_000_000))), MAX_WINDOW);
        assert_eq!(window(&Part::whole(&plan("rate = 5000", 100))), 100, "no more than the plan has");
        assert_eq!(window(&Part::whole(&plan("model = \"closed\"\nconcurrency = 1000", 1_000_000))), 1000);
        let closed = plan("model = \"closed\"\nconcurrency = 1000", 1_000_000);
        let sharded = crate::shard::Shard::new(1, 4).expect("a valid shard").part_of(&closed).expect("a share of 250");
        assert_eq!(window(&sharded), MIN_WINDOW, "a shard's share of 250, within bounds");
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_prepares_each_device_ahead_of_its_start_and_holds_only_the_window() {
        // 1,500 devices at 300/s: a window of 300, a fifth of the plan.
        let text = "name = \"ahead\"\n[target]\nkind = \"embedded\"\nretry_after_seconds = 0\n[devices]\n\
                    count = 1500\n[arrival]\nrate = 300\n[run]\nmax_duration_seconds = 60\n";
        let file = crate::toml_file::parse(text).expect("the scenario parses");
        let plan = Arc::new(Plan::resolve(file, std::path::Path::new("a.toml"), &|_| None).expect("it resolves"));
        let options = super::super::RunOptions::whole(&plan);
        assert_eq!(window(&options.part), 300);
        let context =
            super::super::context::RunContext::set_up(&plan, &options).await.expect("the embedded emulator starts");
        let devices = lookahead(&plan, &options.part, &context.target.roots).expect("devices prepare");
        let settings = context.personality_settings(&plan);
        let (_no_interrupts, interrupts) = tokio::sync::watch::channel(0);
        let arrivals =
            super::super::schedule::ArrivalLoop::new(&plan, &options, None, &context.target.target, settings, devices);
        let super::super::ended::Arrivals { started, ending, .. } = arrivals.run(interrupts, |_| {}).await;
        assert_eq!(ending, super::super::ended::Ending::Complete);
        assert_eq!((started.started, started.not_started), (1500, 0));
        assert_eq!(started.prepared_late, 0, "every start found its device prepared ahead of it");
        assert_eq!(started.most_prepared, 300, "never more than the window was prepared ahead");
        assert_eq!(started.unprepared, None);
    }
}
