//! What a run leaves for people and pipelines: `[slo]` gates and their exit codes, `report.md`,
//! `report render` and `report compare`.

use std::path::Path;

use serde_json::Value;

use crate::support::binary::{dpsbench, temp_dir, text, write};
use crate::support::scenario::{Scenario, table};
use crate::support::schema::{check_schema, read_summary};

/// 40 devices against the embedded emulator with gates: `max_failed` holds, an `assigned` p99
/// of 1 us cannot (the emulator waits 20 ms before assigning).
fn gated() -> Scenario {
    Scenario::embedded("gated")
        .target("retry_after_seconds", 0)
        .target("assign_delay_ms", 20)
        .devices(40)
        .rate(400.0)
        .run("max_schedule_lag_p99_ms", 5000)
        .slo("max_failed", 0)
        .slo("assigned_p99_ms", 0.001)
        .slo("phase_p99_ms", table([("tls_handshake", 60000.into())]))
}

fn summary(dir: &Path) -> Value {
    read_summary(dir)
}

#[test]
fn a_failed_gate_exits_1_and_every_report_says_which() {
    let dir = temp_dir("slo-fail");
    let scenario = gated().write(&dir, "gated.toml");
    let out = dir.join("out");
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"], &[]);
    assert_eq!(output.status.code(), Some(1), "stderr: {}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("SLO gates FAILED"), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("assigned_p99_ms") && l.ends_with("FAILED")), "{stdout}");
    let summary = summary(&out);
    let schema: Value =
        serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/reports/summary.schema.json")))
            .unwrap();
    check_schema(&schema, &summary, "summary");
    let slo = &summary["slo"];
    assert_eq!((&slo["passed"], &slo["judged"]), (&Value::Bool(false), &Value::Bool(true)), "{slo}");
    assert_eq!(slo["gates"]["max_failed"], serde_json::json!({ "limit": 0.0, "observed": 0.0, "held": true }));
    let p99 = &slo["gates"]["assigned_p99_ms"];
    assert_eq!(p99["held"], false);
    assert!(p99["observed"].as_f64().unwrap() >= 20.0, "{p99}");
    assert_eq!(slo["gates"]["phase_p99_ms.tls_handshake"]["held"], true);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("❌ failed: assigned_p99_ms"), "{report}");
    assert!(report.contains("| `max_failed` | 0 | 0 | ✅ held |"), "{report}");

    // `report render` rebuilds the same report.md from the folder's files.
    std::fs::remove_file(out.join("report.md")).unwrap();
    let rendered = dpsbench(&["report", "render", out.to_str().unwrap()], &[]);
    assert_eq!(rendered.status.code(), Some(0), "{}", text(&rendered.stderr));
    assert_eq!(std::fs::read_to_string(out.join("report.md")).unwrap(), report);

    // Compared with itself, nothing trips; a worse copy trips the gates that see it.
    let compare_out = dir.join("compare");
    let examples = ["assigned.p99 > +10%", "tls_handshake.p50 > 5ms", "failed > 0", "flows_per_second < -5%"];
    let mut args = vec!["report", "compare", out.to_str().unwrap(), out.to_str().unwrap()];
    for example in &examples {
        args.extend(["--fail-if", example]);
    }
    args.extend(["--out", compare_out.to_str().unwrap()]);
    let same = dpsbench(&args, &[]);
    assert_eq!(same.status.code(), Some(0), "{}{}", text(&same.stdout), text(&same.stderr));
    let table = text(&same.stdout);
    assert!(table.contains("assigned.p99") && table.contains("flows_per_second"), "{table}");
    assert_eq!(table.matches("ok      --fail-if").count(), 4, "{table}");
    let compare_md = std::fs::read_to_string(compare_out.join("compare.md")).unwrap();
    assert!(compare_md.contains("✅ no regression gate tripped"), "{compare_md}");

    let worse = dir.join("worse");
    std::fs::create_dir_all(&worse).unwrap();
    let mut edited = summary.clone();
    edited["devices"]["failed"] = 3.into();
    edited["failures"] = serde_json::json!({ "timeout_poll": 3 });
    let flows = summary["flows_per_second"].as_f64().unwrap();
    edited["flows_per_second"] = (flows * 0.5).into();
    std::fs::write(worse.join("summary.json"), edited.to_string()).unwrap();
    args[3] = worse.to_str().unwrap();
    let regressed = dpsbench(&args, &[]);
    assert_eq!(regressed.status.code(), Some(1), "{}{}", text(&regressed.stdout), text(&regressed.stderr));
    let table = text(&regressed.stdout);
    assert!(table.contains("TRIPPED --fail-if failed > 0: failed 0 -> 3"), "{table}");
    assert!(table.contains("TRIPPED --fail-if flows_per_second < -5%"), "{table}");
    assert!(table.contains("failures.timeout_poll"), "{table}");
}

