//! The data plane: a Pingora `ProxyHttp` that implements only the phases it needs, in pipeline order.
//! Each phase delegates to the module that owns the job; per-request state lives in [`RequestCtx`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType};

use crate::access_log::{AccessLine, AccessLog};
use crate::admission::{self, AdmissionError};
use crate::config::{Config, Credentials, Route};
use crate::cors;
use crate::forward;
use crate::mcp_peek::McpPeek;
use crate::metadata;
use crate::metrics::{GATEWAY_ROUTE, METRICS, RouteMetrics, mcp_method_label, method_label};
use crate::oauth::{AsEndpoint, AuthServer};
use crate::resolve::UpstreamAddress;
use crate::routes::{Endpoint, Router};
use crate::sessions::{Order, PendingStream, SessionBindings, StreamOpening};
use crate::tokens::access::{AccessClaims, AccessTokenVerifier};
use crate::tokens::backend::{BackendCredentials, BackendSigner};
use crate::tokens::keys::KeyRing;
use crate::tokens::now;

/// The gateway's shared state; one per process.
pub struct Gateway {
    config: Arc<Config>,
    router: Router,
    verifier: Arc<AccessTokenVerifier>,
    signer: BackendSigner,
    sessions: SessionBindings,
    keys: Arc<KeyRing>,
    as_metadata: Bytes,
    resource_metadata: Vec<Bytes>,
    /// One flag per supervised command: `/readyz` is 200 only when all are up.
    supervised: Vec<Arc<AtomicBool>>,
    /// The authorization server, when a login provider is configured.
    auth: Option<Arc<AuthServer>>,
    /// Per-client-IP limits on `/register`, `/token` and `/authorize`.
    limits: [(AsEndpoint, crate::rate_limit::RateLimiter); 4],
    access_log: AccessLog,
    /// Each route's upstream address, by route number.
    upstream_addresses: Vec<Arc<UpstreamAddress>>,
    /// The metric series of each route, by route number, then of the gateway's own endpoints.
    route_metrics: Vec<RouteMetrics>,
    gateway_metrics: RouteMetrics,
}

/// `Mcp-Session-Id`, parsed once: a lookup by `&str` parses the name on every request.
const SESSION_ID: http::HeaderName = http::HeaderName::from_static("mcp-session-id");

/// A new request id: a v4 UUID written straight into its header value.
fn new_request_id() -> http::HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    http::HeaderValue::from_str(text).expect("a UUID is a header value")
}

/// The largest body the authorization server's endpoints read.
const MAX_AS_BODY: usize = 64 * 1024;

/// Per-request state.
pub struct RequestCtx {
    started: Instant,
    /// A v4 UUID, kept as the header value the upstream is sent.
    request_id: http::HeaderValue,
    endpoint: Endpoint,
    caller: Option<Arc<AccessClaims>>,
    credentials: Option<Arc<BackendCredentials>>,
    /// The allowed browser origin to answer with CORS headers.
    cors_origin: Option<String>,
    peek: McpPeek,
    body_bytes: u64,
    upstream_started: Option<Instant>,
    stream_open: bool,
    /// A `DELETE` of this session: forget its binding once the upstream agrees.
    ending_session: Option<String>,
    /// A GET of a session: held until the backend has answered it, so that the session's later
    /// requests do not overtake it (see [`crate::sessions`]).
    opening_stream: Option<StreamOpening>,
    /// The session's GET stream that this request must not overtake, and the session.
    after_stream: Option<(PendingStream, String)>,
}

