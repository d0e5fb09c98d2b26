//! DPS topic names: building and parsing the register, poll and reply topics of `docs/dps-mqtt.md` §3,
//! and the MQTT username of §1 with its default api-version.
//!
//! Sans-IO and allocation-light. Both sides use it: the device builds the username and requests
//! and parses replies, the emulator parses the username and requests and builds replies. Parsing
//! is tolerant where SDKs and DPS are (parameters in any order, `Retry-After` in any case, empty
//! values) and strict where a wrong answer would mislead (a status that is not three digits, a
//! `$rid` given twice).

use std::fmt::Write as _;

/// The filter a device subscribes to for replies.
pub const RESPONSE_FILTER: &str = "$dps/registrations/res/#";
/// Prefix of every reply topic.
pub const RESPONSE_PREFIX: &str = "$dps/registrations/res/";
/// Prefix of the register topic, before `$rid`.
pub const REGISTER_PREFIX: &str = "$dps/registrations/PUT/iotdps-register/?";
/// Prefix of the poll topic, before `$rid`.
pub const POLL_PREFIX: &str = "$dps/registrations/GET/iotdps-get-operationstatus/?";

/// The api-version a device names in its username unless its personality says otherwise.
pub const DEFAULT_API_VERSION: &str = "2019-03-31";

/// Errors in topic names. Variants carry the topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic {0:?} is not a DPS reply topic ($dps/registrations/res/...)")]
    NotReply(String),
    #[error("reply topic {0:?} has no three-digit status")]
    BadStatus(String),
    #[error("reply topic {0:?} has no ?-query")]
    NoQuery(String),
    #[error("topic {0:?} names the parameter {1:?} twice")]
    Duplicate(String, String),
    #[error("reply topic {0:?} has a non-numeric retry-after")]
    BadRetryAfter(String),
    #[error("topic {0:?} is not a documented DPS request topic")]
    UnknownRequest(String),
    #[error("request topic {0:?} lacks $rid")]
    MissingRid(String),
    #[error("poll topic {0:?} lacks operationId")]
    MissingOperationId(String),
    #[error("username {0:?} is not {{scope}}/registrations/{{id}}/api-version={{v}}")]
    NotUsername(String),
}

/// The MQTT username: `{scope}/registrations/{id}/api-version={v}[&ClientVersion={cv}]`.
///
/// Fields are plain text so conformance probes can name an ID other than their clientId or scope
/// on purpose; `Display` builds the username, [`Username::parse`] reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Username<'a> {
    pub id_scope: &'a str,
    pub registration_id: &'a str,
    /// Up to the first `&`; never empty once parsed.
    pub api_version: &'a str,
    /// `ClientVersion`, as on the wire (already encoded); other parameters are ignored.
    pub client_version: Option<&'a str>,
}

impl<'a> Username<'a> {
    /// Parses a username as DPS does: a scope, `/registrations/`, an ID, then a non-empty
    /// `api-version`.
    pub fn parse(username: &'a str) -> Result<Self, TopicError> {
        let bad = || TopicError::NotUsername(username.to_string());
        let (id_scope, rest) = username.split_once("/registrations/").ok_or_else(bad)?;
        let (registration_id, rest) = rest.split_once('/').ok_or_else(bad)?;
        let query = rest.strip_prefix("api-version=").ok_or_else(bad)?;
        let (api_version, params) = query.split_once('&').unwrap_or((query, ""));
        if api_version.is_empty() {
            return Err(bad());
        }
        let client_version = query_pairs(params).find(|(name, _)| *name == "ClientVersion").map(|(_, value)| value);
        Ok(Username { id_scope, registration_id, api_version, client_version })
    }
}

impl std::fmt::Display for Username<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/registrations/{}/api-version={}", self.id_scope, self.registration_id, self.api_version)?;
        match self.client_version {
            Some(client_version) => write!(f, "&ClientVersion={client_version}"),
            None => Ok(()),
        }
    }
}

/// The register topic for request ID `rid`.
pub fn register_topic(rid: &str) -> String {
    format!("{REGISTER_PREFIX}$rid={rid}")
}

