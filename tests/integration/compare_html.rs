//! `report compare --out DIR` writes compare.html beside compare.md: three real runs compared,
//! the page read back against each run's summary.json and loaded in a headless browser.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::reports::{browser, dump_dom};
use crate::support::binary::{dpsbench, temp_dir, text};
use crate::support::scenario::Scenario;
use crate::support::schema::read_summary;

/// A small run against the embedded emulator, assigning after `assign_delay_ms`, into `dir/name`.
fn small_run(dir: &Path, name: &str, assign_delay_ms: i64) -> (PathBuf, Value) {
    let scenario = Scenario::embedded(name)
        .target("retry_after_seconds", 0)
        .target("assign_delay_ms", assign_delay_ms)
        .devices(36)
        .device("registration_id", "cmp-{index:03}")
        .rate(60.0)
        .run("max_duration_seconds", 60)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(dir, &format!("{name}.toml"));
    let out = dir.join(name);
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"], &[]);
    assert!(matches!(output.status.code(), Some(0 | 1)), "stderr: {}", text(&output.stderr));
    let summary = read_summary(&out);
    (out, summary)
}

/// The statistics of a phase row and their keys in summary.json.
const STATS: [(&str, &str); 5] =
    [("p50", "p50_us"), ("p90", "p90_us"), ("p99", "p99_us"), ("p99.9", "p999_us"), ("max", "max_us")];

/// The number in attribute `attribute` after `marker` inside `row`.
fn number_after(row: &str, marker: &str, attribute: &str) -> f64 {
    let at = row.find(marker).unwrap_or_else(|| panic!("no {marker} in {row}"));
    let rest = &row[at..];
    let start = rest.find(&format!("{attribute}=\"")).unwrap_or_else(|| panic!("no {attribute} in {rest}"));
    let value = &rest[start + attribute.len() + 2..];
    value[..value.find('"').unwrap()].parse().unwrap_or_else(|e| panic!("{value}: {e}"))
}

/// The element of `html` that opens with `opening`, up to `closing`.
fn element<'a>(html: &'a str, opening: &str, closing: &str) -> &'a str {
    let at = html.find(opening).unwrap_or_else(|| panic!("no {opening}"));
    let end = html[at..].find(closing).unwrap_or_else(|| panic!("{opening} is not closed"));
    &html[at..at + end]
}

