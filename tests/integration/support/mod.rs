//! Shared test setup: an in-process emulator and a device target that trusts it (here), the
//! binary as scripts run it (`binary`), JSON Schema checks (`schema`), scenario files built
//! rather than spelled out (`scenario`), an unserved loopback port (`ports`), the Python
//! readers (`python`) and the parts a user may skip by name (`parts`).

pub mod binary;
pub mod parts;
pub mod ports;
pub mod python;
pub mod scenario;
pub mod schema;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dpsbench::credentials::{IdScope, RegistrationId, SasStyle, SasToken, SymmetricKey};
use dpsbench::device::{DeviceIdentity, FlowSettings, Target, Timeouts};
use dpsbench::emulator::{self, EmulatorHandle, ServiceConfig};
use dpsbench::tls::{self, TlsVersions};

pub const SCOPE: &str = "0ne00TEST01";

pub struct Emulator {
    pub handle: EmulatorHandle,
    pub target: Target,
    pub group_key: SymmetricKey,
    pub ca_pem: String,
}

/// Starts an emulator with one group (random key) and settings changed by `edit`.
pub fn start_emulator(edit: impl FnOnce(&mut ServiceConfig)) -> Emulator {
    let group_key = SymmetricKey::random();
    let mut config =
        ServiceConfig::single_group(scope(), vec!["hub-a.example".into(), "hub-b.example".into()], group_key.clone());
    config.retry_after_seconds = 0;
    config.assign_delay = Duration::ZERO;
    edit(&mut config);
    let started = emulator::start_on_loopback(config).unwrap();
    let target = target_for(started.handle.address, &started.ca_pem);
    Emulator { handle: started.handle, target, group_key, ca_pem: started.ca_pem }
}

pub fn target_for(address: SocketAddr, ca_pem: &str) -> Target {
    let roots = tls::roots_from_pem(ca_pem.as_bytes(), std::path::Path::new("test-ca.pem")).unwrap();
    Target {
        address,
        server_name: "localhost".try_into().unwrap(),
        tls: tls::client_config(roots, TlsVersions::Tls12Only).unwrap(),
        transport: Default::default(),
        watch: None,
    }
}

pub fn scope() -> IdScope {
    IdScope::new(SCOPE).unwrap()
}

/// A device of the group whose key is `group_key`, with a token valid for an hour.
pub fn device(group_key: &SymmetricKey, id: &str) -> DeviceIdentity {
    device_signed_with(&group_key.derive_device_key(&RegistrationId::new(id).unwrap()), id, 3600)
}

pub fn device_signed_with(device_key: &SymmetricKey, id: &str, valid_for_seconds: i64) -> DeviceIdentity {
    let registration_id = RegistrationId::new(id).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let expiry = (now + valid_for_seconds) as u64;
    DeviceIdentity {
        register_body: DeviceIdentity::default_register_body(&registration_id),
        password: Some(SasToken::build(&scope(), &registration_id, device_key, expiry, SasStyle::default())),
        registration_id,
        id_scope: scope(),
        source_address: None,
        personality: Default::default(),
        payload: None,
        client_tls: None,
        certificate_request: None,
    }
}

/// Flow settings with short deadlines, so failure tests finish fast.
pub fn quick_settings() -> Arc<FlowSettings> {
    let timeouts = Timeouts {
        tcp_connect: Duration::from_secs(2),
        tls_handshake: Duration::from_millis(500),
        connack: Duration::from_secs(2),
        suback: Duration::from_secs(2),
        reply: Duration::from_secs(2),
        flow: Duration::from_secs(30),
    };
    Arc::new(FlowSettings { timeouts, ..FlowSettings::default() })
}
