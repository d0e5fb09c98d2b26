use super::*;

const ISSUE_EXAMPLE: &str = r#"
id_scope = "0ne00DPS001"
hubs = ["hub-a.azure-devices.net", "hub-b.azure-devices.net"]
retry_after_seconds = 3
assign_delay_ms = 500
[[enrollment_groups]]
name = "bench"
primary_key = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
secondary_key = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg="
[[individual_enrollments]]
registration_id = "dev-1"
primary_key = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg="
"#;

fn parse(text: &str) -> Result<ServiceConfig, ConfigError> {
    let config: EmulatorConfig =
        crate::toml_file::parse(text).map_err(|message| ConfigError::Parse { path: "emu.toml".into(), message })?;
    config.resolve(Path::new("emu.toml"))
}

#[test]
fn issue_example_parses() {
    let config = parse(ISSUE_EXAMPLE).unwrap();
    assert_eq!(config.hubs.len(), 2);
    assert_eq!(config.assign_delay, Duration::from_millis(500));
    assert_eq!(config.groups[0].name, "bench");
    assert!(config.groups[0].secondary.is_some());
    assert_eq!(config.individuals[0].registration_id.as_str(), "dev-1");
    assert!(!format!("{config:?}").contains("8isrFI1s"), "keys must not print");
}

#[test]
fn errors_name_the_field() {
    let bad_key = ISSUE_EXAMPLE.replace("secondary_key = \"NMgJ", "secondary_key = \"!!!");
    let err = parse(&bad_key).unwrap_err().to_string();
    assert!(err.contains("enrollment_groups[0].secondary_key") && err.contains("base64"), "{err}");
    assert!(!err.contains("NMgJ"));

    let unknown = format!("{ISSUE_EXAMPLE}\nbogus = 1\n");
    let err = parse(&unknown).unwrap_err().to_string();
    assert!(err.contains("emu.toml") && err.contains("bogus"), "{err}");
    assert!(!err.contains('\n'));
    let unknown = ISSUE_EXAMPLE.replace("retry_after_seconds = 3\n", "retry_after_seconds = 3\nbogus = 1\n");
    let err = parse(&unknown).unwrap_err().to_string();
    assert!(err.contains("line 5, column 1: bogus = 1: unknown field `bogus`"), "{err}");

    let err =
        parse(&ISSUE_EXAMPLE.replace("hubs = [\"hub-a.azure-devices.net\", \"hub-b.azure-devices.net\"]", "hubs = []"))
            .unwrap_err()
            .to_string();
    assert!(err.contains("`hubs`"), "{err}");

    let err = parse(&format!("tls_versions = [\"1.1\"]\n{ISSUE_EXAMPLE}")).unwrap_err().to_string();
    assert!(err.contains("emu.toml") && err.contains("tls_versions") && err.contains("`1.2`"), "{err}");
    let err =
        parse(&ISSUE_EXAMPLE.replace("retry_after_seconds = 3", "retry_after_seconds = 301")).unwrap_err().to_string();
    assert!(err.contains("`retry_after_seconds`") && err.contains("301"), "{err}");
}

/// Issue 24, item 4: `hubs` defaults as a scenario's embedded target does.
#[test]
fn hubs_default_as_in_a_scenario() {
    let without = ISSUE_EXAMPLE.replace("hubs = [\"hub-a.azure-devices.net\", \"hub-b.azure-devices.net\"]\n", "");
    assert!(!without.contains("hubs"));
    assert_eq!(parse(&without).unwrap().hubs, DEFAULT_HUBS);
    let scenario = "name = \"n\"\n[target]\nkind = \"embedded\"\n[arrival]\nrate = 1\n[devices]\ncount = 1\n";
    let file: crate::scenario::ScenarioFile = crate::toml_file::parse(scenario).unwrap();
    let plan = crate::scenario::Plan::resolve(file, Path::new("s.toml"), &|_| None).unwrap();
    let crate::scenario::TargetPlan::Embedded { settings, .. } = plan.target else { panic!("embedded") };
    assert_eq!(settings.hubs, DEFAULT_HUBS);
}

