//! The grants with no one at a browser. A machine client's `client_credentials` (RFC 6749 §4.4; the
//! MCP `oauth-client-credentials` extension): its tokens name the client as their subject. An
//! enterprise-managed sign-in (the MCP `enterprise-managed-authorization` extension): the RFC 7523
//! jwt-bearer grant carrying an Identity Assertion JWT Authorization Grant (ID-JAG) that a trusted
//! enterprise identity provider issued for this server, to this client, for one resource; its
//! subject becomes a user the provider's allowlists and the routes' policies know. Neither comes
//! with a refresh token (nor a grant to revoke): the client asks again, with its credentials or a
//! new ID-JAG, when its access token expires.

use std::collections::HashMap;

use serde_json::Value;

use super::assertion::{self, Expected, Signer};
use super::errors::OAuthError;
use super::issue::{Issued, issue};
use super::{AuthServer, Response, response, scope};
use crate::clock::now;
use crate::config::{ExternalIssuer, Provider, Route};
use crate::store::ClientRecord;
use crate::store::records::UserIdentity;

/// The `typ` of an ID-JAG.
const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

pub(super) async fn client_credentials(
    server: &AuthServer,
    client: &ClientRecord,
    form: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let route = target(server, form.get("resource").map(String::as_str))?;
    let machine = UserIdentity {
        sub: client.client_id.clone(),
        email: None,
        preferred_username: None,
        groups: Vec::new(),
        groups_truncated: false,
    };
    let scope = scope_for(route, &machine, &client.client_id, form, None)?;
    let client_id = &client.client_id;
    tracing::info!(client_id, resource = %route.resource, "issued a machine client's token");
    let issued = Issued {
        user: &machine,
        client_id,
        resource: &route.resource,
        scope: &scope,
        grant_id: None,
    };
    Ok(response::json(200, &issue(server, &issued)?))
}

pub(super) async fn enterprise_sign_in(
    server: &AuthServer,
    client: &ClientRecord,
    form: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let assertion = form
        .get("assertion")
        .ok_or_else(|| OAuthError::invalid_request("No assertion"))?;
    let refuse = |why: &str| OAuthError::InvalidGrant(format!("The ID-JAG is refused: {why}"));
    let unverified: Value = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|_| refuse("it is not a JWT"))?;
    let iss = unverified["iss"].as_str().unwrap_or_default();
    let issuer = server
        .config
        .auth
        .enterprise_issuers
        .iter()
        .find(|i| i.issuers.iter().any(|x| x == iss))
        .ok_or_else(|| refuse("its issuer is not an enterprise identity provider trusted here"))?;
    let gateway = &server.config.start.tokens.issuer;
    let audiences = [gateway.clone(), format!("{gateway}/")];
    let expected = Expected {
        issuers: &issuer.issuers,
        audiences: &audiences,
        subject: None,
        typ: Some(ID_JAG_TYP),
        algorithms: &issuer.algorithms,
        kind: "id-jag",
        refuse: |why| OAuthError::InvalidGrant(format!("The ID-JAG is refused: {why}")),
    };
    let signer = Signer::Published(server.published_keys.of_issuer(issuer));
    let claims = assertion::verify(server, assertion, signer, &expected, now()).await?;
    if claims["client_id"].as_str() != Some(client.client_id.as_str()) {
        return Err(refuse("it was issued to another client"));
    }
    let resource = claims["resource"]
        .as_str()
        .ok_or_else(|| refuse("it names no resource"))?;
    let trimmed = |r: &str| r.strip_suffix('/').unwrap_or(r).to_owned();
    if form
        .get("resource")
        .is_some_and(|asked| trimmed(asked) != trimmed(resource))
    {
        return Err(OAuthError::InvalidTarget(
            "The resource differs from the ID-JAG's".into(),
        ));
    }
    let route = target(server, Some(resource))?;
    let user = enterprise_user(server, issuer, &claims)?;
    let scope = scope_for(
        route,
        &user,
        &client.client_id,
        form,
        claims["scope"].as_str(),
    )?;
    let (client_id, sub) = (&client.client_id, &user.sub);
    tracing::info!(client_id, user = %sub, issuer = %issuer.name, resource = %route.resource, "issued a token for an enterprise-managed sign-in");
    let issued = Issued {
        user: &user,
        client_id,
        resource: &route.resource,
        scope: &scope,
        grant_id: None,
    };
    Ok(response::json(200, &issue(server, &issued)?))
}

