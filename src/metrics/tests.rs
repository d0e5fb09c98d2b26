use proptest::prelude::*;

use super::*;
use crate::device::Timings;

/// A reading of both clocks at `t0`, the wall clock at a fixed instant.
fn wall(t0: Instant) -> WallClock {
    WallClock::new(t0, std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
}

fn report(start: Instant, assigned_after_ms: Option<u64>) -> FlowReport {
    let mut timings = Timings::new(start, start + Duration::from_millis(2));
    timings.tcp_connected = Some(start + Duration::from_millis(3));
    let outcome = match assigned_after_ms {
        Some(ms) => {
            timings.assigned = Some(start + Duration::from_millis(ms));
            timings.end = timings.assigned;
            timings.polls = vec![Duration::from_millis(1), Duration::from_millis(4)];
            Outcome::Assigned { hub: "hub-a".into(), device_id: "d".into() }
        }
        None => {
            timings.end = Some(start + Duration::from_millis(10));
            Outcome::Failed(FailureKind::Timeout(Step::Connack))
        }
    };
    FlowReport {
        outcome,
        timings,
        register_attempts: 1,
        polls: 2,
        retry_after_seconds: vec![3],
        statuses: vec![202, 202, 200],
        stray_replies: 0,
        source_address: None,
        early_requests: 0,
        payload_returned: None,
        personality: Default::default(),
        failure_detail: None,
        certificate: None,
        observer: (),
    }
}

#[test]
fn phase_names_are_the_summary_keys_and_all_is_in_flow_order() {
    let names: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "schedule_lag",
            "tcp_connect",
            "tls_handshake",
            "ws_upgrade",
            "connack",
            "suback",
            "register_accepted",
            "poll",
            "assigned",
            "assigned_raw",
            "end_to_end"
        ]
    );
    for (index, phase) in Phase::ALL.into_iter().enumerate() {
        assert_eq!(phase.index(), index);
        assert_eq!(serde_json::to_value(phase).unwrap(), phase.as_str());
        assert_eq!(serde_json::from_value::<Phase>(phase.as_str().into()).unwrap(), phase);
    }
    let keys: Vec<String> = Metrics::new().summary(0).phases.into_keys().collect();
    let mut sorted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn records_phases_from_intended_and_actual_start() {
    let t0 = Instant::now();
    let wall = wall(t0);
    let mut metrics = Metrics::new();
    metrics.record(&report(t0, Some(100)), &wall);
    metrics.record(&report(t0, None), &wall);
    let summary = metrics.summary(3);
    assert_eq!(
        summary.devices,
        DeviceCounts { total: 3, assigned: 1, failed: 1, aborted: 0, not_finished: 1, not_started: 0 }
    );
    let assigned = &summary.phases["assigned"];
    let raw = &summary.phases["assigned_raw"];
    assert_eq!(assigned.count, 1);
    assert!((99_900..=100_100).contains(&assigned.max_us), "{assigned:?}");
    assert!((97_900..=98_100).contains(&raw.max_us), "2 ms late start: {raw:?}");
    assert_eq!(summary.phases["poll"].count, 2, "only the assigned flow polled");
    assert_eq!(summary.phases["schedule_lag"].count, 2);
    assert_eq!(summary.failures["timeout_connack"], 1);
    assert_eq!(summary.statuses["202"], 4);
    assert_eq!(summary.hubs["hub-a"], 1);
    assert_eq!(summary.late_starts, 0, "2 ms late is within the timer's resolution");
    let interval = metrics.take_interval().stats;
    assert_eq!((interval.assigned, interval.failed), (1, 1));
    assert!((99_900..=100_100).contains(&interval.assigned_p99_us), "{interval:?}");
    assert_eq!(metrics.take_interval().stats.assigned, 0, "a fresh interval after each take");
}

#[test]
fn merging_equals_recording_everything_in_one() {
    let t0 = Instant::now();
    let wall = wall(t0);
    let reports: Vec<_> = (0..50).map(|i| report(t0, if i % 7 == 0 { None } else { Some(10 + i) })).collect();
    let mut one = Metrics::new();
    reports.iter().for_each(|r| one.record(r, &wall));
    let (mut a, mut b) = (Metrics::new(), Metrics::new());
    for (i, r) in reports.iter().enumerate() {
        if i % 2 == 0 { a.record(r, &wall) } else { b.record(r, &wall) }
    }
    a.merge(&b);
    assert_eq!(a.summary(50), one.summary(50));
}

