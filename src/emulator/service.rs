//! The DPS service logic of the emulator, sans IO: what DPS answers to each packet. No sockets
//! and no clock reads: `now` and `wall` are inputs; which lab faults strike is `admission`'s
//! decision, and what observes a session (the judge) hears its events through `observe`.
//!
//! [`Service`] is shared by every connection (enrollments, registration records, operations,
//! quotas, counters); [`Session`] (in `session`) is one connection's state. `Session::handle`
//! takes a decoded packet plus `now` (monotonic, for delays and quotas) and `wall` (for
//! timestamps), and returns the packets to send, in order, and whether to close; its replies
//! are typed ([`Reply`]), and an operation stays pending until an allocation completes it. It follows every
//! "emulator must" of `docs/dps-mqtt.md`: SessionPresent always 0, QoS granted `min(requested, 1)`,
//! 0x80 for other filters, PUBACK before the reply, `$rid` echoed first, `retry-after` on every
//! 202 and 429. Its randomness (operation IDs, etags) comes from an injected RNG.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use sha2::{Digest, Sha256};

use super::config::{QuotaConfig, ServiceConfig};
use super::faults::Injector;
use super::issuance::{Enrollment, Issued};
use super::observe::Observer;
use crate::credentials::{IdScope, ParsedSas, RegistrationId, SymmetricKey};
use crate::messages::{self, OperationStatus, RegistrationOperationStatus, RegistrationState, Substatus};
use crate::x509::PeerCertificate;

pub use super::activity::ServiceStats;

#[derive(Debug, Clone)]
struct Record {
    registration_id: String,
    hub: String,
    created: String,
    last_updated: String,
    etag: String,
    /// The custom allocation payload of the last registration (kept when echoing).
    payload: Option<serde_json::Value>,
    /// `registrationState.x509` for X.509 devices.
    x509: Option<serde_json::Value>,
    /// The operation of the latest registration: a new one supersedes it.
    operation_id: String,
}

#[derive(Debug, Default)]
struct Registry {
    records: HashMap<String, Record>,
    operations: HashMap<String, Operation>,
    registers_since_prune: u32,
    /// Devices whose subscription a deviating emulator keeps across reconnects.
    kept_subscriptions: std::collections::HashSet<String>,
    /// Each device's recent polls, for the per-device poll limit (at most `polls` kept).
    recent_polls: HashMap<String, VecDeque<Instant>>,
}

/// How long an operation stays pollable after its assignment.
const OPERATION_RETENTION: Duration = Duration::from_secs(600);

/// A token bucket refilled continuously at `per_minute`, full at the start. Public so that the
/// dry run's forecast (`scenario::forecast`) runs the very model the emulator answers by.
#[derive(Debug)]
pub struct Bucket {
    per_minute: f64,
    tokens: f64,
    updated: Option<Instant>,
}

impl Bucket {
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute: per_minute.into(), tokens: per_minute.into(), updated: None }
    }

    /// Takes a token, or says how many whole seconds until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), u32> {
        if let Some(updated) = self.updated {
            let refill = now.saturating_duration_since(updated).as_secs_f64() * self.per_minute / 60.0;
            self.tokens = (self.tokens + refill).min(self.per_minute);
        }
        self.updated = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let seconds = ((1.0 - self.tokens) * 60.0 / self.per_minute).ceil();
            Err((seconds as u32).clamp(1, 300))
        }
    }
}

struct Quotas {
    registrations: Mutex<Bucket>,
    operations: Mutex<Bucket>,
}

impl Quotas {
    fn new(config: QuotaConfig) -> Self {
        Self {
            registrations: Mutex::new(Bucket::new(config.registrations_per_minute)),
            operations: Mutex::new(Bucket::new(config.operations_per_minute)),
        }
    }
}

/// A connection's hold on its client ID among the live connections: when another connection
/// claims the same ID, `taken_over` is notified and this one must close (MQTT 3.1.1 §3.1.4).
#[derive(Debug)]
pub struct Claim {
    key: String,
    generation: u64,
    pub taken_over: Arc<tokio::sync::Notify>,
}

/// The live connections, by client ID: a notification handle each, no IO.
#[derive(Debug, Default)]
struct LiveConnections {
    next_generation: u64,
    by_client: HashMap<String, (u64, Arc<tokio::sync::Notify>)>,
}

