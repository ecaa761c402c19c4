//! The signed-in user's own page, `/connections`: their connections to backends with their own
//! authorization server (disconnect: ended here and revoked there, RFC 7009) and their MCP
//! clients' grants (revoke). A browser without a session signs in first, as at `/authorize`, with
//! the pending authorization of a reserved client ([`CLIENT`]) that ends in a session rather than a
//! code. The session is a `__Host-` cookie (`SameSite=Lax`, 15 minutes) signed with a key
//! derived from the gateway's, so every replica reads it; each form carries a token derived from
//! the session, and a form whose token, session or `Origin` is not this page's is refused.

use base64::Engine as _;

use super::errors::OAuthError;
use super::pages::error_page;
use super::pending::{auth_cookie, to_identity_provider};
use super::response;
use super::response::WithHeader as _;
use super::{AsEndpoint, AuthServer, Request, Response, URL_SAFE_NO_PAD_ENGINE, random_token};
use crate::clock::now;
use crate::store::PendingAuthorization;
use crate::store::records::UserIdentity;

/// The reserved client of a sign-in to this page: the config refuses client ids that start with
/// `_`, and those the gateway makes are random (22 characters), or URLs.
pub(crate) const CLIENT: &str = "_account";
/// The path of the page.
pub(crate) const PATH: &str = "/connections";
const SESSION_COOKIE: &str = "__Host-mcpgw-account";
const SESSION_SECS: u64 = 15 * 60;
/// How long a sign-in to the page may take.
const SIGN_IN_SECS: u64 = 600;

/// The page, or the way to it: a sign-in when the browser has no session; a form's action.
pub(super) async fn handle(server: &AuthServer, request: &Request) -> Result<Response, OAuthError> {
    let session = request
        .cookie(SESSION_COOKIE)
        .and_then(|value| session_user(&server.account_key, &value, now()).map(|sub| (sub, value)));
    match (&request.method, session) {
        (&http::Method::GET, Some((sub, value))) => {
            let csrf = csrf_for(&server.account_key, &value);
            let view = super::account_view::view(server, &sub).await?;
            Ok(super::account_view::page_of(&view, &csrf, PATH))
        }
        (&http::Method::GET, None) => sign_in(server).await,
        (&http::Method::POST, Some((sub, value))) => {
            let form = request.form();
            let expected = csrf_for(&server.account_key, &value);
            if from_elsewhere(server, request)
                || !form
                    .get("csrf")
                    .is_some_and(|csrf| super::secrets_equal(csrf, &expected))
            {
                return Ok(error_page(403, "The form was not sent from this page"));
            }
            super::account_view::act(server, &sub, &form).await?;
            // Back to the page, as it is now (a reload does not send the form again).
            Ok(response::redirect(&server.url(AsEndpoint::Account)))
        }
        (&http::Method::POST, None) => Ok(error_page(
            401,
            "Your session on this page ended; open it again to sign in",
        )),
        _ => Ok(error_page(405, "Only GET and POST")),
    }
}

/// Starts a sign-in for the page: the identity provider's, or the `local` login form.
async fn sign_in(server: &AuthServer) -> Result<Response, OAuthError> {
    let browser = random_token(24);
    let mut pending = PendingAuthorization {
        client_id: CLIENT.to_owned(),
        redirect_uri: server.url(AsEndpoint::Account),
        redirect_uri_given: false,
        state: None,
        scope: String::new(),
        // What an identity provider that takes a resource is asked for: the default route's.
        resource: server
            .config
            .routes
            .get(server.config.default_route)
            .map(|r| r.resource.clone())
            .unwrap_or_default(),
        code_challenge: String::new(),
        csrf: random_token(24),
        browser_hash: super::hash_secret(&browser),
        user: None,
        expires_at: now() + SIGN_IN_SECS,
        idp_verifier: None,
        idp_nonce: None,
        // Nothing to consent to: the user signs in to see what is theirs.
        consented: true,
        failed_logins: 0,
    };
    let id = random_token(24);
    let next = if server.idp.is_some() {
        to_identity_provider(server, &id, &mut pending).await?
    } else {
        server.store.put_pending(&id, &pending).await?;
        format!("{}?pending={id}", server.url(AsEndpoint::Login))
    };
    Ok(response::redirect(&next).with_header(
        http::header::SET_COOKIE,
        &auth_cookie(&browser, SIGN_IN_SECS),
    ))
}

