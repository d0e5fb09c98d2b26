//! Device personalities: the wire dialect of each official SDK (`docs/dps-mqtt.md` §1-5), so a
//! capacity test can mirror a real fleet and a conformance run can show that an endpoint
//! accepts every SDK's dialect.
//!
//! Pure data: a personality turns base settings into that SDK's settings, picks its SAS token
//! style and writes its register body.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{FlowSettings, PollBody, RetryPolicy, RetryProfile, RidStyle};
use crate::credentials::{RegistrationId, ResourceEncoding, SasStyle};
use crate::mqtt::QoS;
use crate::topics::DEFAULT_API_VERSION;

/// Whose wire behaviour a device reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Personality {
    /// dpsbench's own: the documented forms throughout.
    #[default]
    Dpsbench,
    /// Python `azure-iot-device` 2.14.
    Python,
    /// Node `azure-iot-provisioning-device-mqtt`.
    Node,
    /// `azure-iot-sdk-c` 1.15.
    C,
    /// `azure-sdk-for-c` (embedded C) paho samples.
    EmbeddedC,
    /// C# v1 (DotNetty).
    Csharp,
}

impl Personality {
    pub const ALL: [Personality; 6] =
        [Self::Dpsbench, Self::Python, Self::Node, Self::C, Self::EmbeddedC, Self::Csharp];