#[test]
fn compare_html_overlays_three_runs_with_deltas_trend_and_verdicts_first() {
    let dir = temp_dir("compare-html");
    let runs: Vec<(PathBuf, Value)> =
        [("night-1", 5), ("night-2", 25), ("tonight", 60)].iter().map(|(n, d)| small_run(&dir, n, *d)).collect();
    let out = dir.join("compared");
    let gates = ["assigned.p99 > +10%", "violations > 1000"];
    let mut args = vec!["report", "compare"];
    args.extend(runs.iter().map(|(folder, _)| folder.to_str().unwrap()));
    for gate in gates {
        args.extend(["--fail-if", gate]);
    }
    args.extend(["--out", out.to_str().unwrap()]);
    let compared = dpsbench(&args, &[]);
    assert!(matches!(compared.status.code(), Some(0 | 1)), "{}", text(&compared.stderr));
    assert!(out.join("compare.md").is_file());
    let html = std::fs::read_to_string(out.join("compare.html")).expect("compare.html is written");

    // The verdicts first, each as the terminal says it (tripped or held, what it observed).
    let terminal = text(&compared.stdout);
    let verdicts = html.find("id=\"verdicts\"").expect("a verdicts section");
    assert!(verdicts < html.find("id=\"curves\"").unwrap() && verdicts < html.find("id=\"deltas\"").unwrap());
    for gate in gates {
        let line = terminal.lines().find(|l| l.contains(&format!("--fail-if {gate}:"))).expect("the gate's line");
        let observed = line.split_once(": ").unwrap().1.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let row = element(&html, &format!("<code>--fail-if {}</code>", gate.replace('>', "&gt;")), "</tr>");
        let word = if line.starts_with("TRIPPED") { "tripped" } else { "held" };
        assert!(row.contains(&observed) && row.contains(word), "{gate}: {row} vs {line}");
    }

    // Per phase: one curve per run that measured it, every run folder named in the legend;
    // a phase no run measured says "no data" and why.
    let mut curves = 0;
    for phase in dpsbench::metrics::Phase::ALL {
        let name = phase.as_str();
        let measured = runs.iter().filter(|(_, s)| s["phases"][name]["count"].as_u64().unwrap_or(0) > 0).count();
        if measured == 0 {
            let line = element(&html, &format!("<p class=\"no-data\" id=\"curves-{name}\""), "</p>");
            assert!(line.contains("no data: "), "{line}");
            continue;
        }
        let figure = element(&html, &format!("<figure class=\"chart\" id=\"curves-{name}\""), "</figure>");
        assert_eq!(figure.matches("class=\"run-curve\"").count(), measured, "{name}");
        for (folder, _) in &runs {
            assert!(figure.contains(&format!("<title>{}</title>", folder.display())), "{name}: {folder:?}");
        }
        curves += measured;
    }
    assert!(curves >= 3 * 8, "{curves} curves");
    assert!(html.contains("id=\"curves-ws_upgrade\"") && html.contains("no run connected over WebSocket"));

    // The deltas: the current run against the baselines' mean, as summary.json says.
    let (current, baselines) = runs.split_last().unwrap();
    let mut rows = 0;
    for phase in ["tcp_connect", "tls_handshake", "connack", "register_accepted", "assigned", "end_to_end"] {
        for (stat, key) in STATS {
            let row = element(&html, &format!("<tr data-figure=\"{phase}.{stat}\""), "</tr>");
            let value = |s: &Value| s["phases"][phase][key].as_f64().unwrap();
            let mean = baselines.iter().map(|(_, s)| value(s)).sum::<f64>() / baselines.len() as f64;
            let now = value(&current.1);
            assert_eq!(number_after(row, "class=\"baseline\"", "data-value"), mean, "{phase}.{stat}: {row}");
            assert_eq!(number_after(row, "class=\"current\"", "data-value"), now, "{phase}.{stat}: {row}");
            if now != mean {
                let percent = number_after(row, "class=\"percent\"", "data-percent");
                assert!((percent - (now - mean) / mean * 100.0).abs() < 1e-9, "{row}");
            }
            assert_eq!(row.contains("class=\"worse\""), now > mean, "the worse mark: {row}");
            rows += 1;
        }
    }
    assert_eq!(rows, 30);
    assert!(html.contains("mean of 2 baselines"));

    // The trend strip: each figure's point per run, in the order given.
    let trend = element(&html, "<section id=\"trend\"", "</section>");
    for (figure, value) in [
        ("assigned.p99", (|s: &Value| s["phases"]["assigned"]["p99_us"].as_f64().unwrap()) as fn(&Value) -> f64),
        ("flows_per_second", |s: &Value| s["flows_per_second"].as_f64().unwrap()),
    ] {
        let strip = element(trend, &format!("<svg class=\"trend\" data-figure=\"{figure}\""), "</svg>");
        for (index, (_, summary)) in runs.iter().enumerate() {
            let marker = format!("data-run=\"{index}\"");
            assert_eq!(number_after(strip, &marker, "data-value"), value(summary), "{figure} run {index}");
        }
    }

    // Nothing loads from the network: the only address is the SVG namespace, which names.
    let page = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for external in ["<link", " src=", "url(", "@import", "http://", "https://"] {
        assert!(!page.contains(external), "compare.html refers to {external}");
    }

    let Some(browser) = browser() else { return };
    let url = format!("file://{}", out.join("compare.html").display());
    let (console, dom) = dump_dom(&browser, &dir, &url);
    assert!(console.is_empty(), "the page logged to the console: {console:#?}");
    assert!(
        dom.contains(&format!("data-curves=\"{curves}\"")),
        "every curve laid out: {}",
        &dom[..dom.len().min(1500)]
    );
    let names = 3 * html.matches("<figure class=\"chart\"").count();
    assert!(dom.contains(&format!("data-legend-names=\"{names}\"")), "{}", &dom[..dom.len().min(1500)]);
    assert!(dom.contains(&format!("data-legend-names-whole=\"{names}\"")), "a legend name was cut short");
}