impl Gateway {
    pub fn new(
        config: Arc<Config>,
        keys: Arc<KeyRing>,
        verifier: Arc<AccessTokenVerifier>,
        auth: Option<Arc<AuthServer>>,
        supervised: Vec<Arc<AtomicBool>>,
        access_log: AccessLog,
    ) -> Self {
        let signer = BackendSigner::new(
            keys.clone(),
            config.tokens.issuer.clone(),
            config.tokens.assertion_lifetime.as_secs(),
        );
        Self {
            router: Router::new(&config),
            as_metadata: metadata::authorization_server(&config),
            resource_metadata: config
                .routes
                .iter()
                .map(|r| metadata::protected_resource(&config, r))
                .collect(),
            verifier,
            signer,
            sessions: SessionBindings::default(),
            keys,
            supervised,
            auth,
            limits: [
                (
                    AsEndpoint::Register,
                    crate::rate_limit::RateLimiter::new(config.rate_limits.register),
                ),
                (
                    AsEndpoint::Token,
                    crate::rate_limit::RateLimiter::new(config.rate_limits.token),
                ),
                (
                    AsEndpoint::Authorize,
                    crate::rate_limit::RateLimiter::new(config.rate_limits.authorize),
                ),
                (
                    AsEndpoint::Login,
                    crate::rate_limit::RateLimiter::new(config.rate_limits.login),
                ),
            ],
            access_log,
            upstream_addresses: config
                .routes
                .iter()
                .map(|r| UpstreamAddress::new(&r.upstream.host, r.upstream.port))
                .collect(),
            route_metrics: config
                .routes
                .iter()
                .map(|r| RouteMetrics::new(&r.path))
                .collect(),
            gateway_metrics: RouteMetrics::new(GATEWAY_ROUTE),
            config,
        }
    }

