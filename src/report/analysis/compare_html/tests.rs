use super::*;
use crate::metrics::PhaseHistograms;
use crate::report::analysis::expression::Expression;
use crate::results::RunSummary;

fn summary(edit: impl FnOnce(&mut serde_json::Value)) -> RunSummary {
    let mut value = crate::report::tests::summary();
    edit(&mut value);
    serde_json::from_value(value).expect("the test summary matches RunSummary")
}

/// Histograms of every phase the summary measured: `count` values around its p50.
fn latency_of(summary: &RunSummary) -> PhaseHistograms {
    let mut histograms = PhaseHistograms::new();
    for phase in Phase::ALL {
        let Some(stats) = summary.results.phase(phase).filter(|p| p.count > 0) else { continue };
        let mut histogram = crate::metrics::latency_histogram();
        for step in 0..stats.count {
            histogram.record(stats.p50_us + step % 50).expect("in range");
        }
        histograms.add(phase, &histogram).expect("same bounds");
    }
    histograms
}

fn page_text(runs: &[ChartedRun<'_>], comparison: &Comparison, verdicts: &[Verdict]) -> String {
    String::from_utf8(page(runs, comparison, verdicts)).expect("UTF-8")
}

#[test]
fn two_runs_have_curves_deltas_and_verdicts_and_no_trend() {
    let baseline = summary(|_| {});
    let current = summary(|s| s["phases"]["assigned"]["p99_us"] = 1_214_400.into());
    let (base_latency, current_latency) = (latency_of(&baseline), latency_of(&current));
    let runs = [
        ChartedRun { label: "reports/night-1".into(), summary: &baseline, latency: Ok(&base_latency) },
        ChartedRun { label: "reports/tonight".into(), summary: &current, latency: Ok(&current_latency) },
    ];
    let comparison = Comparison::of(&baseline, &current);
    let verdicts: Vec<Verdict> = ["assigned.p99 > +10%", "failed > 0"]
        .into_iter()
        .map(|e| Expression::parse(e).expect("parses").evaluate(&comparison))
        .collect();
    let html = page_text(&runs, &comparison, &verdicts);
    assert!(html.find("id=\"verdicts\"") < html.find("id=\"curves\""), "the verdicts come first");
    assert!(html.contains("1 of 2 gates tripped."), "{html}");
    assert!(html.contains("<td class=\"tripped\">tripped</td>") && html.contains("<td class=\"held\">held</td>"));
    assert!(html.contains("assigned.p99 1.01s -&gt; 1.21s (+202.4ms (+20.0%))"), "the observed values: {html}");
    let assigned = &html[html.find("id=\"curves-assigned\"").expect("a chart")..];
    let assigned = &assigned[..assigned.find("</figure>").expect("closed")];
    assert_eq!(assigned.matches("class=\"run-curve\"").count(), 2, "{assigned}");
    assert!(assigned.contains("<title>reports/night-1</title>") && assigned.contains("<title>reports/tonight</title>"));
    assert!(html.contains("<p class=\"no-data\" id=\"curves-ws_upgrade\" data-phase=\"ws_upgrade\">ws_upgrade: no data: no run connected over WebSocket</p>"), "{html}");
    let row = &html[html.find("<tr data-figure=\"assigned.p99\"").expect("a row")..];
    let row = &row[..row.find("</tr>").expect("closed")];
    assert!(
        row.contains("class=\"worse\"") && row.contains("data-value=\"1012000\"") && row.contains("+20.0%"),
        "{row}"
    );
    assert!(html.contains("<th>baseline</th>"));
    assert!(!html.contains("id=\"trend\""), "two runs are no series");
}

#[test]
fn a_run_without_latencies_or_samples_says_so_and_a_series_of_three_has_a_trend() {
    let night = summary(|_| {});
    let later = summary(|s| s["flows_per_second"] = 90.5.into());
    let failed = summary(|s| {
        s["phases"].as_object_mut().expect("an object").remove("assigned");
        s["flows_per_second"] = 0.0.into();
    });
    let (night_latency, failed_latency) = (latency_of(&night), latency_of(&failed));
    let runs = [
        ChartedRun { label: "n1".into(), summary: &night, latency: Ok(&night_latency) },
        ChartedRun { label: "n2".into(), summary: &later, latency: Err("the folder has no latency.hlog".into()) },
        ChartedRun { label: "n3".into(), summary: &failed, latency: Ok(&failed_latency) },
    ];
    let comparison = Comparison::of_many(&[&night, &later], &failed);
    let html = page_text(&runs, &comparison, &[]);
    assert!(html.contains("No <code>--fail-if</code> given"), "{html}");
    let assigned = &html[html.find("id=\"curves-assigned\"").expect("a chart")..];
    let assigned = &assigned[..assigned.find("</figure>").expect("closed")];
    assert_eq!(assigned.matches("class=\"run-curve\" data-run=\"0\"").count(), 1, "{assigned}");
    assert_eq!(assigned.matches("class=\"run-curve\"").count(), 1, "{assigned}");
    assert!(assigned.contains("n2: no curve: the folder has no latency.hlog"), "{assigned}");
    assert!(assigned.contains("n3: no sample of assigned"), "{assigned}");
    assert!(assigned.contains("<title>n3</title>"), "every run keeps its legend entry: {assigned}");
    let row = &html[html.find("<tr data-figure=\"assigned.p99\"").expect("a row")..];
    let row = &row[..row.find("</tr>").expect("closed")];
    assert!(row.contains("no samples") && row.contains("class=\"worse\""), "{row}");
    assert!(html.contains("mean of 2 baselines"));
    let trend = &html[html.find("<section id=\"trend\"").expect("a trend strip")..];
    let flows = &trend[trend.find("data-figure=\"flows_per_second\"").expect("flows/s")..];
    for (run, value) in [(0, "99.58"), (1, "90.5"), (2, "0")] {
        assert!(flows.contains(&format!("data-run=\"{run}\" data-value=\"{value}\"")), "{run}: {flows}");
    }
    let p99 = &trend[trend.find("data-figure=\"assigned.p99\"").expect("assigned p99")..];
    let p99 = &p99[..p99.find("</svg>").expect("closed")];
    assert_eq!(p99.matches("<circle").count(), 2, "the run without an assigned device has no point: {p99}");
}
