use super::*;
use crate::metrics::{Metrics, PhaseStats};

fn plan() -> Plan {
    let text = "name = \"v\"\n[target]\nkind = \"embedded\"\n[devices]\ncount = 10\n[arrival]\nrate = 10\n";
    let file = crate::toml_file::parse(text).expect("the scenario parses");
    Plan::resolve(file, std::path::Path::new("v.toml"), &|_| None).expect("it resolves")
}

fn bound(plan: &Plan) -> u64 {
    plan.max_schedule_lag_p99.as_micros() as u64
}

/// A summary whose schedule lag p99 is `lag_us`.
fn lagging(lag_us: u64) -> Summary {
    let mut results = Metrics::new().summary(10);
    let stats = PhaseStats {
        count: 5000,
        min_us: 1,
        mean_us: lag_us,
        p50_us: 1,
        p90_us: 1,
        p99_us: lag_us,
        p999_us: lag_us,
        max_us: lag_us,
    };
    results.phases.insert(Phase::ScheduleLag.as_str().into(), stats);
    results
}

fn readings(runtime_ms: u64, machine_ms: u64) -> Readings {
    Readings {
        runtime_p99_us: runtime_ms * 1000,
        machine_p99_us: Some(machine_ms * 1000),
        steal_percent: Some(6.5),
        cpu_share: Some(0.5),
    }
}

fn stalls(outside_us: u64) -> TargetStalls {
    TargetStalls {
        count: 1,
        seconds: 1.2,
        longest_seconds: 1.2,
        starts_within: 600,
        schedule_lag_p99_outside_us: outside_us,
    }
}

/// The schedule-lag reason of the default plan, `lag_us` late.
fn lag_reason(plan: &Plan, lag_us: u64, outside_stalls: bool, cause: LagCause) -> InvalidReason {
    InvalidReason::ScheduleLag { lag_us, outside_stalls, bound_us: bound(plan), cause }
}

#[test]
fn a_lag_the_generator_caused_is_its_fault() {
    let plan = plan();
    let validity = validity(&plan, &lagging(20_000), &readings(8, 1), None, None);
    assert!(!validity.valid);
    assert_eq!(
        invalid_reasons(&plan, &lagging(20_000), &readings(8, 1), None, None),
        [lag_reason(&plan, 20_000, false, LagCause::Generator)]
    );
    assert!(validity.reasons[0].contains("the generator could not keep the arrival plan"), "{:?}", validity.reasons);
    assert_eq!((validity.machine_stall_p99_us, validity.steal_percent), (Some(1_000), Some(6.5)));
}

#[test]
fn a_lag_the_machine_itself_shows_names_the_machine() {
    let plan = plan();
    let reasons = invalid_reasons(&plan, &lagging(20_000), &readings(12, 11), None, None);
    let host = LagCause::Host { machine_p99_us: 11_000, steal_percent: Some(6.5) };
    assert_eq!(reasons, [lag_reason(&plan, 20_000, false, host)]);
    let validity = validity(&plan, &lagging(20_000), &readings(12, 11), None, None);
    assert!(!validity.valid);
    let reason = &validity.reasons[0];
    assert!(reason.contains("this machine woke a plain sleeping thread") && reason.contains("11.0 ms"), "{reason}");
    assert!(reason.contains("the hypervisor took 6.5%") && !reason.contains("generator could not"), "{reason}");
    // A generator using every core makes the probe late too: that is not the host's doing.
    let busy = Readings { cpu_share: Some(0.95), steal_percent: Some(0.5), ..readings(12, 11) };
    let judged = invalid_reasons(&plan, &lagging(20_000), &busy, None, None);
    assert_eq!(judged, [lag_reason(&plan, 20_000, false, LagCause::Generator)]);
    // Steal at the threshold names the host even on a busy machine; under 1 % it goes unsaid.
    let stolen = Readings { cpu_share: Some(0.95), steal_percent: Some(HOST_STEAL_PERCENT), ..readings(12, 11) };
    let host = LagCause::Host { machine_p99_us: 11_000, steal_percent: Some(HOST_STEAL_PERCENT) };
    assert_eq!(invalid_reasons(&plan, &lagging(20_000), &stolen, None, None), [lag_reason(&plan, 20_000, false, host)]);
    let quiet = Readings { steal_percent: Some(0.5), ..readings(12, 11) };
    let host = LagCause::Host { machine_p99_us: 11_000, steal_percent: None };
    assert_eq!(invalid_reasons(&plan, &lagging(20_000), &quiet, None, None), [lag_reason(&plan, 20_000, false, host)]);
}

#[test]
fn a_lag_only_the_targets_stall_caused_leaves_the_run_valid_and_says_so() {
    let plan = plan();
    let validity = validity(&plan, &lagging(20_000), &readings(5, 1), Some(stalls(900)), None);
    assert!(validity.valid, "{:?}", validity.reasons);
    assert_eq!(validity.schedule_lag_p99_us, 20_000, "the whole run's lag is still reported");
    let note = target_stall_note(&plan, &validity).expect("a note");
    assert!(note.contains("the target stopped answering waiting devices 1 time"), "{note}");
    assert!(note.contains("600 starts") && note.contains("outside them 0.9 ms"), "{note}");
    // Outside the stalls the generator fell behind too: invalid, on the lag outside them.
    let reasons = reasons_of(&plan, Some(stalls(15_000)));
    assert_eq!(reasons, [lag_reason(&plan, 15_000, true, LagCause::Generator)]);
    assert!(reasons[0].to_string().contains("schedule lag p99 outside the target's stalls 15.0 ms"), "{reasons:?}");
    // Most starts inside the windows: they excuse nothing.
    let most_within = Some(TargetStalls { starts_within: 4000, ..stalls(900) });
    assert_eq!(reasons_of(&plan, most_within.clone()), [lag_reason(&plan, 20_000, false, LagCause::Generator)]);
    let judged = super::validity(&plan, &lagging(20_000), &readings(5, 1), most_within, None);
    assert!(!judged.valid && judged.reasons[0].contains("schedule lag p99 20.0 ms"), "{:?}", judged.reasons);
    let note = target_stall_note(&plan, &judged).unwrap();
    assert!(note.ends_with("the generator had caught up)"), "no excuse claimed: {note}");
    // A window also ends when the waiting devices give up: the note claims no answer came.
    assert!(!note.contains("came at once") && note.contains("or the waiting devices gave up"), "{note}");
}