    /// Hands a request to the authorization server and writes its answer.
    async fn serve_auth(&self, session: &mut Session, endpoint: AsEndpoint) -> pingora::Result<()> {
        let Some(auth) = &self.auth else {
            return respond_json(
                session,
                404,
                &json_error("not_found", "Nothing is served at this path"),
                &[],
            )
            .await;
        };
        let cors: Vec<(&'static str, String)> = if endpoint.is_cors() {
            vec![("access-control-allow-origin", "*".into())]
        } else {
            Vec::new()
        };
        let header = session.req_header();
        if header.method == http::Method::OPTIONS && endpoint.is_cors() {
            let mut headers = cors;
            headers.push(("access-control-allow-methods", "POST, OPTIONS".into()));
            headers.push((
                "access-control-allow-headers",
                cors::DOCUMENT_ALLOWED_HEADERS.into(),
            ));
            headers.push(("access-control-max-age", "86400".into()));
            return respond(session, 204, Bytes::new(), &headers).await;
        }
        let client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        if let (Some(ip), Some((_, limiter))) =
            (client_ip, self.limits.iter().find(|(e, _)| *e == endpoint))
            && let Err(wait) = limiter.check(ip, Instant::now())
        {
            let mut headers = cors;
            headers.push(("retry-after", wait.to_string()));
            let body = json_error(
                "rate_limited",
                "Too many requests from this address; retry later",
            );
            return respond_json(session, 429, &body, &headers).await;
        }
        let header = session.req_header();
        let method = header.method.clone();
        let query = header.uri.query().map(str::to_owned);
        let headers = header.headers.clone();
        let mut body = Vec::new();
        // A failure to read is the client's (it went away), and is logged as such.
        while let Some(chunk) = session
            .read_request_body()
            .await
            .map_err(Error::into_down)?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_AS_BODY {
                return respond_json(
                    session,
                    413,
                    &json_error("payload_too_large", "The request body is too large"),
                    &cors,
                )
                .await;
            }
        }
        let request = crate::oauth::Request {
            method,
            query,
            headers,
            body: body.into(),
        };
        let response = auth.handle(endpoint, request).await;
        let mut headers = response.headers;
        headers.extend(cors);
        write_response(session, response.status, response.body, &headers).await
    }

    fn route(&self, endpoint: Endpoint) -> Option<&Route> {
        match endpoint {
            Endpoint::Mcp(i) => self.config.routes.get(i),
            _ => None,
        }
    }

    fn route_label(&self, endpoint: Endpoint) -> &str {
        self.route(endpoint)
            .map_or(GATEWAY_ROUTE, |r| r.path.as_str())
    }

    /// The metric series of the route labelled [`Self::route_label`].
    fn route_metrics(&self, endpoint: Endpoint) -> &RouteMetrics {
        match endpoint {
            Endpoint::Mcp(i) => self.route_metrics.get(i),
            _ => None,
        }
        .unwrap_or(&self.gateway_metrics)
    }

    /// Answers the gateway's own endpoints.
    async fn serve_local(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let method = session.req_header().method.clone();
        let endpoint = ctx.endpoint;
        if endpoint.is_public_document() {
            if method == http::Method::OPTIONS {
                return respond(session, 204, Bytes::new(), &document_preflight()).await;
            }
            if method != http::Method::GET && method != http::Method::HEAD {
                return respond_json(
                    session,
                    405,
                    &json_error("method_not_allowed", "Use GET"),
                    &[("allow", "GET, HEAD, OPTIONS".into())],
                )
                .await;
            }
        }
        let cors_any = [("access-control-allow-origin", "*".to_owned())];
        match endpoint {
            Endpoint::Health => {
                respond(session, 200, Bytes::from_static(br#"{"status":"ok"}"#), &[]).await
            }
            Endpoint::Ready => {
                if self.supervised.iter().all(|up| up.load(Ordering::Acquire)) {
                    respond(
                        session,
                        200,
                        Bytes::from_static(br#"{"status":"ready"}"#),
                        &[],
                    )
                    .await
                } else {
                    respond(
                        session,
                        503,
                        Bytes::from_static(br#"{"status":"starting"}"#),
                        &[],
                    )
                    .await
                }
            }
            Endpoint::Jwks => respond(session, 200, self.keys.jwks(), &cors_any).await,
            Endpoint::AuthServerMetadata => {
                respond(session, 200, self.as_metadata.clone(), &cors_any).await
            }
            Endpoint::ResourceMetadata(i) => {
                respond(session, 200, self.resource_metadata[i].clone(), &cors_any).await
            }
            Endpoint::NotFound | Endpoint::Mcp(_) | Endpoint::AuthServer(_) => {
                respond_json(
                    session,
                    404,
                    &json_error("not_found", "Nothing is served at this path"),
                    &[],
                )
                .await
            }
        }
    }

    /// Admission and everything else decided before a request to an MCP route goes upstream. `Ok(true)`
    /// when a response was already written.
    async fn admit_mcp(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &Route,
    ) -> pingora::Result<bool> {
        let route_label = route.path.as_str();
        let header = session.req_header();
        if header_bytes(header) > self.config.max_request_header_bytes {
            respond_json(
                session,
                431,
                &json_error(
                    "request_header_fields_too_large",
                    "The request headers are too large",
                ),
                &[],
            )
            .await?;
            return Ok(true);
        }
        if let Some(origin) = cors::origin(&header.headers) {
            if !cors::is_allowed(origin, &self.config.allowed_origins) {
                METRICS
                    .auth_failures
                    .with_label_values(&[route_label, "origin"])
                    .inc();
                respond_json(
                    session,
                    403,
                    &json_error("forbidden", "This Origin is not allowed"),
                    &[],
                )
                .await?;
                return Ok(true);
            }
            ctx.cors_origin = Some(origin.to_owned());
        }
        let cors = cors_headers(ctx.cors_origin.as_deref());
        if header.method == http::Method::OPTIONS {
            let Some(origin) = ctx.cors_origin.as_deref() else {
                respond(
                    session,
                    204,
                    Bytes::new(),
                    &[("allow", "GET, POST, DELETE, OPTIONS".into())],
                )
                .await?;
                return Ok(true);
            };
            let Some(allowed_headers) = cors::mcp_preflight_headers(&header.headers) else {
                respond_json(
                    session,
                    403,
                    &json_error("forbidden", "A requested header is not allowed"),
                    &[],
                )
                .await?;
                return Ok(true);
            };
            let mut headers = cors_headers(Some(origin));
            headers.push((
                "access-control-allow-methods",
                "GET, POST, DELETE, OPTIONS".into(),
            ));
            headers.push(("access-control-allow-headers", allowed_headers));
            headers.push(("access-control-max-age", "600".into()));
            respond(session, 204, Bytes::new(), &headers).await?;
            return Ok(true);
        }
        let declared_length = header
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared_length.is_some_and(|len| len > self.config.max_request_body_bytes) {
            respond_json(
                session,
                413,
                &json_error("payload_too_large", "The request body is too large"),
                &cors,
            )
            .await?;
            return Ok(true);
        }

        let caller = match admission::admit(
            &self.verifier,
            route,
            &header.headers,
            header.uri.query(),
            now(),
        ) {
            Ok(caller) => caller,
            Err(error) => {
                self.refuse(session, route, &error, cors).await?;
                return Ok(true);
            }
        };
        // A grant revoked before a restart: the store remembers what the verifier forgot.
        if let (Some(auth), Some(grant)) = (&self.auth, &caller.gid)
            && auth.grant_revoked(grant).await
        {
            let error = AdmissionError::InvalidToken(crate::tokens::access::TokenError::Revoked);
            self.refuse(session, route, &error, cors).await?;
            return Ok(true);
        }
        let header = session.req_header();
        if let Some(id) = header
            .headers
            .get(&SESSION_ID)
            .and_then(|v| v.to_str().ok())
        {
            let opens_stream = header.method == http::Method::GET;
            match self.sessions.admit(id, &caller.sub, opens_stream) {
                None => {
                    METRICS
                        .auth_failures
                        .with_label_values(&[route_label, "foreign_session"])
                        .inc();
                    let body = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32001, "message": "Session not found"}});
                    respond_json(session, 404, &body, &cors).await?;
                    return Ok(true);
                }
                Some(Order::OpensStream(opening)) => ctx.opening_stream = Some(opening),
                Some(Order::After(pending)) => {
                    ctx.after_stream = pending.map(|p| (p, id.to_owned()));
                }
            }
            if header.method == http::Method::DELETE {
                ctx.ending_session = Some(id.to_owned());
            }
        }
        // Known from here on, so that a failure below is logged with whom it failed for.
        ctx.caller = Some(caller.clone());
        if route.credentials != Credentials::None {
            let Endpoint::Mcp(index) = ctx.endpoint else {
                unreachable!("an MCP route")
            };
            // With an upstream provider, the grant holds the user's token there.
            let upstream = match (&self.auth, &caller.gid) {
                (Some(auth), Some(grant)) if auth.upstream.is_some() => {
                    auth.upstream_token(grant).await
                }
                _ => None,
            };
            let credentials = self
                .signer
                .credentials(
                    &caller,
                    index,
                    &route.backend_audience,
                    upstream.as_deref(),
                    // In `assertion` mode no token goes with the assertion, so it binds none.
                    route.credentials != Credentials::Assertion,
                    now(),
                )
                .map_err(|e| {
                    Error::because(ErrorType::InternalError, "signing backend credentials", e)
                })?;
            ctx.credentials = Some(credentials);
        }
        ctx.peek = McpPeek::from_headers(&header.headers);
        Ok(false)
    }

    /// Refuses an MCP request with `error`'s status and challenge, and counts the refusal.
    async fn refuse(
        &self,
        session: &mut Session,
        route: &Route,
        error: &AdmissionError,
        mut headers: Vec<(&'static str, String)>,
    ) -> pingora::Result<()> {
        METRICS
            .auth_failures
            .with_label_values(&[route.path.as_str(), error.reason()])
            .inc();
        headers.push(("www-authenticate", error.challenge(route)));
        respond_json(session, error.status(), &error.body(), &headers).await
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            request_id: new_request_id(),
            endpoint: Endpoint::NotFound,
            caller: None,
            credentials: None,
            cors_origin: None,
            peek: McpPeek::default(),
            body_bytes: 0,
            upstream_started: None,
            stream_open: false,
            ending_session: None,
            opening_stream: None,
            after_stream: None,
        }
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        ctx.endpoint = self.router.classify(session.req_header().uri.path());
        match self.route(ctx.endpoint) {
            Some(route) => self.admit_mcp(session, ctx, route).await,
            None => {
                match ctx.endpoint {
                    Endpoint::AuthServer(endpoint) => self.serve_auth(session, endpoint).await?,
                    _ => self.serve_local(session, ctx).await?,
                }
                Ok(true)
            }
        }
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if let Some(chunk) = body {
            ctx.body_bytes += chunk.len() as u64;
            if ctx.body_bytes > self.config.max_request_body_bytes {
                return Err(Error::explain(
                    ErrorType::HTTPStatus(413),
                    "the request body is too large",
                ));
            }
        }
        ctx.peek.feed(body.as_deref(), end_of_stream);
        Ok(())
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let (Some(route), Endpoint::Mcp(index)) = (self.route(ctx.endpoint), ctx.endpoint) else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "no route to proxy to",
            ));
        };
        // Not before a GET of the session that came first has its stream open at the backend.
        if let Some((mut stream, session)) = ctx.after_stream.take()
            && !stream.opened().await
        {
            tracing::debug!(route = %route.path, session, "went ahead without the session's GET stream");
            self.sessions.stop_waiting(&session, &stream);
        }
        let upstream = &route.upstream;
        let address = self.upstream_addresses[index].get().await.map_err(|e| {
            Error::because(ErrorType::ConnectNoRoute, "finding the upstream", e).into_up()
        })?;
        let mut peer = HttpPeer::new(address, upstream.tls, upstream.host.clone());
        peer.options.connection_timeout = Some(upstream.connect_timeout);
        peer.options.read_timeout = Some(upstream.read_timeout);
        peer.options.write_timeout = Some(upstream.write_timeout);
        peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
        ctx.upstream_started = Some(Instant::now());
        Ok(Box::new(peer))
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
        forward::prepare(
            upstream_request,
            route,
            ctx.credentials.as_deref(),
            &ctx.request_id,
        )
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
        // The backend answered the GET: its stream is open there, and the session's later requests
        // may go.
        ctx.opening_stream = None;
        if let (Some(caller), Some(id)) = (
            ctx.caller.as_deref(),
            response
                .headers
                .get(&SESSION_ID)
                .and_then(|v| v.to_str().ok()),
        ) {
            self.sessions.bind(id, &caller.sub);
        }
        if let Some(id) = &ctx.ending_session
            && response.status.is_success()
        {
            self.sessions.end(id);
        }
        // Told its session is initialized, the client opens its GET stream next.
        if response.status.is_success()
            && ctx.peek.method.as_deref() == Some("notifications/initialized")
            && let Some(id) = session
                .req_header()
                .headers
                .get(&SESSION_ID)
                .and_then(|v| v.to_str().ok())
        {
            self.sessions.expect_stream(id);
        }
        let is_sse = response
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                const SSE: &[u8] = b"text/event-stream";
                ct.trim_start()
                    .as_bytes()
                    .get(..SSE.len())
                    .is_some_and(|start| start.eq_ignore_ascii_case(SSE))
            });
        if is_sse {
            // Nothing between here and the client may buffer or compress the stream.
            response.insert_header("x-accel-buffering", "no")?;
            response.remove_header(&http::header::CONTENT_LENGTH);
            self.route_metrics(ctx.endpoint).active_streams.inc();
            ctx.stream_open = true;
        }
        for (name, value) in cors_headers(ctx.cors_origin.as_deref()) {
            response.insert_header(name, value)?;
        }
        Ok(())
    }

    /// Pingora's own line for a failed request is an ERROR whatever the cause, and a client that
    /// closes its SSE stream is a failure to Pingora: [`Self::fail_to_proxy`] logs instead, at the
    /// level the cause deserves.
    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        true
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        log_failure(
            e,
            self.route_label(ctx.endpoint),
            &ctx.request_id,
            ctx.stream_open,
        );
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
                if e.esource() == &ErrorSource::Upstream =>
            {
                504
            }
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code > 0 && session.response_written().is_none() {
            let (error, description) = match code {
                502 => (
                    "bad_gateway",
                    "The MCP server behind the gateway could not be reached",
                ),
                504 => (
                    "gateway_timeout",
                    "The MCP server behind the gateway did not answer in time",
                ),
                413 => ("payload_too_large", "The request body is too large"),
                400 => ("bad_request", "The request could not be read"),
                _ => ("internal_error", "The gateway failed to handle the request"),
            };
            let _ = respond_json(session, code, &json_error(error, description), &[]).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, error: Option<&Error>, ctx: &mut RequestCtx) {
        let route = self.route_label(ctx.endpoint);
        let written = session.response_written().map(|r| r.status);
        let status = written.map_or(0, |s| s.as_u16());
        let method = method_label(&session.req_header().method);
        let elapsed = ctx.started.elapsed();
        METRICS
            .requests
            .with_label_values(&[route, method, written.as_ref().map_or("0", |s| s.as_str())])
            .inc();
        let series = self.route_metrics(ctx.endpoint);
        series.request_duration.observe(elapsed.as_secs_f64());
        if let Some(started) = ctx.upstream_started {
            series
                .upstream_duration
                .observe(started.elapsed().as_secs_f64());
        }
        if ctx.stream_open {
            series.active_streams.dec();
        }
        if ctx.caller.is_some()
            && let Some(method) = ctx.peek.method.as_deref()
        {
            let mcp_method = mcp_method_label(method);
            let tool = match (mcp_method, ctx.peek.tool.as_deref()) {
                ("tools/call", Some(name)) => METRICS.tool_label(name),
                _ => "",
            };
            METRICS
                .mcp_requests
                .with_label_values(&[route, mcp_method, tool])
                .inc();
        }
        let caller = ctx.caller.as_deref();
        AccessLine {
            request_id: ctx.request_id.to_str().unwrap_or("-"),
            route,
            method: session.req_header().method.as_str(),
            path: session.req_header().uri.path(),
            status,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            user: caller.map_or("-", |c| c.sub.as_str()),
            client_id: caller.map_or("-", |c| c.client_id.as_str()),
            error: error.map(|e| e.etype().as_str()).unwrap_or("-"),
        }
        .emit(&self.access_log);
    }
}