    /// The personality called `name` (as [`Personality::name`] spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Dpsbench => "dpsbench",
            Self::Python => "python",
            Self::Node => "node",
            Self::C => "c",
            Self::EmbeddedC => "embedded-c",
            Self::Csharp => "csharp",
        }
    }

    /// This SDK's settings, keeping `base`'s deadlines (and its retry policy for `dpsbench`).
    pub fn settings(self, base: &FlowSettings) -> FlowSettings {
        let sdk =
            |api: &str, client: Option<&str>, keep_alive, clean, rid, poll_body, qos: [QoS; 3], retry| FlowSettings {
                api_version: api.into(),
                client_version: client.map(String::from),
                keep_alive,
                clean_session: clean,
                subscribe_qos: qos[0],
                register_qos: qos[1],
                poll_qos: qos[2],
                rid_style: rid,
                poll_body,
                retry: RetryPolicy::profile(retry),
                ..base.clone()
            };
        let q1 = QoS::AtLeastOnce;
        let q0 = QoS::AtMostOnce;
        match self {
            Self::Dpsbench => base.clone(),
            Self::Python => sdk(
                DEFAULT_API_VERSION,
                Some("azure-iot-device-provisioning-py%2F2.14.0%28python%203.11%3BLinux%3Bx86_64%29"),
                60,
                false,
                RidStyle::Uuid,
                PollBody::Space,
                [q1, q1, q1],
                RetryProfile::Python,
            ),
            Self::Node => sdk(
                DEFAULT_API_VERSION,
                Some("azure-iot-provisioning-device%2F1.9.1"),
                180,
                true,
                RidStyle::Uuid,
                PollBody::Space,
                [q1, q1, q1],
                RetryProfile::Node,
            ),
            Self::C => sdk(
                "2021-06-01",
                Some("1.15.0"),
                0,
                true,
                RidStyle::Counter,
                PollBody::RegisterBody,
                [q1, q0, q0],
                RetryProfile::C,
            ),
            Self::EmbeddedC => sdk(
                DEFAULT_API_VERSION,
                None,
                240,
                false,
                RidStyle::Literal1,
                PollBody::Empty,
                [q1, q1, q0],
                RetryProfile::EmbeddedC,
            ),
            Self::Csharp => sdk(
                DEFAULT_API_VERSION,
                Some("Microsoft.Azure.Devices.Provisioning.Transport.Mqtt%2F1.17.0"),
                0,
                true,
                RidStyle::Counter,
                PollBody::Empty,
                [q1, q1, q1],
                RetryProfile::Csharp,
            ),
        }
    }

    /// How this SDK writes its SAS token.
    pub fn sas_style(self) -> SasStyle {
        let style = |resource_encoding, key_name, skn_before_se| SasStyle {
            resource_encoding,
            key_name,
            skn_before_se,
            lower_case_sig: false,
        };
        match self {
            Self::Dpsbench | Self::Csharp => SasStyle::default(),
            Self::Python => style(ResourceEncoding::Upper, false, false),
            Self::Node => style(ResourceEncoding::Raw, true, true),
            // azure-iot-sdk-c's URL encoder writes every escape in lower case, sig's too.
            Self::C => SasStyle { lower_case_sig: true, ..style(ResourceEncoding::Lower, true, false) },
            Self::EmbeddedC => style(ResourceEncoding::Lower, false, false),
        }
    }

    /// The register body this SDK sends, with an optional custom allocation payload.
    pub fn register_body(self, registration_id: &RegistrationId, payload: Option<&Value>) -> Bytes {
        let id = registration_id.as_str();
        let body = match (self, payload) {
            // Python: json.dumps(sort_keys=True), with its spaces and `"payload": null`.
            (Self::Python, payload) => {
                let payload = payload.map(|p| serde_json::to_string(p).expect("JSON values serialise"));
                format!("{{\"payload\": {}, \"registrationId\": \"{id}\"}}", payload.as_deref().unwrap_or("null"))
            }
            // azure-sdk-for-c samples and C# send nothing without custom data.
            (Self::EmbeddedC | Self::Csharp, None) => String::new(),
            // C# models only `payload`.
            (Self::Csharp, Some(payload)) => serde_json::json!({ "payload": payload }).to_string(),
            (_, None) => serde_json::json!({ "registrationId": id }).to_string(),
            (_, Some(payload)) => format!("{{\"registrationId\":\"{id}\",\"payload\":{payload}}}"),
        };
        Bytes::from(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> RegistrationId {
        RegistrationId::new("my-reg").unwrap()
    }

    #[test]
    fn register_bodies_match_what_each_sdk_sends() {
        assert_eq!(
            &Personality::Python.register_body(&id(), None)[..],
            br#"{"payload": null, "registrationId": "my-reg"}"#
        );
        let model = serde_json::json!({ "modelId": "dtmi:x;1" });
        assert_eq!(
            &Personality::Python.register_body(&id(), Some(&model))[..],
            br#"{"payload": {"modelId":"dtmi:x;1"}, "registrationId": "my-reg"}"#
        );
        assert_eq!(
            &Personality::C.register_body(&id(), Some(&model))[..],
            br#"{"registrationId":"my-reg","payload":{"modelId":"dtmi:x;1"}}"#
        );
        assert_eq!(&Personality::EmbeddedC.register_body(&id(), None)[..], b"");
        assert_eq!(
            &Personality::Csharp.register_body(&id(), Some(&model))[..],
            br#"{"payload":{"modelId":"dtmi:x;1"}}"#
        );
        assert_eq!(&Personality::Node.register_body(&id(), None)[..], br#"{"registrationId":"my-reg"}"#);
    }

    #[test]
    fn settings_follow_each_sdk() {
        let base = FlowSettings::default();
        let c = Personality::C.settings(&base);
        assert_eq!(
            (c.api_version.as_str(), c.keep_alive, c.poll_qos, c.rid_style),
            ("2021-06-01", 0, QoS::AtMostOnce, RidStyle::Counter)
        );
        assert_eq!(c.retry.profile, RetryProfile::C);
        let embedded = Personality::EmbeddedC.settings(&base);
        assert_eq!(
            (embedded.client_version, embedded.rid_style, embedded.clean_session),
            (None, RidStyle::Literal1, false)
        );
        assert_eq!(
            Personality::Node.sas_style(),
            SasStyle {
                resource_encoding: ResourceEncoding::Raw,
                key_name: true,
                skn_before_se: true,
                lower_case_sig: false
            }
        );
        assert_eq!(Personality::Dpsbench.settings(&base).api_version, base.api_version);
        assert_eq!(Personality::Python.settings(&base).timeouts, base.timeouts, "deadlines are the scenario's");
    }
}
