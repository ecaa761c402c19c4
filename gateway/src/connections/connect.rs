//! Connecting a user: the browser sent to the backend's authorization server (code flow, PKCE S256,
//! `state`, `resource`, the scopes the backend asks for), and back at the gateway's callback, where
//! `state` names the flow (taken once), `iss` is checked (RFC 9207), and the code is exchanged for
//! the user's tokens, kept sealed per user and route.

use std::collections::HashMap;

use serde::Deserialize;

use super::Connections;
use super::client::Client;
use super::discovery::Discovered;
use super::errors::ConnectionError;
use crate::clock::now;
use crate::config::{ConnectionSettings, Route};
use crate::store::records::UserIdentity;
use crate::store::{ConnectFlow, ConnectionRecord, PendingAuthorization};
use crate::tokens::secrets::{hash_secret, random_token};

/// How long a user has at the backend's server before the flow is forgotten.
const FLOW_SECS: u64 = 600;

/// The sign-in at the gateway that waits for a connection, to resume once it is made.
pub(crate) struct Waiting {
    pub pending: PendingAuthorization,
    pub user: UserIdentity,
    pub idp_tokens: Option<String>,
}

/// What a token endpoint answers.
#[derive(Deserialize)]
pub(super) struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

/// The tokens a connection keeps, sealed.
#[derive(serde::Serialize, Deserialize)]
pub(super) struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

