//! Whether to believe a request's forwarded headers: the `X-Gateway-Assertion` checked against the
//! gateway's JWKS (cached, refetched when an unknown `kid` shows up), and an axum middleware that
//! turns a believed request into a [`Caller`] in its extensions, or answers 401 with a JSON body.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gateway_assertion::jwk::{Jwk, JwkSet};
use gateway_assertion::{
    ASSERTION_HEADER, AssertionClaims, AssertionError, EMAIL_HEADER, REQUEST_ID_HEADER,
    USER_HEADER, USERNAME_HEADER, Verifier,
};
use http::{HeaderMap, HeaderName, StatusCode};
use tokio::sync::{Mutex, RwLock};

use crate::caller::{Caller, Token};
use crate::config::{JwksSource, TrustSettings};

/// An unknown `kid` refetches the JWKS at most this often (and a failed fetch is retried no sooner),
/// so that a flood of made-up key ids cannot turn into a flood of requests to the gateway.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(1);
/// The JWKS document may not be larger than this.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The policy for one HTTP server.
pub struct Trust {
    token_header: HeaderName,
    mode: TrustMode,
}

enum TrustMode {
    Signed {
        verifier: Verifier,
        keys: Box<KeyCache>,
    },
    Unsigned,
}

impl Trust {
    pub fn new(settings: TrustSettings, token_header: HeaderName, http: reqwest::Client) -> Self {
        let mode = match settings {
            TrustSettings::Signed { jwks, expectations } => TrustMode::Signed {
                verifier: Verifier::new(expectations),
                keys: Box::new(KeyCache::new(jwks, http)),
            },
            TrustSettings::Unsigned => TrustMode::Unsigned,
        };
        Self { token_header, mode }
    }

    pub fn is_unsigned(&self) -> bool {
        matches!(self.mode, TrustMode::Unsigned)
    }

    /// The caller of a request whose headers are believed.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AssertionError> {
        let token = match single(headers, &self.token_header)? {
            Some(raw) => Some(Token::parse(raw).ok_or(AssertionError::TokenMismatch)?),
            None => None,
        };
        let user = single(headers, &HeaderName::from_static(USER_HEADER))?;
        let email = single(headers, &HeaderName::from_static(EMAIL_HEADER))?;
        let username = single(headers, &HeaderName::from_static(USERNAME_HEADER))?;
        let request_id = request_id(headers);
        match &self.mode {
            TrustMode::Unsigned => Ok(Caller {
                token,
                user: user.map(str::to_owned),
                email: email.map(str::to_owned),
                preferred_username: username.map(str::to_owned),
                client_id: None,
                request_id,
            }),
            TrustMode::Signed { verifier, keys } => {
                let assertion = single(headers, &HeaderName::from_static(ASSERTION_HEADER))?
                    .ok_or(AssertionError::Missing)?;
                let kid = Verifier::key_id(assertion)?;
                let key = keys.key(&kid).await?;
                let claims =
                    verifier.verify(assertion, &key, token.as_ref().map(Token::secret), now())?;
                check_identity(&claims, user, email, username)?;
                Ok(Caller {
                    token,
                    user: Some(claims.sub),
                    email: claims.email,
                    preferred_username: claims.preferred_username,
                    client_id: Some(claims.client_id),
                    request_id,
                })
            }
        }
    }
}

/// Identity headers, when present, must say what the assertion says.
fn check_identity(
    claims: &AssertionClaims,
    user: Option<&str>,
    email: Option<&str>,
    username: Option<&str>,
) -> Result<(), AssertionError> {
    let agrees = |header: Option<&str>, claim: Option<&str>| header.is_none() || header == claim;
    if agrees(user, Some(&claims.sub))
        && agrees(email, claims.email.as_deref())
        && agrees(username, claims.preferred_username.as_deref())
    {
        Ok(())
    } else {
        Err(AssertionError::IdentityMismatch)
    }
}

/// A header's one value. A repeated header, or one that is not text, is refused: with two copies
/// there is no telling which one the gateway set.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h str>, AssertionError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AssertionError::Malformed);
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| AssertionError::Malformed)
}

/// The gateway's request id when it is a sane one, else a fresh one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The gateway's public keys, fetched on first use and again when an assertion names a `kid` that is
/// not among them (the gateway has rotated its keys).
struct KeyCache {
    source: JwksSource,
    http: reqwest::Client,
    keys: RwLock<JwkSet>,
    /// Held while fetching, so that concurrent misses fetch once.
    fetching: Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    loaded: bool,
    /// The last fetch made because a loaded set lacked a `kid`.
    last_refetch: Option<Instant>,
    /// The last fetch that failed.
    last_failure: Option<Instant>,
}

impl KeyCache {
    fn new(source: JwksSource, http: reqwest::Client) -> Self {
        Self {
            source,
            http,
            keys: RwLock::new(JwkSet { keys: Vec::new() }),
            fetching: Mutex::new(FetchState::default()),
        }
    }

    async fn key(&self, kid: &str) -> Result<Jwk, AssertionError> {
        if let Some(key) = self.keys.read().await.find(kid) {
            return Ok(key.clone());
        }
        let mut state = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.keys.read().await.find(kid) {
            return Ok(key.clone());
        }
        let recent = |at: Option<Instant>| at.is_some_and(|at| at.elapsed() < MIN_REFETCH_INTERVAL);
        if recent(state.last_failure) {
            return Err(AssertionError::KeysUnavailable);
        }
        if state.loaded {
            if recent(state.last_refetch) {
                return Err(AssertionError::UnknownKey);
            }
            state.last_refetch = Some(Instant::now());
        }
        let fetched = self.fetch().await.map_err(|reason| {
            tracing::warn!(source = ?self.source, %reason, "could not load the gateway's JWKS");
            state.last_failure = Some(Instant::now());
            AssertionError::KeysUnavailable
        })?;
        state.loaded = true;
        let found = fetched.find(kid).cloned();
        *self.keys.write().await = fetched;
        found.ok_or(AssertionError::UnknownKey)
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let bytes = match &self.source {
            JwksSource::File(path) => tokio::fs::read(path).await.map_err(|e| e.to_string())?,
            JwksSource::Url(url) => {
                let mut response = self
                    .http
                    .get(url.clone())
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("HTTP {}", response.status()));
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_JWKS_BYTES {
                        return Err("the JWKS is too large".into());
                    }
                }
                body
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| format!("not a JWKS: {e}"))
    }
}

/// axum middleware: a believed request goes on with its [`Caller`]; any other gets 401 (503 when the
/// keys could not be loaded) and never reaches a tool.
pub async fn require_trusted(
    State(trust): State<Arc<Trust>>,
    mut request: Request,
    next: Next,
) -> Response {
    match trust.authenticate(request.headers()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => {
            tracing::warn!(reason = %error, method = %request.method(), "refused a request from outside the gateway");
            refusal(&error)
        }
    }
}

fn refusal(error: &AssertionError) -> Response {
    let (status, code) = match error {
        AssertionError::KeysUnavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
        }
        _ => (StatusCode::UNAUTHORIZED, "unauthorized"),
    };
    let body = serde_json::json!({ "error": code, "error_description": error.to_string() });
    (status, axum::Json(body)).into_response()
}
