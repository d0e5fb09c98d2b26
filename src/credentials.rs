//! Credentials: identities, keys and SAS tokens for DPS symmetric-key attestation.
//!
//! Sans-IO: no sockets, no clock (callers pass the current Unix time in). Secret material lives in
//! [`SymmetricKey`] and [`SasToken`], whose `Debug` and `Display` are redacted so a key or token
//! can never reach a log, a report or an error message by accident.
//!
//! The algorithms are those of `docs/dps-mqtt.md` §2: a group enrollment's per-device key is
//! `base64(HMAC-SHA256(base64decode(groupKey), registrationId))`, and a SAS token signs
//! `{sr}\n{se}` with the device key, `sr` being the resource URI exactly as it appears in the
//! token (SDKs encode it differently, and DPS verifies over the bytes received).

use std::fmt;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Characters left alone by URL encoding, as `urllib.parse.quote(s, safe="")` and .NET's
/// `WebUtility.UrlEncode` leave them: unreserved characters only.
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Longest registration ID DPS accepts.
pub const MAX_REGISTRATION_ID_LEN: usize = 128;

/// Errors in identities, keys and tokens. Variants carry the offending value, except secrets.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error("registration ID {0:?} is invalid: {1}")]
    InvalidRegistrationId(String, &'static str),
    #[error("ID scope {0:?} is invalid: it must be non-empty and contain only letters and digits")]
    InvalidIdScope(String),
    #[error("key is not valid base64")]
    KeyNotBase64,
    #[error("key is {0} bytes once decoded; DPS keys are 1 to 64 bytes (16 to 64 when generated)")]
    KeyLength(usize),
    #[error("SAS token does not start with \"SharedAccessSignature \"")]
    NotSharedAccessSignature,
    #[error("SAS token field {0:?} is malformed")]
    MalformedField(String),
    #[error("SAS token has field {0:?} twice")]
    DuplicateField(String),
    #[error("SAS token lacks the {0:?} field")]
    MissingField(&'static str),
    #[error("SAS token expiry {0:?} is not decimal Unix seconds")]
    BadExpiry(String),
}

/// Why a SAS token was refused. Each variant is a distinct reason an emulator or a check reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SasRefusal {
    /// The token could not be parsed.
    Malformed,
    /// `sr` does not name `{scope}/registrations/{registrationId}` of this connection.
    WrongResource,
    /// `se` is in the past.
    Expired,
    /// The signature does not match any key tried.
    BadSignature,
}

/// A device registration ID: case-insensitive, at most 128 characters of `[A-Za-z0-9-._:]`,
/// starting and ending with an alphanumeric character (DPS also allows a trailing `-`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistrationId(String);

