use std::path::Path;
use std::time::Duration;

use super::*;
use crate::arrival::ArrivalPlan;

fn load(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Plan, ScenarioError> {
    let file: ScenarioFile =
        crate::toml_file::parse(text).map_err(|message| ScenarioError::Parse { path: "s.toml".into(), message })?;
    Plan::resolve(file, Path::new("s.toml"), env)
}

const MINIMAL: &str = "name = \"t\"\n[target]\nkind = \"embedded\"\n[devices]\ncount = 3\n[arrival]\nrate = 10\n";

#[test]
fn minimal_embedded_scenario_has_defaults() {
    let plan = load(MINIMAL, &|_| None).unwrap();
    assert_eq!(plan.registration_id(0).as_str(), "bench-000000");
    assert_eq!(plan.id_scope.as_str(), EMBEDDED_ID_SCOPE);
    assert!(matches!(&plan.target, TargetPlan::Embedded { settings, .. } if settings.retry_after_seconds == 1));
    assert_eq!(plan.flow.retry.max_retries, Some(5));
}

#[test]
fn every_arrival_model_resolves() {
    let with = |arrival: &str, extra: &str| {
        let text = MINIMAL.replace("rate = 10\n", arrival).replace("count = 3\n", extra);
        load(&text, &|_| None).unwrap()
    };
    let stages = with("model = \"stages\"\nstages = [\"2s:0->10/s\", \"1s:10/s\"]\n", "");
    assert_eq!(stages.stop, Stop { devices: 20, duration: None });
    let poisson = with("model = \"poisson\"\nrate = 100\nseed = 3\n", "count = 3\n");
    assert!(matches!(poisson.load, Load::Open(ArrivalPlan::Poisson { seed: 3, .. })));
    assert_eq!(poisson.stop.devices, 3);
    let burst = with("model = \"burst\"\nwithin_seconds = 2\n", "count = 50\n");
    assert!(matches!(burst.load, Load::Open(ArrivalPlan::Burst { devices: 50, .. })));
    let closed = with("model = \"closed\"\nconcurrency = 4\n", "count = 9\n");
    assert_eq!(closed.load, Load::Closed { concurrency: 4 });
    let timed = load(
        &MINIMAL.replace("count = 3\n", "").replace("[arrival]", "[run]\nduration_seconds = 2\n[arrival]"),
        &|_| None,
    )
    .unwrap();
    assert_eq!(timed.stop, Stop { devices: 21, duration: Some(Duration::from_secs(2)) });
}

#[test]
fn address_pools_expand_ranges() {
    let pool = address_pool(&["127.0.0.2".into(), "127.0.0.10-127.0.0.12".into(), "::1".into()]).unwrap();
    let text: Vec<String> = pool.iter().map(ToString::to_string).collect();
    assert_eq!(text, ["127.0.0.2", "127.0.0.10", "127.0.0.11", "127.0.0.12", "::1"]);
    let err = |entry: &str| address_pool(&[entry.into()]).unwrap_err();
    assert_eq!(err("127.0.0.5-127.0.0.1"), AddressPoolError::Backwards("127.0.0.5-127.0.0.1".into()));
    assert!(err("127.0.0.5-127.0.0.1").to_string().contains("backwards"));
    assert!(err("127.0.0.1-::1").to_string().contains("mixes"));
    assert!(err("localhost").to_string().contains("not an IP address"));
    assert!(err("10.0.0.0-10.1.0.0").to_string().contains("more than"));
}

#[test]
fn registration_ids_from_a_csv_file() {
    let dir = std::env::temp_dir().join(format!("dpsbench-ids-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ids.csv"), "site,registration_id\nnorth,pump-7\nsouth,Valve-2\n").unwrap();
    let resolve = |devices: &str| {
        let text = format!("name = \"t\"\n[target]\nkind = \"embedded\"\n[devices]\n{devices}[arrival]\nrate = 10\n");
        let file: ScenarioFile = toml::from_str(&text).unwrap();
        Plan::resolve(file, &dir.join("s.toml"), &|_| None)
    };
    let plan = resolve("registration_ids_file = \"ids.csv\"\n").unwrap();
    assert_eq!(plan.stop.devices, 2, "the file's length is the default count");
    assert_eq!(plan.registration_id(1).as_str(), "Valve-2");
    let err = resolve("registration_ids_file = \"ids.csv\"\ncount = 3\n").unwrap_err().to_string();
    assert!(err.contains("lists 2"), "{err}");
    std::fs::write(dir.join("dup.csv"), "registration_id\na-1\nA-1\n").unwrap();
    let err = resolve("registration_ids_file = \"dup.csv\"\n").unwrap_err().to_string();
    assert!(err.contains("dup.csv line 3") && err.contains("twice"), "{err}");
    std::fs::write(dir.join("bad.csv"), "registration_id\nok-1\nnot ok\n").unwrap();
    let err = resolve("registration_ids_file = \"bad.csv\"\n").unwrap_err().to_string();
    assert!(err.contains("bad.csv line 3"), "{err}");
    std::fs::write(dir.join("nohead.csv"), "id\nx\n").unwrap();
    let err = resolve("registration_ids_file = \"nohead.csv\"\n").unwrap_err().to_string();
    assert!(err.contains("no registration_id column"), "{err}");
}

#[test]
fn a_target_off_this_machine_needs_explicit_limits() {
    let with = |target: &str, rest: &str| {
        let text = format!("name = \"t\"\n[target]\nkind = \"dps\"\nid_scope = \"0ne1\"\n{target}\n{rest}");
        load(&text, &|_| Some(SymmetricKey::random().to_base64()))
    };
    let keyed = "[devices]\ncount = 10\ngroup_key_env = \"K\"\n";
    let err = with("host = \"dps.example.invalid\"", &format!("{keyed}[arrival]\nrate = 5\n")).unwrap_err().to_string();
    assert!(err.contains("`target.max_devices_per_second`"), "{err}");
    let ceiling = "host = \"dps.example.invalid\"\nmax_devices_per_second = 10";
    let err = with(ceiling, &format!("{keyed}[arrival]\nrate = 50\n")).unwrap_err().to_string();
    assert!(err.contains("peaks at 50"), "{err}");
    let err = with(ceiling, "[devices]\ngroup_key_env = \"K\"\n[arrival]\nrate = 5\n[run]\nduration_seconds = 10\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`devices.count`"), "{err}");
    let err =
        with(ceiling, &format!("{keyed}[arrival]\nmodel = \"closed\"\nconcurrency = 2\n")).unwrap_err().to_string();
    assert!(err.contains("open plan"), "{err}");
    let plan = with(ceiling, &format!("{keyed}[arrival]\nrate = 5\n")).unwrap();
    assert!(matches!(plan.target, TargetPlan::Dps { loopback: false, ca: None, port: 8883, .. }));
    // This machine needs no guard, and the public roots are the default trust.
    let local =
        with("host = \"127.0.0.1\"\ntransport = \"websocket\"", &format!("{keyed}[arrival]\nrate = 5000\n")).unwrap();
    assert!(matches!(local.target, TargetPlan::Dps { loopback: true, port: 443, .. }));
    assert!(is_loopback("localhost") && is_loopback("::1") && is_loopback("127.0.0.9") && !is_loopback("10.0.0.1"));
}

