//! Runs a [`Plan`]: sets up the target (starting the embedded emulator when asked), prepares
//! every device's credentials outside the timed path, starts devices on the arrival schedule,
//! folds their reports into [`Metrics`] and returns a [`RunSummary`].
//!
//! Writes no files (the CLI does), prints progress only through the callback it is given.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{MissedTickBehavior, sleep_until};

use crate::arrival::Arrivals;
use crate::credentials::SasToken;
#[cfg(test)]
use crate::credentials::SymmetricKey;
use crate::device::driver::now;
use crate::device::{DeviceIdentity, FlowSettings, Personality, RetryProfile, Target, Transport, run_device};
use crate::emulator::config::IndividualEnrollment;
use crate::emulator::{self, Service, ServiceConfig, ServiceStats};
use crate::metrics::{IntervalStats, Metrics, Summary};
use crate::scenario::{Load, Plan, TargetPlan};
use crate::tls::{self, TlsVersions};

/// Identifies the format of `summary.json`; bump on incompatible changes.
pub const SUMMARY_SCHEMA: &str = "dpsbench.summary/v1";

/// Task polls between checks of timers and sockets. A poll that runs a TLS handshake step costs
/// up to ~0.3 ms of crypto, so tokio's default of 61 can hold a due start back by many
/// milliseconds; checking more often keeps the arrival schedule (see scripts/bench-hold).
pub const EVENT_INTERVAL: u32 = 8;

/// The runtime runs are measured on: every core a worker, timers and sockets checked often.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().event_interval(EVENT_INTERVAL).enable_all().build()
}

/// Setup errors: the run could not start. Failures of the target during a run are data.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Emulator(#[from] emulator::StartError),
    #[error(transparent)]
    X509(#[from] crate::x509::X509Error),
    #[error("cannot resolve target host {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("target {address} is unreachable: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("invalid server name {0:?} for TLS")]
    ServerName(String),
    #[error(
        "the plan keeps up to {in_flight} devices in flight, needing {needed} open files, but the open-files limit is \
         {limit}: lower arrival.concurrency or run.max_in_flight, or raise the hard limit (ulimit -Hn)"
    )]
    Descriptors { in_flight: u64, needed: u64, limit: u64 },
}

/// Descriptors a run needs apart from its devices' sockets: runtime, stdio, output files.
const RESERVED_DESCRIPTORS: u64 = 64;

/// How many devices may be in flight under the open-files limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorBudget {
    /// The open-files limit the run has (after raising the soft limit to the hard one).
    pub limit: u64,
    /// The in-flight cap the run applies: the scenario's, or one the limit imposes.
    pub in_flight_cap: Option<u64>,
    /// Said when the limit imposes a cap the scenario did not ask for.
    pub note: Option<String>,
}

/// Checks a plan against the open-files `limit`: refuses one whose explicit concurrency cannot
/// fit, and caps an open plan that could otherwise run out of descriptors (its late starts then
/// show it).
pub fn descriptor_budget(plan: &Plan, limit: u64) -> Result<DescriptorBudget, RunError> {
    // The embedded emulator holds the server side of every connection in the same process.
    let per_device = if matches!(plan.target, TargetPlan::Embedded { .. }) { 2 } else { 1 };
    let available = limit.saturating_sub(RESERVED_DESCRIPTORS) / per_device;
    let explicit = match plan.load {
        Load::Closed { concurrency } => Some(plan.max_in_flight.map_or(concurrency, |cap| cap.min(concurrency))),
        Load::Open(_) => plan.max_in_flight,
    };
    match explicit.map(|n| n.min(plan.stop.devices)) {
        Some(in_flight) if in_flight > available => {
            Err(RunError::Descriptors { in_flight, needed: in_flight * per_device + RESERVED_DESCRIPTORS, limit })
        }
        Some(_) => Ok(DescriptorBudget { limit, in_flight_cap: plan.max_in_flight, note: None }),
        None if plan.stop.devices <= available => Ok(DescriptorBudget { limit, in_flight_cap: None, note: None }),
        None => Ok(DescriptorBudget {
            limit,
            in_flight_cap: Some(available),
            note: Some(format!(
                "the open-files limit of {limit} allows at most {available} devices in flight; starts beyond that \
                 wait for a free slot and count as late"
            )),
        }),
    }
}

/// Raises the open-files soft limit to the hard limit; returns the limit in force.
pub fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024),
    }
}