impl RegistrationId {
    pub fn new(value: impl Into<String>) -> Result<Self, CredentialError> {
        let value = value.into();
        let invalid = |why| Err(CredentialError::InvalidRegistrationId(value.clone(), why));
        if value.is_empty() {
            return invalid("it is empty");
        }
        if value.len() > MAX_REGISTRATION_ID_LEN {
            return invalid("it is longer than 128 characters");
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
        if !value.chars().all(allowed) {
            return invalid("only letters, digits and - . _ : are allowed");
        }
        let first = value.as_bytes()[0];
        let last = value.as_bytes()[value.len() - 1];
        if !first.is_ascii_alphanumeric() {
            return invalid("it must start with a letter or digit");
        }
        if !(last.is_ascii_alphanumeric() || last == b'-') {
            return invalid("it must end with a letter, digit or -");
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form DPS compares registration IDs by.
    pub fn canonical(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Debug for RegistrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for RegistrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A DPS ID scope such as `0ne0026656D`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdScope(String);

impl IdScope {
    pub fn new(value: impl Into<String>) -> Result<Self, CredentialError> {
        let value = value.into();
        if value.is_empty() || value.len() > 64 || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(CredentialError::InvalidIdScope(value));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for IdScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A symmetric key (an enrollment group key, an individual enrollment key or a derived device
/// key), held decoded. Its `Debug` is redacted; the base64 text is only produced on request.
///
/// The bytes live inline (DPS keys are at most 64 bytes), so deriving a device key allocates
/// nothing. A key that derives device keys keeps its HMAC state once keyed (the inner and outer
/// pads hashed, on the first derivation), so a group key hashes its pads once, not once per
/// device: two of the four SHA-256 blocks of each derivation. Keys that sign once (a device key
/// building its token) never pay for that state.
#[derive(Clone)]
pub struct SymmetricKey {
    bytes: [u8; MAX_KEY_LEN],
    len: u8,
    deriving: OnceLock<Box<HmacSha256>>,
}

/// Longest key DPS accepts, decoded.
const MAX_KEY_LEN: usize = 64;

impl SymmetricKey {
    /// A key of 1 to [`MAX_KEY_LEN`] bytes (callers check the length).
    fn from_bytes(key: &[u8]) -> Self {
        debug_assert!((1..=MAX_KEY_LEN).contains(&key.len()));
        let mut bytes = [0u8; MAX_KEY_LEN];
        bytes[..key.len()].copy_from_slice(key);
        Self { bytes, len: key.len() as u8, deriving: OnceLock::new() }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Parses base64 text. Surrounding whitespace (a trailing newline in a key file) is ignored.
    pub fn from_base64(text: &str) -> Result<Self, CredentialError> {
        let bytes = BASE64.decode(text.trim().as_bytes()).map_err(|_| CredentialError::KeyNotBase64)?;
        if bytes.is_empty() || bytes.len() > MAX_KEY_LEN {
            return Err(CredentialError::KeyLength(bytes.len()));
        }
        Ok(Self::from_bytes(&bytes))
    }

    /// A new random 64-byte key, as DPS generates them.
    pub fn random() -> Self {
        let mut bytes = [0u8; MAX_KEY_LEN];
        rand::fill(&mut bytes[..]);
        Self::from_bytes(&bytes)
    }

    /// The key as base64 text. Callers decide where it may go; never into logs or reports.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.as_bytes())
    }

    /// Derives a device's key from this enrollment group key (`docs/dps-mqtt.md` §2).
    pub fn derive_device_key(&self, registration_id: &RegistrationId) -> SymmetricKey {
        let mut mac = HmacSha256::clone(self.deriving.get_or_init(|| Box::new(self.mac())));
        mac.update(registration_id.as_str().as_bytes());
        SymmetricKey::from_bytes(&mac.finalize().into_bytes())
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.as_bytes()).expect("HMAC-SHA256 accepts keys of any length")
    }

    /// HMAC-SHA256 of `message` under this key.
    pub fn sign(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Checks `signature` against HMAC-SHA256 of `message`, in constant time.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let mut mac = self.mac();
        mac.update(message);
        mac.verify_slice(signature).is_ok()
    }
}

impl PartialEq for SymmetricKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SymmetricKey {}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SymmetricKey(<redacted {} bytes>)", self.len)
    }
}

/// How a token's `sr` is written, which differs between SDKs (`docs/dps-mqtt.md` §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceEncoding {
    /// `%2F`, as Python and C# send it (and the docs' example).
    #[default]
    Upper,
    /// `%2f`, as the C SDKs send it.
    Lower,
    /// Not encoded at all, as Node sends it.
    Raw,
}

/// The shape of a SAS token apart from its key: how SDKs differ on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SasStyle {
    pub resource_encoding: ResourceEncoding,
    /// Whether `&skn=registration` is appended.
    pub key_name: bool,
    /// Node's order: `sr, sig, skn, se` instead of `sr, sig, se, skn`.
    pub skn_before_se: bool,
    /// `sig`'s escapes in lower-case hex (`%2b %2f %3d`), as the C SDK's URL encoder writes
    /// every escape; the others write upper case.
    pub lower_case_sig: bool,
}

impl Default for SasStyle {
    /// The documented form: upper-case `sr`, `skn=registration` last.
    fn default() -> Self {
        Self { resource_encoding: ResourceEncoding::Upper, key_name: true, skn_before_se: false, lower_case_sig: false }
    }
}

/// A SAS token: the MQTT password of a symmetric-key device. Redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SasToken(String);

impl SasToken {
    /// Builds the token for `{scope}/registrations/{registration_id}` expiring at `expiry`
    /// (Unix seconds), signed with the device key.
    pub fn build(
        scope: &IdScope,
        registration_id: &RegistrationId,
        device_key: &SymmetricKey,
        expiry: u64,
        style: SasStyle,
    ) -> Self {
        // One buffer, no intermediate strings: this runs once per simulated device.
        let mut token = String::with_capacity(96 + 3 * (scope.0.len() + registration_id.as_str().len()));
        token.push_str("SharedAccessSignature sr=");
        let sr = token.len();
        push_resource(
            &mut token,
            &[scope.0.as_str(), "/registrations/", registration_id.as_str()],
            style.resource_encoding,
        );
        let sr = sr..token.len();
        let mut digits = [0u8; 20];
        let se = decimal(expiry, &mut digits);
        let mut mac = device_key.mac();
        mac.update(token[sr].as_bytes());
        mac.update(b"\n");
        mac.update(se.as_bytes());
        let mut sig = [0u8; 44];
        let written = BASE64.encode_slice(mac.finalize().into_bytes(), &mut sig).expect("32 bytes are 44 in base64");
        token.push_str("&sig=");
        push_escaped_base64(&mut token, &sig[..written], style.lower_case_sig);
        let (se_first, tail) = match (style.key_name, style.skn_before_se) {
            (false, _) => (true, ""),
            (true, false) => (true, "&skn=registration"),
            (true, true) => (false, "&skn=registration"),
        };
        if se_first {
            token.push_str("&se=");
            token.push_str(se);
            token.push_str(tail);
        } else {
            token.push_str(tail);
            token.push_str("&se=");
            token.push_str(se);
        }
        Self(token)
    }

    /// Wraps a token received as an MQTT password.
    pub fn from_password(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The token text, for the MQTT password or for the `token` command's output.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Splits the token into its fields. `sr` and `se` are kept as received, `sig` is decoded.
    pub fn parse(&self) -> Result<ParsedSas<'_>, CredentialError> {
        Self::parse_password(&self.0)
    }

    /// [`SasToken::parse`] of an MQTT password as received, without copying it.
    pub fn parse_password(password: &str) -> Result<ParsedSas<'_>, CredentialError> {
        let fields =
            password.strip_prefix("SharedAccessSignature ").ok_or(CredentialError::NotSharedAccessSignature)?;
        let (mut sr, mut sig, mut se, mut skn) = (None, None, None, None);
        for pair in fields.split('&') {
            let (name, value) =
                pair.split_once('=').ok_or_else(|| CredentialError::MalformedField(field_name(pair)))?;
            let slot = match name {
                "sr" => &mut sr,
                "sig" => &mut sig,
                "se" => &mut se,
                "skn" => &mut skn,
                // Unknown fields are tolerated as DPS tolerates them: they are not signed.
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(CredentialError::DuplicateField(name.to_string()));
            }
        }
        let sr = sr.ok_or(CredentialError::MissingField("sr"))?;
        let sig = sig.ok_or(CredentialError::MissingField("sig"))?;
        let se = se.ok_or(CredentialError::MissingField("se"))?;
        let expiry = se.parse::<u64>().map_err(|_| CredentialError::BadExpiry(se.to_string()))?;
        let sig_text =
            percent_decode_str(sig).decode_utf8().map_err(|_| CredentialError::MalformedField("sig".into()))?;
        let signature =
            BASE64.decode(sig_text.as_bytes()).map_err(|_| CredentialError::MalformedField("sig".into()))?;
        Ok(ParsedSas { sr, se, expiry, signature, key_name: skn })
    }
}

impl fmt::Debug for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SasToken(<redacted>)")
    }
}

