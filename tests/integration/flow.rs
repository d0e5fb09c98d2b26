//! Device flows against the real emulator over TLS on loopback.

use std::time::Duration;

use dpsbench::credentials::SymmetricKey;
use dpsbench::device::Target;
use dpsbench::device::driver::{never_abort, now};
use dpsbench::device::{FailureKind, Outcome, RetryPolicy, Step, run_device};
use dpsbench::emulator::ServiceStats;
use dpsbench::emulator::config::{AuthFailure, QuotaConfig};

use crate::support::*;

#[tokio::test]
async fn a_device_is_assigned_and_every_phase_is_timed() {
    let emulator = start_emulator(|c| {
        c.assign_delay = Duration::from_millis(50);
        c.retry_after_seconds = 0;
    });
    let report =
        run_device(&emulator.target, quick_settings(), device(&emulator.group_key, "dev-1"), now(), never_abort())
            .await;
    let Outcome::Assigned { hub, device_id } = &report.outcome else { panic!("{:?}", report.outcome) };
    assert!(hub.starts_with("hub-"), "{hub}");
    assert_eq!(device_id, "dev-1");
    let t = &report.timings;
    for (name, at) in [
        ("tcp", t.tcp_connected),
        ("tls", t.tls_done),
        ("connack", t.connack),
        ("suback", t.suback),
        ("register accepted", t.register_accepted),
        ("assigned", t.assigned),
        ("end", t.end),
    ] {
        assert!(at.is_some(), "{name} not timed");
    }
    assert!(t.tcp_connected < t.tls_done && t.tls_done < t.connack && t.suback < t.register_accepted);
    assert!(report.polls >= 1 && t.polls.len() == report.polls as usize);
    // The emulator's 50 ms start when it receives the register: after the device sent it.
    assert!(t.assigned.unwrap() - t.register_sent.unwrap() >= Duration::from_millis(50), "assignment delay honoured");
    assert_eq!(ServiceStats::get(&emulator.handle.service.stats.assigned), 1);
    emulator.handle.stop().await;
}

#[tokio::test]
async fn many_concurrent_devices_spread_over_hubs() {
    let emulator = start_emulator(|_| {});
    // 200 handshakes share this test's one thread with the emulator's: the spread over hubs is
    // the point here, so the handshake deadline leaves room for a busy machine.
    let mut settings = (*quick_settings()).clone();
    settings.timeouts.tls_handshake = Duration::from_secs(10);
    let settings = std::sync::Arc::new(settings);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (target, settings, identity) =
            (emulator.target.clone(), settings.clone(), device(&emulator.group_key, &format!("fleet-{i:04}")));
        tasks.spawn(async move { run_device(&target, settings, identity, now(), never_abort()).await });
    }
    let mut hubs = std::collections::BTreeMap::new();
    while let Some(report) = tasks.join_next().await {
        match report.unwrap().outcome {
            Outcome::Assigned { hub, .. } => *hubs.entry(hub).or_insert(0) += 1,
            failed => panic!("{failed:?}"),
        }
    }
    assert_eq!(hubs.values().sum::<i32>(), 200);
    assert!(hubs.values().all(|n| *n > 60), "{hubs:?}");
    emulator.handle.stop().await;
}

#[tokio::test]
async fn wrong_key_is_refused_at_connack() {
    let emulator = start_emulator(|_| {});
    let identity = device(&SymmetricKey::random(), "dev-1");
    let report = run_device(&emulator.target, quick_settings(), identity, now(), never_abort()).await;
    assert_eq!(report.outcome, Outcome::Failed(FailureKind::Refused(5)));
    emulator.handle.stop().await;
}

#[tokio::test]
async fn expired_token_is_refused() {
    let emulator = start_emulator(|_| {});
    let key = emulator.group_key.derive_device_key(&dpsbench::credentials::RegistrationId::new("dev-1").unwrap());
    let report =
        run_device(&emulator.target, quick_settings(), device_signed_with(&key, "dev-1", -10), now(), never_abort())
            .await;
    assert_eq!(report.outcome, Outcome::Failed(FailureKind::Refused(5)));
    emulator.handle.stop().await;
}