impl Connections {
    /// Starts connecting `user` to `route`'s backend: where to send their browser.
    pub(crate) async fn begin(
        &self,
        route: &Route,
        settings: &ConnectionSettings,
        waiting: Waiting,
    ) -> Result<String, ConnectionError> {
        let discovered = self.discovered(route, settings).await?;
        let client = self.client_for(&discovered.server, settings).await?;
        let sub = waiting.user.sub.clone();
        let state = random_token(32);
        let verifier = random_token(32);
        let challenge = super::pkce_challenge(&verifier);
        let flow = ConnectFlow {
            sub: sub.clone(),
            route: route.path.clone(),
            resource: route.backend.url.clone(),
            issuer: discovered.server.issuer.clone(),
            client_id: client.id.clone(),
            verifier: self.sealer.seal(verifier.as_bytes(), &flow_binding(&state)),
            redirect_uri: self.redirect_uri.clone(),
            pending: Some(waiting.pending),
            user: Some(waiting.user),
            idp_tokens: waiting.idp_tokens,
            expires_at: now() + FLOW_SECS,
        };
        self.store
            .put_connect_flow(&hash_secret(&state), &flow)
            .await?;
        let mut url = url::Url::parse(&discovered.server.authorization_endpoint)
            .map_err(|e| ConnectionError::Discovery(format!("the authorization endpoint: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &client.id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            let mut scopes = discovered.scopes.clone();
            let wanted = (sub, route.path.clone());
            if let Some(more) = self.wanted_scopes.get(&wanted, now()) {
                for scope in more.split_whitespace() {
                    if !scopes.iter().any(|s| s == scope) {
                        scopes.push(scope.to_owned());
                    }
                }
            }
            if !scopes.is_empty() {
                query.append_pair("scope", &scopes.join(" "));
            }
            if settings.send_resource {
                query.append_pair("resource", &discovered.resource);
            }
        }
        crate::telemetry::metrics::connections::started(&route.path);
        Ok(url.into())
    }

    /// The connect flow the gateway's callback ends, by the `state` of its query (taken once),
    /// and whether the user is now connected (or why not). Nothing is exchanged unless
    /// `same_browser` says the browser that came back is the one that started the flow: else a
    /// link to the server, made by one user and followed by another, would store the second
    /// user's token under the first.
    pub(crate) async fn finish(
        &self,
        query: &HashMap<String, String>,
        same_browser: impl Fn(&ConnectFlow) -> bool,
        route_of: impl Fn(&str) -> Option<Route>,
    ) -> Result<(ConnectFlow, Result<(), ConnectionError>), ConnectionError> {
        let state = query.get("state").ok_or(ConnectionError::UnknownState)?;
        let flow = self
            .store
            .take_connect_flow(&hash_secret(state), now())
            .await?
            .ok_or(ConnectionError::UnknownState)?;
        let outcome = if same_browser(&flow) {
            self.complete(&flow, state, query, route_of).await
        } else {
            Err(ConnectionError::OtherBrowser)
        };
        match &outcome {
            Ok(()) => {
                crate::telemetry::metrics::connections::completed(&flow.route);
                self.connected(&flow.sub, &flow.route, &flow.issuer);
            }
            Err(error) => {
                crate::telemetry::metrics::connections::failed(&flow.route, error.reason());
                tracing::warn!(user = %flow.sub, route = %flow.route, %error, "a connection failed");
            }
        }
        Ok((flow, outcome))
    }

    /// Checks the server's answer to `flow` and exchanges its code for the user's tokens.
    async fn complete(
        &self,
        flow: &ConnectFlow,
        state: &str,
        query: &HashMap<String, String>,
        route_of: impl Fn(&str) -> Option<Route>,
    ) -> Result<(), ConnectionError> {
        let route = route_of(&flow.route).ok_or(ConnectionError::UnknownState)?;
        let settings = route
            .connection
            .as_ref()
            .ok_or(ConnectionError::UnknownState)?;
        let discovered = self.discovered(&route, settings).await?;
        let server = &discovered.server;
        // RFC 9207: the server that answers is the one the browser was sent to.
        let iss = query.get("iss");
        if (iss.is_some() || server.authorization_response_iss_parameter_supported)
            && iss != Some(&flow.issuer)
        {
            return Err(ConnectionError::WrongIssuer {
                expected: flow.issuer.clone(),
                found: iss.cloned(),
            });
        }
        if server.issuer != flow.issuer {
            return Err(ConnectionError::WrongIssuer {
                expected: server.issuer.clone(),
                found: Some(flow.issuer.clone()),
            });
        }
        if let Some(error) = query.get("error") {
            let description = query.get("error_description").map_or("", String::as_str);
            return Err(ConnectionError::Refused(
                format!("{error} {description}").trim().to_owned(),
            ));
        }
        let code = query
            .get("code")
            .ok_or_else(|| ConnectionError::Refused("the server sent no code".into()))?;
        let verifier = self
            .sealer
            .open(&flow.verifier, &flow_binding(state))
            .and_then(|v| String::from_utf8(v).ok())
            .ok_or(ConnectionError::UnknownState)?;
        let client = self
            .client_of_connection(&flow.client_id, &flow.issuer, settings)
            .await?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", flow.redirect_uri.clone()),
            ("code_verifier", verifier),
        ];
        if settings.send_resource {
            form.push(("resource", discovered.resource.clone()));
        }
        let tokens = self
            .token_request(&discovered, settings, &client, form)
            .await?;
        let connected_at = now();
        let record = ConnectionRecord {
            sub: flow.sub.clone(),
            route: flow.route.clone(),
            resource: flow.resource.clone(),
            issuer: flow.issuer.clone(),
            client_id: client.id.clone(),
            tokens: self.seal_tokens(&flow.sub, &flow.route, &tokens),
            expires_at: tokens.expires_in.map(|secs| connected_at + secs),
            connected_at,
            refreshed_at: None,
        };
        self.store.put_connection(&record).await?;
        Ok(())
    }

    /// A request to the server's token endpoint with `form`, as `client`: the tokens, or why not.
    /// An `invalid_client` from a server the gateway registered at makes it register again next
    /// time.
    pub(super) async fn token_request(
        &self,
        discovered: &Discovered,
        settings: &ConnectionSettings,
        client: &Client,
        mut form: Vec<(&'static str, String)>,
    ) -> Result<TokenResponse, ConnectionError> {
        let endpoint = &discovered.server.token_endpoint;
        let request = self.post(settings, endpoint)?;
        let request = client.authenticate(request, &mut form);
        let request = request
            .header(http::header::ACCEPT, "application/json")
            .form(&form);
        let (status, body) = self.send(request, endpoint).await?;
        if !status.is_success() {
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let code = error["error"].as_str().unwrap_or("HTTP error");
            if code == "invalid_client" {
                self.forget(&discovered.server.issuer, client).await;
            }
            // Only an answer about the grant or the client refuses it for good; any other 4xx (a
            // rate limit, a timeout) is tried again later, the connection kept.
            if !matches!(
                code,
                "invalid_grant" | "invalid_client" | "unauthorized_client" | "invalid_scope"
            ) {
                return Err(ConnectionError::Unavailable(format!(
                    "{endpoint}: HTTP {status} {code}"
                )));
            }
            return Err(ConnectionError::Refused(
                format!(
                    "{code} {}",
                    error["error_description"].as_str().unwrap_or_default()
                )
                .trim()
                .to_owned(),
            ));
        }
        let tokens: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| ConnectionError::BadAnswer(format!("the token response: {e}")))?;
        if tokens.access_token.is_empty() || !tokens.token_type.eq_ignore_ascii_case("bearer") {
            return Err(ConnectionError::BadAnswer(format!(
                "the token response has no bearer token (token_type {:?})",
                tokens.token_type
            )));
        }
        Ok(tokens)
    }

    pub(super) fn seal_tokens(&self, sub: &str, route: &str, tokens: &TokenResponse) -> String {
        let kept = Tokens {
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            scope: tokens.scope.clone(),
        };
        self.sealer.seal(
            &serde_json::to_vec(&kept).expect("JSON"),
            &super::connection_binding(sub, route),
        )
    }
}

/// What a flow's verifier is sealed to: its own state.
fn flow_binding(state: &str) -> String {
    format!("connect {state}")
}
