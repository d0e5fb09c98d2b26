//! No secret in any output: a scenario run and `conform`, both with a known group key, leave
//! neither the group key, nor any device key derived from it, nor any SAS signature in a report
//! file, stdout or stderr. `conform` against the embedded emulator says which key it uses, and
//! refuses an invalid one naming the variable, never its value.

use std::collections::BTreeSet;
use std::path::Path;

use dpsbench::credentials::{RegistrationId, SymmetricKey};

use crate::support::binary::{TV1_GROUP_KEY, dpsbench, temp_dir, text};
use crate::support::ports::unserved_port;
use crate::support::scenario::Scenario;

/// Every file under `dir`, as text (lossy), with its path.
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push((path.display().to_string(), text(&std::fs::read(&path).unwrap())));
            }
        }
    }
    found
}

/// The secrets that must not appear: the group key, the device key derived for every word of
/// the outputs that is a valid registration ID (so every device they mention), and `sig=`.
fn leaks(outputs: &[(String, String)], group_key: &SymmetricKey) -> Vec<String> {
    let words: BTreeSet<&str> = outputs
        .iter()
        .flat_map(|(_, text)| text.split(|c: char| !(c.is_ascii_alphanumeric() || "-._:".contains(c))))
        .filter(|w| !w.is_empty())
        .collect();
    let mut secrets = vec![group_key.to_base64(), "sig=".to_string(), "sig%3D".to_string()];
    secrets.extend(
        words
            .iter()
            .filter_map(|w| RegistrationId::new(*w).ok())
            .map(|id| group_key.derive_device_key(&id).to_base64()),
    );
    let mut found = Vec::new();
    for (name, text) in outputs {
        for secret in &secrets {
            if text.contains(secret.as_str()) {
                // Name where, never what.
                found.push(format!("{name} holds a secret ({} characters)", secret.len()));
            }
        }
    }
    found
}

#[test]
fn a_run_and_conform_with_a_known_group_key_print_and_write_no_secret() {
    let dir = temp_dir("secrets");
    let group_key = SymmetricKey::from_base64(TV1_GROUP_KEY).unwrap();
    let scenario = Scenario::embedded("secret")
        .target("retry_after_seconds", 0)
        .target("assign_delay_ms", 20)
        .devices(20)
        .device("registration_id", "secret-{index:03}")
        .device("group_key_env", "DPS_GROUP_KEY")
        .rate(200.0)
        .run("max_duration_seconds", 60)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(&dir, "secret.toml");
    let run_out = dir.join("run");
    let env = [("DPS_GROUP_KEY", TV1_GROUP_KEY)];
    let run = dpsbench(&["run", scenario.to_str().unwrap(), "--out", run_out.to_str().unwrap()], &env);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));

    let conform_out = dir.join("conform");
    let (_reserved, port) = unserved_port();
    let port = port.to_string();
    let conform =
        dpsbench(&["conform", "--out", conform_out.to_str().unwrap(), "--deadline", "2", "--plain-port", &port], &env);
    assert_eq!(conform.status.code(), Some(0), "{}", text(&conform.stderr));
    assert!(
        text(&conform.stderr).contains("embedded emulator: the group key from DPS_GROUP_KEY"),
        "{}",
        text(&conform.stderr)
    );

    let mut outputs = files_under(&dir);
    assert!(outputs.len() >= 5, "{:?}", outputs.iter().map(|(n, _)| n).collect::<Vec<_>>());
    for (name, output) in [("run", &run), ("conform", &conform)] {
        outputs.push((format!("{name} stdout"), text(&output.stdout)));
        outputs.push((format!("{name} stderr"), text(&output.stderr)));
    }
    // The scenario's devices are named in the outputs, so their derived keys are searched for.
    assert!(outputs.iter().any(|(_, t)| t.contains("secret")), "no output names the run");
    // The search is real: it finds a key where one is.
    let planted = vec![(
        "planted".to_string(),
        group_key.derive_device_key(&RegistrationId::new("secret-007").unwrap()).to_base64() + " secret-007",
    )];
    assert_eq!(leaks(&planted, &group_key).len(), 1);
    let found = leaks(&outputs, &group_key);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn conform_refuses_an_invalid_group_key_naming_the_variable_not_the_value() {
    let out = temp_dir("conform-invalid-key");
    let invalid = "not!base64!but-a-secret-looking-value";
    let output = dpsbench(&["conform", "--out", out.to_str().unwrap()], &[("DPS_GROUP_KEY", invalid)]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("DPS_GROUP_KEY"), "{stderr}");
    assert!(!stderr.contains(invalid) && !text(&output.stdout).contains(invalid), "{stderr}");
    // Unset, it says it draws a random key.
    let (_reserved, port) = unserved_port();
    let port = port.to_string();
    let output = dpsbench(&["conform", "--out", out.to_str().unwrap(), "--deadline", "2", "--plain-port", &port], &[]);
    assert!(text(&output.stderr).contains("a random group key for this run (DPS_GROUP_KEY is not set)"));
}