#[test]
fn patterns() {
    assert_eq!(IdPattern::parse("dev-{index}").unwrap().render(7), "dev-7");
    assert_eq!(IdPattern::parse("{index:04}.x").unwrap().render(7), "0007.x");
    assert_eq!(IdPattern::parse("dev"), Err(IdPatternError::NoPlaceholder));
    assert_eq!(IdPattern::parse("dev-{index:x}"), Err(IdPatternError::UnknownFormat(":x".into())));
    assert!(IdPattern::parse("dev-{index:x}").unwrap_err().to_string().contains("{index:x}"));
}

#[test]
fn errors_name_file_and_field() {
    let unknown = MINIMAL.replace("count = 3", "count = 3\ncolour = \"red\"");
    let err = load(&unknown, &|_| None).unwrap_err().to_string();
    assert!(err.starts_with("s.toml:") && err.contains("colour"), "{err}");

    let bad_rate = MINIMAL.replace("rate = 10", "rate = -1");
    let err = load(&bad_rate, &|_| None).unwrap_err().to_string();
    assert!(err.contains("`arrival.rate`"), "{err}");

    let wrong_field = MINIMAL.replace("rate = 10", "model = \"closed\"\nconcurrency = 2\nrate = 10");
    let err = load(&wrong_field, &|_| None).unwrap_err().to_string();
    assert!(err.contains("`rate` does not apply to model \"closed\""), "{err}");

    let unbounded = MINIMAL.replace("count = 3\n", "");
    let err = load(&unbounded, &|_| None).unwrap_err().to_string();
    assert!(err.contains("`devices.count`") && err.contains("duration_seconds"), "{err}");

    let bad_id = MINIMAL.replace("count = 3", "count = 3\nregistration_id = \"bad id {index}\"");
    let err = load(&bad_id, &|_| None).unwrap_err().to_string();
    assert!(err.contains("`devices.registration_id`"), "{err}");

    let missing_env = MINIMAL.replace("count = 3", "count = 3\ngroup_key_env = \"NOPE\"");
    let err = load(&missing_env, &|_| None).unwrap_err().to_string();
    assert!(err.contains("NOPE is not set"), "{err}");

    let bad_key = load(&missing_env, &|_| Some("secret-not-base64!".into())).unwrap_err().to_string();
    assert!(bad_key.contains("`devices.group_key_env`") && bad_key.contains("base64"), "{bad_key}");
    assert!(!bad_key.contains("secret-not-base64"), "the key never appears in errors");
}

