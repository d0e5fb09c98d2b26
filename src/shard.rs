//! Shards: one plan split across processes (Kubernetes Indexed Job pods) so that the union of
//! the shards is the unsharded run, exactly.
//!
//! Shard `K` of `N` owns the devices whose global index `i` has `i mod N = K`: it keeps their
//! registration IDs and starts each at the instant the **unsharded** arrival plan gives it (every
//! shard generates the whole plan's starts as the run goes, seed and all, and keeps its own, so
//! Poisson and burst plans agree to the nanosecond). A closed model splits its concurrency, the
//! remainder to the lowest shards.
//!
//! Sans-IO: no clock, no files. The runner asks which devices and starts are its own; the plan
//! hash lets `report merge` refuse shards of different plans.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::arrival::ArrivalPlan;
use crate::scenario::{Load, Plan};

/// Which part of the plan this process runs: `index` of `count` (the whole plan is `0/1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// A `--shard` value that does not hold; variants carry the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("shard {0:?} is not K/N (e.g. 3/10, K from 0 to N-1)")]
    Syntax(String),
    #[error("shard {index}/{count}: K must be from 0 to N-1 and N at least 1")]
    Range { index: u64, count: u64 },
    #[error(
        "shard {index}/{count}: the closed model's concurrency of {concurrency} leaves this shard no device in \
         flight; use at most {concurrency} shards or raise arrival.concurrency"
    )]
    NoConcurrency { index: u64, count: u64, concurrency: u64 },
}

impl Shard {
    /// The whole plan, unsharded.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `K/N`, e.g. `3/10`.
    pub fn parse(text: &str) -> Result<Self, ShardError> {
        let syntax = || ShardError::Syntax(text.to_string());
        let (index, count) = text.trim().split_once('/').ok_or_else(syntax)?;
        let index: u64 = index.trim().parse().map_err(|_| syntax())?;
        let count: u64 = count.trim().parse().map_err(|_| syntax())?;
        Self::new(index, count)
    }

    pub fn new(index: u64, count: u64) -> Result<Self, ShardError> {
        if count == 0 || index >= count {
            return Err(ShardError::Range { index, count });
        }
        Ok(Self { index, count })
    }

    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// Whether the device of global index `i` is this shard's.
    pub fn owns(self, i: u64) -> bool {
        i % self.count == self.index
    }

    /// How many of the devices `0..total` are this shard's.
    pub fn devices_of(self, total: u64) -> u64 {
        total / self.count + u64::from(total % self.count > self.index)
    }

    /// The global indexes of this shard's devices among `0..total`, in order.
    pub fn indexes(self, total: u64) -> impl Iterator<Item = u64> {
        (self.index..total).step_by(self.count as usize)
    }

    /// This shard's part of a closed model's concurrency: an equal share, the remainder to the
    /// lowest shards.
    pub fn concurrency_of(self, concurrency: u64) -> u64 {
        concurrency / self.count + u64::from(concurrency % self.count > self.index)
    }

    /// This shard's load: an open plan is unchanged (its starts are filtered by [`Self::starts`]);
    /// a closed model gets its share of the concurrency, refused when that is none.
    pub fn load_of(self, load: &Load) -> Result<Load, ShardError> {
        match load {
            Load::Open(plan) => Ok(Load::Open(plan.clone())),
            Load::Closed { concurrency } => match self.concurrency_of(*concurrency) {
                0 => Err(ShardError::NoConcurrency { index: self.index, count: self.count, concurrency: *concurrency }),
                share => Ok(Load::Closed { concurrency: share }),
            },
        }
    }

    /// This shard's part of `plan`: its devices and its load, refused when it would run nothing
    /// ([`Self::load_of`]).
    pub fn part_of(self, plan: &Plan) -> Result<Part, ShardError> {
        Ok(Part { shard: self, devices: self.devices_of(plan.stop.devices), load: self.load_of(&plan.load)? })
    }

