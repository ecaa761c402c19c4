//! The shared harness of the integration tests: the real binaries built once and started on free
//! ports (killed on drop), readiness by polling, a local echo target, test signing keys standing in
//! for the gateway's, the Node clients under `tests/e2e`, the shipped quickstart,
//! MCP Inspector, a real Prometheus, and an OTLP receiver.

pub mod binaries;
pub mod conformance;
pub mod echo;
pub mod gateway;
pub mod gateway_keys;
pub mod github;
pub mod go_backend;
pub mod inspector;
pub mod node;
pub mod oauth;
pub mod otlp;
pub mod process;
pub mod prometheus;
pub mod quickstart;
pub mod redis;
pub mod scripted_backend;
pub mod sse;
pub mod tls;

pub use binaries::{binary, workspace_root};
pub use echo::EchoTarget;
pub use gateway::{GatewayBuilder, GatewayTls, GatewayUnderTest, supervised_backend_route};
pub use gateway_keys::GatewayKeys;
pub use go_backend::GoBackend;
pub use process::{Running, free_port, wait_for_port};
pub use quickstart::Quickstart;
pub use redis::{RedisCluster, RedisServer, RedisUser};
pub use scripted_backend::ScriptedBackend;
