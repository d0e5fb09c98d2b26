//! The issuance an emulator file asks for (each enrollment's `issue_certificates`,
//! `issue_delay_ms`, `[issuer_ca]`), resolved into the service's [`Issuance`]; errors name the
//! field. Reads the issuing CA's files when `[issuer_ca]` names them.

use std::path::Path;
use std::time::Duration;

use super::EmulatorConfig;
use crate::emulator::issuance::{Enrollment, Issuance, IssuingCa};

/// The issuance of an emulator file: each enrollment's `issue_certificates`, `issue_delay_ms`
/// and the CA (`[issuer_ca]`, or generated when an enrollment issues). Errors name the field.
pub(super) fn resolve(file: &EmulatorConfig, base: &Path) -> Result<Issuance, (String, String)> {
    let mut policies = Vec::new();
    for (i, group) in file.enrollment_groups.iter().enumerate() {
        if let Some(policy) = group.issue_certificates {
            let policy = policy.checked().map_err(|e| (format!("enrollment_groups[{i}].issue_certificates"), e))?;
            policies.push((Enrollment::Group(group.name.clone()), policy));
        }
    }
    for (i, individual) in file.individual_enrollments.iter().enumerate() {
        if let Some(policy) = individual.issue_certificates {
            let at = format!("individual_enrollments[{i}].issue_certificates");
            let policy = policy.checked().map_err(|e| (at, e))?;
            let canonical = individual.registration_id.to_ascii_lowercase();
            policies.push((Enrollment::Individual(canonical), policy));
        }
    }
    let delay = match file.issue_delay_ms {
        Some([min, max]) if min > max => {
            return Err(("issue_delay_ms".into(), format!("[{min}, {max}]: min is above max")));
        }
        Some([min, max]) => Some((Duration::from_millis(min), Duration::from_millis(max))),
        None => None,
    };
    let ca = match (&file.issuer_ca, policies.is_empty()) {
        (Some(files), _) => Some(IssuingCa::load(&base.join(&files.certificate), &base.join(&files.private_key))),
        (None, false) => Some(IssuingCa::generate()),
        (None, true) => None,
    };
    let ca = ca.transpose().map_err(|e| ("issuer_ca".to_string(), e.to_string()))?.map(std::sync::Arc::new);
    Ok(Issuance { ca, policies, delay })
}