/// The route a token is asked for (`resource`, or the default route), which must take the
/// gateway's own tokens.
fn target<'a>(server: &'a AuthServer, resource: Option<&str>) -> Result<&'a Route, OAuthError> {
    let route = match resource {
        None => &server.config.routes[server.config.default_route],
        Some(resource) => server.route_for(resource).ok_or_else(|| {
            OAuthError::InvalidTarget("The resource is not served by this gateway".into())
        })?,
    };
    if !route.gateway_tokens {
        return Err(OAuthError::InvalidTarget(
            "The resource does not take this server's tokens".into(),
        ));
    }
    Ok(route)
}

/// The scope to grant: what was asked (or, asking nothing, what `within` names, or all the route
/// offers), never beyond `within` (what the enterprise identity provider approved), and only what
/// the route's policy lets `user` through `client_id` have.
fn scope_for(
    route: &Route,
    user: &UserIdentity,
    client_id: &str,
    form: &HashMap<String, String>,
    within: Option<&str>,
) -> Result<String, OAuthError> {
    let asked = form.get("scope").map_or("", String::as_str);
    let granted = scope::grantable(asked, &route.scopes_supported).map_err(|scope| {
        OAuthError::InvalidScope(format!("The resource does not offer the scope {scope}"))
    })?;
    let approved: Option<Vec<&str>> = within.map(|w| w.split_ascii_whitespace().collect());
    let wanted: Vec<&str> = match (granted.is_empty(), &approved) {
        (false, _) => granted,
        (true, Some(approved)) => approved
            .iter()
            .filter(|s| route.scopes_supported.iter().any(|o| o == *s))
            .copied()
            .collect(),
        (true, None) => route.scopes_supported.iter().map(String::as_str).collect(),
    };
    if let Some(approved) = &approved
        && let Some(beyond) = wanted.iter().find(|s| !approved.contains(s))
    {
        return Err(OAuthError::InvalidScope(format!(
            "The ID-JAG does not approve the scope {beyond}"
        )));
    }
    Ok(scope::for_user(
        Some(route),
        user,
        client_id,
        &wanted.join(" "),
    ))
}

/// The user an ID-JAG names, as this gateway knows them: a user of the users file (its identity
/// as the file says), or, at an OIDC provider, one its email allowlists admit.
fn enterprise_user(
    server: &AuthServer,
    issuer: &ExternalIssuer,
    claims: &Value,
) -> Result<UserIdentity, OAuthError> {
    let refuse = |why: &str| OAuthError::InvalidGrant(format!("The ID-JAG is refused: {why}"));
    let sub = claims[issuer.subject_claim.as_str()]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| refuse("it names no subject"))?;
    match &server.config.auth.provider {
        Some(Provider::Local { .. }) => server
            .users
            .identity(sub)
            .ok_or_else(|| refuse("its subject is not a user of this gateway")),
        _ => {
            let email = claims["email"].as_str();
            if let Some(idp) = &server.idp {
                idp.admits_vouched(email)
                    .map_err(|e| refuse(&e.to_string()))?;
            }
            let (groups, groups_truncated) =
                crate::idp::groups_claim(claims.get(issuer.groups_claim.as_str()));
            Ok(UserIdentity {
                sub: sub.to_owned(),
                email: email.map(str::to_owned),
                preferred_username: claims["preferred_username"].as_str().map(str::to_owned),
                groups,
                groups_truncated,
            })
        }
    }
}