#[test]
fn live_buckets_are_cumulative_with_exact_counts_at_the_bounds() {
    let mut metrics = Metrics::new();
    for ms in [1, 1, 3, 5, 700, 400_000] {
        metrics.phase(Phase::Connack, Duration::from_millis(ms), None);
    }
    let buckets = metrics.live_buckets();
    assert_eq!(buckets.len(), Phase::ALL.len());
    let connack = buckets.iter().find(|b| b.phase == Phase::Connack).unwrap();
    // Bounds: 1, 2, 5, 10, 20, 50, 100, 200, 500 ms, 1, 2, 5, 10, 20, 50, 100, 200, 300 s.
    assert_eq!(connack.cumulative, [2, 2, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5]);
    assert_eq!(connack.count, 6, "the 400 s value lies beyond the last bound, in +Inf only");
    let expected_sum_us: u64 = [1_000, 1_000, 3_000, 5_000, 700_000, 400_000_000].iter().sum();
    assert_eq!(connack.sum_us, expected_sum_us, "the sum is of the values themselves");
    let poll = buckets.iter().find(|b| b.phase == Phase::Poll).unwrap();
    assert_eq!((poll.count, poll.sum_us, poll.cumulative.iter().sum::<u64>()), (0, 0, 0));
}

/// What `latency.hlog` relies on: every value lands in exactly one interval, so a run's
/// intervals add up to its whole-run histograms exactly, phase by phase.
#[test]
fn intervals_add_up_to_the_whole_run_exactly() {
    let t0 = Instant::now();
    let wall = wall(t0);
    let mut metrics = Metrics::new();
    let mut intervals = Vec::new();
    for i in 0..60u64 {
        metrics.record(&report(t0 + Duration::from_millis(i), if i % 9 == 0 { None } else { Some(5 + i * 37) }), &wall);
        if i % 13 == 12 {
            intervals.push(metrics.take_interval().latencies);
        }
    }
    intervals.push(metrics.take_interval().latencies);
    assert!(intervals.len() > 3);
    let mut sum = PhaseHistograms::new();
    intervals.iter().for_each(|interval| sum.add_all(interval));
    for (phase, whole) in metrics.latencies().iter() {
        assert_eq!(sum.get(phase), whole, "{phase}: the intervals' sum differs from the whole run");
    }
    assert_eq!(sum.get(Phase::Poll).len(), 2 * 53, "two polls per assigned flow");
    assert!(metrics.take_interval().latencies.iter().all(|(_, h)| h.is_empty()), "a fresh interval after each take");
}

/// A run's ticks hand each interval's histograms back to record the next one into: the
/// intervals still add up to the whole run exactly, and none carries values of an earlier one.
#[test]
fn intervals_recorded_into_handed_back_histograms_stay_exact() {
    let t0 = Instant::now();
    let wall = wall(t0);
    let (mut metrics, mut sum) = (Metrics::new(), PhaseHistograms::new());
    let mut spare = Some(PhaseHistograms::new());
    for i in 0..60u64 {
        metrics.record(&report(t0 + Duration::from_millis(i), Some(5 + i * 37)), &wall);
        if i % 7 == 6 {
            let taken = metrics.take_interval_reusing(spare.take().unwrap_or_default()).latencies;
            assert_eq!(taken.get(Phase::Assigned).len(), 7, "only this interval's seven flows");
            sum.add_all(&taken);
            // Handed back full: the next take empties it first.
            spare = Some(taken);
        }
    }
    sum.add_all(&metrics.take_interval_reusing(spare.take().unwrap()).latencies);
    for (phase, whole) in metrics.latencies().iter() {
        assert_eq!(sum.get(phase), whole, "{phase}: the intervals' sum differs from the whole run");
    }
}