/// A progress snapshot, for live output.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub elapsed: Duration,
    pub started: u64,
    pub assigned: u64,
    pub failed: u64,
    pub in_flight: u64,
    pub late_starts: u64,
    /// `assigned` p99 over the whole run so far.
    pub assigned_p99_us: u64,
    /// What happened since the previous tick.
    pub interval: IntervalStats,
}

/// A snapshot each second: progress plus failures by kind so far.
#[derive(Debug, Clone)]
pub struct Tick {
    pub progress: Progress,
    pub failures: BTreeMap<String, u64>,
    /// Set once when the run begins draining after an interrupt.
    pub draining: bool,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Every planned start happened and every device finished.
    Complete,
    /// Interrupted: arrivals stopped and in-flight devices drained (or were aborted).
    Interrupted,
    /// `max_duration_seconds` passed.
    TimedOut,
}

/// Whether the generator kept up with its plan: when it did not, its numbers describe the
/// generator, not the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validity {
    pub valid: bool,
    /// Why the run is invalid (empty when valid).
    pub reasons: Vec<String>,
    pub schedule_lag_p99_us: u64,
    /// How late a 10 ms timer on the runtime fired, p99: high values mean the runtime (CPU) was
    /// saturated.
    pub runtime_stall_p99_us: u64,
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    pub schema: String,
    pub scenario: ScenarioInfo,
    pub target: TargetInfo,
    pub host: HostInfo,
    pub started_at: String,
    pub duration_seconds: f64,
    /// True when the run ended early (interrupt or `max_duration_seconds`).
    pub partial: bool,
    pub validity: Validity,
    /// The open-files limit the run had.
    pub open_files_limit: u64,
    /// Things the run decided that the user should know (e.g. an in-flight cap from the limit).
    pub notes: Vec<String>,
    #[serde(flatten)]
    pub results: Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulator: Option<EmulatorCounts>,
}