/// Logs why a request failed, at the level its cause deserves: a client that went away, or sent
/// what could not be read or was too large, is normal on the open internet, and so is an SSE stream
/// cut after `read_timeout` of silence, as configured (DEBUG; the access line records either); a
/// backend that failed is the operator's concern (WARN); the gateway's own failure is an ERROR.
fn log_failure(e: &Error, route: &str, request_id: &http::HeaderValue, stream_open: bool) {
    let request_id = request_id.to_str().unwrap_or("-");
    let client_side = match e.etype() {
        ErrorType::HTTPStatus(code) => *code < 500,
        _ => e.esource() == &ErrorSource::Downstream,
    };
    let upstream = e.esource() == &ErrorSource::Upstream;
    if client_side {
        tracing::debug!(route, request_id, error = %e, "the client went away or sent a request that cannot be served");
    } else if upstream && stream_open && e.etype() == &ErrorType::ReadTimedout {
        tracing::debug!(route, request_id, error = %e, "a silent stream was cut after read_timeout");
    } else if upstream {
        tracing::warn!(route, request_id, error = %e, "the backend failed");
    } else {
        tracing::error!(route, request_id, error = %e, "the gateway failed to handle a request");
    }
}

/// The size of a request's header section, roughly as it came on the wire.
fn header_bytes(header: &RequestHeader) -> usize {
    let target = header
        .uri
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    target
        + header
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
}

