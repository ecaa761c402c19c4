//! The integration tests: one binary, sharing the harness in `integration_tests`.

mod backend;
mod backend_refusals;
mod browser;
mod configs;
mod conformance;
mod gateway_admission;
mod gateway_discovery;
mod gateway_e2e;
mod gateway_forwarding;
mod gateway_logging;
mod gateway_reload;
mod gateway_tls;
mod hostile;
mod metrics_prometheus;
mod oauth_cimd;
mod oauth_clients;
mod oauth_extras;
mod oauth_flow;
mod oauth_github;
mod oauth_oidc;
mod oauth_rules;
mod policy;
mod quickstart;
mod replicas;
mod store_redis_tls;
mod store_sqlite;
