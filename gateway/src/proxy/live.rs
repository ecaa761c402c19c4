//! [`LiveGateway`], what Pingora runs: each request takes the [`Gateway`] of the config in force when
//! it arrives and keeps it to its end. A reload puts the next gateway in place
//! ([`super::generations`]):
//! new requests meet the new routes, policies and limits, while a stream opened before carries on
//! under the config it began with, and its gateway goes when its last request does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::Error;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use super::ctx::RequestCtx;
use super::generations::Generations;
use super::span;
use super::state::Gateway;
use crate::telemetry::trace::traced;

pub(crate) struct LiveGateway {
    pub generations: Generations,
    /// Set once the gateway is on its way out ([`crate::server::draining`]): responses then close their
    /// connections.
    pub draining: Arc<AtomicBool>,
}

impl LiveGateway {
    /// The request's gateway, moved out of its state while a phase runs (and put back after), so
    /// that no phase touches the reference count every thread shares.
    fn take(&self, ctx: &mut RequestCtx) -> Arc<Gateway> {
        // Only a phase that panicked leaves none; the gateway in force then serves what is left.
        ctx.gateway
            .take()
            .unwrap_or_else(|| self.generations.current())
    }
}

/// Runs a phase of the request's gateway, and puts the gateway back. The phases that make spans of
/// their own name the request's as their parent; only `request_filter`'s calls (the admission, the
/// authorization server, the store) find it as the current span.
macro_rules! phase {
    ($live:expr, $ctx:ident, $gateway:ident => $call:expr) => {{
        let $gateway = $live.take($ctx);
        let result = $call.await;
        $ctx.gateway = Some($gateway);
        result
    }};
}

#[async_trait]
impl ProxyHttp for LiveGateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.generations.current())
    }

    /// Pingora's own (compression, off), and `Strict-Transport-Security` when serving HTTPS.
    fn init_downstream_modules(&self, modules: &mut pingora::modules::http::HttpModules) {
        modules
            .add_module(pingora::modules::http::compression::ResponseCompressionBuilder::enable(0));
        if self.generations.current().config().start.listener.https {
            modules.add_module(Box::new(super::hsts::StrictTransport(
                self.generations.clone(),
            )));
        }
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        if self.draining.load(Ordering::Acquire) {
            session.set_keepalive(None);
        }
        let gateway = self.take(ctx);
        let header = session.req_header();
        ctx.endpoint = gateway.router.classify(header.uri.path());
        // Only a trusted proxy's word on the trace (and whether to sample it) is taken; asked only
        // when traces are sent at all.
        let trusted = tracing::enabled!(target: crate::telemetry::trace::SPANS, tracing::Level::INFO)
            && session
                .client_addr()
                .and_then(|a| a.as_inet())
                .is_some_and(|a| gateway.config().server.trusted_proxies.contains(a.ip()));
        ctx.telemetry.span = span::request(header, &gateway, ctx.endpoint, trusted);
        let span = ctx.telemetry.span.clone();
        let result = traced!(span, gateway.request_filter(session, ctx));
        ctx.gateway = Some(gateway);
        result
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        phase!(self, ctx, gateway => gateway.upstream_peer(session, ctx))
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora::protocols::Digest>,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let gateway = self.take(ctx);
        gateway.connected_to_upstream(fd, ctx);
        ctx.gateway = Some(gateway);
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        phase!(self, ctx, gateway => gateway.upstream_request_filter(session, upstream_request, ctx))
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        phase!(self, ctx, gateway => gateway.request_body_filter(session, body, end_of_stream, ctx))
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        phase!(self, ctx, gateway => gateway.upstream_response_filter(session, upstream_response, ctx))
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        phase!(self, ctx, gateway => gateway.response_filter(session, response, ctx))
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Option<std::time::Duration>> {
        let gateway = self.take(ctx);
        let result = gateway.response_body_filter(session, body, end_of_stream, ctx);
        ctx.gateway = Some(gateway);
        result
    }

    /// Pingora's own line for a failed request is an ERROR whatever the cause, and a client that
    /// closes its SSE stream is a failure to Pingora: `fail_to_proxy` logs instead, at the level the
    /// cause deserves.
    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        true
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let gateway = self.take(ctx);
        let result = gateway.error_while_proxy(peer, session, e, ctx, client_reused);
        ctx.gateway = Some(gateway);
        result
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        phase!(self, ctx, gateway => gateway.fail_to_proxy(session, e, ctx))
    }

    async fn logging(&self, session: &mut Session, error: Option<&Error>, ctx: &mut RequestCtx) {
        phase!(self, ctx, gateway => gateway.logging(session, error, ctx));
    }
}