#[tokio::test]
async fn reply_mode_refuses_with_401_on_register() {
    let emulator = start_emulator(|c| c.auth_failure = AuthFailure::Reply);
    let report =
        run_device(&emulator.target, quick_settings(), device(&SymmetricKey::random(), "dev-1"), now(), never_abort())
            .await;
    assert_eq!(report.outcome, Outcome::Failed(FailureKind::Status(401)));
    assert_eq!(report.statuses, vec![401]);
    emulator.handle.stop().await;
}

#[tokio::test]
async fn throttled_devices_wait_retry_after_and_then_succeed() {
    // 60 registrations a minute: the bucket starts full, so the 61st is throttled and must wait.
    let emulator =
        start_emulator(|c| c.quota = Some(QuotaConfig { registrations_per_minute: 60, operations_per_minute: 6000 }));
    let mut settings = (*quick_settings()).clone();
    settings.retry =
        RetryPolicy { max_retries: Some(10), default_wait: Duration::from_secs(5), ..RetryPolicy::default() };
    let settings = std::sync::Arc::new(settings);
    let mut throttled = 0;
    for i in 0..62 {
        let report = run_device(
            &emulator.target,
            settings.clone(),
            device(&emulator.group_key, &format!("q-{i}")),
            now(),
            never_abort(),
        )
        .await;
        assert!(matches!(report.outcome, Outcome::Assigned { .. }), "device {i}: {:?}", report.outcome);
        let throttled_here = report.statuses.iter().filter(|s| **s == 429).count();
        if throttled_here > 0 {
            assert_eq!(report.register_attempts as usize, throttled_here + 1, "each 429 is followed by a retry");
            assert!(
                report.retry_after_seconds.contains(&1),
                "429 carries retry-after: {:?}",
                report.retry_after_seconds
            );
        }
        throttled += throttled_here;
    }
    assert!(throttled >= 1, "the 61st registration in a minute is throttled");
    assert_eq!(ServiceStats::get(&emulator.handle.service.stats.throttled) as usize, throttled);
    emulator.handle.stop().await;
}

#[tokio::test]
async fn nothing_listening_is_a_connect_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let emulator = start_emulator(|_| {});
    let target = target_for(address, &emulator.ca_pem);
    let report =
        run_device(&target, quick_settings(), device(&emulator.group_key, "dev-1"), now(), never_abort()).await;
    assert_eq!(report.outcome, Outcome::Failed(FailureKind::Connect));
    emulator.handle.stop().await;
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_a_tls_failure() {
    let emulator = start_emulator(|_| {});
    let other = dpsbench::tls::ServerIdentity::generate(&[]).unwrap();
    let target = target_for(emulator.handle.address, other.ca_pem());
    let report =
        run_device(&target, quick_settings(), device(&emulator.group_key, "dev-1"), now(), never_abort()).await;
    assert_eq!(report.outcome, Outcome::Failed(FailureKind::Tls));
    emulator.handle.stop().await;
}

#[tokio::test]
async fn a_silent_server_times_out_in_the_tls_phase() {
    // Accepts TCP and then says nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let (_socket, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
    });
    let emulator = start_emulator(|_| {});
    let target = target_for(address, &emulator.ca_pem);
    let report =
        run_device(&target, quick_settings(), device(&emulator.group_key, "dev-1"), now(), never_abort()).await;
    assert_eq!(report.outcome, Outcome::Failed(FailureKind::Timeout(Step::TlsHandshake)));
    silent.abort();
    emulator.handle.stop().await;
}

