//! The data plane: a Pingora `ProxyHttp` that implements only the phases it needs, in pipeline order,
//! each handing its work to the module that owns it. Shared state is [`Gateway`] ([`state`]), one
//! per config, which [`live`] swaps on a reload; per-request state is [`ctx::RequestCtx`].
//!
//! - [`router`] classifies a request by its path: an MCP route, or one of the gateway's own endpoints.
//! - [`admission`] holds every rule a request to a route must pass, with [`bearer`] (the token),
//!   [`cors`] and [`sessions`] (who owns a session, and the order of its requests); [`credentials`]
//!   makes what an admitted caller's request carries to the backend.
//! - [`local`] serves the gateway's own endpoints (health, readiness, JWKS, [`metadata`]);
//!   [`auth_endpoints`] hands the authorization server its requests, behind rate limits per
//!   [`client_address`].
//! - [`inspect`] reads a body and decides on it before forwarding, with the protocol's own reading
//!   ([`crate::mcp`]); [`forward`] rewrites the request for the backend found by [`resolve`];
//!   [`response`] handles the backend's answer.
//! - [`failure`] answers and logs a failed request, [`observe`] records every request; [`respond`]
//!   writes every response the gateway makes itself.
//! - [`watchdog`] holds what the gateway must end itself (a body too slow, a stream whose access
//!   ended) and [`watch`] ends it; [`concurrency`] counts the requests one client address holds,
//!   and [`connections`] its connections.

mod admission;
mod auth_endpoints;
mod bearer;
mod body_limit;
mod client_address;
mod concurrency;
mod connections;
mod cors;
mod credentials;
mod ctx;
mod failure;
mod forward;
mod generations;
mod hsts;
mod inspect;
mod live;
mod local;
mod metadata;
mod observe;
mod refusal;
mod resolve;
mod respond;
mod response;
mod router;
mod sessions;
mod span;
mod state;
mod watch;
mod watchdog;

use std::time::Instant;

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, Session};
use pingora::{Error, ErrorType};

use crate::policy::{self, Caller, Target};
use crate::telemetry::trace::traced;
pub(crate) use connections::PerClientConnections;
use ctx::RequestCtx;
pub(crate) use generations::Generations;
pub(crate) use live::LiveGateway;
use router::Endpoint;
pub(crate) use state::Gateway;
pub(crate) use watch::Watch;

