//! What a run learns as it sets up, beside its plan and its options ([`RunOptions`]): the
//! target it reached (where devices connect, what they trust, the embedded emulator and its
//! issuing CA), its open-files budget and the machine it runs on. Runtime facts, not scenario
//! data: the plan stays as it was resolved, and what depends on both (the devices' flow
//! settings) is derived from both here.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::error::RunError;
use super::limits::{DescriptorBudget, descriptor_budget, raise_open_files_limit};
use super::options::RunOptions;
use super::target::{PreparedTarget, prepare_target};
use crate::device::{FlowSettings, Personality};
use crate::results::HostInfo;
use crate::scenario::Plan;

/// The runtime facts of one run, found once as it sets up.
pub struct RunContext {
    /// The target set up: its address, the roots devices trust, the embedded emulator and the
    /// CA it issues from.
    pub(super) target: PreparedTarget,
    /// How many devices may be in flight under the open-files limit.
    pub(super) budget: DescriptorBudget,
    /// The machine this run is measured on.
    pub(super) host: HostInfo,
}

impl RunContext {
    /// Checks the plan's part (`options`) against the open-files limit and sets its target up.
    pub(super) async fn set_up(plan: &Plan, options: &RunOptions) -> Result<Self, RunError> {
        let budget = descriptor_budget(plan, &options.part, raise_open_files_limit())?;
        let target = prepare_target(plan).await?;
        Ok(Self { target, budget, host: HostInfo::current() })
    }

    /// The flow settings of each personality the plan uses. Issued chains must reach the
    /// embedded emulator's issuing CA when it issues: known only once it started, so it joins
    /// the settings here, never the plan.
    pub(super) fn personality_settings(&self, plan: &Plan) -> BTreeMap<Personality, Arc<FlowSettings>> {
        let issuer = &self.target.certificate_issuer;
        let settings = |p: Personality| {
            let mut settings = p.settings(&plan.flow);
            if let Some(issuer) = issuer {
                settings.certificate_issuer = Some(issuer.clone());
            }
            Arc::new(settings)
        };
        plan.personalities.personalities().map(|p| (p, settings(p))).collect()
    }
}
