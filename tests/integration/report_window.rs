//! `report.html`'s latency over time: each phase's heatmap and the seconds it embeds, and a
//! window of seconds chosen in the page (`#window=FIRST-LAST`) recomputed by its script in a
//! headless browser, held to the Python HdrHistogram reader adding up the same intervals.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::reports::{browser, dump_dom};
use crate::support::binary::{dpsbench, temp_dir, text};
use crate::support::scenario::Scenario;
use dpsbench::metrics::Phase;

/// The window table's figures and the Python reader's names for them.
const FIGURES: [(&str, &str); 6] = [
    ("count", "count"),
    ("p50", "p50_us"),
    ("p90", "p90_us"),
    ("p99", "p99_us"),
    ("p999", "p999_us"),
    ("max", "max_us"),
];

/// A run of several seconds (400 devices at 100/s, some throttled) into `dir/out`.
fn run(dir: &Path) -> std::path::PathBuf {
    let scenario = Scenario::embedded("window")
        .target("retry_after_seconds", 1)
        .target("assign_delay_ms", 30)
        .devices(400)
        .device("registration_id", "win-{index:04}")
        .rate(100.0)
        .run("max_duration_seconds", 60)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(dir, "window.toml");
    let out = dir.join("out");
    let output = dpsbench(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"], &[]);
    assert!(matches!(output.status.code(), Some(0 | 1)), "stderr: {}", text(&output.stderr));
    out
}

/// The figures the page shows for `phase` in its window table, from the DOM: field to value
/// (empty where the window holds none).
fn window_row(dom: &str, phase: &str) -> Vec<(String, String)> {
    let row = dom.split(&format!("<tr data-phase=\"{phase}\">")).nth(1).unwrap_or_else(|| panic!("no row {phase}"));
    let row = &row[..row.find("</tr>").unwrap()];
    row.split("data-field=\"")
        .skip(1)
        .map(|cell| {
            let field = cell[..cell.find('"').unwrap()].to_string();
            let value = cell.split("data-value=\"").nth(1).unwrap();
            (field, value[..value.find('"').unwrap()].to_string())
        })
        .collect()
}

#[test]
fn a_window_of_seconds_recomputes_exactly_what_the_python_reader_adds_up() {
    let Some(browser) = browser() else { return };
    let dir = temp_dir("window");
    let out = run(&dir);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // Every logged phase is a heatmap, and the page embeds its seconds.
    assert!(html.contains("<figure class=\"chart heatmap\" id=\"heatmap-assigned\"><svg"), "an assigned heatmap");
    assert!(html.contains("<script type=\"application/json\" id=\"latency-intervals\">{\"first\":"));
    // Nothing is fetched: the only URL is the SVG namespace's name.
    let fetched = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for external in ["http://", "https://", " src=", "<link", "url(", "@import", "fetch(", "XMLHttpRequest"] {
        assert!(!fetched.contains(external), "the page must fetch nothing, found {external:?}");
    }

    let log = dpsbench::report::format::hlog::read(&std::fs::read(out.join("latency.hlog")).unwrap()).unwrap();
    let seconds: Vec<u64> =
        log.intervals_of(Phase::Assigned).map(|i| i.start.as_secs()).collect::<BTreeSet<_>>().into_iter().collect();
    assert!(seconds.len() >= 4, "a run of several seconds: {seconds:?}");
    let (first, last) = (seconds[1], seconds[seconds.len() - 2]);

    let python = crate::support::python::tools_python();
    let output = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/read_hlog.py"))
        .arg(out.join("latency.hlog"))
        .args(["--window", &format!("{first}-{last}")])
        .output()
        .unwrap();
    assert!(output.status.success(), "the Python reader failed: {}", text(&output.stderr));
    let python: Value = serde_json::from_slice(&output.stdout).unwrap();

    let page = format!("file://{}#window={first}-{last}", out.join("report.html").display());
    let (console, dom) = dump_dom(&browser, &dir, &page);
    assert!(console.is_empty(), "the page logged to the console: {console:#?}");
    let summary = crate::support::schema::read_summary(&out);
    assert_window_is_pythons(&dom, &summary, &python, (first, last));
    // A drag across a heatmap, right to left, from its last second to its first: the copy of the
    // page ends with a script that plays the mouse events at those seconds' columns.
    let dragged = out.join("dragged.html");
    let drag = DRAG.replace("FIRST", &first.to_string()).replace("LAST", &last.to_string());
    std::fs::write(&dragged, html.replace("</body>", &format!("{drag}</body>"))).unwrap();
    let (console, dom) = dump_dom(&browser, &dir, &format!("file://{}", dragged.display()));
    assert!(console.is_empty(), "the page logged to the console: {console:#?}");
    assert_window_is_pythons(&dom, &summary, &python, (first, last));
    let window_count = python["assigned"]["count"].as_u64().unwrap();
    assert!(
        window_count > 0 && window_count < summary["phases"]["assigned"]["count"].as_u64().unwrap(),
        "the window is a part of the run: {window_count}"
    );
}

/// Plays a drag on the first heatmap from second LAST's column to second FIRST's, as a user's
/// mouse would (down, move, up), at the columns' laid-out positions.
const DRAG: &str = "<script>(function(){var svg=document.querySelector('svg.heatmap'),box=svg.getBoundingClientRect(),\
d=svg.dataset,x0=+d.x0,n=+d.last-+d.first+1,scale=box.width/svg.viewBox.baseVal.width,y=box.top+120*scale;\
function at(second){return box.left+(x0+(second-+d.first+0.5)*(+d.x1-x0)/n)*scale;}\
function play(target,type,second){target.dispatchEvent(new MouseEvent(type,{clientX:at(second),clientY:y,bubbles:true}));}\
play(svg,'mousedown',LAST);play(svg,'mousemove',FIRST);play(document,'mouseup',FIRST);})();</script>";

/// The window table of `dom` shows the window `first..=last` and, phase by phase, what the
/// Python reader computed adding up that window's intervals.
fn assert_window_is_pythons(dom: &str, summary: &Value, python: &Value, (first, last): (u64, u64)) {
    assert!(dom.contains(&format!("data-window=\"{first}-{last}\"")), "the window: {}", &dom[..2000]);
    let mut compared = 0;
    for phase in Phase::ALL {
        let name = phase.as_str();
        if summary["phases"][name]["count"] == 0 {
            assert!(!dom.contains(&format!("<tr data-phase=\"{name}\">")), "{name}: no row without data");
            continue;
        }
        let row = window_row(dom, name);
        assert_eq!(row.len(), FIGURES.len(), "{name}: {row:?}");
        let expected = &python[name];
        for ((field, value), (figure, python_field)) in row.iter().zip(FIGURES) {
            assert_eq!(field, figure);
            match expected.get(python_field) {
                Some(number) => assert_eq!(value, &number.to_string(), "{name} {field} over seconds {first}-{last}"),
                // No interval of the phase in the window: a count of 0 and no percentiles.
                None => assert_eq!(value, if field == "count" { "0" } else { "" }, "{name} {field}"),
            }
        }
        compared += 1;
    }
    assert!(compared >= 9, "every phase of an MQTT flow compared");
}