#[test]
fn the_open_files_limit_is_named_before_anything_else() {
    let plan = plan();
    let reasons = invalid_reasons(&plan, &lagging(20_000), &readings(12, 11), None, Some((1024, 480)));
    assert_eq!(reasons, [lag_reason(&plan, 20_000, false, LagCause::OpenFilesLimit { limit: 1024, cap: 480 })]);
}

#[test]
fn each_reason_renders_as_summary_json_says_it() {
    let lag = |cause| InvalidReason::ScheduleLag { lag_us: 20_000, outside_stalls: false, bound_us: 10_000, cause };
    let cases = [
        (
            lag(LagCause::Generator),
            "schedule lag p99 20.0 ms exceeds run.max_schedule_lag_p99_ms (10.0 ms): the generator could not keep \
             the arrival plan (lower the rate or add generator capacity)",
        ),
        (
            lag(LagCause::InFlightCap(200)),
            "schedule lag p99 20.0 ms exceeds run.max_schedule_lag_p99_ms (10.0 ms): the generator could not keep \
             the arrival plan (raise run.max_in_flight from 200, lower the rate, or add generator capacity)",
        ),
        (
            lag(LagCause::OpenFilesLimit { limit: 1024, cap: 480 }),
            "schedule lag p99 20.0 ms exceeds run.max_schedule_lag_p99_ms (10.0 ms): the open-files limit of 1024 \
             allowed only 480 devices in flight, so starts waited for a free slot (raise the hard limit, ulimit -Hn, \
             or lower the rate)",
        ),
        (
            lag(LagCause::Host { machine_p99_us: 11_000, steal_percent: Some(6.5) }),
            "schedule lag p99 20.0 ms exceeds run.max_schedule_lag_p99_ms (10.0 ms): this machine woke a plain \
             sleeping thread outside the generator's runtime 11.0 ms late at p99; the hypervisor took 6.5% of its CPU \
             time: the host, not the generator's load, held the starts back (run on a quieter or dedicated machine)",
        ),
        (
            InvalidReason::ScheduleLag {
                lag_us: 15_000,
                outside_stalls: true,
                bound_us: 10_000,
                cause: LagCause::Host { machine_p99_us: 9_000, steal_percent: None },
            },
            "schedule lag p99 outside the target's stalls 15.0 ms exceeds run.max_schedule_lag_p99_ms (10.0 ms): this \
             machine woke a plain sleeping thread outside the generator's runtime 9.0 ms late at p99: the host, not \
             the generator's load, held the starts back (run on a quieter or dedicated machine)",
        ),
        (InvalidReason::EarlyRequests(3), "3 requests were sent before their retry-after had passed (a harness bug)"),
    ];
    for (reason, text) in cases {
        assert_eq!(reason.to_string(), text);
    }
}

fn reasons_of(plan: &Plan, stalls: Option<TargetStalls>) -> Vec<InvalidReason> {
    invalid_reasons(plan, &lagging(20_000), &readings(5, 1), stalls.as_ref(), None)
}

#[test]
fn a_failing_control_that_polls_early_is_valid_and_says_what_it_is() {
    let control = |misbehave: &str| {
        let text = format!(
            "name = \"v\"\n[target]\nkind = \"embedded\"\n[devices]\ncount = 10\nmisbehave = [{misbehave}]\n\
             [arrival]\nrate = 10\n"
        );
        let file = crate::toml_file::parse(&text).expect("the scenario parses");
        Plan::resolve(file, std::path::Path::new("v.toml"), &|_| None).expect("it resolves")
    };
    let mut early = lagging(1);
    early.early_requests = 1023;
    // dpsbench's own devices: an early request is a harness bug.
    assert_eq!(invalid_reasons(&plan(), &early, &readings(0, 0), None, None), [InvalidReason::EarlyRequests(1023)]);
    assert_eq!(misbehaviour_note(&plan(), &early), None);
    // Told to poll early: the early requests are the point, and every other rule still holds.
    let poll_early = control("\"poll_early\"");
    assert!(validity(&poll_early, &early, &readings(0, 0), None, None).valid);
    let note = misbehaviour_note(&poll_early, &early).expect("a failing control says so");
    assert!(note.starts_with("a failing control") && note.contains("misbehave = poll_early"), "{note}");
    assert!(note.contains("1023 requests before their retry-after") && !note.contains("harness bug"), "{note}");
    let lagging_too = Summary { early_requests: 1023, ..lagging(20_000) };
    let reasons = invalid_reasons(&poll_early, &lagging_too, &readings(8, 1), None, None);
    assert_eq!(reasons, [lag_reason(&poll_early, 20_000, false, LagCause::Generator)]);
    // A misbehaviour that does not send early leaves an early request a harness bug.
    let no_disconnect = control("\"no_disconnect\"");
    assert_eq!(
        invalid_reasons(&no_disconnect, &early, &readings(0, 0), None, None),
        [InvalidReason::EarlyRequests(1023)]
    );
    assert!(misbehaviour_note(&no_disconnect, &early).unwrap().contains("misbehave = no_disconnect"));
}