/// A token split into its fields, borrowing the token text.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedSas<'a> {
    /// The resource URI exactly as received (possibly percent-encoded).
    pub sr: &'a str,
    /// The expiry exactly as received.
    pub se: &'a str,
    pub expiry: u64,
    /// The decoded HMAC.
    pub signature: Vec<u8>,
    pub key_name: Option<&'a str>,
}

impl fmt::Debug for ParsedSas<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedSas")
            .field("sr", &self.sr)
            .field("se", &self.se)
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

impl ParsedSas<'_> {
    /// Checks that this token is for `registration_id` in `scope`, unexpired at `now` (Unix
    /// seconds), and signed by one of `keys` (DPS accepts the primary or the secondary key).
    pub fn verify<'k>(
        &self,
        scope: &IdScope,
        registration_id: &RegistrationId,
        now: u64,
        keys: impl IntoIterator<Item = &'k SymmetricKey>,
    ) -> Result<(), SasRefusal> {
        let decoded = percent_decode_str(self.sr).decode_utf8().map_err(|_| SasRefusal::Malformed)?;
        let expected = format!("{scope}/registrations/{registration_id}");
        if !decoded.eq_ignore_ascii_case(&expected) {
            return Err(SasRefusal::WrongResource);
        }
        if self.expiry <= now {
            return Err(SasRefusal::Expired);
        }
        let message = string_to_sign(self.sr, self.se);
        if keys.into_iter().any(|key| key.verify(message.as_bytes(), &self.signature)) {
            Ok(())
        } else {
            Err(SasRefusal::BadSignature)
        }
    }
}

