//! The integration tests: one binary, sharing the harness in `integration_tests`.

mod backend;
mod backend_refusals;
mod configs;
