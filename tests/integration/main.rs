//! The integration tests: one binary, one module per area. Every network test talks to the real
//! emulator over TLS on 127.0.0.1 with an OS-assigned port.

mod cli;
mod client_checks;
mod compare_html;
mod conform_cli;
mod conformance;
mod edges;
mod emulator_cli;
mod faults;
mod first_hour;
mod flow;
mod forecast;
mod gates;
mod hostile;
mod issuance;
mod json_out;
mod live_metrics;
mod load;
mod lost;
mod metrics_push;
mod otlp;
mod overrides;
mod plan_size;
mod properties;
mod report_window;
mod reports;
mod secrets;
mod shards;
mod smaller;
mod stalls;
mod support;
mod verdict;
mod x509;
