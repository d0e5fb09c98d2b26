//! Tests of the catalogue: well-formed entries, the passive and probe wiring, the deviations it
//! names, and the table in `docs/conformance.md` kept in step with it.

use std::collections::BTreeSet;

use super::*;
use crate::conformance::probes::table::PROBES;
use crate::emulator::Deviations;
use crate::grading::docs::assert_docs_hold;

#[test]
fn ids_are_unique_and_well_formed() {
    let mut seen = BTreeSet::new();
    for check in CATALOGUE {
        assert!(seen.insert(check.id), "{} twice", check.id);
        let parts: Vec<&str> = check.id.split('-').collect();
        assert!(parts.len() == 3 && parts[0] == "DPS" && parts[2].len() == 3, "{}", check.id);
        assert!(!check.title.is_empty() && !check.statement.is_empty());
    }
    assert!(find("DPS-TLS-001").is_some());
    assert!(find("DPS-NOPE-001").is_none());
}

#[test]
fn every_passive_check_has_one_entry_judged_by_the_lifecycle() {
    for check in CATALOGUE {
        assert_eq!(check.kind == Kind::Passive, check.passive.is_some(), "{}", check.id);
    }
    for passive_check in PassiveCheck::ALL {
        let entries: Vec<&str> = CATALOGUE.iter().filter(|c| c.passive == Some(passive_check)).map(|c| c.id).collect();
        assert_eq!(entries.len(), 1, "{passive_check:?}: {entries:?}");
        assert_eq!(passive_check.id(), entries[0]);
        assert!(passive(passive_check).judged_by(&table::LIFECYCLE), "{passive_check:?}");
    }
}

#[test]
fn every_check_has_a_probe_of_the_table_and_every_probe_a_check() {
    let names: BTreeSet<&str> = PROBES.iter().map(|p| p.name).collect();
    assert_eq!(names.len(), PROBES.len(), "probe names are unique");
    for check in CATALOGUE {
        assert!(!check.probes.is_empty(), "{} has no probe", check.id);
        for probe in check.probes {
            assert!(names.contains(probe.name), "{}: {} is not in the probe table", check.id, probe.name);
        }
    }
    for probe in PROBES {
        assert!(CATALOGUE.iter().any(|c| c.judged_by(probe)), "{} judges no check", probe.name);
    }
    assert_eq!(PROBES.last().map(|p| p.name), Some("throttling"), "throttling spends the quota: it runs last");
}

#[test]
fn billable_checks_are_those_whose_probes_create_registrations() {
    let billable: BTreeSet<&str> = CATALOGUE.iter().filter(|c| c.billable()).map(|c| c.id).collect();
    for id in ["DPS-FLOW-004", "DPS-FLOW-005", "DPS-FLOW-006", "DPS-MQTT-001", "DPS-MQTT-002", "DPS-THR-001"] {
        assert!(billable.contains(id), "{id}");
    }
    assert!(billable.contains("DPS-WS-001") && billable.contains("DPS-BODY-001"));
    assert!(!billable.contains("DPS-AUTH-001") && !billable.contains("DPS-TLS-002"));
}

#[test]
fn every_deviation_named_is_a_switch_of_the_emulator() {
    for &deviation in &deviations() {
        // As the config file would turn it on: the name parses back and switches something.
        let toml = match deviation.alone().plain_listen {
            Some(address) => format!("{deviation} = \"{address}\""),
            None => format!("{deviation} = true"),
        };
        let parsed: Deviations = toml::from_str(&toml).unwrap_or_else(|e| panic!("{deviation}: {e}"));
        assert_eq!(parsed, deviation.alone(), "{deviation}");
        assert_ne!(parsed, Deviations::default(), "{deviation} switches nothing");
        assert_eq!(Deviation::parse(deviation.name()), Some(deviation));
        assert!(!failed_by(deviation).is_empty());
    }
}

#[test]
fn every_check_has_a_failing_control() {
    // A check no deviation fails is one nobody has seen fail: it may pass whatever the target
    // does. The integration tests run each deviation and prove the failure.
    let never_failed: Vec<&str> = CATALOGUE.iter().filter(|c| c.failed_by.is_empty()).map(|c| c.id).collect();
    assert!(never_failed.is_empty(), "no deviation fails {never_failed:?}");
}

#[test]
fn every_switch_of_the_emulator_fails_some_check() {
    let named: BTreeSet<Deviation> = deviations().into_iter().collect();
    let switches: BTreeSet<Deviation> = Deviation::ALL.iter().copied().collect();
    assert_eq!(named, switches, "each deviation fails at least one check, and the catalogue says which");
}

/// The tables `docs/conformance.md` holds between its markers.
fn docs_tables() -> String {
    let mut out = String::from("| ID | Level | Kind | Title | Source | Probes | Failed by |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    let code = |names: Vec<&str>| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    for check in CATALOGUE {
        let level = check.level.name();
        let kind = if check.kind == Kind::Passive { "passive" } else { "probe" };
        out.push_str(&format!(
            "| `{}` | {level} | {kind} | {} | {} | {} | {} |\n",
            check.id,
            check.title.replace('|', "\\|"),
            check.source,
            code(check.probes.iter().map(|p| p.name).collect()),
            code(check.failed_by.iter().map(|d| d.name()).collect()),
        ));
    }
    out.push_str("\nProbes, in the order `dpsbench conform` runs them:\n\n");
    out.push_str("| Probe | Deadline | Creates registrations | Judges |\n|---|---|---|---|\n");
    for probe in PROBES {
        let judged: Vec<&str> = CATALOGUE.iter().filter(|c| c.judged_by(probe)).map(|c| c.id).collect();
        let billable = if probe.billable { "yes (billable)" } else { "no" };
        out.push_str(&format!("| `{}` | {} | {billable} | {} |\n", probe.name, probe.deadline, code(judged)));
    }
    out
}

const BEGIN: &str = "<!-- BEGIN catalogue: generated from src/conformance/catalogue.rs -->\n";
const END: &str = "<!-- END catalogue -->\n";

#[test]
fn docs_conformance_md_holds_the_catalogue() {
    assert_docs_hold("docs/conformance.md", BEGIN, END, &docs_tables(), "docs_conformance_md_holds_the_catalogue");
}