/// The live buckets counted as values come agree with a walk of the whole-run histogram (to
/// its precision), and merged collectors add them.
#[test]
fn live_buckets_counted_as_recorded_agree_with_the_histogram_and_merge() {
    let t0 = Instant::now();
    let wall = wall(t0);
    let (mut one, mut two) = (Metrics::new(), Metrics::new());
    for i in 0..400u64 {
        let part = if i % 3 == 0 { &mut one } else { &mut two };
        part.record(&report(t0, Some(1 + i * i * 11)), &wall);
    }
    let mut whole = one.clone();
    whole.merge(&two);
    let assigned = whole.live_buckets().into_iter().find(|b| b.phase == Phase::Assigned).unwrap();
    let h = whole.latencies().get(Phase::Assigned);
    assert_eq!(assigned.count, 400);
    for (bound, cumulative) in LIVE_BUCKETS_US.iter().zip(&assigned.cumulative) {
        let (below, above) = (
            h.count_between(0, h.lowest_equivalent(*bound).saturating_sub(1)),
            h.count_between(0, h.highest_equivalent(*bound)),
        );
        assert!((below..=above).contains(cumulative), "at {bound} us: {cumulative} outside {below}..={above}");
    }
    let exact: u64 = (0..400u64).map(|i| (1 + i * i * 11) * 1000).sum();
    assert_eq!(assigned.sum_us, exact);
}

#[test]
fn count_distributions_give_devices_by_count() {
    let t0 = Instant::now();
    let wall = wall(t0);
    let mut metrics = Metrics::new();
    for attempts in [1u32, 1, 1, 2, 5] {
        let mut report = report(t0, Some(10));
        report.register_attempts = attempts;
        metrics.record(&report, &wall);
    }
    let summary = metrics.summary(5);
    let by_count = |pairs: &[(&str, u64)]| pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>();
    assert_eq!(summary.register_attempts.devices_by_count, by_count(&[("1", 3), ("2", 1), ("5", 1)]));
    assert_eq!(summary.polls_per_device.devices_by_count, by_count(&[("2", 5)]));
}

/// One random flow for the merge property: its outcome and what it received.
fn random_flow(t0: Instant, seed: (u8, u16, u8, u8, u16, bool)) -> (String, FlowReport) {
    let (kind, offset_ms, polls, retry_after, lag_us, payload) = seed;
    let intended = t0 + Duration::from_millis(u64::from(offset_ms));
    let start = intended + Duration::from_micros(u64::from(lag_us));
    let mut timings = Timings::new(intended, start);
    timings.tcp_connected = Some(start + Duration::from_micros(300));
    timings.tls_done = Some(start + Duration::from_micros(900 + u64::from(lag_us % 700)));
    let outcome = match kind % 6 {
        0..=2 => {
            let at = start + Duration::from_millis(5 + u64::from(polls) * 40 + u64::from(offset_ms % 13));
            timings.assigned = Some(at);
            timings.end = Some(at);
            timings.polls = (0..polls).map(|p| Duration::from_micros(200 + u64::from(p) * 31)).collect();
            let hub = if kind % 2 == 0 { "hub-a" } else { "hub-b" };
            Outcome::Assigned { hub: hub.into(), device_id: "d".into() }
        }
        3 => Outcome::Failed(FailureKind::Status(if offset_ms % 2 == 0 { 503 } else { 429 })),
        4 => Outcome::Failed(FailureKind::Timeout(Step::Poll)),
        _ => Outcome::Failed(FailureKind::Aborted),
    };
    if timings.end.is_none() {
        timings.end = Some(start + Duration::from_millis(3));
    }
    let mut statuses = vec![202; usize::from(polls)];
    statuses.push(if kind % 6 <= 2 { 200 } else { 429 });
    let report = FlowReport {
        outcome,
        timings,
        register_attempts: 1 + u32::from(kind % 3),
        polls: u32::from(polls),
        retry_after_seconds: vec![u32::from(retry_after % 4); usize::from(polls)],
        statuses,
        stray_replies: u32::from(kind % 4 == 0),
        source_address: Some(std::net::IpAddr::from([127, 0, 0, 1 + kind % 3])),
        early_requests: u32::from(retry_after % 7 == 0),
        payload_returned: payload.then_some(kind % 2 == 0),
        personality: crate::device::Personality::ALL[usize::from(kind) % crate::device::Personality::ALL.len()],
        failure_detail: (kind % 6 == 3).then(|| "said the network".to_string()),
        certificate: {
            use crate::certificates::{CertificateOutcome, ChainFailure};
            [None, Some(CertificateOutcome::Requested), Some(CertificateOutcome::Verified)]
                .into_iter()
                .chain([Some(CertificateOutcome::Failed(ChainFailure::Untrusted))])
                .nth(usize::from(kind % 4))
                .flatten()
        },
        observer: (),
    };
    (format!("dev-{offset_ms}-{kind}"), report)
}

