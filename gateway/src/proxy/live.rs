//! [`LiveGateway`], what Pingora runs: each request takes the [`Gateway`] of the config in force when
//! it arrives and keeps it to its end. A reload puts the next gateway in place ([`Generations`]):
//! new requests meet the new routes, policies and limits, while a stream opened before carries on
//! under the config it began with, and its gateway goes when its last request does.

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use pingora::Error;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use tracing::Instrument as _;

use super::ctx::RequestCtx;
use super::span;
use super::state::Gateway;

/// The gateway in force, shared by the proxy and whoever reloads it.
#[derive(Clone)]
pub struct Generations(Arc<ArcSwap<Gateway>>);

impl Generations {
    pub fn new(first: Gateway) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(first)))
    }

    /// The gateway new requests meet.
    pub fn current(&self) -> Arc<Gateway> {
        self.0.load_full()
    }

    /// Makes `next` the gateway new requests meet.
    pub fn replace(&self, next: Gateway) {
        self.0.store(Arc::new(next));
    }
}

pub struct LiveGateway(pub Generations);

#[async_trait]
impl ProxyHttp for LiveGateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.0.current())
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let header = session.req_header();
        ctx.endpoint = ctx.gateway.router.classify(header.uri.path());
        ctx.span = span::request(header, &ctx.gateway, ctx.endpoint);
        let (gateway, span) = (ctx.gateway.clone(), ctx.span.clone());
        gateway.request_filter(session, ctx).instrument(span).await
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let (gateway, span) = (ctx.gateway.clone(), ctx.span.clone());
        gateway.upstream_peer(session, ctx).instrument(span).await
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let (gateway, span) = (ctx.gateway.clone(), ctx.span.clone());
        gateway
            .upstream_request_filter(session, upstream_request, ctx)
            .instrument(span)
            .await
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let (gateway, span) = (ctx.gateway.clone(), ctx.span.clone());
        gateway
            .request_body_filter(session, body, end_of_stream, ctx)
            .instrument(span)
            .await
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let (gateway, span) = (ctx.gateway.clone(), ctx.span.clone());
        gateway
            .response_filter(session, response, ctx)
            .instrument(span)
            .await
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Option<std::time::Duration>> {
        let gateway = ctx.gateway.clone();
        gateway.response_body_filter(session, body, end_of_stream, ctx)
    }

    /// Pingora's own line for a failed request is an ERROR whatever the cause, and a client that
    /// closes its SSE stream is a failure to Pingora: `fail_to_proxy` logs instead, at the level the
    /// cause deserves.
    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        true
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let (gateway, span) = (ctx.gateway.clone(), ctx.span.clone());
        gateway
            .fail_to_proxy(session, e, ctx)
            .instrument(span)
            .await
    }

    async fn logging(&self, session: &mut Session, error: Option<&Error>, ctx: &mut RequestCtx) {
        let (gateway, span) = (ctx.gateway.clone(), ctx.span.clone());
        gateway.logging(session, error, ctx).instrument(span).await;
    }
}