/// The end of a sign-in for the page: a session for `user`, and back to the page.
pub(super) fn signed_in(server: &AuthServer, user: &UserIdentity) -> Response {
    tracing::info!(user = %user.sub, "signed in to the connections page");
    let value = session_value(&server.account_key, &user.sub, now() + SESSION_SECS);
    // `Lax`, not `Strict`: the sign-in comes back from another site (the identity provider's), and
    // a `Strict` cookie set there would not come with the redirect to the page. A form from
    // another site is refused by its token and its `Origin` all the same.
    let session = format!(
        "{SESSION_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={SESSION_SECS}"
    );
    response::redirect(&server.url(AsEndpoint::Account))
        .with_header(http::header::SET_COOKIE, &session)
        .with_header(http::header::SET_COOKIE, &auth_cookie("", 0))
}

/// Whether the browser says the form came from another origin: its `Sec-Fetch-Site`, or its
/// `Origin` (which is `null` from the page itself: its pages send no referrer, RFC 6454 §7.3).
fn from_elsewhere(server: &AuthServer, request: &Request) -> bool {
    let header = |name| request.headers.get(name).map(http::HeaderValue::as_bytes);
    let site = header("sec-fetch-site");
    let origin = header("origin");
    site.is_some_and(|s| s != b"same-origin" && s != b"none")
        || origin.is_some_and(|o| o != b"null" && o != public_origin(server).as_bytes())
}

/// The origin of the gateway's public URL, as a browser's `Origin` header names it.
fn public_origin(server: &AuthServer) -> String {
    url::Url::parse(&server.config.server.public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// `<expires>.<user, base64url>.<signature>`.
fn session_value(key: &[u8; 32], sub: &str, expires: u64) -> String {
    let user = URL_SAFE_NO_PAD_ENGINE.encode(sub);
    let expires = expires.to_string();
    let signature = crate::tokens::secrets::signed(key, &["session", &expires, &user]);
    format!("{expires}.{user}.{signature}")
}

/// The user a session cookie's `value` names, while it lasts.
fn session_user(key: &[u8; 32], value: &str, now: u64) -> Option<String> {
    let mut parts = value.splitn(3, '.');
    let (expires, user, signature) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = super::secrets_equal(
        signature,
        &crate::tokens::secrets::signed(key, &["session", expires, user]),
    );
    let lasts = expires.parse::<u64>().is_ok_and(|at| at > now);
    if !(valid && lasts) {
        return None;
    }
    String::from_utf8(URL_SAFE_NO_PAD_ENGINE.decode(user).ok()?).ok()
}

/// The token the page's forms carry: bound to the session.
fn csrf_for(key: &[u8; 32], session: &str) -> String {
    crate::tokens::secrets::signed(key, &["csrf", session])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_names_its_user_until_it_expires_and_only_with_its_own_signature() {
        let key = [3u8; 32];
        let value = session_value(&key, "alice", 1000);
        assert_eq!(session_user(&key, &value, 999).as_deref(), Some("alice"));
        assert_eq!(session_user(&key, &value, 1000), None, "expired");
        assert_eq!(session_user(&[4u8; 32], &value, 999), None, "another key");
        // Another user, or a later expiry, under the same signature.
        let (expires, rest) = value.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let bob = URL_SAFE_NO_PAD_ENGINE.encode("bob");
        assert_eq!(
            session_user(&key, &format!("{expires}.{bob}.{signature}"), 999),
            None
        );
        let alice = URL_SAFE_NO_PAD_ENGINE.encode("alice");
        assert_eq!(
            session_user(&key, &format!("2000.{alice}.{signature}"), 999),
            None
        );
        assert_eq!(session_user(&key, "garbage", 0), None);
    }

    #[test]
    fn a_form_token_belongs_to_one_session() {
        let key = [3u8; 32];
        let one = session_value(&key, "alice", 1000);
        let other = session_value(&key, "alice", 1001);
        assert_ne!(csrf_for(&key, &one), csrf_for(&key, &other));
        assert_eq!(csrf_for(&key, &one), csrf_for(&key, &one));
    }
}