/// The shared state of one emulated DPS instance.
pub struct Service {
    config: ServiceConfig,
    /// The 16-hex-digit middle part of this instance's operation IDs.
    instance: u64,
    registry: Mutex<Registry>,
    live: Mutex<LiveConnections>,
    quotas: Option<Quotas>,
    /// Source of operation IDs, etags and tracking IDs: seeded from the OS, or by a test.
    rng: Mutex<SmallRng>,
    pub stats: ServiceStats,
    /// Faults on demand, drawn from their own seeded generator, and their counts.
    pub faults: Injector,
    /// What observes every session (the client checks' judge, under `--client-report`).
    observer: Option<Arc<dyn Observer>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Service {
    pub fn new(config: ServiceConfig) -> Self {
        Self::with_rng(config, SmallRng::from_os_rng())
    }

    /// A service drawing its random parts from `rng`: the same seed gives the same instance,
    /// operation IDs and etags for the same requests.
    pub fn with_rng(config: ServiceConfig, mut rng: SmallRng) -> Self {
        let quotas = config.quota.map(Quotas::new);
        let instance = rng.random();
        Self {
            faults: Injector::new(config.faults.clone()),
            config,
            instance,
            registry: Mutex::default(),
            live: Mutex::default(),
            quotas,
            rng: Mutex::new(rng),
            stats: ServiceStats::default(),
            observer: None,
        }
    }

    /// This service, reporting every session's events to `observer` (a judge of its clients).
    pub fn observed_by(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// What observes every session, if anything does.
    pub fn observer(&self) -> Option<&Arc<dyn Observer>> {
        self.observer.as_ref()
    }

    /// The operation of the latest registration of the device `canonical`.
    fn latest_operation(&self, canonical: &str) -> Option<String> {
        self.lock().records.get(canonical).map(|record| record.operation_id.clone())
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The hub DPS's evenly weighted policy picks: a stable hash of the registration ID.
    pub fn hub_for(&self, canonical_id: &str) -> &str {
        let digest = Sha256::digest(canonical_id.as_bytes());
        let hash = u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"));
        let index = (hash % self.config.hubs.len() as u64) as usize;
        &self.config.hubs[index]
    }

    /// Number of devices with a registration record.
    pub fn registered_devices(&self) -> usize {
        self.lock().records.len()
    }

    /// Draws from the service's RNG.
    fn random<T>(&self, draw: impl FnOnce(&mut SmallRng) -> T) -> T {
        draw(&mut self.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the maps half-updated in a way later
        // requests would misread, so a poisoned lock is still usable.
        self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn throttle(&self, bucket: impl Fn(&Quotas) -> &Mutex<Bucket>, now: Instant) -> Result<(), u32> {
        match &self.quotas {
            None => Ok(()),
            Some(quotas) => bucket(quotas).lock().unwrap_or_else(|p| p.into_inner()).take(now),
        }
    }

    /// Claims `client_key` (a [`Session::client_key`]) for a connection that was just accepted;
    /// the connection that held it so far is told to close, as a second CONNECT with the same
    /// client ID closes the first (MQTT 3.1.1 §3.1.4).
    pub fn claim_client(&self, client_key: String) -> Claim {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.next_generation += 1;
        let generation = live.next_generation;
        let taken_over = Arc::new(tokio::sync::Notify::new());
        if let Some((_, previous)) = live.by_client.insert(client_key.clone(), (generation, taken_over.clone())) {
            // notify_one keeps the permit should the old connection not be waiting right now.
            previous.notify_one();
        }
        Claim { key: client_key, generation, taken_over }
    }

    /// Lets go of `claim` when its connection ends (unless another connection took it over).
    pub fn release_client(&self, claim: &Claim) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.by_client.get(&claim.key).is_some_and(|(generation, _)| *generation == claim.generation) {
            live.by_client.remove(&claim.key);
        }
    }

    /// Number of connections holding a client ID.
    pub fn live_clients(&self) -> usize {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).by_client.len()
    }

    /// Counts a poll by `canonical` against the per-device limit, or says in how many whole
    /// seconds (1-300) the device may poll again.
    fn poll_limit(&self, canonical: &str, now: Instant) -> Result<(), u32> {
        let limit = self.config.poll_limit;
        if !limit.enforced(self.config.retry_after_seconds) {
            return Ok(());
        }
        let window = Duration::from_secs(limit.window_seconds.into());
        let mut registry = self.lock();
        let polls = registry.recent_polls.entry(canonical.to_string()).or_default();
        while polls.front().is_some_and(|&at| now.saturating_duration_since(at) >= window) {
            polls.pop_front();
        }
        if polls.len() < limit.polls as usize {
            polls.push_back(now);
            return Ok(());
        }
        let oldest = *polls.front().expect("a full window holds at least one poll");
        let wait = (oldest + window).saturating_duration_since(now).as_secs_f64().ceil();
        Err((wait as u32).clamp(1, 300))
    }

    /// Starts a registration; returns its operation ID. `issued` is what became of its CSR
    /// and how long the CA took.
    fn register(
        &self,
        registration_id: &RegistrationId,
        payload: Option<serde_json::Value>,
        x509: Option<serde_json::Value>,
        issued: Option<(Issued, Duration)>,
        now: Instant,
        wall: SystemTime,
    ) -> String {
        let payload = payload.filter(|_| self.config.echo_payload);
        let canonical = registration_id.canonical();
        let (operation_id, etag) = self.random(|rng| (messages::operation_id(self.instance, rng), messages::etag(rng)));
        let (issued, issue_delay) = issued.map_or((None, Duration::ZERO), |(issued, delay)| (Some(issued), delay));
        let ready_at = now + self.config.assign_delay + issue_delay;
        let assigned_wall = wall + self.config.assign_delay + issue_delay;
        let hub = self.hub_for(&canonical).to_string();
        let timestamp = crate::timestamp::rfc3339(assigned_wall);
        let mut registry = self.lock();
        registry.registers_since_prune += 1;
        if registry.registers_since_prune >= 4096 {
            registry.registers_since_prune = 0;
            registry.operations.retain(|_, op| op.since + OPERATION_RETENTION > now);
            registry.recent_polls.retain(|_, polls| polls.back().is_some_and(|&at| at + OPERATION_RETENTION > now));
        }
        // One live operation per device: registering again supersedes the previous one, so a
        // fleet that re-provisions keeps the registry the same size.
        if let Some(superseded) = registry.records.get(&canonical).map(|record| record.operation_id.clone()) {
            registry.operations.remove(&superseded);
        }
        registry
            .records
            .entry(canonical.clone())
            .and_modify(|record| {
                // A second registration of the same device keeps its hub, ID and creation time.
                record.operation_id = operation_id.clone();
                record.last_updated = timestamp.clone();
                record.etag = etag.clone();
                record.payload = payload.clone();
                record.x509 = x509.clone();
            })
            .or_insert_with(|| Record {
                registration_id: registration_id.as_str().to_string(),
                hub,
                created: timestamp.clone(),
                last_updated: timestamp,
                etag,
                payload,
                x509,
                operation_id: operation_id.clone(),
            });
        registry.operations.insert(operation_id.clone(), Operation::pending(canonical, ready_at, issued));
        operation_id
    }

    /// The status of an operation, if it exists and belongs to this device.
    fn operation_status(
        &self,
        registration_id: &RegistrationId,
        operation_id: &str,
        now: Instant,
    ) -> Option<RegistrationOperationStatus> {
        let canonical = registration_id.canonical();
        let mut registry = self.lock();
        let operation = registry.operations.get_mut(operation_id).filter(|op| op.device == canonical)?;
        operation.fall_due(now);
        let backwards = self.config.deviations.status_backwards && operation.reported_final;
        let done = operation.completion.is_some();
        operation.reported_final = done;
        let issued = operation.issued.clone();
        if !done || backwards {
            return Some(RegistrationOperationStatus {
                operation_id: operation_id.to_string(),
                status: OperationStatus::Assigning,
                registration_state: Some(RegistrationState {
                    registration_id: Some(registration_id.as_str().to_string()),
                    status: Some(OperationStatus::Assigning),
                    ..Default::default()
                }),
            });
        }
        let record = registry.records.get(&canonical)?;
        let mut status = RegistrationOperationStatus {
            operation_id: operation_id.to_string(),
            status: OperationStatus::Assigned,
            registration_state: Some(RegistrationState {
                x509: record.x509.clone(),
                registration_id: Some(record.registration_id.clone()),
                created_date_time_utc: Some(record.created.clone()),
                assigned_hub: Some(record.hub.clone()),
                device_id: Some(record.registration_id.clone()),
                status: Some(OperationStatus::Assigned),
                substatus: Some(Substatus::InitialAssignment),
                last_updated_date_time_utc: Some(record.last_updated.clone()),
                etag: Some(record.etag.clone()),
                payload: record.payload.clone(),
                ..Default::default()
            }),
        };
        if let Some(issued) = &issued {
            super::issuance::final_status(&mut status, issued, self.config.deviations.omit_issued_chain);
        }
        self.config.deviations.final_status(&mut status);
        Some(status)
    }

    /// Ends the pending operation `operation_id` as `completion` says: the event an allocation
    /// that answers later (a webhook's) completes it by. False when there is no such operation
    /// or it has ended already.
    pub fn complete(&self, operation_id: &str, completion: Completion) -> bool {
        self.lock().operations.get_mut(operation_id).is_some_and(|operation| operation.complete(completion))
    }

    /// Keeps the response subscription of a device that connected with CleanSession 0, as only
    /// a DPS deviating with `keep_subscriptions` does (DPS keeps no sessions).
    fn keep_subscription(&self, canonical: String) {
        if self.config.deviations.keep_subscriptions {
            self.lock().kept_subscriptions.insert(canonical);
        }
    }

    /// Whether a device reconnecting with CleanSession 0 finds its response subscription kept.
    fn kept_subscription(&self, canonical: &str) -> bool {
        self.config.deviations.keep_subscriptions && self.lock().kept_subscriptions.contains(canonical)
    }
}

/// The enrollments, as admission asks them whether a device's credentials authenticate.
impl super::admission::Credentials for Service {
    /// Checks a SAS token (parsed from the password) for `registration_id` against its
    /// individual enrollment, else against every group's derived keys: the enrollment it
    /// authenticates through, if any.
    fn token(
        &self,
        scope: &IdScope,
        registration_id: &RegistrationId,
        token: Option<&ParsedSas<'_>>,
        now_unix: u64,
    ) -> Option<Enrollment> {
        let parsed = token?;
        let canonical = registration_id.canonical();
        if let Some(individual) = self.config.individuals.iter().find(|i| i.registration_id.canonical() == canonical) {
            let keys = std::iter::once(&individual.primary).chain(individual.secondary.as_ref());
            return parsed
                .verify(scope, registration_id, now_unix, keys)
                .is_ok()
                .then_some(Enrollment::Individual(canonical));
        }
        // Registration IDs are case-insensitive: one registration, keyed by the lower-case ID.
        // Which casing DPS derives a group device key from is not documented, so a key derived
        // from the ID as the device sends it and one derived from its lower-case form are both
        // accepted.
        let lower = RegistrationId::new(canonical.clone()).ok().filter(|lower| lower != registration_id);
        let group = self.config.groups.iter().find(|group| {
            let keys: Vec<SymmetricKey> = std::iter::once(&group.primary)
                .chain(group.secondary.as_ref())
                .flat_map(|group_key| {
                    std::iter::once(registration_id).chain(lower.as_ref()).map(|id| group_key.derive_device_key(id))
                })
                .collect();
            parsed.verify(scope, registration_id, now_unix, &keys).is_ok()
        })?;
        Some(Enrollment::Group(group.name.clone()))
    }

    /// Checks a client certificate for `registration_id`: its CN must be the registration ID, and
    /// it must be pinned by an individual enrollment or chain to a group's CA. Returns the
    /// `registrationState.x509` object DPS reports.
    fn certificate(&self, registration_id: &RegistrationId, peer: &PeerCertificate) -> Option<serde_json::Value> {
        let cn = peer.common_name.as_deref()?;
        if !cn.eq_ignore_ascii_case(registration_id.as_str()) && !self.config.deviations.accept_cn_mismatch {
            return None;
        }
        let canonical = registration_id.canonical();
        if self
            .config
            .x509_individuals
            .iter()
            .any(|i| i.registration_id.canonical() == canonical && i.sha256 == peer.sha256)
        {
            return Some(serde_json::json!({ "certificateInfo": peer.info }));
        }
        let group = self
            .config
            .x509_groups
            .iter()
            .find(|g| peer.issuers.contains(&g.subject) || peer.subjects[1..].contains(&g.subject))?;
        Some(serde_json::json!({ "enrollmentGroupId": group.name, "certificateInfo": peer.info }))
    }
}

mod answer;
mod operation;
mod reply;
mod session;

pub use answer::MAX_MESSAGE_BYTES;
pub use operation::Completion;
use operation::Operation;
pub use reply::Reply;
pub use session::{Response, Session};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fault_tests;

#[cfg(test)]
mod completion_tests;