/// `{sr}\n{se}`: what a SAS token signs.
pub fn string_to_sign(sr: &str, se: &str) -> String {
    format!("{sr}\n{se}")
}

/// Appends `parts` (one resource URI) written as `encoding` says.
fn push_resource(out: &mut String, parts: &[&str], encoding: ResourceEncoding) {
    for part in parts {
        match encoding {
            ResourceEncoding::Raw => out.push_str(part),
            ResourceEncoding::Upper => out.extend(utf8_percent_encode(part, URL_ENCODE)),
            ResourceEncoding::Lower => {
                // The encoder yields each escape as its own `%XX` piece.
                for piece in utf8_percent_encode(part, URL_ENCODE) {
                    if piece.starts_with('%') {
                        out.extend(piece.chars().map(|c| c.to_ascii_lowercase()));
                    } else {
                        out.push_str(piece);
                    }
                }
            }
        }
    }
}

/// Appends base64 text URL-encoded: of its alphabet only `+`, `/` and `=` need escapes.
fn push_escaped_base64(out: &mut String, base64: &[u8], lower_case: bool) {
    for &byte in base64 {
        let escape = match (byte, lower_case) {
            (b'+', false) => "%2B",
            (b'/', false) => "%2F",
            (b'=', false) => "%3D",
            (b'+', true) => "%2b",
            (b'/', true) => "%2f",
            (b'=', true) => "%3d",
            _ => {
                out.push(char::from(byte));
                continue;
            }
        };
        out.push_str(escape);
    }
}

/// `value` in decimal, written into `buffer`.
fn decimal(mut value: u64, buffer: &mut [u8; 20]) -> &str {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    std::str::from_utf8(&buffer[at..]).expect("ASCII digits")
}

/// The field name of a malformed `name=value` pair, without its value (which may be secret).
fn field_name(pair: &str) -> String {
    pair.chars().take(16).take_while(|c| c.is_ascii_alphanumeric()).collect()
}

#[cfg(test)]
mod tests;
