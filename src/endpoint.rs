//! A DPS endpoint as a user types it: `mqtts://HOST[:PORT]`, `wss://HOST[:PORT]` or a bare
//! `HOST[:PORT]` (MQTT over TLS); an IPv6 address in brackets, one trailing `/` allowed. One
//! parser and one rule set for every flag that names a target (`run --target`, `conform
//! --target` and `--ws-target`). A leaf: it imports nothing of the crate, resolves no name and
//! opens nothing; the caller names the flag in its errors.

use std::fmt;
use std::str::FromStr;

/// How devices reach the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `mqtts://`: MQTT over TLS, port 8883 unless given.
    Mqtts,
    /// `wss://`: MQTT over a WebSocket over TLS, port 443 unless given.
    Wss,
}

/// A parsed endpoint: a scheme, a host and the port typed, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// A host name or an address; an IPv6 address without its brackets.
    pub host: String,
    /// The port typed; `None` means the scheme's ([`Endpoint::port_or_default`]).
    pub port: Option<u16>,
}

/// Why a text is not an endpoint (the caller adds the flag that gave it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("expected mqtts://HOST[:PORT], wss://HOST[:PORT] or HOST[:PORT]")]
    Scheme(String),
    #[error("{0:?} is not a port")]
    Port(String),
    #[error("{0:?} is not a host name or address")]
    Host(String),
    #[error("expected {}://HOST[:PORT]", .0.as_str())]
    WrongScheme(Scheme),
}

impl Scheme {
    /// The scheme as typed before `://`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Mqtts => "mqtts",
            Scheme::Wss => "wss",
        }
    }

    /// The port DPS serves the scheme on.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Mqtts => 8883,
            Scheme::Wss => 443,
        }
    }
}

impl Endpoint {
    /// Parses `mqtts://HOST[:PORT]`, `wss://HOST[:PORT]` or `HOST[:PORT]` (MQTT over TLS). The
    /// host is one [`host_name`] takes (so no path, user or query); the port a number up to 65535.
    pub fn parse(text: &str) -> Result<Self, EndpointError> {
        let (scheme, rest) = match (text.strip_prefix("mqtts://"), text.strip_prefix("wss://")) {
            (Some(rest), _) => (Scheme::Mqtts, rest),
            (None, Some(rest)) => (Scheme::Wss, rest),
            (None, None) if text.contains("://") => return Err(EndpointError::Scheme(text.to_string())),
            (None, None) => (Scheme::Mqtts, text),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                (host, Some(port.parse::<u16>().map_err(|_| EndpointError::Port(port.to_string()))?))
            }
            _ => (rest, None),
        };
        Ok(Endpoint { scheme, host: host_name(host)?.to_string(), port })
    }

    /// This endpoint if it has `scheme`, for a flag that takes only one.
    pub fn require(self, scheme: Scheme) -> Result<Self, EndpointError> {
        if self.scheme == scheme { Ok(self) } else { Err(EndpointError::WrongScheme(scheme)) }
    }

    /// The port typed, or the scheme's.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Endpoint::parse(text)
    }
}

/// `scheme://host[:port]`, an IPv6 address in brackets: what [`Endpoint::parse`] reads back.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme.as_str();
        let host = &self.host;
        match (host.contains(':'), self.port) {
            (true, Some(port)) => write!(f, "{scheme}://[{host}]:{port}"),
            (true, None) => write!(f, "{scheme}://[{host}]"),
            (false, Some(port)) => write!(f, "{scheme}://{host}:{port}"),
            (false, None) => write!(f, "{scheme}://{host}"),
        }
    }
}

/// A host as an endpoint takes it, also where a file names it apart from its port: not empty,
/// no space, control character, `/`, `@`, `?` or `#`; an IPv6 address loses its brackets.
pub fn host_name(text: &str) -> Result<&str, EndpointError> {
    let host = text.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(text);
    let refused = |c: char| c.is_whitespace() || c.is_control() || "/@?#[]".contains(c);
    if host.is_empty() || host.contains(refused) {
        return Err(EndpointError::Host(host.to_string()));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(scheme: Scheme, host: &str, port: Option<u16>) -> Endpoint {
        Endpoint { scheme, host: host.into(), port }
    }

    #[test]
    fn endpoints_parse_as_typed_and_print_back() {
        for (text, parsed) in [
            ("mqtts://127.0.0.1:8883", endpoint(Scheme::Mqtts, "127.0.0.1", Some(8883))),
            ("mqtts://dps.example.com", endpoint(Scheme::Mqtts, "dps.example.com", None)),
            ("mqtts://dps.example.com/", endpoint(Scheme::Mqtts, "dps.example.com", None)),
            ("wss://[::1]:4443", endpoint(Scheme::Wss, "::1", Some(4443))),
            ("wss://[::1]", endpoint(Scheme::Wss, "::1", None)),
            ("127.0.0.1:8883", endpoint(Scheme::Mqtts, "127.0.0.1", Some(8883))),
            ("localhost", endpoint(Scheme::Mqtts, "localhost", None)),
        ] {
            assert_eq!(Endpoint::parse(text), Ok(parsed.clone()), "{text}");
            let printed = parsed.to_string();
            assert_eq!(printed.parse(), Ok(parsed), "{printed} reads back");
        }
    }

    #[test]
    fn what_is_not_an_endpoint_is_refused_saying_which_part() {
        for (bad, error) in [
            ("http://x", EndpointError::Scheme("http://x".into())),
            ("mqtts://", EndpointError::Host(String::new())),
            ("mqtts://h:port", EndpointError::Port("port".into())),
            ("mqtts://h:70000", EndpointError::Port("70000".into())),
            ("mqtts://a b", EndpointError::Host("a b".into())),
            ("mqtts://user@h", EndpointError::Host("user@h".into())),
            ("mqtts://h/path", EndpointError::Host("h/path".into())),
            ("wss://h:443/path", EndpointError::Port("443/path".into())),
            ("mqtts://h?x=1", EndpointError::Host("h?x=1".into())),
        ] {
            assert_eq!(Endpoint::parse(bad), Err(error), "{bad}");
        }
    }

    #[test]
    fn a_host_named_apart_from_its_port_follows_the_same_rule() {
        assert_eq!(host_name("dps.example.com"), Ok("dps.example.com"));
        assert_eq!(host_name("[::1]"), Ok("::1"));
        for bad in ["", "a b", "h/x", "user@h", "[::1"] {
            assert!(host_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_flag_that_takes_one_scheme_refuses_the_other_and_defaults_its_port() {
        let wss = Endpoint::parse("wss://h").unwrap();
        assert_eq!(wss.port_or_default(), 443);
        assert_eq!(wss.clone().require(Scheme::Wss), Ok(wss.clone()));
        let refused = wss.require(Scheme::Mqtts).unwrap_err();
        assert_eq!(refused.to_string(), "expected mqtts://HOST[:PORT]");
        assert_eq!(Endpoint::parse("h").unwrap().port_or_default(), 8883);
    }
}
