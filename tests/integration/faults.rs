//! Faults on demand: each scenario of `scenarios/faults/` runs against the embedded emulator (on
//! virtual time) and must end as its `# expect:` comments say, with every device accounted for,
//! none left running, and the emulator's count of the faults it injected in the summary.

use std::path::{Path, PathBuf};

use dpsbench::runner::{self, RunSummary};
use dpsbench::scenario::Plan;
use tokio::sync::watch;

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/faults");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// One `# expect:` line: `assigned = 4`, `failure timeout_register = 4`, `fault throttle >= 8`,
/// `failure_prefix status_5 = 4`.
#[derive(Debug)]
struct Expectation {
    what: Vec<String>,
    at_least: bool,
    value: u64,
}

fn expectations(text: &str) -> Vec<Expectation> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# expect: "))
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (what, rest) = words.split_at(words.len() - 2);
            assert!(rest[0] == "=" || rest[0] == ">=", "bad expectation {line:?}");
            Expectation {
                what: what.iter().map(|w| w.to_string()).collect(),
                at_least: rest[0] == ">=",
                value: rest[1].parse().unwrap(),
            }
        })
        .collect()
}

fn observed(summary: &RunSummary, what: &[String]) -> u64 {
    let devices = &summary.results.devices;
    let faults = &summary.emulator.as_ref().expect("an embedded run reports its emulator").faults;
    match what {
        [field] if field == "assigned" => devices.assigned,
        [field] if field == "failed" => devices.failed,
        [kind, label] if kind == "failure" => summary.results.failures.get(label).copied().unwrap_or(0),
        // Failures whose label starts with one of the comma-separated prefixes.
        [kind, prefixes] if kind == "failure_prefix" => summary
            .results
            .failures
            .iter()
            .filter(|(label, _)| prefixes.split(',').any(|prefix| label.starts_with(prefix)))
            .map(|(_, n)| n)
            .sum(),
        [kind, label] if kind == "fault" => faults.get(label).copied().unwrap_or(0),
        _ => panic!("unknown expectation {what:?}"),
    }
}

async fn run(path: &Path) -> RunSummary {
    let plan = Plan::load(path, &|_| None).unwrap();
    let (_no_interrupts, interrupts) = watch::channel(0);
    runner::run(&plan, interrupts, |_| {}).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn every_fault_scenario_ends_as_its_comment_says() {
    let files = scenarios();
    assert_eq!(files.len(), 11, "one scenario per fault: {files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = expectations(&text);
        assert!(!expected.is_empty(), "{} states no expected outcome", path.display());
        let summary = run(&path).await;
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let devices = &summary.results.devices;
        eprintln!(
            "{name}: {devices:?} {:?} {:?}",
            summary.results.failures,
            summary.emulator.as_ref().map(|e| &e.faults)
        );
        assert_eq!(devices.total, devices.assigned + devices.failed + devices.aborted + devices.not_finished, "{name}");
        assert_eq!(summary.scenario.devices, devices.total, "{name}: every planned device started");
        // Every device ended by itself, within its flow deadline (30 s) after the last start.
        assert_eq!((devices.aborted, devices.not_finished), (0, 0), "{name}");
        assert!(!summary.partial && summary.duration_seconds < 40.0, "{name}: {}", summary.duration_seconds);
        let failures: u64 = summary.results.failures.values().sum();
        assert_eq!(failures, devices.failed, "{name}: every failure has its kind");
        // The fault named by the file was injected.
        assert!(summary.emulator.as_ref().unwrap().faults.contains_key(&name), "{name}");
        for expectation in expected {
            let value = observed(&summary, &expectation.what);
            let holds = if expectation.at_least { value >= expectation.value } else { value == expectation.value };
            assert!(holds, "{name}: expected {expectation:?}, observed {value}");
        }
    }
}
