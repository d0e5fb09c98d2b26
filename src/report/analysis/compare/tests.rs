use super::*;
use crate::report::analysis::comparison::{Unit, unit_of};
use crate::results::RunSummary;

fn summary(edit: impl FnOnce(&mut serde_json::Value)) -> RunSummary {
    let mut value = crate::report::tests::summary();
    edit(&mut value);
    serde_json::from_value(value).expect("the test summary matches RunSummary")
}

#[test]
fn figures_cover_phases_throughput_failures_retries_and_violations() {
    let baseline = summary(|_| {});
    let current = summary(|s| {
        s["phases"]["assigned"]["p99_us"] = 1_214_400.into();
        s["failures"] = serde_json::json!({ "tls": 3 });
        s["conformance"]["DPS-TOPIC-003"]["violations"] = 2.into();
    });
    let comparison = Comparison::of(&baseline, &current);
    let p99 = comparison.get("assigned.p99").unwrap();
    assert_eq!((p99.baseline, p99.current), (1_012_000.0, 1_214_400.0));
    assert!((p99.change_percent() - 20.0).abs() < 1e-9);
    assert_eq!(p99.change(), "+202.4ms (+20.0%)");
    assert!(comparison.get("ws_upgrade.p50").is_none(), "a phase neither run measured is left out");
    assert_eq!(comparison.get("failures.tls").unwrap().change(), "+3 (new)");
    assert_eq!(comparison.get("failures.refused_5").unwrap().current, 0.0);
    assert_eq!(comparison.get("violations").unwrap().current, 2.0);
    assert_eq!(comparison.get("violations.DPS-TOPIC-003").unwrap().baseline, 0.0);
    assert_eq!(comparison.get("flows_per_second").unwrap().change(), "=");
    assert!(comparison.notes.is_empty(), "{:?}", comparison.notes);
}

#[test]
fn several_baselines_give_each_figure_its_mean_and_spread_and_a_gate_beyond_the_noise() {
    let run = |p99: u64, failed: u64| {
        summary(|s| {
            s["phases"]["assigned"]["p99_us"] = p99.into();
            s["devices"]["failed"] = failed.into();
        })
    };
    let baselines = [run(1_000_000, 0), run(1_020_000, 2), run(1_010_000, 1)];
    let refs: Vec<&RunSummary> = baselines.iter().collect();
    let current = run(1_050_000, 1);
    let comparison = Comparison::of_many(&refs, &current);
    let p99 = comparison.get("assigned.p99").unwrap();
    assert_eq!(p99.baseline, 1_010_000.0, "the mean");
    let spread = p99.spread.unwrap();
    assert_eq!((spread.runs, spread.min, spread.max), (3, 1_000_000.0, 1_020_000.0));
    assert!((spread.sd - 10_000.0).abs() < 1e-6, "{spread:?}");
    assert!((p99.change_sd().unwrap() - 4.0).abs() < 1e-9);
    let gate = |text: &str| super::super::expression::Expression::parse(text).unwrap().evaluate(&comparison);
    assert!(gate("assigned.p99 > +3sd").tripped, "4 sd beyond the noise");
    assert!(!gate("assigned.p99 > +5σ").tripped);
    assert!(gate("assigned.p99 > +3sd").observed.contains("+4.0 sd of 3 baseline runs"));
    assert!(!gate("failed > +1sd").tripped, "1 failure is the baselines' mean");
    // Baselines that agree to the last step: the floor (a thousandth of the mean) keeps a
    // step of rounding from counting as a change beyond the noise.
    let tied = [run(1_000_000, 0), run(1_000_000, 0)];
    let tied_refs: Vec<&RunSummary> = tied.iter().collect();
    let stepped = Comparison::of_many(&tied_refs, &run(1_001_000, 0));
    let p99 = stepped.get("assigned.p99").unwrap();
    assert_eq!(p99.spread.unwrap().sd, 1_000.0);
    assert!((p99.change_sd().unwrap() - 1.0).abs() < 1e-9, "{p99:?}");
    // A phase only one baseline run measured has no spread (and no zero dragging its mean).
    let mut without = run(1_000_000, 0);
    without.results.phases.remove("tls_handshake");
    let partial: Vec<&RunSummary> = vec![&without, &tied[0]];
    let tls = Comparison::of_many(&partial, &current).get("tls_handshake.p50").unwrap();
    assert_eq!(
        (tls.spread, tls.baseline),
        (None, Comparison::of(&tied[0], &current).get("tls_handshake.p50").unwrap().baseline)
    );
    // One baseline: no spread, and a gate in sd cannot trip (the CLI refuses it up front).
    let single = Comparison::of_many(&refs[..1], &current);
    assert_eq!(single, Comparison::of(&baselines[0], &current));
    assert!(!super::super::expression::Expression::parse("assigned.p99 > +1sd").unwrap().evaluate(&single).tripped);
    // The short form and the JSON say the same.
    let short = summary_text(&comparison);
    assert!(short.lines().count() < table(&comparison, "b", "c", &[]).lines().count() / 2, "{short}");
    assert!(short.contains("assigned.p99"), "{short}");
    let json: serde_json::Value = serde_json::from_slice(&json(&comparison, &["a".into()], "c", &[])).unwrap();
    let figure = json["figures"].as_array().unwrap().iter().find(|f| f["name"] == "assigned.p99").unwrap();
    assert_eq!(figure["spread"]["runs"], 3);
    assert!((figure["change_sd"].as_f64().unwrap() - 4.0).abs() < 1e-9);
}