#[test]
fn dps_target_needs_a_key_and_a_readable_ca() {
    let text = "name = \"t\"\n[target]\nkind = \"dps\"\nhost = \"127.0.0.1\"\nid_scope = \"0ne1\"\nca_certificate = \"/nonexistent/ca.pem\"\n[devices]\ncount = 1\n[arrival]\nrate = 1\n";
    let err = load(text, &|_| None).unwrap_err().to_string();
    assert!(err.contains("`target.ca_certificate`") && err.contains("/nonexistent/ca.pem"), "{err}");
}

#[test]
fn unknown_values_name_the_file_the_field_and_what_is_accepted() {
    let cases = [
        (MINIMAL.replace("rate = 10", "model = \"steady\"\nrate = 10"), "model", "`poisson`"),
        (
            MINIMAL.replace("kind = \"embedded\"", "kind = \"embedded\"\ntransport = \"quic\""),
            "transport",
            "`websocket`",
        ),
        (MINIMAL.replace("count = 3", "count = 3\nattestation = \"tpm\""), "attestation", "`x509`"),
        (
            MINIMAL.replace("kind = \"embedded\"", "kind = \"embedded\"\ntls_versions = [\"1.1\"]"),
            "tls_versions",
            "`1.3`",
        ),
    ];
    for (text, field, accepted) in cases {
        let err = load(&text, &|_| None).unwrap_err().to_string();
        assert!(err.starts_with("s.toml:") && err.contains(field) && err.contains(accepted), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

#[test]
fn slo_gates_resolve_and_unknown_phases_name_the_file_and_field() {
    let plan =
        load(&format!("{MINIMAL}[slo]\nmax_failed = 0\nphase_p99_ms = {{ tls_handshake = 50 }}\n"), &|_| None).unwrap();
    let names: Vec<String> = plan.slo.iter().map(|gate| gate.name()).collect();
    assert_eq!(names, ["max_failed", "phase_p99_ms.tls_handshake"]);
    let error = load(&format!("{MINIMAL}[slo]\nphase_p99_ms = {{ handshake = 50 }}\n"), &|_| None).unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("s.toml: field `slo.phase_p99_ms`: unknown phase \"handshake\""), "{message}");
    assert!(message.contains("tls_handshake"), "{message}");
}

#[test]
fn the_nightly_scenario_carries_every_kind_of_gate() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/nightly.toml");
    let plan = Plan::load(&path, &|_| None).unwrap();
    let names: Vec<String> = plan.slo.iter().map(|gate| gate.name()).collect();
    for gate in ["assigned_p99_ms", "assigned_p999_ms", "max_failed", "max_failure_ratio", "min_flows_per_second"] {
        assert!(names.iter().any(|name| name == gate), "{gate} missing from {names:?}");
    }
    assert!(names.contains(&"phase_p99_ms.tls_handshake".to_string()), "{names:?}");
}

#[test]
fn a_fleet_of_distinct_ids_re_provisions_in_turn() {
    let fleet = "name = \"t\"\n[target]\nkind = \"embedded\"\n[devices]\ncount = 7\nregistration_id = \"f-{index}\"\n\
                 start_index = 10\ndistinct_ids = 3\n[arrival]\nrate = 10\n";
    let plan = load(fleet, &|_| Some(SymmetricKey::random().to_base64())).unwrap();
    let ids: Vec<String> = (0..7).map(|n| plan.registration_id(n).to_string()).collect();
    assert_eq!(ids, ["f-10", "f-11", "f-12", "f-10", "f-11", "f-12", "f-10"]);
    for (bad, why) in [
        (fleet.replace("distinct_ids = 3", "distinct_ids = 0"), "at least 1"),
        (
            fleet.replace(
                "registration_id = \"f-{index}\"\nstart_index = 10\n",
                "registration_ids_file = \"ids.csv\"\n",
            ),
            "pattern",
        ),
    ] {
        let error = load(&bad, &|_| Some(SymmetricKey::random().to_base64())).unwrap_err().to_string();
        assert!(error.contains("devices.distinct_ids") && error.contains(why), "{error}");
    }
}

/// Issue 22: certificate issuance at registration in a scenario.
#[test]
fn issuance_fields_resolve_and_errors_name_them() {
    let issuing = MINIMAL
        .replace("kind = \"embedded\"\n", "kind = \"embedded\"\nissue_certificates = true\n")
        .replace("count = 3\n", "count = 3\nrequest_certificate = true\ncertificate_key = \"ecdsa-p384\"\n");
    let plan = load(&issuing, &|_| None).unwrap();
    let expected =
        CertificatePlan { request: Some(crate::certificates::KeyType::EcdsaP384), embedded_issues: true, issuer: None };
    assert_eq!(plan.certificates, expected);
    assert_eq!(plan.flow.api_version, crate::certificates::ISSUANCE_API_VERSION, "a CSR speaks the preview");
    let chosen = issuing.replace("[arrival]", "[flow]\napi_version = \"2019-03-31\"\n[arrival]");
    assert_eq!(load(&chosen, &|_| None).unwrap().flow.api_version, "2019-03-31", "unless the scenario says");
    assert_eq!(load(MINIMAL, &|_| None).unwrap().certificates, CertificatePlan::default());
    let err = |text: &str| load(text, &|_| None).unwrap_err().to_string();
    let key_alone = MINIMAL.replace("count = 3\n", "count = 3\ncertificate_key = \"ecdsa-p256\"\n");
    assert!(err(&key_alone).contains("devices.certificate_key"), "{}", err(&key_alone));
    let rsa = issuing.replace("ecdsa-p384", "rsa");
    assert!(err(&rsa).contains("certificate_key") || err(&rsa).contains("rsa"), "{}", err(&rsa));
    let python = issuing.replace("count = 3\n", "count = 3\npersonality = \"python\"\n");
    assert!(err(&python).contains("devices.request_certificate") && err(&python).contains("python"));
    let dps = "name = \"t\"\n[target]\nkind = \"dps\"\nhost = \"127.0.0.1\"\nid_scope = \"0ne00X\"\n\
               issuer_ca_certificate = \"no-such-issuer.pem\"\n[devices]\ncount = 3\n[arrival]\nrate = 10\n";
    let missing = load(dps, &|_| Some(crate::credentials::SymmetricKey::random().to_base64())).unwrap_err().to_string();
    assert!(missing.contains("target.issuer_ca_certificate") && missing.contains("no-such-issuer.pem"), "{missing}");
}
