//! The data plane's shared state, one per config: the config, the router, the token verifier and
//! signer, session bindings, the documents it serves, and what it keeps per route. A reload builds
//! the next one from the last ([`Gateway::reconfigured`]), keeping what outlives a config.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use bytes::Bytes;
use http::HeaderValue;

use super::concurrency::Concurrency;
use super::metadata;
use super::resolve::BackendAddress;
use super::router::{Endpoint, Router};
use super::sessions::SessionBindings;
use super::watchdog::Watchdog;
use crate::config::{Config, Route};
use crate::oauth::{AsEndpoint, AuthServer};
use crate::rate_limit::RateLimiter;
use crate::store::Store;
use crate::telemetry::access_log::AccessLog;
use crate::telemetry::metrics::{GATEWAY_ROUTE, RouteMetrics};
use crate::tokens::access::AccessTokenVerifier;
use crate::tokens::backend::BackendSigner;
use crate::tokens::exchange::TokenExchanges;
use crate::tokens::external::ExternalVerifier;
use crate::tokens::keys::KeyRing;

/// The gateway's shared state; one per config, the requests begun under it keeping it.
pub(crate) struct Gateway {
    pub(super) config: Arc<Config>,
    pub(super) router: Router,
    pub(super) verifier: Arc<AccessTokenVerifier>,
    /// The access tokens of the other authorization servers routes accept.
    pub(super) external: ExternalVerifier,
    /// Backends' tokens exchanged for users (`credentials = "exchange"`); kept across reloads.
    pub(super) exchanges: Arc<TokenExchanges>,
    pub(super) signer: BackendSigner,
    /// Kept across reloads, as are the watched requests, the requests per client, the keys, the
    /// verifier, the readiness flags and the logs.
    pub(super) sessions: Arc<SessionBindings>,
    pub(super) watchdog: Arc<Watchdog>,
    pub(super) requests_per_client: Arc<Concurrency<IpAddr>>,
    pub(super) keys: Arc<KeyRing>,
    pub(super) as_metadata: Bytes,
    pub(super) resource_metadata: Vec<Bytes>,
    /// One flag per part that must be up for `/readyz` to say 200: each supervised command, and
    /// the reloader once it listens for SIGHUP.
    pub(super) readiness: Vec<Arc<AtomicBool>>,
    /// The authorization server, when a login provider is configured.
    pub(super) auth: Option<Arc<AuthServer>>,
    /// The store other replicas share, where a session opened through one of them is found.
    pub(super) shared_store: Option<Arc<dyn Store>>,
    /// Per-client-address limits on each of the authorization server's endpoints.
    pub(super) limits: Arc<[(AsEndpoint, RateLimiter<IpAddr>); 9]>,
    /// The scheme and host clients reach the gateway at, as `X-Forwarded-Proto` and `-Host` tell
    /// the backends.
    pub(super) forwarded_proto: HeaderValue,
    pub(super) forwarded_host: HeaderValue,
    pub(super) access_log: AccessLog,
    /// What is kept per route, by route number.
    pub(super) routes: Vec<RouteState>,
    /// The metric series of the gateway's own endpoints.
    pub(super) gateway_metrics: RouteMetrics,
    /// What `Strict-Transport-Security` says, when the gateway serves HTTPS.
    pub(super) hsts: Option<HeaderValue>,
}

/// What the data plane keeps for one route.
pub(super) struct RouteState {
    /// The backend's address, looked up off the request path.
    pub address: Arc<BackendAddress>,
    /// The route's metric series.
    pub metrics: RouteMetrics,
}

/// A part of the public URL as a header value.
fn forwarded(public_url: &str, part: impl Fn(&url::Url) -> String) -> HeaderValue {
    let url = url::Url::parse(public_url).expect("a validated public URL");
    HeaderValue::from_str(&part(&url)).expect("a URL's part is a header value")
}

