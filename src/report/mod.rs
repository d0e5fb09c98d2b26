//! Reports of a run, split by job: [`format`] (the files of a report folder: summary.json,
//! timeseries.csv, latency.hlog, devices.csv, and the folder read back), [`render`] (the
//! summary table, report.md and report.html, over one table model) and [`analysis`] (compare,
//! `--fail-if` expressions, merging shards). Pure but for `format::folder`, which reads a report
//! folder; the CLI writes the files.

pub mod analysis;
pub mod format;
pub mod render;

/// Every JSON output names its format one way, `dpsbench.<output>/v<N>`, so one rule tells a
/// reader which file it holds and which version.
#[cfg(test)]
#[test]
fn every_json_output_names_its_format_one_way() {
    let names = [
        crate::results::SUMMARY_SCHEMA,
        crate::conformance::suite::CONFORMANCE_SCHEMA,
        crate::emulator::client_checks::report::CLIENTS_SCHEMA,
        analysis::compare::COMPARE_SCHEMA,
    ];
    for name in names {
        let (output, version) =
            name.strip_prefix("dpsbench.").and_then(|rest| rest.split_once("/v")).unwrap_or_default();
        let lower_word = !output.is_empty() && output.chars().all(|c| c.is_ascii_lowercase());
        let number = !version.is_empty() && version.chars().all(|c| c.is_ascii_digit());
        assert!(lower_word && number, "{name} is not named dpsbench.<output>/v<N>");
    }
}

/// The summaries the tests of every part render, compare and merge.
#[cfg(test)]
pub(crate) mod tests {
    fn phase(count: u64, p50_us: u64, p99_us: u64, max_us: u64) -> serde_json::Value {
        serde_json::json!({
            "count": count, "min_us": p50_us / 2, "mean_us": p50_us, "p50_us": p50_us, "p90_us": (p50_us + p99_us) / 2,
            "p99_us": p99_us, "p999_us": max_us, "max_us": max_us
        })
    }

    /// A summary with fixed values: 1,000 devices against the embedded emulator.
    pub(crate) fn summary() -> serde_json::Value {
        serde_json::json!({
            "schema": "dpsbench.summary/v1",
            "scenario": {
                "name": "steady", "file": "scenarios/steady.toml", "devices": 1000,
                "arrival": "constant 100/s", "duration_seconds": null
            },
            "target": { "kind": "embedded", "address": "127.0.0.1:41883", "id_scope": "0ne00DPS001" },
            "host": { "hostname": "bench-1", "cpus": 8, "os": "linux-x86_64", "dpsbench_version": "0.1.0" },
            "started_at": "2026-01-02T03:04:05.0000000Z",
            "duration_seconds": 10.042,
            "partial": false,
            "validity": { "valid": true, "reasons": [], "schedule_lag_p99_us": 840, "runtime_stall_p99_us": 1_250 },
            "open_files_limit": 1_048_576,
            "notes": [],
            "devices": { "total": 1000, "assigned": 1000, "failed": 0, "aborted": 0, "not_finished": 0 },
            "flows_per_second": 99.58,
            "rates": { "offered_per_second": 100.0, "achieved_per_second": 99.9, "peak_one_second": 104 },
            "phases": {
                "schedule_lag": phase(1000, 120, 840, 1_900),
                "tcp_connect": phase(1000, 95, 410, 2_300),
                "tls_handshake": phase(1000, 2_100, 6_800, 14_000),
                "ws_upgrade": phase(0, 0, 0, 0),
                "connack": phase(1000, 310, 1_200, 3_100),
                "suback": phase(1000, 180, 700, 1_600),
                "register_accepted": phase(1000, 420, 1_900, 5_200),
                "poll": phase(1000, 380, 1_500, 4_100),
                "assigned": phase(1000, 1_004_000, 1_012_000, 1_030_000),
                "assigned_raw": phase(1000, 1_003_900, 1_011_000, 1_029_000),
                "end_to_end": phase(1000, 1_005_000, 1_013_000, 1_031_000)
            },
            "register_attempts": { "mean": 1.0, "p50": 1, "p99": 1, "max": 1 },
            "polls_per_device": { "mean": 1.0, "p50": 1, "p99": 1, "max": 1 },
            "failures": {},
            "statuses": { "200": 1000, "202": 1000 },
            "retry_after_seconds": { "1": 1000 },
            "hubs": { "hub-a.example": 497, "hub-b.example": 503 },
            "source_addresses": {},
            "conformance": {
                "DPS-TOPIC-002": { "flows": 1000, "violations": 0, "examples": [] },
                "DPS-TOPIC-003": { "flows": 1000, "violations": 0, "examples": [] }
            },
            "personalities": { "dpsbench": { "devices": 1000, "assigned": 1000, "failed": 0 } },
            "payloads": { "returned": 0, "matching": 0 },
            "stray_replies": 0,
            "early_requests": 0,
            "late_starts": 0,
            "emulator": {
                "connections": 1000, "connects_refused": 0, "registrations": 1000, "polls": 1000, "throttled": 0
            },
            "generator": {
                "cpu_user_seconds": 0.31, "cpu_system_seconds": 0.12, "cpu_us_per_device": 430.0,
                "includes_emulator": true
            }
        })
    }

    /// A verdict on three gates, one of which failed.
    pub(crate) fn slo_verdict() -> serde_json::Value {
        serde_json::json!({
            "passed": false, "judged": true,
            "gates": {
                "assigned_p99_ms": { "limit": 1000.0, "observed": 1012.0, "held": false },
                "max_failed": { "limit": 0.0, "observed": 0.0, "held": true },
                "phase_p99_ms.tls_handshake": { "limit": 50.0, "observed": 6.8, "held": true }
            }
        })
    }
}