impl RunSummary {
    /// Exit status of `dpsbench run`: 0 when every device was assigned, else 1.
    pub fn all_assigned(&self) -> bool {
        !self.partial && self.results.devices.assigned == self.results.devices.total
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: String,
    /// Most devices the run may start.
    pub devices: u64,
    /// The load model, e.g. `constant 200/s`.
    pub arrival: String,
    /// Arrivals stop after this many seconds, if set.
    pub duration_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetInfo {
    pub kind: String,
    pub address: String,
    pub id_scope: String,
}

/// The machine a run was measured on, so figures can be compared honestly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInfo {
    pub hostname: String,
    pub cpus: usize,
    pub os: String,
    pub dpsbench_version: String,
}

impl HostInfo {
    pub fn current() -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Self {
            hostname,
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            dpsbench_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// What the embedded emulator served during the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmulatorCounts {
    pub connections: u64,
    pub connects_refused: u64,
    pub registrations: u64,
    pub polls: u64,
    pub throttled: u64,
}

impl EmulatorCounts {
    fn of(service: &Service) -> Self {
        let s = &service.stats;
        Self {
            connections: ServiceStats::get(&s.connections),
            connects_refused: ServiceStats::get(&s.connects_refused),
            registrations: ServiceStats::get(&s.registrations),
            polls: ServiceStats::get(&s.polls),
            throttled: ServiceStats::get(&s.throttled),
        }
    }
}

/// A prepared target: where devices connect, and the emulator when it is embedded.
struct PreparedTarget {
    target: Target,
    /// What devices trust, for X.509 devices' own configs.
    roots: Arc<rustls::RootCertStore>,
    kind: &'static str,
    emulator: Option<emulator::EmulatorHandle>,
}

async fn prepare_target(plan: &Plan) -> Result<PreparedTarget, RunError> {
    match &plan.target {
        TargetPlan::Embedded { hubs, retry_after_seconds, assign_delay, quota, transport, echo_payload } => {
            let mut config = ServiceConfig::single_group(plan.id_scope.clone(), hubs.clone(), plan.group_key.clone());
            config.individuals = plan
                .individual_enrollments()
                .into_iter()
                .map(|(registration_id, primary)| IndividualEnrollment { registration_id, primary, secondary: None })
                .collect();
            config.echo_payload = *echo_payload;
            config.retry_after_seconds = *retry_after_seconds;
            config.assign_delay = *assign_delay;
            config.quota = *quota;
            if let Some(x509) = &plan.x509 {
                let root = x509.ca_dir.join("root.pem");
                let pem = std::fs::read_to_string(&root)
                    .map_err(|source| crate::x509::X509Error::Read { path: root.clone(), source })?;
                let (subject, der) = crate::x509::subject_of(&pem, &root)?;
                config.x509_groups.push(crate::emulator::config::X509Group { name: "x509".into(), subject });
                config.client_trust.cas.push(der);
            }
            // The emulator enforces TLS 1.2, as DPS does, unless the scenario opted into 1.3.
            let accepts = match plan.tls.versions {
                TlsVersions::Tls12Only => TlsVersions::Tls12Only,
                _ => TlsVersions::Tls12And13,
            };
            let mut emulator = emulator::start_on_loopback_with(config, accepts.into())?;
            let address = match transport {
                Transport::Mqtt => emulator.handle.address,
                Transport::WebSocket { .. } => {
                    let listener =
                        emulator::bind(SocketAddr::from(([127, 0, 0, 1], 0))).map_err(emulator::StartError::Io)?;
                    emulator.handle.serve_websocket(listener).map_err(emulator::StartError::Io)?
                }
            };
            let roots = Arc::new(emulator.roots);
            let target = Target {
                address,
                server_name: "localhost".try_into().expect("localhost is a valid DNS name"),
                tls: tls::client_config(roots.clone(), plan.tls.clone())?,
                transport: transport.clone(),
            };
            Ok(PreparedTarget { target, roots, kind: "embedded", emulator: Some(emulator.handle) })
        }
        TargetPlan::Dps { host, port, ca, server_name, transport, .. } => {
            let address = resolve(host, *port).await?;
            preflight(address).await?;
            let roots = match ca {
                Some((pem, path)) => tls::roots_from_pem(pem, path)?,
                None => tls::public_roots(),
            };
            let server_name = rustls_pki_types::ServerName::try_from(server_name.clone())
                .map_err(|_| RunError::ServerName(server_name.clone()))?;
            let roots = Arc::new(roots);
            let tls = tls::client_config(roots.clone(), plan.tls.clone())?;
            let target = Target { address, server_name, tls, transport: transport.clone() };
            Ok(PreparedTarget { target, roots, kind: "dps", emulator: None })
        }
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, RunError> {
    let resolve_error = |reason: String| RunError::Resolve { host: host.to_string(), reason };
    let mut addresses = tokio::net::lookup_host((host, port)).await.map_err(|e| resolve_error(e.to_string()))?;
    addresses.next().ok_or_else(|| resolve_error("no address".into()))
}

/// One TCP connect before the run, so an unreachable target is a setup error, not N failures.
async fn preflight(address: SocketAddr) -> Result<(), RunError> {
    let unreachable = |reason: String| RunError::Unreachable { address: address.to_string(), reason };
    match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable("no answer within 5 s".into())),
    }
}

/// Builds every device's identity and SAS token before the clock starts.
fn prepare_devices(plan: &Plan) -> Vec<DeviceIdentity> {
    let expiry = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
        + plan.max_duration.as_secs()
        + 3600;
    (0..plan.stop.devices)
        .map(|n| {
            let registration_id = plan.registration_id(n);
            let personality = plan.personalities.of(n);
            let device_key = plan.device_key(n, &registration_id);
            let password =
                SasToken::build(&plan.id_scope, &registration_id, &device_key, expiry, personality.sas_style());
            let payload = plan.payload.as_ref().map(|template| template.render(&registration_id, n));
            DeviceIdentity {
                register_body: personality.register_body(&registration_id, payload.as_ref()),
                registration_id,
                id_scope: plan.id_scope.clone(),
                password: Some(password),
                source_address: match plan.source_addresses.len() {
                    0 => None,
                    pool => Some(plan.source_addresses[(n % pool as u64) as usize]),
                },
                personality,
                payload,
                client_tls: None,
            }
        })
        .collect()
}

/// Gives every X.509 device its certificate (loaded from the cache, or minted and cached) and
/// its own TLS config presenting it, before the clock starts. Devices then send no password.
fn attach_certificates(
    plan: &Plan,
    x509: &crate::scenario::X509Plan,
    roots: &Arc<rustls::RootCertStore>,
    devices: &mut [DeviceIdentity],
) -> Result<(), RunError> {
    let ca = crate::x509::CertificateAuthority::load(&x509.ca_dir)?;
    for device in devices {
        let certificate = crate::x509::DeviceCertificate::load_or_mint(&ca, &x509.cache, &device.registration_id)?;
        device.client_tls = Some(tls::client_config_with_certificate(
            roots.clone(),
            plan.tls.clone(),
            certificate.chain.clone(),
            certificate.key(),
        )?);
        device.password = None;
    }
    Ok(())
}

/// The flow settings of each personality the plan uses.
fn personality_settings(plan: &Plan) -> BTreeMap<Personality, Arc<FlowSettings>> {
    plan.personalities.personalities().map(|p| (p, Arc::new(p.settings(&plan.flow)))).collect()
}

/// Runs the plan until every device finished or `max_duration` passed. Each change of
/// `interrupts` counts one interrupt: the first stops arrivals and drains in-flight devices for
/// up to `drain`, the second stops at once. `on_tick` is called about once a second.
pub async fn run(
    plan: &Plan,
    interrupts: watch::Receiver<u32>,
    mut on_tick: impl FnMut(&Tick),
) -> Result<RunSummary, RunError> {
    let budget = descriptor_budget(plan, raise_open_files_limit())?;
    let prepared = prepare_target(plan).await?;
    let mut devices = prepare_devices(plan);
    if let Some(x509) = &plan.x509 {
        attach_certificates(plan, x509, &prepared.roots, &mut devices)?;
    }
    let settings = personality_settings(plan);
    let started_at = crate::messages::format_timestamp(SystemTime::now());

    let stall = StallMonitor::start();
    let (metrics, started, ending, elapsed) =
        schedule(plan, budget.in_flight_cap, &prepared.target, settings, devices, interrupts, &mut on_tick).await;
    let runtime_stall_p99_us = stall.stop().await;
    let results = metrics.summary(started);
    let validity = validity(plan, &results, runtime_stall_p99_us);

    let emulator = match prepared.emulator {
        Some(handle) => {
            let counts = EmulatorCounts::of(&handle.service);
            handle.stop().await;
            Some(counts)
        }
        None => None,
    };
    Ok(RunSummary {
        schema: SUMMARY_SCHEMA.into(),
        scenario: ScenarioInfo {
            name: plan.name.clone(),
            file: plan.file.display().to_string(),
            devices: plan.stop.devices,
            arrival: plan.load.describe(),
            duration_seconds: plan.stop.duration.map(|d| d.as_secs_f64()),
        },
        target: TargetInfo {
            kind: prepared.kind.into(),
            address: prepared.target.address.to_string(),
            id_scope: plan.id_scope.to_string(),
        },
        host: HostInfo::current(),
        started_at,
        duration_seconds: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        partial: ending != Ending::Complete,
        validity,
        open_files_limit: budget.limit,
        notes: budget.note.into_iter().collect(),
        results,
        emulator,
    })
}

/// Tokio's timer rounds a deadline up to the next 1 ms tick. Sleeping until half a tick before
/// a start and starting what is due within half a tick centres that rounding on the intended
/// instant (at most 0.5 ms early, which makes measured latencies longer, never shorter).
const START_TOLERANCE: Duration = Duration::from_micros(500);

/// Starts devices as the load model says until the stop condition, and collects their reports.
/// Returns the metrics, the number of devices started, how the run ended, and its length.
async fn schedule(
    plan: &Plan,
    in_flight_cap: Option<u64>,
    target: &Target,
    settings: BTreeMap<Personality, Arc<FlowSettings>>,
    devices: Vec<DeviceIdentity>,
    mut interrupts: watch::Receiver<u32>,
    on_tick: &mut impl FnMut(&Tick),
) -> (Metrics, u64, Ending, Duration) {
    let mut devices = devices.into_iter();
    let mut metrics = Metrics::new();
    let mut tasks = JoinSet::new();
    let begin: Instant = now() + Duration::from_millis(10);
    let mut deadline = tokio::time::Instant::from_std(begin + plan.max_duration);
    let arrivals_end = plan.stop.duration.map(|d| begin + d);
    let mut starts = Starts::new(&plan.load, begin);
    let in_flight_cap = in_flight_cap.unwrap_or(u64::MAX);
    let mut started = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ending = Ending::Complete;
    let mut draining = false;
    let (abort, aborted) = watch::channel(false);
    let mut interrupts_open = true;
    loop {
        // Start every device already due. The timer (1 ms resolution) is only for future
        // starts: going through it for each due start would cap starts near one per tick.
        let next_start = loop {
            let in_flight = tasks.len() as u64;
            let next = (started < plan.stop.devices && !draining)
                .then(|| starts.next_at(now(), in_flight))
                .flatten()
                .filter(|at| arrivals_end.is_none_or(|end| *at < end));
            match next {
                Some(intended) if intended <= now() + START_TOLERANCE && in_flight < in_flight_cap => {
                    let identity = devices.next().expect("one identity was prepared per device");
                    let settings = settings[&identity.personality].clone();
                    let (target, aborted) = (target.clone(), aborted.clone());
                    tasks.spawn(async move { run_device(&target, settings, identity, intended, aborted).await });
                    starts.started();
                    started += 1;
                }
                next => break next,
            }
        };
        if next_start.is_none() && tasks.is_empty() {
            break;
        }
        // A start that finds no free slot waits for one: it then runs late, and its lag says by
        // how much.
        let may_start = next_start.is_some() && (tasks.len() as u64) < in_flight_cap;
        tokio::select! {
            () = sleep_until(tokio::time::Instant::from_std(next_start.unwrap_or(begin).checked_sub(START_TOLERANCE).unwrap_or(begin))), if may_start => {
                // Due now: the loop's top starts it.
            }
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(report) = joined {
                    metrics.record(&report);
                }
            }
            _ = ticker.tick() => {
                let tick = tick(&mut metrics, begin, started, tasks.len() as u64, draining);
                on_tick(&tick);
            }
            changed = interrupts.changed(), if interrupts_open => {
                if changed.is_err() {
                    // The sender is gone: no interrupt can come any more.
                    interrupts_open = false;
                    continue;
                }
                let count = *interrupts.borrow_and_update();
                ending = Ending::Interrupted;
                if count >= 2 || draining {
                    break;
                }
                // First interrupt: no more arrivals; in-flight devices get the drain period.
                draining = true;
                deadline = deadline.min(tokio::time::Instant::now() + plan.drain);
                let tick = tick(&mut metrics, begin, started, tasks.len() as u64, draining);
                on_tick(&tick);
            }
            () = sleep_until(deadline) => {
                if ending == Ending::Complete {
                    ending = Ending::TimedOut;
                }
                break;
            }
        }
    }
    // Devices still in flight stop where they are and report as aborted, with the phases they
    // completed; any that do not answer within a second are dropped (not finished).
    let _ = abort.send(true);
    let collect = async {
        while let Some(joined) = tasks.join_next().await {
            if let Ok(report) = joined {
                metrics.record(&report);
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), collect).await;
    tasks.shutdown().await;
    let last = tick(&mut metrics, begin, started, 0, draining);
    on_tick(&last);
    (metrics, started, ending, now().saturating_duration_since(begin))
}

fn tick(metrics: &mut Metrics, begin: Instant, started: u64, in_flight: u64, draining: bool) -> Tick {
    Tick {
        progress: Progress {
            elapsed: now().saturating_duration_since(begin),
            started,
            assigned: metrics.assigned(),
            failed: metrics.failed(),
            in_flight,
            late_starts: metrics.late_starts(),
            assigned_p99_us: metrics.p99_us("assigned"),
            interval: metrics.take_interval(),
        },
        failures: metrics.failures().clone(),
        draining,
    }
}

/// Judges whether the generator kept its plan.
fn validity(plan: &Plan, results: &Summary, runtime_stall_p99_us: u64) -> Validity {
    let schedule_lag_p99_us = results.phases.get("schedule_lag").map(|p| p.p99_us).unwrap_or(0);
    let mut reasons = Vec::new();
    let bound = plan.max_schedule_lag_p99.as_micros() as u64;
    if matches!(plan.load, Load::Open(_)) && schedule_lag_p99_us > bound {
        reasons.push(format!(
            "schedule lag p99 {} us exceeds the bound of {} us: the generator could not keep the arrival plan \
             (raise run.max_in_flight, lower the rate, or add generator capacity)",
            schedule_lag_p99_us, bound
        ));
    }
    if results.early_requests > 0 && plan.flow.retry.profile == RetryProfile::Dpsbench {
        reasons.push(format!(
            "{} requests were sent before their retry-after had passed (a harness bug)",
            results.early_requests
        ));
    }
    Validity { valid: reasons.is_empty(), reasons, schedule_lag_p99_us, runtime_stall_p99_us }
}

/// Measures runtime saturation: how late a 10 ms timer fires while the run goes on.
struct StallMonitor {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Histogram<u64>>,
}

impl StallMonitor {
    const PERIOD: Duration = Duration::from_millis(10);

