//! The open-files budget of a run: raising the limit, refusing plans that cannot fit, capping
//! open plans that could run out.

use super::error::RunError;
use crate::scenario::{Load, Plan, TargetPlan};
use crate::shard::Part;

/// Descriptors a run needs apart from its devices' sockets: runtime, stdio, output files.
const RESERVED_DESCRIPTORS: u64 = 64;

/// How many devices may be in flight under the open-files limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorBudget {
    /// The open-files limit the run has (after raising the soft limit to the hard one).
    pub limit: u64,
    /// The in-flight cap the run applies: the scenario's, or one the limit imposes.
    pub in_flight_cap: Option<u64>,
    /// Said when the limit imposes a cap the scenario did not ask for.
    pub note: Option<String>,
}

/// Checks a plan (this shard's `part` of it) against the open-files `limit`: refuses one whose explicit concurrency cannot
/// fit, and caps an open plan that could otherwise run out of descriptors (its late starts then
/// show it).
pub fn descriptor_budget(plan: &Plan, part: &Part, limit: u64) -> Result<DescriptorBudget, RunError> {
    // The embedded emulator holds the server side of every connection in the same process.
    let per_device = if matches!(plan.target, TargetPlan::Embedded { .. }) { 2 } else { 1 };
    let available = limit.saturating_sub(RESERVED_DESCRIPTORS) / per_device;
    // A shard holds only its own devices and its share of a closed model's concurrency.
    let devices = part.devices();
    let explicit = match *part.load() {
        Load::Closed { concurrency } => Some(plan.max_in_flight.map_or(concurrency, |cap| cap.min(concurrency))),
        Load::Open(_) => plan.max_in_flight,
    };
    match explicit.map(|n| n.min(devices)) {
        Some(in_flight) if in_flight > available => {
            Err(RunError::Descriptors { in_flight, needed: in_flight * per_device + RESERVED_DESCRIPTORS, limit })
        }
        Some(_) => Ok(DescriptorBudget { limit, in_flight_cap: plan.max_in_flight, note: None }),
        None if devices <= available => Ok(DescriptorBudget { limit, in_flight_cap: None, note: None }),
        None => Ok(DescriptorBudget {
            limit,
            in_flight_cap: Some(available),
            note: Some(format!(
                "the open-files limit of {limit} allows at most {available} devices in flight; starts beyond that \
                 wait for a free slot and count as late"
            )),
        }),
    }
}

/// Raises the open-files soft limit to the hard limit; returns the limit in force.
pub fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::SymmetricKey;
    use crate::scenario::ScenarioFile;
    use crate::tls::ServerIdentity;

    fn plan(target: &str, rest: &str) -> Plan {
        let text = format!("name = \"t\"\n[target]\n{target}\n{rest}");
        let file: ScenarioFile = toml::from_str(&text).unwrap();
        Plan::resolve(file, std::path::Path::new("t.toml"), &|_| Some(SymmetricKey::random().to_base64())).unwrap()
    }

    const EMBEDDED: &str = "kind = \"embedded\"";

    #[test]
    fn a_closed_plan_that_cannot_fit_is_refused_up_front() {
        let closed = plan(EMBEDDED, "[devices]\ncount = 50000\n[arrival]\nmodel = \"closed\"\nconcurrency = 20000\n");
        let err = descriptor_budget(&closed, &Part::whole(&closed), 20_000).unwrap_err();
        assert!(matches!(err, RunError::Descriptors { in_flight: 20000, needed: 40064, limit: 20000 }), "{err}");
        assert!(err.to_string().contains("open-files limit is 20000"));
        let fits = plan(EMBEDDED, "[devices]\ncount = 50000\n[arrival]\nmodel = \"closed\"\nconcurrency = 9000\n");
        assert_eq!(descriptor_budget(&fits, &Part::whole(&fits), 20_000).unwrap().in_flight_cap, None);
    }

    #[test]
    fn an_open_plan_larger_than_the_limit_is_capped_and_says_so() {
        let open = plan(EMBEDDED, "[devices]\ncount = 100000\n[arrival]\nrate = 1000\n");
        let budget = descriptor_budget(&open, &Part::whole(&open), 20_000).unwrap();
        assert_eq!(budget.in_flight_cap, Some(9_968));
        assert!(budget.note.unwrap().contains("at most 9968 devices in flight"));
        let small = plan(EMBEDDED, "[devices]\ncount = 5000\n[arrival]\nrate = 1000\n");
        assert_eq!(
            descriptor_budget(&small, &Part::whole(&small), 20_000).unwrap(),
            DescriptorBudget { limit: 20_000, in_flight_cap: None, note: None }
        );
    }

    #[test]
    fn an_external_target_needs_one_descriptor_per_device() {
        let dir = std::env::temp_dir().join(format!("dpsbench-budget-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ServerIdentity::generate(&[]).unwrap().ca_pem()).unwrap();
        let target =
            format!("kind = \"dps\"\nhost = \"127.0.0.1\"\nid_scope = \"0ne1\"\nca_certificate = \"{}\"", ca.display());
        let held = plan(&target, "[devices]\ncount = 19900\ngroup_key_env = \"K\"\n[arrival]\nrate = 1000\n");
        assert_eq!(descriptor_budget(&held, &Part::whole(&held), 20_000).unwrap().in_flight_cap, None);
        let capped = plan(
            &target,
            "[devices]\ncount = 19900\ngroup_key_env = \"K\"\n[arrival]\nrate = 1000\n[run]\nmax_in_flight = 19950\n",
        );
        assert!(
            descriptor_budget(&capped, &Part::whole(&capped), 20_000).is_ok(),
            "the cap is bounded by the device count"
        );
    }
}