fn summary_text(comparison: &Comparison) -> String {
    super::summary(comparison, "b", "c", &[])
}

#[test]
fn figure_names_are_known_by_pattern() {
    assert_eq!(unit_of("tls_handshake.p99.9"), Some(Unit::Micros));
    assert_eq!(unit_of("failures.timeout_poll"), Some(Unit::Count));
    assert_eq!(unit_of("flows_per_second"), Some(Unit::PerSecond));
    for bad in ["tls.p99", "assigned.p98", "failures.", "latency", "assigned"] {
        assert_ne!(unit_of(bad), Some(Unit::Micros), "{bad}");
    }
    assert_eq!(unit_of("latency"), None);
}

#[test]
fn compare_md_of_a_regression() {
    let baseline = summary(|_| {});
    let current = summary(|s| {
        s["phases"]["tls_handshake"]["p50_us"] = 2_600.into();
        s["flows_per_second"] = 91.0.into();
        s["devices"]["failed"] = 4.into();
        s["failures"] = serde_json::json!({ "timeout_poll": 4 });
        s["host"]["hostname"] = "bench-2".into();
    });
    let comparison = Comparison::of(&baseline, &current);
    let verdicts: Vec<Verdict> = ["tls_handshake.p50 > 5ms", "failed > 0"]
        .into_iter()
        .map(|e| super::super::expression::Expression::parse(e).unwrap().evaluate(&comparison))
        .collect();
    let text = String::from_utf8(markdown(&comparison, "reports/last-night", "reports/tonight", &verdicts)).unwrap();
    insta::assert_snapshot!(text);
}

#[test]
fn a_gate_on_a_latency_the_current_run_never_measured_trips_and_is_no_improvement() {
    let baseline = summary(|_| {});
    let gate = |comparison: &Comparison, text: &str| {
        super::super::expression::Expression::parse(text).unwrap().evaluate(comparison)
    };
    // Every device failed: `assigned` has no sample (its stats read 0), or is missing.
    let emptied = summary(|s| {
        s["phases"]["assigned"] = serde_json::json!({ "count": 0, "min_us": 0, "mean_us": 0, "p50_us": 0,
            "p90_us": 0, "p99_us": 0, "p999_us": 0, "max_us": 0 });
    });
    let missing = summary(|s| {
        s["phases"].as_object_mut().unwrap().remove("assigned");
    });
    for current in [&emptied, &missing] {
        let comparison = Comparison::of(&baseline, current);
        for text in ["assigned.p99 > +10%", "assigned.p50 > 5ms", "assigned.max >= +1sd"] {
            let verdict = gate(&comparison, text);
            assert!(verdict.tripped, "{text}: {verdict:?}");
            assert!(verdict.observed.contains("no samples"), "{verdict:?}");
            assert!(!verdict.observed.contains("-100.0%"), "{verdict:?}");
        }
        let table = table(&comparison, "b", "c", &[]);
        let row = table.lines().find(|l| l.starts_with("assigned.p99")).unwrap();
        assert!(row.contains("no samples") && !row.contains("0us"), "{row}");
        // Over several baselines too.
        let many = Comparison::of_many(&[&baseline, &baseline], current);
        assert!(gate(&many, "assigned.p99 > +3sd").tripped);
        // A phase the current run measured still gates by its change.
        assert!(!gate(&comparison, "tls_handshake.p99 > +10%").tripped);
    }
}

#[test]
fn every_gate_on_a_run_that_started_no_device_trips() {
    let baseline = summary(|_| {});
    let empty = summary(|s| {
        s["devices"] = serde_json::json!({ "total": 0, "assigned": 0, "failed": 0, "aborted": 0,
            "not_finished": 0, "not_started": 0 });
        s["phases"] = serde_json::json!({});
        s["register_attempts"]["mean"] = 0.0.into();
    });
    let comparison = Comparison::of(&baseline, &empty);
    for text in ["failed > 0", "register_attempts.mean > +10%", "throttled > 0", "assigned.p99 > +10%"] {
        let verdict = super::super::expression::Expression::parse(text).unwrap().evaluate(&comparison);
        assert!(verdict.tripped, "{text}: {verdict:?}");
        assert!(verdict.observed.contains("started no device"), "{verdict:?}");
    }
}