/// The poll topic for request ID `rid` and operation `operation_id`.
pub fn poll_topic(rid: &str, operation_id: &str) -> String {
    format!("{POLL_PREFIX}$rid={rid}&operationId={operation_id}")
}

/// A parsed reply topic, borrowing from the topic string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTopic<'a> {
    /// The HTTP-like status: 200, 202, 401, 429, ...
    pub status: u16,
    /// `$rid`, as received; `None` when absent.
    pub rid: Option<&'a str>,
    /// The `retry-after` parameter. `None` when absent, `Some(None)` when present but empty.
    pub retry_after: Option<Option<u32>>,
}

impl<'a> ReplyTopic<'a> {
    /// Parses `$dps/registrations/res/{status}/?{params}`.
    pub fn parse(topic: &'a str) -> Result<Self, TopicError> {
        let rest = topic.strip_prefix(RESPONSE_PREFIX).ok_or_else(|| TopicError::NotReply(topic.to_string()))?;
        let (status, query) = rest.split_once('/').unwrap_or((rest, ""));
        // Three digits, an HTTP status: `086` is not one (and would render back as `86`).
        if status.len() != 3 || !status.bytes().all(|b| b.is_ascii_digit()) || status.starts_with('0') {
            return Err(TopicError::BadStatus(topic.to_string()));
        }
        let status = status.parse().map_err(|_| TopicError::BadStatus(topic.to_string()))?;
        let query = query.strip_prefix('?').ok_or_else(|| TopicError::NoQuery(topic.to_string()))?;
        let mut reply = ReplyTopic { status, rid: None, retry_after: None };
        for (name, value) in query_pairs(query) {
            if name == "$rid" {
                if reply.rid.replace(value).is_some() {
                    return Err(TopicError::Duplicate(topic.to_string(), name.to_string()));
                }
            } else if name.eq_ignore_ascii_case("retry-after") {
                let parsed = match value {
                    "" => None,
                    v => Some(v.parse::<u32>().map_err(|_| TopicError::BadRetryAfter(topic.to_string()))?),
                };
                if reply.retry_after.replace(parsed).is_some() {
                    return Err(TopicError::Duplicate(topic.to_string(), name.to_string()));
                }
            }
        }
        Ok(reply)
    }
}

/// Builds `$dps/registrations/res/{status}/?$rid={rid}[&retry-after={n}]`: `$rid` first, as
/// Python requires, then `retry-after`.
pub fn reply_topic(status: u16, rid: &str, retry_after: Option<u32>) -> String {
    let mut topic = String::with_capacity(RESPONSE_PREFIX.len() + rid.len() + 32);
    let _ = write!(topic, "{RESPONSE_PREFIX}{status}/?$rid={rid}");
    if let Some(seconds) = retry_after {
        let _ = write!(topic, "&retry-after={seconds}");
    }
    topic
}

/// A request a device published, as the emulator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestTopic<'a> {
    Register { rid: &'a str },
    Poll { rid: &'a str, operation_id: &'a str },
}

impl<'a> RequestTopic<'a> {
    /// Parses a register or poll topic. Anything else is an undocumented topic.
    pub fn parse(topic: &'a str) -> Result<Self, TopicError> {
        if let Some(query) = topic.strip_prefix(REGISTER_PREFIX) {
            let rid = find_param(topic, query, "$rid")?.ok_or_else(|| TopicError::MissingRid(topic.to_string()))?;
            return Ok(RequestTopic::Register { rid });
        }
        if let Some(query) = topic.strip_prefix(POLL_PREFIX) {
            let rid = find_param(topic, query, "$rid")?.ok_or_else(|| TopicError::MissingRid(topic.to_string()))?;
            let operation_id = find_param(topic, query, "operationId")?
                .filter(|id| !id.is_empty())
                .ok_or_else(|| TopicError::MissingOperationId(topic.to_string()))?;
            return Ok(RequestTopic::Poll { rid, operation_id });
        }
        Err(TopicError::UnknownRequest(topic.to_string()))
    }

    pub fn rid(&self) -> &'a str {
        match self {
            RequestTopic::Register { rid } | RequestTopic::Poll { rid, .. } => rid,
        }
    }
}

fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query.split('&').filter(|pair| !pair.is_empty()).map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

fn find_param<'a>(topic: &str, query: &'a str, name: &str) -> Result<Option<&'a str>, TopicError> {
    let mut found = None;
    for (key, value) in query_pairs(query) {
        if key == name && found.replace(value).is_some() {
            return Err(TopicError::Duplicate(topic.to_string(), name.to_string()));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn builds_documented_topics() {
        assert_eq!(register_topic("1"), "$dps/registrations/PUT/iotdps-register/?$rid=1");
        assert_eq!(
            poll_topic("2", "4.2f792ade0a5c3e68.baf0e879-d88a-4153-afef-71aff51fd847"),
            "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2\
             &operationId=4.2f792ade0a5c3e68.baf0e879-d88a-4153-afef-71aff51fd847"
        );
        assert_eq!(reply_topic(202, "1", Some(3)), "$dps/registrations/res/202/?$rid=1&retry-after=3");
        assert_eq!(reply_topic(200, "abc", None), "$dps/registrations/res/200/?$rid=abc");
    }

    #[test]
    fn parses_replies_in_every_form_seen() {
        let parse = |t| ReplyTopic::parse(t).unwrap();
        assert_eq!(
            parse("$dps/registrations/res/202/?$rid=1&retry-after=3"),
            ReplyTopic { status: 202, rid: Some("1"), retry_after: Some(Some(3)) }
        );
        // azure-sdk-for-c test: retry-after before $rid.
        assert_eq!(
            parse("$dps/registrations/res/202/?retry-after=120&$rid=1"),
            ReplyTopic { status: 202, rid: Some("1"), retry_after: Some(Some(120)) }
        );
        // C# tests: Retry-After in any case, empty value.
        assert_eq!(parse("$dps/registrations/res/429/?$rid=9&Retry-After=32").retry_after, Some(Some(32)));
        assert_eq!(parse("$dps/registrations/res/429/?$rid=9&Retry-After=").retry_after, Some(None));
        // No $rid (azure-sdk-for-c does not check it), unknown parameters ignored.
        assert_eq!(
            parse("$dps/registrations/res/200/?something=89"),
            ReplyTopic { status: 200, rid: None, retry_after: None }
        );
        assert_eq!(parse("$dps/registrations/res/200/?$rid=").rid, Some(""));
    }

    #[test]
    fn malformed_replies_are_named() {
        let err = |t: &str| ReplyTopic::parse(t).unwrap_err();
        assert!(matches!(err("devices/x/messages"), TopicError::NotReply(_)));
        assert!(matches!(err("$dps/registrations/res/20/?$rid=1"), TopicError::BadStatus(_)));
        assert!(matches!(err("$dps/registrations/res/abc/?$rid=1"), TopicError::BadStatus(_)));
        // Found by the `topics` fuzz target: `086` parsed as 86, which renders as `res/86/`.
        assert!(matches!(err("$dps/registrations/res/086/?$rid="), TopicError::BadStatus(_)));
        assert!(matches!(err("$dps/registrations/res/200"), TopicError::NoQuery(_)));
        assert!(matches!(err("$dps/registrations/res/200/$rid=1"), TopicError::NoQuery(_)));
        assert!(matches!(err("$dps/registrations/res/202/?$rid=1&retry-after=x"), TopicError::BadRetryAfter(_)));
        assert!(matches!(err("$dps/registrations/res/202/?$rid=1&retry-after=-1"), TopicError::BadRetryAfter(_)));
        assert!(matches!(err("$dps/registrations/res/202/?$rid=1&$rid=2"), TopicError::Duplicate(..)));
    }

    #[test]
    fn parses_requests() {
        assert_eq!(
            RequestTopic::parse("$dps/registrations/PUT/iotdps-register/?$rid=3226c2f7-3d30"),
            Ok(RequestTopic::Register { rid: "3226c2f7-3d30" })
        );
        assert_eq!(
            RequestTopic::parse("$dps/registrations/GET/iotdps-get-operationstatus/?operationId=4.a.b&$rid=7"),
            Ok(RequestTopic::Poll { rid: "7", operation_id: "4.a.b" })
        );
        assert!(matches!(
            RequestTopic::parse("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=7"),
            Err(TopicError::MissingOperationId(_))
        ));
        assert!(matches!(
            RequestTopic::parse("$dps/registrations/PUT/iotdps-register/?x=1"),
            Err(TopicError::MissingRid(_))
        ));
        assert!(matches!(RequestTopic::parse("$dps/registrations/PUT/other"), Err(TopicError::UnknownRequest(_))));
    }

    #[test]
    fn usernames_build_and_parse() {
        let username = |id_scope, api_version, client_version| Username {
            id_scope,
            registration_id: "dev-1",
            api_version,
            client_version,
        };
        let with_client = username("0ne00DPS001", DEFAULT_API_VERSION, Some("dpsbench%2F0.1.0"));
        assert_eq!(
            with_client.to_string(),
            "0ne00DPS001/registrations/dev-1/api-version=2019-03-31&ClientVersion=dpsbench%2F0.1.0"
        );
        assert_eq!(
            username("0ne00DPS001", "2021-06-01", None).to_string(),
            "0ne00DPS001/registrations/dev-1/api-version=2021-06-01"
        );
        // Parameters after api-version other than ClientVersion are ignored.
        assert_eq!(
            Username::parse("0ne00DPS001/registrations/dev-1/api-version=2025-07-01-preview&x=1&ClientVersion=1.15.0"),
            Ok(username("0ne00DPS001", "2025-07-01-preview", Some("1.15.0")))
        );
        let err = |u: &str| Username::parse(u).unwrap_err();
        assert!(matches!(err("0ne00DPS001/registrations/dev-1/api-version="), TopicError::NotUsername(_)));
        assert!(matches!(
            err("0ne00DPS001/registrations/dev-1/api-version=&ClientVersion=1"),
            TopicError::NotUsername(_)
        ));
        assert!(matches!(err("0ne00DPS001/registrations/dev-1"), TopicError::NotUsername(_)));
        assert!(matches!(err("0ne00DPS001/devices/dev-1/api-version=2019-03-31"), TopicError::NotUsername(_)));
        assert!(matches!(err("0ne00DPS001/registrations/dev-1/version=2019-03-31"), TopicError::NotUsername(_)));
    }

    proptest! {
        #[test]
        fn username_round_trip(
            id_scope in "[A-Za-z0-9]{1,64}",
            registration_id in "[A-Za-z0-9-._:]{1,128}",
            api_version in "[0-9a-z-]{1,20}",
            client_version in proptest::option::of("[A-Za-z0-9.%]{0,80}"),
        ) {
            let username = Username {
                id_scope: &id_scope,
                registration_id: &registration_id,
                api_version: &api_version,
                client_version: client_version.as_deref(),
            };
            let text = username.to_string();
            prop_assert_eq!(Username::parse(&text), Ok(username));
        }

        #[test]
        fn reply_round_trip(status in 100u16..1000, rid in "[A-Za-z0-9-]{0,40}", retry in proptest::option::of(0u32..100_000)) {
            let topic = reply_topic(status, &rid, retry);
            let parsed = ReplyTopic::parse(&topic).unwrap();
            prop_assert_eq!(parsed, ReplyTopic { status, rid: Some(rid.as_str()), retry_after: retry.map(Some) });
        }

        #[test]
        fn request_round_trip(rid in "[A-Za-z0-9-]{1,40}", op in "[0-9a-f.-]{1,60}") {
            let register = register_topic(&rid);
            prop_assert_eq!(RequestTopic::parse(&register).unwrap(), RequestTopic::Register { rid: rid.as_str() });
            let poll = poll_topic(&rid, &op);
            prop_assert_eq!(RequestTopic::parse(&poll).unwrap(), RequestTopic::Poll { rid: rid.as_str(), operation_id: op.as_str() });
        }

        #[test]
        fn parsers_never_panic(topic in ".{0,120}") {
            let _ = ReplyTopic::parse(&topic);
            let _ = RequestTopic::parse(&topic);
            let _ = Username::parse(&topic);
            let _ = ReplyTopic::parse(&format!("{RESPONSE_PREFIX}{topic}"));
        }
    }
}
