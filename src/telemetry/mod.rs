//! A run's live metrics on the wire: the Prometheus exposition text of each tick
//! ([`prometheus`]), its remote write 1.0 encoding ([`remote_write`]), the pusher that sends it
//! ([`push`]) and the `/metrics` endpoint that serves it ([`endpoint`], on hyper's HTTP/1.1
//! server). Below `cli`: it reads no environment variable and picks no exit code; the CLI parses
//! the flags, binds what they name and says what happened.

pub mod endpoint;
pub mod live;
pub mod otlp;
pub mod prometheus;
pub mod push;
pub mod remote_write;