/// The phases Pingora runs, in pipeline order, as [`live::LiveGateway`] hands them to the gateway of
/// the config a request began under.
impl Gateway {
    /// A request to a route is admitted or refused; anything else is answered here.
    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        ctx.client = client_address::client_address(
            session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip()),
            &session.req_header().headers,
            &self.config.server.trusted_proxies,
        );
        if !self.in_flight(ctx) {
            let body = respond::json_error(
                "too_many_requests",
                "Too many requests in flight from this address; retry when some have ended",
            );
            respond::json(session, 429, &body, &[("retry-after", "1".into())]).await?;
            return Ok(true);
        }
        // A body arrives whole within the time allowed, on HTTP/1.1 (Pingora's reads, each) and
        // HTTP/2 (the watchdog) alike, and so does one Pingora drains.
        let body_timeout = self.config.server.body_timeout;
        session.set_read_timeout(Some(body_timeout));
        session.set_total_drain_timeout(Some(body_timeout));
        // What is not an MCP route's is boxed: the authorization server's work is large, and inline
        // it would make every MCP request's future as large, to be moved about on each.
        let (index, route) = match ctx.endpoint {
            Endpoint::Mcp(index) => (index, &self.config.routes[index]),
            Endpoint::AuthServer(endpoint) => {
                let deadline = ctx.started + body_timeout;
                Box::pin(auth_endpoints::serve(
                    self, session, endpoint, ctx.client, deadline,
                ))
                .await?;
                return Ok(true);
            }
            endpoint => {
                Box::pin(local::serve(self, session, endpoint)).await?;
                return Ok(true);
            }
        };
        admission::ignore_h2c_upgrade(session.req_header_mut());
        let admission = span::admission();
        let admitted = match traced!(admission, admission::admit(self, session, route)) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                admission.record("error.type", refusal.reason().unwrap_or("refused"));
                Box::pin(refusal.answer(session, route, None)).await?;
                return Ok(true);
            }
        };
        let caller = admitted.caller.clone();
        admitted.record(ctx);
        let inspection = span::inspection();
        let inspected = traced!(inspection, inspect::inspect(self, session, route, ctx))?;
        if let Some(refusal) = inspected {
            inspection.record("error.type", refusal.reason().unwrap_or("refused"));
            Box::pin(refusal.answer(session, route, ctx.cors_origin.as_deref())).await?;
            return Ok(true);
        }
        if route.credentials == crate::config::Credentials::OAuth {
            let cors_origin = ctx.cors_origin.as_deref();
            match credentials::connected(self, route, &caller, cors_origin).await {
                Ok(bearer) => {
                    ctx.backend.connection_bearer = Some(bearer);
                    // Held, so that it can be sent again should the backend refuse the token.
                    session.enable_retry_buffering();
                }
                Err(refusal) => {
                    Box::pin(refusal.answer(session, route, cors_origin)).await?;
                    return Ok(true);
                }
            }
        }
        if route.credentials == crate::config::Credentials::Exchange {
            let cors_origin = ctx.cors_origin.as_deref();
            let headers = &session.req_header().headers;
            match credentials::exchanged(self, route, index, &caller, headers, cors_origin).await {
                Ok(bearer) => ctx.backend.connection_bearer = Some(bearer),
                Err(refusal) => {
                    Box::pin(refusal.answer(session, route, cors_origin)).await?;
                    return Ok(true);
                }
            }
        }
        ctx.backend.credentials = credentials::for_caller(self, route, index, &caller).await?;
        // An HTTP/2 body comes in frames of its own, which nothing else times: watched until it
        // has come whole (an HTTP/1.1 one, once it comes in more than one read).
        if !ctx.message.body_read && session.is_http2() && !session.is_body_done() {
            ctx.watched(&self.watchdog, Some(ctx.started + body_timeout));
        }
        Ok(false)
    }

    /// Counts the request among its client address's in flight; `false` when that address has
    /// as many as it may. A trusted proxy's own requests are not counted.
    fn in_flight(&self, ctx: &mut RequestCtx) -> bool {
        let server = &self.config.server;
        let Some(client) = ctx.client.filter(|c| !server.trusted_proxies.contains(*c)) else {
            return true;
        };
        let key = client_address::limit_key(client);
        match self
            .requests_per_client
            .acquire(key, server.max_requests_per_client)
        {
            Ok(held) => {
                ctx.in_flight = held;
                true
            }
            Err(()) => false,
        }
    }

    /// The route's backend, once the session's GET stream that came first is open there.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let Endpoint::Mcp(index) = ctx.endpoint else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "no route to proxy to",
            ));
        };
        let route = &self.config.routes[index];
        if let Some((mut stream, session)) = ctx.session.after_stream.take()
            && !stream.opened().await
        {
            tracing::debug!(route = %route.path, session, "went ahead without the session's GET stream");
            self.sessions.stop_waiting(&session, &stream);
        }
        let address = self.routes[index].address.get().await.map_err(|e| {
            Error::because(
                ErrorType::ConnectNoRoute,
                "finding the backend's address",
                e,
            )
            .into_up()
        })?;
        ctx.backend.started = Some(Instant::now());
        ctx.telemetry.backend_span = span::backend(&ctx.telemetry.span, route);
        Ok(Box::new(forward::peer(route, address)))
    }

    /// The backend connection: a watched request can be ended there.
    fn connected_to_upstream(&self, fd: std::os::fd::RawFd, ctx: &mut RequestCtx) {
        ctx.backend.fd = Some(fd);
        if let Some(watch) = &ctx.watch {
            watch.watched.connected(fd);
        }
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let (Some(route), true) = (self.route(ctx.endpoint), ctx.caller.is_some()) else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "proxying an unadmitted request",
            ));
        };
        let client = ctx.client.and_then(forward::forwarded_for_value);
        let forwarded = forward::ForwardedFor {
            client: client.as_ref(),
            proto: &self.forwarded_proto,
            host: &self.forwarded_host,
        };
        let credentials = forward::Credentialed {
            made: ctx.backend.credentials.as_deref(),
            connection: ctx.backend.connection_bearer.as_ref(),
        };
        forward::prepare(
            upstream_request,
            route,
            credentials,
            &ctx.telemetry.request_id,
            &forwarded,
        )?;
        // The backend continues the trace from the gateway's call to it.
        for (name, value) in crate::telemetry::trace::headers_for(&ctx.telemetry.backend_span) {
            upstream_request.insert_header(name, value)?;
        }
        // A list answer is filtered as JSON: it must come uncompressed.
        if ctx.message.list_filter.is_some() {
            upstream_request.insert_header(http::header::ACCEPT_ENCODING, "identity")?;
        }
        // The client was told to go on when its body was read.
        if ctx.message.body_read {
            upstream_request.remove_header(&http::header::EXPECT);
        }
        Ok(())
    }

    /// The body as it passes: bounded, and peeked at for the MCP method.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        // A body read before forwarding comes once more, whole, from Pingora's copy.
        if ctx.message.body_read {
            return Ok(());
        }
        if let Some(chunk) = body {
            ctx.message.body_bytes += chunk.len() as u64;
            if body_limit::exceeds(ctx.message.body_bytes, &self.config) {
                // Answered by `fail_to_proxy`, as `body_limit` writes every 413.
                return Err(Error::explain(
                    ErrorType::HTTPStatus(413),
                    "the request body is too large",
                ));
            }
        }
        // A body that did not come whole in its first read is watched until it has: by the time
        // allowed since the request began.
        match &ctx.watch {
            Some(watch) if end_of_stream => watch.watched.body_done(),
            None if !end_of_stream => {
                let deadline = ctx.started + self.config.server.body_timeout;
                ctx.watched(&self.watchdog, Some(deadline));
            }
            _ => {}
        }
        ctx.message.peek.feed(body.as_deref(), end_of_stream);
        Ok(())
    }

    /// The backend's answer before anything of it goes on: a refused token is renewed and the
    /// request sent again ([`response::retry_refused`]).
    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        response::retry_refused(self, session, upstream_response, ctx).await
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if self.route(ctx.endpoint).is_none() {
            return Ok(());
        }
        ctx.telemetry
            .backend_span
            .record("http.response.status_code", response.status.as_u16());
        if let Some(filter) = &mut ctx.message.list_filter {
            filter.start(response)?;
        }
        response::filter(self, session, response, ctx).await
    }

    /// A list answer on a route with a policy: cut down to what the caller may use.
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Option<std::time::Duration>> {
        // The end of the response: its backend connection may go on to serve another request,
        // which a watch must not touch.
        if end_of_stream && let Some(watch) = &ctx.watch {
            watch.watched.released();
        }
        let (Some(filter), Some(caller), Some(policy)) = (
            &mut ctx.message.list_filter,
            &ctx.caller,
            self.route(ctx.endpoint).and_then(|r| r.policy.as_ref()),
        ) else {
            return Ok(None);
        };
        let caller = Caller::of(caller);
        filter.filter(body, end_of_stream, &|kind, name| {
            policy::decide(policy, &caller, kind.call_method(), Target { kind, name }).shows()
        });
        Ok(None)
    }

    /// A request the backend answered with a refusal of the caller's token is sent again once,
    /// with it renewed ([`response::retrying`]); any other failure is retried as Pingora does
    /// (an idempotent request whose body is held, on a reused connection).
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        if response::retrying(ctx) {
            e.set_retry(true);
        } else if !session.req_header().method.is_idempotent()
            || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if let Some(ending) = ctx.watch.as_ref().and_then(|w| w.watched.ending()) {
            return failure::ended(session, ending, ctx, self.route_label(ctx.endpoint)).await;
        }
        failure::answer(session, e, ctx, self.route_label(ctx.endpoint)).await
    }

    async fn logging(&self, session: &mut Session, error: Option<&Error>, ctx: &mut RequestCtx) {
        observe::record(self, session, error, ctx);
    }
}