    fn start() -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut stalls = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
            loop {
                let due = tokio::time::Instant::now() + Self::PERIOD;
                tokio::select! {
                    () = sleep_until(due) => {
                        let late = tokio::time::Instant::now().saturating_duration_since(due);
                        stalls.saturating_record((late.as_micros() as u64).max(1));
                    }
                    _ = stopped.changed() => return stalls,
                }
            }
        });
        Self { stop, task }
    }

    /// Stops the monitor; returns the stall p99 in microseconds.
    async fn stop(self) -> u64 {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(stalls) if !stalls.is_empty() => stalls.value_at_quantile(0.99),
            _ => 0,
        }
    }
}

/// The *when* of a run: the intended start of the next device under the load model.
enum Starts {
    /// Open: the arrival plan alone decides, whatever is in flight.
    Open { begin: Instant, arrivals: Box<Peekable<Arrivals>> },
    /// Closed: a device starts as soon as fewer than `concurrency` are in flight.
    Closed { concurrency: u64 },
}

impl Starts {
    fn new(load: &Load, begin: Instant) -> Self {
        match load {
            Load::Open(plan) => Starts::Open { begin, arrivals: Box::new(plan.arrivals().peekable()) },
            Load::Closed { concurrency } => Starts::Closed { concurrency: *concurrency },
        }
    }