fn cors_headers(origin: Option<&str>) -> Vec<(&'static str, String)> {
    match origin {
        Some(origin) => vec![
            ("access-control-allow-origin", origin.to_owned()),
            (
                "access-control-expose-headers",
                cors::MCP_EXPOSED_HEADERS.to_owned(),
            ),
            ("vary", "Origin".to_owned()),
        ],
        None => Vec::new(),
    }
}

fn document_preflight() -> Vec<(&'static str, String)> {
    vec![
        ("access-control-allow-origin", "*".into()),
        ("access-control-allow-methods", "GET, HEAD, OPTIONS".into()),
        (
            "access-control-allow-headers",
            cors::DOCUMENT_ALLOWED_HEADERS.into(),
        ),
        ("access-control-max-age", "86400".into()),
    ]
}

fn json_error(error: &str, description: &str) -> serde_json::Value {
    serde_json::json!({ "error": error, "error_description": description })
}

async fn respond_json(
    session: &mut Session,
    status: u16,
    body: &serde_json::Value,
    headers: &[(&'static str, String)],
) -> pingora::Result<()> {
    respond(
        session,
        status,
        serde_json::to_vec(body).expect("JSON").into(),
        headers,
    )
    .await
}

/// Writes a whole local response: a JSON body (or none), `no-store`, and `headers`.
async fn respond(
    session: &mut Session,
    status: u16,
    body: Bytes,
    headers: &[(&'static str, String)],
) -> pingora::Result<()> {
    let mut all = Vec::with_capacity(headers.len() + 2);
    if !body.is_empty() {
        all.push(("content-type", "application/json".to_owned()));
    }
    all.push(("cache-control", "no-store".to_owned()));
    all.extend_from_slice(headers);
    write_response(session, status, body, &all).await
}

/// Writes a whole response with exactly `headers` (and its length).
async fn write_response(
    session: &mut Session,
    status: u16,
    body: Bytes,
    headers: &[(&'static str, String)],
) -> pingora::Result<()> {
    let mut response = ResponseHeader::build(status, Some(2 + headers.len()))?;
    response.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    for (name, value) in headers {
        // Appended, not inserted: several Set-Cookie headers must each stay.
        response.append_header(*name, value.as_str())?;
    }
    let head_only = session.req_header().method == http::Method::HEAD || body.is_empty();
    // A failure to write is the client's (it went away), and is logged as such.
    session
        .write_response_header(Box::new(response), head_only)
        .await
        .map_err(Error::into_down)?;
    if !head_only {
        session
            .write_response_body(Some(body), true)
            .await
            .map_err(Error::into_down)?;
    }
    Ok(())
}
