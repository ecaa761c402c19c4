//! `Strict-Transport-Security` (RFC 6797) on every response of a gateway that serves HTTPS itself:
//! its own pages and documents, its refusals, and what it passes on from a backend, since the
//! browser keeps the policy for the host, which is the gateway's. A downstream module of Pingora's,
//! so that every response written to the client meets it, however it was written; installed only
//! with `[server.tls]`, and its value (`server.tls.hsts`) is the config's in force.

use std::any::Any;

use async_trait::async_trait;
use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::modules::http::{HttpModule, HttpModuleBuilder, Module};

use super::generations::Generations;

const STRICT_TRANSPORT_SECURITY: http::HeaderName =
    http::HeaderName::from_static("strict-transport-security");

/// Makes each request's module, with the value of the config in force.
pub(super) struct StrictTransport(pub Generations);

impl HttpModuleBuilder for StrictTransport {
    fn init(&self) -> Module {
        Box::new(Header(self.0.current().hsts.clone()))
    }
}

/// One request's: the value to set, if any.
struct Header(Option<HeaderValue>);

#[async_trait]
impl HttpModule for Header {
    async fn response_header_filter(
        &mut self,
        response: &mut ResponseHeader,
        _end_of_stream: bool,
    ) -> pingora::Result<()> {
        if let Some(value) = &self.0 {
            response.insert_header(STRICT_TRANSPORT_SECURITY, value.clone())?;
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