    /// When the next device should start, or `None` when no start is due (plan exhausted, or
    /// every closed-model slot taken).
    fn next_at(&mut self, now: Instant, in_flight: u64) -> Option<Instant> {
        match self {
            Starts::Open { begin, arrivals } => arrivals.peek().map(|offset| *begin + *offset),
            Starts::Closed { concurrency } => (in_flight < *concurrency).then_some(now),
        }
    }

    fn started(&mut self) {
        if let Starts::Open { arrivals, .. } = self {
            arrivals.next();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ScenarioFile;
    use crate::tls::ServerIdentity;

    fn plan(target: &str, rest: &str) -> Plan {
        let text = format!("name = \"t\"\n[target]\n{target}\n{rest}");
        let file: ScenarioFile = toml::from_str(&text).unwrap();
        Plan::resolve(file, std::path::Path::new("t.toml"), &|_| Some(SymmetricKey::random().to_base64())).unwrap()
    }

    const EMBEDDED: &str = "kind = \"embedded\"";

    #[test]
    fn a_closed_plan_that_cannot_fit_is_refused_up_front() {
        let closed = plan(EMBEDDED, "[devices]\ncount = 50000\n[arrival]\nmodel = \"closed\"\nconcurrency = 20000\n");
        let err = descriptor_budget(&closed, 20_000).unwrap_err();
        assert!(matches!(err, RunError::Descriptors { in_flight: 20000, needed: 40064, limit: 20000 }), "{err}");
        assert!(err.to_string().contains("open-files limit is 20000"));
        let fits = plan(EMBEDDED, "[devices]\ncount = 50000\n[arrival]\nmodel = \"closed\"\nconcurrency = 9000\n");
        assert_eq!(descriptor_budget(&fits, 20_000).unwrap().in_flight_cap, None);
    }

    #[test]
    fn an_open_plan_larger_than_the_limit_is_capped_and_says_so() {
        let open = plan(EMBEDDED, "[devices]\ncount = 100000\n[arrival]\nrate = 1000\n");
        let budget = descriptor_budget(&open, 20_000).unwrap();
        assert_eq!(budget.in_flight_cap, Some(9_968));
        assert!(budget.note.unwrap().contains("at most 9968 devices in flight"));
        let small = plan(EMBEDDED, "[devices]\ncount = 5000\n[arrival]\nrate = 1000\n");
        assert_eq!(
            descriptor_budget(&small, 20_000).unwrap(),
            DescriptorBudget { limit: 20_000, in_flight_cap: None, note: None }
        );
    }

    #[test]
    fn an_external_target_needs_one_descriptor_per_device() {
        let dir = std::env::temp_dir().join(format!("dpsbench-budget-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ServerIdentity::generate(&[]).unwrap().ca_pem()).unwrap();
        let target =
            format!("kind = \"dps\"\nhost = \"127.0.0.1\"\nid_scope = \"0ne1\"\nca_certificate = \"{}\"", ca.display());
        let held = plan(&target, "[devices]\ncount = 19900\ngroup_key_env = \"K\"\n[arrival]\nrate = 1000\n");
        assert_eq!(descriptor_budget(&held, 20_000).unwrap().in_flight_cap, None);
        let capped = plan(
            &target,
            "[devices]\ncount = 19900\ngroup_key_env = \"K\"\n[arrival]\nrate = 1000\n[run]\nmax_in_flight = 19950\n",
        );
        assert!(descriptor_budget(&capped, 20_000).is_ok(), "the cap is bounded by the device count");
    }
}
