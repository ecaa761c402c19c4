//! The gateway as an OAuth client of a GitHub or OIDC provider, on the `oauth2` crate: the authorization
//! URL with PKCE, the code exchange and the refresh, over the workspace's own HTTP client.

use std::future::Future;
use std::pin::Pin;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EndpointNotSet, EndpointSet, ExtraTokenFields, HttpRequest, HttpResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse as _, TokenUrl,
};
use serde::{Deserialize, Serialize};

use super::{IdpError, ProviderTokens};

/// The one field beyond OAuth's that OpenID Connect adds to a token response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type Response = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// An OAuth client with its authorization and token endpoints set.
pub(super) type OAuthClient = Client<
    BasicErrorResponse,
    Response,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// What a token request returned.
pub(super) struct Issued {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
    pub id_token: Option<String>,
}

pub(super) fn client(
    client_id: &str,
    secret: &str,
    authorize: &str,
    token: &str,
    callback: &str,
) -> Result<OAuthClient, IdpError> {
    let bad = |what: &str, e: url::ParseError| IdpError::Unavailable(format!("{what}: {e}"));
    Ok(Client::new(ClientId::new(client_id.to_owned()))
        .set_client_secret(ClientSecret::new(secret.to_owned()))
        .set_auth_uri(
            AuthUrl::new(authorize.to_owned()).map_err(|e| bad("authorization endpoint", e))?,
        )
        .set_token_uri(TokenUrl::new(token.to_owned()).map_err(|e| bad("token endpoint", e))?)
        .set_redirect_uri(RedirectUrl::new(callback.to_owned()).map_err(|e| bad("callback", e))?))
}

/// The provider's authorization URL: `state`, PKCE S256 from `verifier`, `scopes`, and `extra` params.
pub(super) fn authorize_url(
    client: &OAuthClient,
    state: &str,
    verifier: &str,
    scopes: &[String],
    extra: &[(&str, &str)],
) -> String {
    let challenge =
        PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.to_owned()));
    let state = state.to_owned();
    let mut request = client
        .authorize_url(move || CsrfToken::new(state))
        .set_pkce_challenge(challenge)
        .add_scopes(scopes.iter().cloned().map(Scope::new));
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    request.url().0.to_string()
}

pub(super) async fn exchange(
    client: &OAuthClient,
    http: &reqwest::Client,
    code: &str,
    verifier: &str,
) -> Result<Issued, IdpError> {
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
        .request_async(&Http(http))
        .await
        .map_err(token_error)?;
    Ok(issued(response))
}

/// New tokens for `refresh_token`, at `now`: the old refresh token stays if none is returned.
/// GitHub and OIDC refresh alike.
pub(super) async fn refresh(
    client: &OAuthClient,
    http: &reqwest::Client,
    refresh_token: &str,
    now: u64,
) -> Result<ProviderTokens, IdpError> {
    let response = client
        .exchange_refresh_token(&RefreshToken::new(refresh_token.to_owned()))
        .request_async(&Http(http))
        .await
        .map_err(token_error)?;
    let issued = issued(response);
    Ok(ProviderTokens {
        access_token: issued.access_token,
        refresh_token: issued
            .refresh_token
            .or_else(|| Some(refresh_token.to_owned())),
        expires_at: issued.expires_in.map(|s| now + s),
    })
}

fn issued(response: Response) -> Issued {
    Issued {
        access_token: response.access_token().secret().clone(),
        refresh_token: response.refresh_token().map(|t| t.secret().clone()),
        expires_in: response.expires_in().map(|d| d.as_secs()),
        id_token: response.extra_fields().id_token.clone(),
    }
}

fn token_error<E: std::error::Error>(error: RequestTokenError<E, BasicErrorResponse>) -> IdpError {
    match error {
        RequestTokenError::ServerResponse(response) => {
            IdpError::Refused(response.error().to_string())
        }
        other => IdpError::Unavailable(other.to_string()),
    }
}

/// The workspace's `reqwest` client, as the `oauth2` crate's HTTP client.
struct Http<'a>(&'a reqwest::Client);

impl<'c> AsyncHttpClient<'c> for Http<'_> {
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, reqwest::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        send(self.0, request)
    }
}

/// Sends one of the `oauth2` crate's requests with the workspace's `reqwest`.
fn send<'a>(
    http: &'a reqwest::Client,
    request: HttpRequest,
) -> Pin<Box<dyn Future<Output = Result<HttpResponse, reqwest::Error>> + Send + 'a>> {
    Box::pin(async move {
        let (parts, body) = request.into_parts();
        let response = http
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let mut builder = http::Response::builder().status(response.status());
        if let Some(headers) = builder.headers_mut() {
            *headers = response.headers().clone();
        }
        let body = response.bytes().await?.to_vec();
        Ok(builder.body(body).expect("a response from parts"))
    })
}
