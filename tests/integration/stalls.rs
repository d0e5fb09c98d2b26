//! Issue 25: a target that stops answering and then answers every waiting device at once is
//! seen as the target's stall, not as the generator falling behind; a run without one shows none.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::binary::{KillOnDrop, deterministic_emulator, finish, run_to, temp_dir};
use crate::support::scenario::Scenario;
use crate::support::schema::read_summary;

const SCOPE: &str = "0ne00STALL1";

fn run(dir: &Path, port: &str, out: &Path, stop_target: Option<(&KillOnDrop, Duration, Duration)>) -> Value {
    let scenario = Scenario::dps("stall", "127.0.0.1", SCOPE)
        .target("port", port.parse::<i64>().unwrap())
        .target("ca_certificate", "ca.pem")
        .devices(1000)
        .device("registration_id", "stall-{index:04}")
        .device("group_key_env", "BENCH_KEY")
        .rate(200.0)
        .run("max_duration_seconds", 60)
        .run("max_schedule_lag_p99_ms", 5000)
        .write(dir, "stall.toml");
    let child = run_to(&scenario, out, &[]);
    if let Some((emulator, after, length)) = stop_target {
        let pid = emulator.0.id() as libc::pid_t;
        std::thread::sleep(after);
        // SAFETY: kill(2) takes no pointers; the pid is our own child, alive (KillOnDrop).
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        std::thread::sleep(length);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    }
    finish(child, "the run");
    read_summary(out)
}

#[test]
fn a_target_stopped_for_a_second_is_named_as_the_stall_and_a_steady_one_is_not() {
    let dir = temp_dir("stalls");
    let (emulator, port) = deterministic_emulator(&dir, SCOPE);

    let steady = run(&dir, &port, &dir.join("steady"), None);
    assert_eq!(steady["devices"]["assigned"], 1000);
    assert!(steady["validity"].get("target_stalls").is_none(), "no stall: {}", steady["validity"]);
    assert!(steady["validity"]["machine_stall_p99_us"].as_u64().is_some(), "the machine's own probe is reported");

    let stalled =
        run(&dir, &port, &dir.join("stalled"), Some((&emulator, Duration::from_secs(2), Duration::from_secs(1))));
    assert_eq!(stalled["devices"]["assigned"], 1000, "every device is assigned once the target resumes");
    let stalls = &stalled["validity"]["target_stalls"];
    assert!(stalls["count"].as_u64().unwrap() >= 1, "{stalls}");
    assert!(stalls["longest_seconds"].as_f64().unwrap() >= 0.7, "the window spans the stop: {stalls}");
    assert!(stalls["starts_within"].as_u64().unwrap() >= 100, "about 200 starts a second were planned in it: {stalls}");
    assert!(stalls["schedule_lag_p99_outside_us"].as_u64().is_some());
    let notes = stalled["notes"].to_string();
    assert!(notes.contains("the target stopped answering waiting devices"), "{notes}");
    assert!(stalled["phases"]["assigned"]["max_us"].as_u64().unwrap() >= 900_000, "assigned shows the stall");
}
