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

#[test]
fn the_emulator_file_names_each_issuance_field_in_its_errors() {
    let parse = |extra_top: &str, policy: &str| {
        let text = format!(
            "id_scope = \"0ne00X\"\nhubs = [\"h.example\"]\n{extra_top}\n[[enrollment_groups]]\nname = \"g\"\n\
             primary_key = \"NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=\"\n{policy}\n"
        );
        let file: super::super::EmulatorConfig = crate::toml_file::parse(&text).expect("parses");
        file.resolve(Path::new("emu.toml"))
    };
    let config = parse("issue_delay_ms = [5, 20]", "issue_certificates = { validity_days = 7 }").expect("valid");
    assert_eq!(config.issuance.policy(&Enrollment::Group("g".into())), Some(IssuePolicy { validity_days: 7 }));
    assert_eq!(config.issuance.delay, Some((Duration::from_millis(5), Duration::from_millis(20))));
    assert!(parse("", "").expect("valid").issuance.ca.is_none(), "no CA is made when nothing issues");
    let err = parse("issue_delay_ms = [20, 5]", "issue_certificates = {}").unwrap_err().to_string();
    assert!(err.contains("`issue_delay_ms`") && err.contains("emu.toml"), "{err}");
    let err = parse("[issuer_ca]\ncertificate = \"nope.pem\"\nprivate_key = \"nope.key\"", "").unwrap_err().to_string();
    assert!(err.contains("`issuer_ca`") && err.contains("nope.pem"), "{err}");
}