#[test]
fn an_invalid_run_exits_3_and_its_gates_are_not_judged() {
    // 20 devices at 1,000/s through one in-flight slot: starts fall far behind the plan.
    let dir = temp_dir("slo-invalid");
    let scenario = Scenario::cannot_keep_its_plan().slo("max_failed", 0).write(&dir, "invalid.toml");
    let out = dir.join("out");
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"], &[]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("SLO gates NOT JUDGED"), "{}", text(&output.stdout));
    let slo = &summary(&out)["slo"];
    assert_eq!((&slo["passed"], &slo["judged"]), (&Value::Bool(false), &Value::Bool(false)), "{slo}");
    assert!(slo["reason"].as_str().unwrap().contains("schedule lag"), "{slo}");
    assert_eq!(slo["gates"]["max_failed"]["held"], Value::Null);
}

#[test]
fn an_unknown_phase_in_slo_is_refused_with_exit_2_naming_file_and_field() {
    let dir = temp_dir("slo-phase");
    let scenario = gated().slo("phase_p99_ms", table([("handshake", 5.into())])).write(&dir, "bad.toml");
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", dir.join("out").to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("bad.toml: field `slo.phase_p99_ms`: unknown phase \"handshake\""), "{stderr}");
    assert!(stderr.contains("tls_handshake"), "{stderr}");
}

#[test]
fn report_commands_refuse_bad_input_with_exit_2_naming_it() {
    let dir = temp_dir("report-bad");
    let missing = dir.join("missing");
    let not_a_report = dir.join("empty");
    std::fs::create_dir_all(&not_a_report).unwrap();
    let other_schema = dir.join("other");
    std::fs::create_dir_all(&other_schema).unwrap();
    write(&other_schema, "summary.json", "{\"schema\": \"k6.summary/v2\"}");
    let cases: [(Vec<&str>, String); 5] = [
        (
            vec!["report", "render", missing.to_str().unwrap()],
            format!("report folder {} does not exist", missing.display()),
        ),
        (
            vec!["report", "render", not_a_report.to_str().unwrap()],
            format!("{} is not a dpsbench report folder: it has no summary.json", not_a_report.display()),
        ),
        (
            vec!["report", "compare", other_schema.to_str().unwrap(), not_a_report.to_str().unwrap()],
            "schema \"k6.summary/v2\" is not dpsbench.summary/v1".into(),
        ),
        (
            vec!["report", "compare", not_a_report.to_str().unwrap(), missing.to_str().unwrap()],
            "is not a dpsbench report folder".into(),
        ),
        (
            vec!["report", "compare", "a", "b", "--fail-if", "assigned.p99 >> 3"],
            "--fail-if \"assigned.p99 >> 3\"".into(),
        ),
    ];
    for (args, expected) in cases {
        let output = dpsbench(&args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
    }
}

/// The example nightly workflow parses as YAML with the shape a GitHub runner needs, and what it
/// runs exists: the scenario, and `--fail-if` expressions that parse.
#[test]
fn the_nightly_workflow_parses_and_runs_what_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workflow = root.join("deploy/nightly/dpsbench-nightly.yml");
    let output = std::process::Command::new(crate::support::python::tools_python())
        .arg(root.join("tests/tools/check_yaml.py"))
        .arg(&workflow)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
    let yaml = std::fs::read_to_string(&workflow).unwrap();
    assert!(yaml.contains("dpsbench run scenarios/nightly.toml") && root.join("scenarios/nightly.toml").exists());
    let expressions: Vec<&str> = yaml
        .lines()
        .filter_map(|line| line.trim().strip_prefix("--fail-if '"))
        .map(|rest| rest.split('\'').next().unwrap())
        .collect();
    assert_eq!(expressions.len(), 4, "{expressions:?}");
    for expression in expressions {
        dpsbench::report::analysis::expression::Expression::parse(expression).unwrap();
    }
}