#[test]
fn the_emulator_file_and_the_builder_share_defaults() {
    let config = parse(&ISSUE_EXAMPLE.replace("retry_after_seconds = 3\n", "")).unwrap();
    let built = ServiceConfig::new(config.id_scope.clone(), config.hubs.clone());
    assert_eq!(config.retry_after_seconds, DEFAULT_RETRY_AFTER_SECONDS);
    assert_eq!((built.retry_after_seconds, built.assign_delay), (config.retry_after_seconds, config.assign_delay));
}

#[test]
fn faults_and_the_connection_cap_parse_and_errors_name_them() {
    let text = format!("max_connections = 50\n{ISSUE_EXAMPLE}\n[faults]\nseed = 4\ndrop_reply = 0.5\n");
    let config = parse(&text).unwrap();
    assert_eq!(config.max_connections, Some(50));
    assert_eq!((config.faults.seed, config.faults.probability(super::super::faults::Fault::DropReply)), (4, 0.5));
    assert_eq!(parse(ISSUE_EXAMPLE).unwrap().faults, Faults::default());
    let err = parse(&format!("{ISSUE_EXAMPLE}\n[faults]\nthrottle = 2.0\n")).unwrap_err().to_string();
    assert!(err.contains("emu.toml") && err.contains("`faults.throttle`") && err.contains('2'), "{err}");
    let err = parse(&format!("max_connections = 0\n{ISSUE_EXAMPLE}")).unwrap_err().to_string();
    assert!(err.contains("`max_connections`"), "{err}");
}

/// Issue 14, item 13: each quota is optional on its own, as the scenario fields are.
#[test]
fn each_quota_is_optional_on_its_own() {
    let with = |table: &str| parse(&format!("{ISSUE_EXAMPLE}[quota]\n{table}\n"));
    let quota = with("registrations_per_minute = 60").unwrap().quota.expect("a quota");
    assert_eq!(quota.registrations_per_minute, 60);
    assert_eq!(quota.operations_per_minute, UNLIMITED_PER_MINUTE);
    let quota = with("operations_per_minute = 90").unwrap().quota.expect("a quota");
    assert_eq!((quota.registrations_per_minute, quota.operations_per_minute), (UNLIMITED_PER_MINUTE, 90));
    assert_eq!(with("").unwrap().quota, None, "an empty [quota] limits nothing");
    let err = with("registrations_per_minute = 0").unwrap_err().to_string();
    assert!(err.contains("quota") && err.contains("at least 1"), "{err}");
}

/// Read from buffered values (the section is flattened), a setting of the wrong type still
/// names its field.
#[test]
fn a_setting_of_the_wrong_type_names_its_field() {
    let err = parse(&ISSUE_EXAMPLE.replace("retry_after_seconds = 3", "retry_after_seconds = \"x\"")).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("emu.toml") && err.contains("`retry_after_seconds`") && err.contains("whole number"), "{err}");
}

/// One section, one resolution: the same keys in a scenario's embedded target and in an
/// emulator file give the same settings (but the delay, whose default each file keeps).
#[test]
fn a_scenarios_embedded_target_and_the_emulator_file_share_the_settings() {
    let keys = "hubs = [\"h.example\"]\nretry_after_seconds = 2\necho_payload = true\n";
    let scenario = format!(
        "name = \"n\"\n[target]\nkind = \"embedded\"\n{keys}registrations_per_minute = 60\n[target.faults]\n\
         drop_reply = 0.5\n[arrival]\nrate = 1\n[devices]\ncount = 1\n"
    );
    let file: crate::scenario::ScenarioFile = crate::toml_file::parse(&scenario).unwrap();
    let plan = crate::scenario::Plan::resolve(file, Path::new("s.toml"), &|_| None).unwrap();
    let crate::scenario::TargetPlan::Embedded { settings, .. } = plan.target else { panic!("embedded") };
    let emulator = format!(
        "id_scope = \"0ne00DPS001\"\n{keys}[quota]\nregistrations_per_minute = 60\n[faults]\ndrop_reply = 0.5\n"
    );
    let config = parse(&emulator).unwrap();
    let expected = Settings {
        hubs: config.hubs,
        retry_after_seconds: config.retry_after_seconds,
        assign_delay: Duration::ZERO,
        quota: config.quota,
        echo_payload: config.echo_payload,
        faults: config.faults,
    };
    assert_eq!(settings, expected);
    assert_eq!((settings.retry_after_seconds, settings.echo_payload), (2, true));
    assert_eq!(config.assign_delay, Duration::from_millis(DEFAULT_ASSIGN_DELAY_MS));
}
