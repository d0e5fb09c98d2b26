use super::*;
use crate::scenario::ScenarioFile;

fn plan(text: &str) -> Plan {
    let file: ScenarioFile = crate::toml_file::parse(text).expect("a valid scenario");
    Plan::resolve(file, std::path::Path::new("t.toml"), &|_| Some("AAAA".into())).expect("a valid plan")
}

fn known(forecast: &Forecast) -> Outcome {
    match forecast.outcomes {
        Outcomes::Known(outcome) => outcome,
        other => panic!("one outcome expected: {other:?}"),
    }
}

#[test]
fn no_quota_no_throttling_and_the_arrivals_set_the_duration() {
    let f = predict(&plan(
        "name = \"q\"\n[target]\nkind = \"embedded\"\nretry_after_seconds = 1\nassign_delay_ms = 200\n\
         [devices]\ncount = 1001\n[arrival]\nrate = 200\n",
    ));
    assert_eq!((f.quota.clone(), f.basis), (None, Basis::Emulator));
    let outcome = known(&f);
    assert_eq!((outcome.assigned, outcome.throttled), (1001, 0), "{outcome:?}");
    // The last arrival at 5 s, then its first poll a retry-after (1 s) later.
    assert!((outcome.seconds - 6.0).abs() < 0.1, "{outcome:?}");
}

#[test]
fn a_burst_over_the_full_bucket_is_throttled_and_drains_at_the_refill_rate() {
    let f = predict(&plan(
        "name = \"s\"\n[target]\nkind = \"embedded\"\nretry_after_seconds = 1\nassign_delay_ms = 200\n\
         registrations_per_minute = 1200\n[devices]\ncount = 2000\n[arrival]\nmodel = \"burst\"\nwithin_seconds = 5\n\
         [flow]\nmax_retries = 1000\n",
    ));
    let outcome = known(&f);
    assert!(outcome.throttled > 0 && outcome.assigned == 2000, "{outcome:?}");
    // 1,200 from the full bucket, the other 800 at 20/s: about 40 s, and a poll.
    assert!((outcome.seconds - 41.0).abs() < 2.0, "{outcome:?}");
    let within = predict(&plan(
        "name = \"s\"\n[target]\nkind = \"embedded\"\nregistrations_per_minute = 1200\n[devices]\ncount = 1000\n\
         [arrival]\nrate = 100\n",
    ));
    assert_eq!(known(&within).throttled, 0, "1,000 fit the full bucket: {within:?}");
}

#[test]
fn the_retry_profile_decides_who_gives_up() {
    // 300 at 60/s against 120 a minute: 120 from the bucket, 2/s after; a dpsbench device
    // retries 5 times a second apart, so those that find no token within 5 s give up.
    let text = "name = \"r\"\n[target]\nkind = \"embedded\"\nregistrations_per_minute = 120\n[devices]\ncount = 300\n\
                [arrival]\nrate = 60\n";
    let outcome = known(&predict(&plan(text)));
    assert_eq!(outcome.assigned + outcome.gave_up, 300, "{outcome:?}");
    assert!((100..=160).contains(&outcome.assigned) && outcome.gave_up > 100, "{outcome:?}");
    assert!(outcome.seconds < 15.0, "no one waits for the quota past their retries: {outcome:?}");
    // C# devices take a 429 as final.
    let csharp = known(&predict(&plan(&text.replace("count = 300\n", "count = 300\npersonality = \"csharp\"\n"))));
    assert_eq!(csharp.throttled, csharp.gave_up, "{csharp:?}");
}

#[test]
fn the_run_limit_cuts_the_plan_and_aborts_what_is_in_flight() {
    let f = predict(&plan(
        "name = \"l\"\n[target]\nkind = \"embedded\"\nretry_after_seconds = 3\nassign_delay_ms = 2500\n\
         [devices]\ncount = 1000\n[arrival]\nrate = 50\n[run]\nmax_duration_seconds = 4\n",
    ));
    let outcome = known(&f);
    assert_eq!(outcome.started, 200, "{outcome:?}");
    // Devices started in the last 3 s poll after the limit.
    assert!(outcome.aborted > 100 && outcome.assigned + outcome.aborted == 200, "{outcome:?}");
    assert!((outcome.seconds - 4.0).abs() < 1e-9, "{outcome:?}");
}

#[test]
fn a_dps_target_gives_the_range_between_an_empty_and_a_full_bucket() {
    let f = predict(&plan(
        "name = \"d\"\n[target]\nkind = \"dps\"\nid_scope = \"0ne00000001\"\nmax_devices_per_second = 100\n\
         dps_units = 1\n[devices]\ncount = 200\ngroup_key_env = \"K\"\n[arrival]\nrate = 50\n",
    ));
    let Outcomes::Range { full, empty } = f.outcomes else { panic!("{f:?}") };
    assert_eq!((full.throttled, full.assigned), (0, 200), "a full bucket holds 1,000: {full:?}");
    assert!(empty.throttled > 0 && empty.seconds > full.seconds, "{empty:?}");
    assert_eq!(f.basis, Basis::Dps);
}