#[tokio::test]
async fn stopping_the_emulator_mid_flow_is_a_lost_connection() {
    let emulator = start_emulator(|c| {
        c.assign_delay = Duration::from_secs(60);
        c.retry_after_seconds = 1;
    });
    let (target, key) = (emulator.target.clone(), emulator.group_key.clone());
    let device_task = tokio::spawn(async move {
        run_device(&target, quick_settings(), device(&key, "dev-1"), now(), never_abort()).await
    });
    // Wait until the device has registered, then pull the plug.
    while ServiceStats::get(&emulator.handle.service.stats.registrations) == 0 {
        tokio::task::yield_now().await;
    }
    emulator.handle.stop().await;
    let report = device_task.await.unwrap();
    assert!(
        matches!(report.outcome, Outcome::Failed(FailureKind::ConnectionLost(Step::Wait | Step::Poll))),
        "{:?}",
        report.outcome
    );
}

#[tokio::test]
async fn an_aborted_device_reports_the_phases_it_completed() {
    let emulator = start_emulator(|c| {
        c.assign_delay = Duration::from_secs(60);
        c.retry_after_seconds = 30;
    });
    let (stop, abort) = tokio::sync::watch::channel(false);
    let (target, key) = (emulator.target.clone(), emulator.group_key.clone());
    let device_task =
        tokio::spawn(async move { run_device(&target, quick_settings(), device(&key, "dev-1"), now(), abort).await });
    while ServiceStats::get(&emulator.handle.service.stats.registrations) == 0 {
        tokio::task::yield_now().await;
    }
    stop.send(true).unwrap();
    let report = device_task.await.unwrap();
    assert_eq!(report.outcome, Outcome::Failed(FailureKind::Aborted));
    assert!(
        report.timings.tls_done.is_some() && report.timings.suback.is_some() && report.timings.register_sent.is_some()
    );
    emulator.handle.stop().await;
}

#[tokio::test]
async fn a_device_connects_from_its_source_address() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let emulator = start_emulator(|_| {});
    let mut identity = device(&emulator.group_key, "dev-1");
    identity.source_address = Some("127.0.0.3".parse().unwrap());
    let target = target_for(address, &emulator.ca_pem);
    let device_task =
        tokio::spawn(async move { run_device(&target, quick_settings(), identity, now(), never_abort()).await });
    let (socket, peer) = listener.accept().await.unwrap();
    assert_eq!(peer.ip().to_string(), "127.0.0.3");
    drop(socket);
    let report = device_task.await.unwrap();
    assert_eq!(report.source_address, Some("127.0.0.3".parse().unwrap()));
    emulator.handle.stop().await;
}

/// Virtual time: a device waits exactly `retry-after` between polls, however long, and the test
/// takes no real time. (The clock is paused; tokio advances it whenever every task is idle.)
#[tokio::test(start_paused = true)]
async fn a_device_polls_exactly_as_retry_after_says_in_virtual_time() {
    let emulator = start_emulator(|c| {
        c.retry_after_seconds = 5;
        c.assign_delay = Duration::from_secs(12);
    });
    let mut settings = (*quick_settings()).clone();
    settings.timeouts.flow = Duration::from_secs(120);
    let real_start = std::time::Instant::now();
    let report = run_device(
        &emulator.target,
        std::sync::Arc::new(settings),
        device(&emulator.group_key, "slow-1"),
        now(),
        never_abort(),
    )
    .await;
    assert!(matches!(report.outcome, Outcome::Assigned { .. }), "{:?}", report.outcome);
    // Register at 0 (202, retry-after 5); polls at 5 and 10 get 202; the poll at 15 gets 200.
    assert_eq!(report.polls, 3);
    assert_eq!(report.retry_after_seconds, vec![5, 5, 5]);
    assert_eq!(report.early_requests, 0);
    let waited = report.timings.assigned.unwrap() - report.timings.register_accepted.unwrap();
    assert!(waited >= Duration::from_secs(15) && waited < Duration::from_millis(15_100), "{waited:?}");
    assert!(real_start.elapsed() < Duration::from_secs(10), "virtual time, not real waiting");
    emulator.handle.stop().await;
}

