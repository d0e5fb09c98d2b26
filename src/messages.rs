//! DPS message bodies (`docs/dps-mqtt.md` §4): the register request, the operation status, the error.
//!
//! Sans-IO: serde types plus the etag and operationId formats (timestamps: `timestamp`); random parts come from
//! the caller's RNG. Parsing is tolerant of
//! every variant SDKs and DPS produce (missing optional fields, unknown fields, `null`s); the
//! emulator serialises compact JSON in DPS's field order.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The body of a register request (DeviceRegistration). Every field is optional on the wire:
/// DPS takes the identity from the connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRegistration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_id: Option<String>,
    /// Custom allocation data: a JSON object, or `null` as Python sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<Value>,
}

impl DeviceRegistration {
    /// Parses a register body. Empty and whitespace-only bodies are an empty registration.
    pub fn parse(body: &[u8]) -> Result<Self, serde_json::Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(body)
    }
}

/// `status` of an operation or a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationStatus {
    /// TPM flow only; never valid over MQTT.
    Unassigned,
    Assigning,
    Assigned,
    Failed,
    Disabled,
}

impl OperationStatus {
    /// Whether the operation has ended (no more polling).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Assigned | Self::Failed | Self::Disabled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unassigned => "unassigned",
            Self::Assigning => "assigning",
            Self::Assigned => "assigned",
            Self::Failed => "failed",
            Self::Disabled => "disabled",
        }
    }
}

/// `registrationState.substatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Substatus {
    InitialAssignment,
    DeviceDataMigrated,
    DeviceDataReset,
    ReprovisionedToInitialAssignment,
}

/// A reply body on 200/202: RegistrationOperationStatus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationOperationStatus {
    /// Empty for `disabled`.
    #[serde(default)]
    pub operation_id: String,
    pub status: OperationStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_state: Option<RegistrationState>,
}

/// DeviceRegistrationResult. Field order is DPS's, so serialised bodies match real traces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symmetric_key: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_hub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OperationStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substatus: Option<Substatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_date_time_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// The operational certificate issued for the CSR of the registration (`2025-07-01-preview`):
    /// base64 DER certificates, leaf first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_certificate_chain: Option<Vec<String>>,
}

/// A 2xx reply body, parsed (or not) as a RegistrationOperationStatus.
pub type ParsedOperation = Result<RegistrationOperationStatus, serde_json::Error>;

/// The error body on a non-2xx reply (ProvisioningServiceErrorDetails).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error_code: i64,
    #[serde(default)]
    pub tracking_id: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Value>,
    #[serde(default)]
    pub timestamp_utc: String,
}

impl ErrorBody {
    /// An error body with a random tracking ID drawn from `rng`.
    pub fn new(error_code: i64, message: impl Into<String>, now: SystemTime, rng: &mut impl Rng) -> Self {
        Self {
            error_code,
            tracking_id: uuid_v4(rng),
            message: message.into(),
            info: None,
            timestamp_utc: crate::timestamp::rfc3339(now),
        }
    }
}

/// Errors reading a reply body.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reply body is not valid JSON for status {status}: {source}")]
    Json { status: u16, source: serde_json::Error },
}

/// A reply body, typed by the topic's status: 2xx carries an operation status, anything else an
/// error body.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    Operation(Box<RegistrationOperationStatus>),
    Error(ErrorBody),
}

impl ReplyBody {
    pub fn parse(status: u16, body: &[u8]) -> Result<Self, BodyError> {
        let json = |source| BodyError::Json { status, source };
        if (200..300).contains(&status) {
            serde_json::from_slice(body).map(|op| ReplyBody::Operation(Box::new(op))).map_err(json)
        } else {
            serde_json::from_slice(body).map(ReplyBody::Error).map_err(json)
        }
    }
}