    /// The intended starts of this shard's devices: the unsharded plan's, those of its own
    /// indexes, in order.
    pub fn starts(self, plan: &ArrivalPlan) -> impl Iterator<Item = Duration> + Send + use<> {
        plan.arrivals().enumerate().filter(move |(i, _)| self.owns(*i as u64)).map(|(_, at)| at)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A shard's part of one plan, computed once from it and checked ([`Shard::part_of`]): its
/// devices and its load. The runner, its limits and the reports take it as it is rather than
/// splitting the plan again.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    shard: Shard,
    devices: u64,
    load: Load,
}

impl Part {
    /// The whole plan, unsharded.
    pub fn whole(plan: &Plan) -> Self {
        Self { shard: Shard::WHOLE, devices: plan.stop.devices, load: plan.load.clone() }
    }

    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// How many of the plan's devices are this shard's.
    pub fn devices(&self) -> u64 {
        self.devices
    }

    /// This shard's load ([`Shard::load_of`]): a closed model's concurrency is its share.
    pub fn load(&self) -> &Load {
        &self.load
    }

    /// When an open plan has more devices than its time limits let start (`run.duration_seconds`,
    /// `run.max_duration_seconds`): how many it has and about how many will start, for this
    /// shard. `None` when all can start, and for a closed model (its pace is the target's).
    pub fn starts_within_limits(&self, plan: &Plan) -> Option<StartsWithinLimits> {
        let Load::Open(arrivals) = &plan.load else { return None };
        let limit = plan.stop.duration.map_or(plan.max_duration, |d| d.min(plan.max_duration));
        let whole = (arrivals.expected_by(limit).round() as u64).min(plan.stop.devices);
        let (devices, starting) = (self.devices, self.shard.devices_of(whole));
        (starting < devices).then(|| StartsWithinLimits {
            shard: self.shard,
            plan_devices: plan.stop.devices,
            devices,
            starting,
            load: plan.load.describe(),
            limit,
        })
    }
}

/// A plan larger than its run can start: said before the run, so a user sees at once that most
/// of a ten-million-device plan will be counted as not started.
#[derive(Debug, Clone, PartialEq)]
pub struct StartsWithinLimits {
    pub shard: Shard,
    /// The whole plan's devices.
    pub plan_devices: u64,
    /// This shard's devices (the whole plan's, unsharded).
    pub devices: u64,
    /// About how many of them will start.
    pub starting: u64,
    /// The arrival plan, described (`constant 50/s`).
    pub load: String,
    /// How long devices may start for.
    pub limit: Duration,
}

impl std::fmt::Display for StartsWithinLimits {
    /// `the plan has 1,000,000 devices; at constant 50/s for at most 4 s, about 200 will start`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shard.is_whole() {
            true => write!(f, "the plan has {} devices", grouped(self.devices))?,
            false => write!(
                f,
                "shard {} has {} of the plan's {} devices",
                self.shard,
                grouped(self.devices),
                grouped(self.plan_devices)
            )?,
        }
        write!(
            f,
            "; at {} for at most {} s, about {} will start (the rest count as not started)",
            self.load,
            self.limit.as_secs_f64(),
            grouped(self.starting)
        )
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A hash of the resolved plan, the same for every shard of it: SHA-256 over everything that
/// decides what the run does (target, identities, load, stop, flow, TLS, limits, gates), not the
/// scenario's path, the group key (a secret, and random for the embedded target), where the key
/// came from (the invocation's shard, start instant and extra outputs are no part of a plan:
/// they travel beside it, in `runner::RunOptions`). Every field of
/// [`Plan`] is named here, so a field added later does not compile until it is hashed or left
/// out on purpose. `sha256:` and the first 16 bytes in hex.
pub fn plan_hash(plan: &Plan) -> String {
    let Plan {
        name,
        file: _,
        target,
        id_scope,
        identities,
        personalities,
        payload,
        group_key: _,
        key_origin: _,
        load,
        stop,
        max_in_flight,
        flow,
        max_duration,
        drain,
        max_schedule_lag_p99,
        source_addresses,
        tls,
        x509,
        preflight,
        slo,
        certificates,
    } = plan;
    // The CA a DPS target is trusted through counts by its content, not by how its path was
    // spelled (`s.toml` and `./s.toml` name the same plan).
    let mut target = target.clone();
    if let crate::scenario::TargetPlan::Dps { ca: Some((_, path)), .. } = &mut target {
        *path = std::path::PathBuf::new();
    }
    let mut described = format!(
        "{name:?}|{target:?}|{id_scope:?}|{identities:?}|{personalities:?}|{payload:?}|{load:?}|{stop:?}|\
         {max_in_flight:?}|{flow:?}|{max_duration:?}|{drain:?}|{max_schedule_lag_p99:?}|{source_addresses:?}|\
         {tls:?}|{:?}|{preflight:?}|{slo:?}",
        x509.as_ref().map(|x| &x.ca_dir),
    );
    // Left out when unused, as it was before issuance existed.
    if *certificates != crate::scenario::CertificatePlan::default() {
        described.push_str(&format!("|{certificates:?}"));
    }
    let digest = Sha256::digest(described.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrival::Stage;

    fn union_of_shards(plan: &ArrivalPlan, total: usize, count: u64) -> Vec<Duration> {
        let mut union: Vec<(u64, Duration)> = Vec::new();
        for index in 0..count {
            let shard = Shard::new(index, count).unwrap();
            let devices = shard.devices_of(total as u64) as usize;
            union.extend(shard.indexes(total as u64).zip(shard.starts(plan).take(devices)));
        }
        union.sort_by_key(|(i, _)| *i);
        assert_eq!(union.len(), total);
        assert!(union.iter().enumerate().all(|(n, (i, _))| n as u64 == *i), "every index once");
        union.into_iter().map(|(_, at)| at).collect()
    }

    #[test]
    fn the_union_of_the_shards_is_the_unsharded_plan_for_every_open_model() {
        let stages = ["2s:0->300/s", "3s:300/s", "2s:300->0/s"].iter().map(|s| Stage::parse(s).unwrap()).collect();
        let plans = [
            ArrivalPlan::constant(250.0).unwrap(),
            ArrivalPlan::stages(stages).unwrap(),
            ArrivalPlan::poisson(400.0, 17).unwrap(),
            ArrivalPlan::Burst { devices: 1001, within: Duration::from_secs(3), seed: 9 },
        ];
        for plan in &plans {
            let total = plan.natural_count().map_or(1001, |n| n as usize);
            let whole: Vec<Duration> = plan.arrivals().take(total).collect();
            for count in [1, 2, 3, 4, 7, 10] {
                assert_eq!(union_of_shards(plan, total, count), whole, "{plan:?} in {count} shards");
            }
        }
    }

    #[test]
    fn a_closed_model_splits_its_concurrency_remainder_to_the_lowest_shards() {
        let shares: Vec<u64> = (0..4).map(|k| Shard::new(k, 4).unwrap().concurrency_of(10)).collect();
        assert_eq!(shares, [3, 3, 2, 2]);
        assert_eq!(shares.iter().sum::<u64>(), 10);
        let load = Load::Closed { concurrency: 10 };
        assert_eq!(Shard::new(1, 4).unwrap().load_of(&load).unwrap(), Load::Closed { concurrency: 3 });
        assert_eq!(
            Shard::new(3, 4).unwrap().load_of(&Load::Closed { concurrency: 3 }).unwrap_err(),
            ShardError::NoConcurrency { index: 3, count: 4, concurrency: 3 }
        );
    }

    #[test]
    fn devices_split_by_index_modulo_the_count() {
        let shard = Shard::parse("2/4").unwrap();
        assert_eq!(shard.indexes(11).collect::<Vec<_>>(), [2, 6, 10]);
        assert_eq!(shard.devices_of(11), 3);
        assert_eq!((0..4).map(|k| Shard::new(k, 4).unwrap().devices_of(11)).sum::<u64>(), 11);
        assert!(shard.owns(6) && !shard.owns(7));
    }

    fn plan(rate: u32) -> Plan {
        let text = format!(
            "name = \"h\"\n[target]\nkind = \"embedded\"\n[devices]\ncount = 100\nregistration_id = \"h-{{index}}\"\n\
             [arrival]\nrate = {rate}\n"
        );
        let file = crate::toml_file::parse(&text).expect("the scenario parses");
        Plan::resolve(file, std::path::Path::new("h.toml"), &|_| None).expect("the scenario resolves")
    }

    #[test]
    fn the_plan_hash_is_the_same_for_every_shard_and_differs_for_another_plan() {
        let (one, mut two) = (plan(50), plan(50));
        two.file = "elsewhere/h.toml".into();
        assert_eq!(plan_hash(&one), plan_hash(&two), "random embedded key and path do not count");
        assert_ne!(plan_hash(&one), plan_hash(&plan(51)));
        assert!(plan_hash(&one).starts_with("sha256:") && plan_hash(&one).len() == 7 + 32);
    }

    #[test]
    fn changing_any_hashed_field_of_the_plan_changes_the_hash() {
        type Edit = (&'static str, fn(&mut Plan));
        let edits: [Edit; 19] = [
            ("name", |p| p.name.push('x')),
            ("target", |p| {
                if let crate::scenario::TargetPlan::Embedded { settings, .. } = &mut p.target {
                    settings.retry_after_seconds += 1;
                }
            }),
            ("id_scope", |p| p.id_scope = crate::credentials::IdScope::new("0ne00OTHER1").unwrap()),
            ("identities", |p| p.identities = plan_with("start_index = 5").identities),
            ("personalities", |p| p.personalities = plan_with("personality = \"python\"").personalities),
            ("payload", |p| p.payload = plan_with("payload = { a = 1 }").payload),
            ("load", |p| p.load = plan(51).load),
            ("stop", |p| p.stop.devices += 1),
            ("max_in_flight", |p| p.max_in_flight = Some(7)),
            ("flow", |p| p.flow.keep_alive += 1),
            ("max_duration", |p| p.max_duration += Duration::from_secs(1)),
            ("drain", |p| p.drain += Duration::from_secs(1)),
            ("max_schedule_lag_p99", |p| p.max_schedule_lag_p99 += Duration::from_millis(1)),
            ("source_addresses", |p| p.source_addresses.push("127.0.0.2".parse().unwrap())),
            ("tls", |p| p.tls.versions = crate::tls::TlsVersions::Tls12And13),
            ("x509", |p| p.x509 = Some(crate::scenario::X509Plan { ca_dir: "ca".into(), cache: "ca/devices".into() })),
            ("preflight", |p| p.preflight = !p.preflight),
            ("slo", |p| p.slo = plan_with_slo().slo),
            ("certificates", |p| p.certificates = plan_with("request_certificate = true").certificates),
        ];
        let base = plan_hash(&plan(50));
        for (field, edit) in edits {
            let mut changed = plan(50);
            edit(&mut changed);
            assert_ne!(plan_hash(&changed), base, "changing {field} leaves the hash as it was");
        }
    }

    /// The test plan with one more `[devices]` line.
    fn plan_with(devices_line: &str) -> Plan {
        let text = format!(
            "name = \"h\"\n[target]\nkind = \"embedded\"\n[devices]\ncount = 100\nregistration_id = \"h-{{index}}\"\n\
             {devices_line}\n[arrival]\nrate = 50\n"
        );
        let file = crate::toml_file::parse(&text).expect("the scenario parses");
        Plan::resolve(file, std::path::Path::new("h.toml"), &|_| None).expect("the scenario resolves")
    }

    fn plan_with_slo() -> Plan {
        let text = "name = \"h\"\n[target]\nkind = \"embedded\"\n[devices]\ncount = 100\nregistration_id = \"h-{index}\"\n\
                    [arrival]\nrate = 50\n[slo]\nmax_failed = 0\n";
        let file = crate::toml_file::parse(text).expect("the scenario parses");
        Plan::resolve(file, std::path::Path::new("h.toml"), &|_| None).expect("the scenario resolves")
    }

    #[test]
    fn the_hash_does_not_depend_on_how_the_scenarios_path_is_spelled() {
        let dir = std::env::temp_dir().join(format!("dpsbench-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), crate::tls::ServerIdentity::generate(&[]).unwrap().ca_pem()).unwrap();
        let text = "name = \"h\"\n[target]\nkind = \"dps\"\nhost = \"127.0.0.1\"\nid_scope = \"0ne00HASH01\"\n\
                    ca_certificate = \"ca.pem\"\n[devices]\ncount = 10\ngroup_key_env = \"K\"\n[arrival]\nrate = 5\n";
        let key = crate::credentials::SymmetricKey::random().to_base64();
        let hash = |path: std::path::PathBuf| {
            let file = crate::toml_file::parse(text).expect("parses");
            plan_hash(&Plan::resolve(file, &path, &|_| Some(key.clone())).expect("resolves"))
        };
        let plain = hash(dir.join("s.toml"));
        assert_eq!(plain, hash(dir.join(".").join("s.toml")), "./s.toml is s.toml");
        std::fs::write(dir.join("ca.pem"), crate::tls::ServerIdentity::generate(&[]).unwrap().ca_pem()).unwrap();
        assert_ne!(plain, hash(dir.join("s.toml")), "another CA is another plan");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_plan_larger_than_its_time_limit_says_how_many_will_start() {
        let with = |devices: &str, arrival: &str, run: &str| {
            let text = format!(
                "name = \"t\"\n[target]\nkind = \"embedded\"\n[devices]\ncount = {devices}\n[arrival]\n{arrival}\n[run]\n{run}\n"
            );
            let file = crate::toml_file::parse(&text).expect("the scenario parses");
            Plan::resolve(file, std::path::Path::new("s.toml"), &|_| None).expect("the scenario resolves")
        };
        let big = with("1000000", "rate = 50", "max_duration_seconds = 4");
        let estimate = Part::whole(&big).starts_within_limits(&big).expect("a million at 50/s do not start in 4 s");
        assert_eq!((estimate.devices, estimate.starting), (1_000_000, 200));
        assert_eq!(
            estimate.to_string(),
            "the plan has 1,000,000 devices; at constant 50/s for at most 4 s, about 200 will start (the rest count as \
             not started)"
        );
        // A shard says its own part.
        let estimate = Shard::new(3, 4).unwrap().part_of(&big).unwrap().starts_within_limits(&big).unwrap();
        assert_eq!((estimate.devices, estimate.starting), (250_000, 50));
        assert!(
            estimate.to_string().starts_with("shard 3/4 has 250,000 of the plan's 1,000,000 devices; "),
            "{estimate}"
        );
        // The shorter of the two limits counts; Poisson and bursts give their expected count.
        let timed = with(
            "10000",
            "model = \"poisson\"\nrate = 100\nseed = 1",
            "duration_seconds = 10\nmax_duration_seconds = 60",
        );
        assert_eq!(whole_estimate(&timed).map(|e| e.starting), Some(1001));
        let burst = with("10000", "model = \"burst\"\nwithin_seconds = 100", "max_duration_seconds = 25");
        assert_eq!(whole_estimate(&burst).map(|e| e.starting), Some(2500));
        // A plan that fits says nothing; nor does a closed model, whose pace is the target's.
        assert_eq!(whole_estimate(&with("200", "rate = 50", "max_duration_seconds = 4")), None);
        assert_eq!(whole_estimate(&with("1000", "rate = 200", "max_duration_seconds = 120")), None);
        let closed = with("1000000", "model = \"closed\"\nconcurrency = 10", "max_duration_seconds = 4");
        assert_eq!(whole_estimate(&closed), None);
    }

    /// What the whole of `plan` says about its starts within its time limits.
    fn whole_estimate(plan: &Plan) -> Option<StartsWithinLimits> {
        Part::whole(plan).starts_within_limits(plan)
    }

    #[test]
    fn shard_text_parses_and_names_what_is_wrong() {
        assert_eq!(Shard::parse("0/1").unwrap(), Shard::WHOLE);
        assert_eq!(Shard::parse(" 9/10 ").unwrap(), Shard { index: 9, count: 10 });
        assert_eq!(Shard::parse("10/10"), Err(ShardError::Range { index: 10, count: 10 }));
        assert_eq!(Shard::parse("0/0"), Err(ShardError::Range { index: 0, count: 0 }));
        for bad in ["3", "a/4", "1/", "-1/4"] {
            assert_eq!(Shard::parse(bad), Err(ShardError::Syntax(bad.into())));
        }
        assert_eq!(Shard::new(3, 10).unwrap().to_string(), "3/10");
    }
}