/// Virtual time: the Python profile polls 2 s after register whatever `retry-after` says, then
/// as told, and the early poll is counted.
#[tokio::test(start_paused = true)]
async fn the_python_profile_polls_first_after_two_seconds_in_virtual_time() {
    let emulator = start_emulator(|c| {
        c.retry_after_seconds = 5;
        c.assign_delay = Duration::from_secs(12);
    });
    let mut settings = (*quick_settings()).clone();
    settings.timeouts.flow = Duration::from_secs(120);
    settings.retry = RetryPolicy::profile(dpsbench::device::RetryProfile::Python);
    let report = run_device(
        &emulator.target,
        std::sync::Arc::new(settings),
        device(&emulator.group_key, "py-1"),
        now(),
        never_abort(),
    )
    .await;
    assert!(matches!(report.outcome, Outcome::Assigned { .. }), "{:?}", report.outcome);
    // Polls at 2 s (early: retry-after said 5), 7 s and 12 s (assigned).
    assert_eq!((report.polls, report.early_requests), (3, 1));
    let waited = report.timings.assigned.unwrap() - report.timings.register_accepted.unwrap();
    assert!(waited >= Duration::from_secs(12) && waited < Duration::from_millis(12_100), "{waited:?}");
    emulator.handle.stop().await;
}

#[tokio::test]
async fn tls_13_is_refused_unless_both_sides_opt_in_and_suites_are_honoured() {
    use dpsbench::tls::{TlsPolicy, TlsVersions};
    let device_with = |emulator: &dpsbench::emulator::LoopbackEmulator, policy: TlsPolicy| Target {
        address: emulator.handle.address,
        server_name: "localhost".try_into().unwrap(),
        tls: dpsbench::tls::client_config(emulator.roots.clone(), policy).unwrap(),
        transport: Default::default(),
        watch: None,
    };
    let group_key = SymmetricKey::random();
    let config = || {
        let mut config =
            dpsbench::emulator::ServiceConfig::single_group(scope(), vec!["hub".into()], group_key.clone());
        config.retry_after_seconds = 0;
        config.assign_delay = Duration::ZERO;
        config
    };
    let tls13 = TlsPolicy::from(TlsVersions::Tls13Only);

    // DPS's default: TLS 1.2 only. A device offering only 1.3 fails the handshake.
    let strict = dpsbench::emulator::start_on_loopback(config()).unwrap();
    let report = run_device(
        &device_with(&strict, tls13.clone()),
        quick_settings(),
        device(&group_key, "d13"),
        now(),
        never_abort(),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Failed(FailureKind::Tls));
    // One ECDSA suite only: fine with the emulator's P-256 certificate; an RSA-only offer is not.
    let ecdsa = TlsPolicy::parse(&["1.2".into()], &["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into()]).unwrap();
    let report =
        run_device(&device_with(&strict, ecdsa), quick_settings(), device(&group_key, "d-ecdsa"), now(), never_abort())
            .await;
    assert!(matches!(report.outcome, Outcome::Assigned { .. }), "{:?}", report.outcome);
    let rsa = TlsPolicy::parse(&["1.2".into()], &["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()]).unwrap();
    let report =
        run_device(&device_with(&strict, rsa), quick_settings(), device(&group_key, "d-rsa"), now(), never_abort())
            .await;
    assert_eq!(report.outcome, Outcome::Failed(FailureKind::Tls));
    strict.handle.stop().await;

    // Opted in on both sides, TLS 1.3 provisions.
    let open = dpsbench::emulator::start_on_loopback_with(config(), TlsVersions::Tls12And13.into()).unwrap();
    let report =
        run_device(&device_with(&open, tls13), quick_settings(), device(&group_key, "d13-ok"), now(), never_abort())
            .await;
    assert!(matches!(report.outcome, Outcome::Assigned { .. }), "{:?}", report.outcome);
    open.handle.stop().await;
}