/// A random UUID v4 in its hyphenated text form.
pub fn uuid_v4(rng: &mut impl Rng) -> String {
    let mut bytes: [u8; 16] = rng.random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// An operation ID in DPS's form `{n}.{16 hex}.{uuid}`; `instance` is the 16-hex part.
pub fn operation_id(instance: u64, rng: &mut impl Rng) -> String {
    format!("4.{instance:016x}.{}", uuid_v4(rng))
}

/// An etag as DPS writes them: base64 of a quoted Cosmos-style etag.
pub fn etag(rng: &mut impl Rng) -> String {
    let mut id = uuid_v4(rng);
    id.truncate(23);
    BASE64.encode(format!("\"{id}-{:012x}\"", rng.random::<u64>() & 0xffff_ffff_ffff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_bodies_seen_in_the_wild_parse() {
        let bodies: [&[u8]; 8] = [
            b"",
            b" ",
            br#"{"registrationId":"id"}"#,
            br#"{"registrationId":"sample-device-01","payload":{"modelId":"dtmi:com:example:TemperatureController;1"}}"#,
            br#"{"payload": null, "registrationId": "my-reg"}"#,
            br#"{"payload":{"a":"b"}}"#,
            br#"{"registrationId" : "id", "payload" : {"x": 1}}"#,
            br#"{"registrationId":"myRegistrationId","csr":"this is a mock CSR","tpm":{"endorsementKey":"k"}}"#,
        ];
        for body in bodies {
            DeviceRegistration::parse(body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
        }
        let python = DeviceRegistration::parse(br#"{"payload": null, "registrationId": "my-reg"}"#).unwrap();
        assert_eq!(python.registration_id.as_deref(), Some("my-reg"));
        // Python's `"payload": null` means "no custom payload", the same as an absent field.
        assert_eq!(python.payload, None);
        assert!(DeviceRegistration::parse(b"{").is_err());
    }

    #[test]
    fn operation_bodies_parse() {
        let assigned = br#"{"operationId":"4.d0a671905ea5b2c8.42d78160-4c78-479e-8be7-61d5e55dac0d","status":"assigned","registrationState":{"x509":{},"registrationId":"myRegistrationId","createdDateTimeUtc":"2020-04-10T03:11:13.0276997Z","assignedHub":"contoso.azure-devices.net","deviceId":"my-device-id1","status":"assigned","substatus":"initialAssignment","lastUpdatedDateTimeUtc":"2020-04-10T03:11:13.2096201Z","etag":"IjYxMDA4ZDQ2LTAwMDAtMDEwMC0wMDAwLTVlOGZlM2QxMDAwMCI=","payload":{"hello":"world"}}}"#;
        let ReplyBody::Operation(op) = ReplyBody::parse(200, assigned).unwrap() else { panic!() };
        assert_eq!(op.status, OperationStatus::Assigned);
        let state = op.registration_state.unwrap();
        assert_eq!(state.assigned_hub.as_deref(), Some("contoso.azure-devices.net"));
        assert_eq!(state.substatus, Some(Substatus::InitialAssignment));

        let failed = br#"{"operationId":"4.d0a671905ea5b2c8.42d78160-4c78-479e-8be7-61d5e55dac0d","status":"failed","registrationState":{"registrationId":"myRegistrationId","createdDateTimeUtc":"2020-04-10T03:11:13.0276997Z","status":"failed","errorCode":400207,"errorMessage":"Custom allocation failed with status code: 400","lastUpdatedDateTimeUtc":"2020-04-10T05:24:22.4718526Z","etag":"IjYxMDA4ZDQ2LTAwMDAtMDEwMC0wMDAwLTVlOGZlM2QxMDAwMCI="}}"#;
        let ReplyBody::Operation(op) = ReplyBody::parse(200, failed).unwrap() else { panic!() };
        assert_eq!(op.registration_state.unwrap().error_code, Some(400207));

        let disabled = br#"{"operationId":"","status":"disabled","registrationState":{"registrationId":"myRegistrationId","status":"disabled"}}"#;
        let ReplyBody::Operation(op) = ReplyBody::parse(200, disabled).unwrap() else { panic!() };
        assert_eq!((op.operation_id.as_str(), op.status), ("", OperationStatus::Disabled));

        for substatus in ["deviceDataMigrated", "deviceDataReset", "reprovisionedToInitialAssignment"] {
            let body = format!(
                r#"{{"operationId":"x","status":"assigned","registrationState":{{"substatus":"{substatus}"}}}}"#
            );
            assert!(ReplyBody::parse(200, body.as_bytes()).is_ok(), "{substatus}");
        }
        assert!(ReplyBody::parse(200, br#"{"operationId":"x","status":"registering"}"#).is_err());
    }

    #[test]
    fn error_bodies_parse() {
        let body = br#"{"errorCode":401000,"trackingId":"2cb8f317-10f5-44f4-a5a6-380a998146e9","message":"Unauthorized","timestampUtc":"2019-11-19T21:39:05.1573304Z"}"#;
        let ReplyBody::Error(error) = ReplyBody::parse(401, body).unwrap() else { panic!() };
        assert_eq!(error.error_code, 401000);
        assert!(ReplyBody::parse(429, b"").is_err());
    }

    #[test]
    fn serialises_compact_json_in_dps_order() {
        let op = RegistrationOperationStatus {
            operation_id: "4.2f792ade0a5c3e68.baf0e879-d88a-4153-afef-71aff51fd847".into(),
            status: OperationStatus::Assigning,
            registration_state: Some(RegistrationState {
                registration_id: Some("sample-device-01".into()),
                status: Some(OperationStatus::Assigning),
                ..Default::default()
            }),
        };
        // Trace A: exactly 173 bytes.
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(
            json,
            r#"{"operationId":"4.2f792ade0a5c3e68.baf0e879-d88a-4153-afef-71aff51fd847","status":"assigning","registrationState":{"registrationId":"sample-device-01","status":"assigning"}}"#
        );
        assert_eq!(json.len(), 173);
    }

    #[test]
    fn formats() {
        let rng = &mut rand::rng();
        let id = uuid_v4(rng);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        let op = operation_id(0xd0a671905ea5b2c8, rng);
        assert!(op.starts_with("4.d0a671905ea5b2c8."), "{op}");
        let tag = String::from_utf8(BASE64.decode(etag(rng)).unwrap()).unwrap();
        assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    }
}
