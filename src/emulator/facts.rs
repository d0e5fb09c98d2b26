//! What a device's CONNECT says, parsed once per connection: its username and SAS token as
//! typed values, beside what the emulator knows of the connection (its own ID scope, the client
//! certificate, the wall-clock second). The service authenticates from these facts and the
//! client checks judge them; neither parses the username or the token again.
//!
//! Sans IO and no policy: it parses and never decides whether a device is let in.

use std::time::SystemTime;

use rumqttc::mqttbytes::v4::Connect;

use crate::credentials::{ParsedSas, SasToken};
use crate::topics::Username;

/// What the emulator knows of a connection beyond its CONNECT.
#[derive(Clone, Copy)]
pub struct ConnectContext<'a> {
    /// The emulator's own ID scope.
    pub id_scope: &'a str,
    /// The client certificate's subject CN, when the device presented one.
    pub certificate_cn: Option<&'a str>,
    /// Whether the device presented a certificate (an X.509 device sends no SAS token).
    pub x509: bool,
    /// Whether a registration ID has an individual enrollment (no `skn` expected then); asked
    /// only of a token without `skn`.
    pub individual: &'a dyn Fn(&str) -> bool,
    /// The wall clock, in Unix seconds.
    pub now_unix: u64,
}

impl ConnectContext<'_> {
    /// `wall` in Unix seconds (0 before the epoch).
    pub fn unix_seconds(wall: SystemTime) -> u64 {
        wall.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
    }
}

/// A CONNECT's facts, parsed once.
pub struct ConnectFacts<'a> {
    pub connect: &'a Connect,
    /// The username, when it has DPS's form `{scope}/registrations/{id}/api-version={v}`.
    pub username: Option<Username<'a>>,
    /// The password as sent (empty without one).
    pub password: &'a str,
    /// The password's SAS token fields, when it is a SAS token.
    pub token: Option<ParsedSas<'a>>,
    pub context: ConnectContext<'a>,
}

impl<'a> ConnectFacts<'a> {
    pub fn parse(connect: &'a Connect, context: ConnectContext<'a>) -> Self {
        let login = connect.login.as_ref();
        let username = login.and_then(|login| Username::parse(&login.username).ok());
        let password = login.map(|login| login.password.as_str()).unwrap_or_default();
        let token = SasToken::parse_password(password).ok();
        Self { connect, username, password, token, context }
    }

    /// The registration ID the device named: its ClientId, else the username's.
    pub fn named_registration_id(&self) -> Option<&'a str> {
        if self.connect.client_id.is_empty() {
            self.username.map(|u| u.registration_id)
        } else {
            Some(&self.connect.client_id)
        }
    }
}
