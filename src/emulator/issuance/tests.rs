use super::*;

#[test]
fn policies_hold_dps_range_and_a_ca_is_needed_to_issue() {
    assert_eq!(IssuePolicy::default().validity_days, 30);
    assert!(IssuePolicy { validity_days: 0 }.checked().is_err());
    assert!(IssuePolicy { validity_days: 91 }.checked().unwrap_err().contains("91"));
    assert!(IssuePolicy { validity_days: 90 }.checked().is_ok());
    let group = Enrollment::Group("default".into());
    let mut issuance = Issuance { policies: vec![(group.clone(), IssuePolicy::default())], ..Default::default() };
    assert_eq!(issuance.policy(&group), None, "no CA, nothing issued");
    issuance.ca = Some(std::sync::Arc::new(IssuingCa::generate().expect("a CA")));
    assert_eq!(issuance.policy(&group), Some(IssuePolicy::default()));
    assert_eq!(issuance.policy(&Enrollment::Group("other".into())), None);
    assert!(!format!("{issuance:?}").contains("PRIVATE"), "Debug shows no key");
}

#[test]
fn a_ca_written_and_loaded_signs_alike() {
    let dir = std::env::temp_dir().join(format!("dpsbench-issuer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let ca = IssuingCa::generate().expect("a CA");
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    ca.write_certificate(&cert).expect("written");
    std::fs::write(&key, ca.issuer.key().serialize_pem()).expect("key written");
    let loaded = IssuingCa::load(&cert, &key).expect("loads");
    assert_eq!(loaded.certificate_der(), ca.certificate_der());
    let err = IssuingCa::load(&dir.join("missing.pem"), &key).unwrap_err().to_string();
    assert!(err.contains("missing.pem"), "{err}");
    let err = IssuingCa::load(&cert, &cert).unwrap_err().to_string();
    assert!(err.contains("ca.pem") && !err.contains("BEGIN"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