impl Gateway {
    pub(crate) fn new(
        config: Arc<Config>,
        keys: Arc<KeyRing>,
        verifier: Arc<AccessTokenVerifier>,
        auth: Option<Arc<AuthServer>>,
        shared_store: Option<Arc<dyn Store>>,
        readiness: Vec<Arc<AtomicBool>>,
        access_log: AccessLog,
    ) -> Self {
        let signer = BackendSigner::new(
            keys.clone(),
            config.start.tokens.issuer.clone(),
            config.start.tokens.assertion_lifetime.as_secs(),
        );
        let limits = &config.rate_limits;
        Self {
            router: Router::new(&config),
            as_metadata: metadata::authorization_server(&config),
            resource_metadata: config
                .routes
                .iter()
                .map(|r| metadata::protected_resource(&config, r))
                .collect(),
            verifier,
            external: ExternalVerifier::new(
                &config.issuers,
                config.start.tokens.clock_skew.as_secs(),
            ),
            signer,
            exchanges: Arc::new(TokenExchanges::new(shared_store.clone())),
            sessions: Arc::default(),
            watchdog: Arc::default(),
            requests_per_client: Arc::default(),
            keys,
            readiness,
            auth,
            shared_store,
            limits: Arc::new([
                (AsEndpoint::Register, RateLimiter::new(limits.register)),
                (AsEndpoint::Token, RateLimiter::new(limits.token)),
                (AsEndpoint::Authorize, RateLimiter::new(limits.authorize)),
                (AsEndpoint::Login, RateLimiter::new(limits.login)),
                (AsEndpoint::Consent, RateLimiter::new(limits.consent)),
                (AsEndpoint::Callback, RateLimiter::new(limits.callback)),
                (
                    AsEndpoint::ConnectCallback,
                    RateLimiter::new(limits.callback),
                ),
                (AsEndpoint::Revoke, RateLimiter::new(limits.revoke)),
                (AsEndpoint::Introspect, RateLimiter::new(limits.introspect)),
            ]),
            forwarded_proto: forwarded(&config.server.public_url, |u| u.scheme().to_owned()),
            forwarded_host: forwarded(&config.server.public_url, |u| {
                let host = u.host_str().unwrap_or_default();
                u.port().map_or(host.to_owned(), |p| format!("{host}:{p}"))
            }),
            access_log,
            routes: config
                .routes
                .iter()
                .map(|r| RouteState {
                    address: BackendAddress::new(&r.backend.host, r.backend.port),
                    metrics: RouteMetrics::new(&r.path),
                })
                .collect(),
            gateway_metrics: RouteMetrics::new(GATEWAY_ROUTE),
            hsts: config
                .server
                .hsts
                .as_deref()
                .map(|v| HeaderValue::from_str(v).expect("a validated header value")),
            config,
        }
    }

    /// The gateway of a reloaded `config`. Its authorization server, routes, policies and limits
    /// are the new config's; the sessions, the grants' revocations, the rate limits' counts (unless
    /// the limits changed) carry over, and so does what cannot change without a restart (the
    /// store, the keys). Requests begun before keep the gateway they began with.
    pub(crate) fn reconfigured(&self, config: Arc<Config>, store: &Arc<dyn Store>) -> Self {
        let auth = match (&self.auth, config.auth.provider.is_some()) {
            (Some(auth), true) => Some(Arc::new(auth.reconfigured(config.clone()))),
            (None, true) => Some(Arc::new(AuthServer::new(
                config.clone(),
                store.clone(),
                self.keys.clone(),
                self.verifier.clone(),
                self.access_log.audit.clone(),
            ))),
            (_, false) => None,
        };
        let mut next = Self::new(
            config,
            self.keys.clone(),
            self.verifier.clone(),
            auth,
            self.shared_store.clone(),
            self.readiness.clone(),
            self.access_log.clone(),
        );
        next.sessions = self.sessions.clone();
        next.exchanges = self.exchanges.clone();
        next.watchdog = self.watchdog.clone();
        next.requests_per_client = self.requests_per_client.clone();
        if next.config.rate_limits == self.config.rate_limits {
            next.limits = self.limits.clone();
        }
        next
    }

    /// The config it serves.
    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The authorization server, when a provider is configured.
    pub(crate) fn auth(&self) -> Option<&Arc<AuthServer>> {
        self.auth.as_ref()
    }

    /// The requests the gateway ends itself when their time or access is up.
    pub(crate) fn watchdog(&self) -> &Arc<Watchdog> {
        &self.watchdog
    }

    /// The route an endpoint is, if it is one.
    pub(super) fn route(&self, endpoint: Endpoint) -> Option<&Route> {
        match endpoint {
            Endpoint::Mcp(i) => self.config.routes.get(i),
            _ => None,
        }
    }

    /// The `route` label of the endpoint's metrics and log lines.
    pub(super) fn route_label(&self, endpoint: Endpoint) -> &str {
        self.route(endpoint)
            .map_or(GATEWAY_ROUTE, |r| r.path.as_str())
    }

    /// The metric series of the route labelled [`Self::route_label`].
    pub(super) fn route_metrics(&self, endpoint: Endpoint) -> &RouteMetrics {
        match endpoint {
            Endpoint::Mcp(i) => self.routes.get(i).map(|r| &r.metrics),
            _ => None,
        }
        .unwrap_or(&self.gateway_metrics)
    }
}