/// Every leaf of a JSON value by its path.
fn leaves(value: &serde_json::Value, path: String, into: &mut BTreeMap<String, serde_json::Value>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                leaves(child, if path.is_empty() { key.clone() } else { format!("{path}.{key}") }, into);
            }
        }
        other => {
            into.insert(path, other.clone());
        }
    }
}

proptest! {
    /// Two parts' summaries added (`Summary::add`, phases from the added histograms) equal the
    /// summary of one collector of every flow, in every field of the schema: compared leaf by
    /// leaf over the JSON, so a field added later is compared without being named here. Only
    /// which failure examples are kept may differ (each part keeps its first few).
    #[test]
    fn added_summaries_equal_the_summary_of_the_whole(
        flows in proptest::collection::vec(
            any::<(u8, u16, u8, u8, u16, bool)>().prop_map(|(k, o, p, r, l, y)| (k, o % 4000, p % 5, r, l % 3000, y)),
            1..60,
        ),
        split in 0u8..=255,
    ) {
        let t0 = Instant::now();
        let wall = wall(t0);
        let (mut whole, mut one, mut two) = (Metrics::new(), Metrics::new(), Metrics::new());
        let (mut in_one, mut in_two) = (0, 0);
        for (n, seed) in flows.iter().enumerate() {
            let (id, report) = random_flow(t0, *seed);
            whole.record(&report, &wall);
            whole.note_failure(&id, &report);
            let part = if (n as u8).wrapping_mul(31) < split { in_one += 1; &mut one } else { in_two += 1; &mut two };
            part.record(&report, &wall);
            part.note_failure(&id, &report);
        }
        let mut added = one.summary(in_one + 1);
        added.add(&two.summary(in_two));
        let mut histograms = one.latencies().clone();
        histograms.add_all(two.latencies());
        added.set_phases(&histograms);
        let expected = whole.summary(flows.len() as u64 + 1);
        let (mut got, mut want) = (BTreeMap::new(), BTreeMap::new());
        leaves(&serde_json::to_value(&added).unwrap(), String::new(), &mut got);
        leaves(&serde_json::to_value(&expected).unwrap(), String::new(), &mut want);
        let examples = |m: &BTreeMap<String, serde_json::Value>| {
            m.keys().filter(|k| !k.contains(".examples")).cloned().collect::<Vec<_>>()
        };
        prop_assert_eq!(examples(&got), examples(&want));
        for path in examples(&want) {
            prop_assert_eq!(got.get(&path), want.get(&path), "{}", path);
        }
        for (label, reason) in &expected.failure_reasons {
            let merged = &added.failure_reasons[label];
            prop_assert_eq!(merged.examples.len(), reason.examples.len(), "{}", label);
        }
    }
}

/// On a run's clock each figure of a flow counts in the interval of its event, whenever the
/// flow reported it; one reported after its interval was handed out counts in the next open
/// one, so the intervals still add up to the whole run.
#[test]
fn on_a_clock_figures_count_in_the_interval_of_their_event() {
    let t0 = Instant::now();
    let wall = wall(t0);
    let mut metrics = Metrics::new().on_clock(IntervalClock::new(t0));
    // Assigned 2.5 s in (its connack 3 ms in): reported at once, its figures split by instant.
    metrics.record(&report(t0, Some(2_500)), &wall);
    let first = metrics.take_interval_at(0, PhaseHistograms::new());
    assert_eq!((first.stats.assigned, first.latencies.get(Phase::TcpConnect).len()), (0, 1));
    assert_eq!(metrics.take_interval_at(1, PhaseHistograms::new()).stats.assigned, 0);
    let third = metrics.take_interval_at(2, PhaseHistograms::new());
    assert_eq!((third.stats.assigned, third.latencies.get(Phase::Assigned).len()), (1, 1));
    // A device failed 10 ms in, reported only now: interval 0 is out, so it counts in 3.
    metrics.record(&report(t0, None), &wall);
    let fourth = metrics.take_interval_at(3, PhaseHistograms::new());
    assert_eq!((fourth.stats.failed, fourth.failures.get("timeout_connack")), (1, Some(&1)));
    assert_eq!(metrics.take_interval_at(4, PhaseHistograms::new()).stats, IntervalStats::default());
}
