//! The integration tests: one binary, sharing the harness in `integration_tests`.
//!
//! A test here reads as one scenario, top to bottom, against real processes: some run past 80
//! lines because their scenario does (a whole sign-in, a list of attacks with the answer each
//! gets), and cutting one into helpers would hide the steps a reader checks it by.

mod backend;
mod backend_refusals;
mod browser;
mod configs;
mod conformance;
mod connections;
mod external_issuers;
mod gateway_admission;
mod gateway_discovery;
mod gateway_e2e;
mod gateway_forwarding;
mod gateway_lifecycle;
mod gateway_logging;
mod gateway_reload;
mod gateway_tls;
mod hostile;
mod http2_bounds;
mod kill_switch;
mod machines;
mod metrics_prometheus;
mod oauth_cimd;
mod oauth_clients;
mod oauth_extras;
mod oauth_flow;
mod oauth_github;
mod oauth_oidc;
mod oauth_rules;
mod policy;
mod policy_one_reading;
mod quickstart;
mod replicas;
mod store_redis_tls;
mod store_sqlite;
mod streams_end;
mod traces;
