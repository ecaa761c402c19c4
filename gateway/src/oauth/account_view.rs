//! What the connections page ([`super::account`]) shows a signed-in user, and what its forms do:
//! only ever the user's own connections and grants.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use super::errors::OAuthError;
use super::pages::{error_page, escape, page};
use super::{AuthServer, Response, token};
use crate::connections::Ended;

/// The user's connections and grants, as the page lists them.
pub(super) struct AccountView {
    pub user: String,
    pub connections: Vec<ConnectionRow>,
    pub grants: Vec<GrantRow>,
}

pub(super) struct ConnectionRow {
    pub route: String,
    pub issuer: String,
    pub connected: String,
    pub refreshed: Option<String>,
}

pub(super) struct GrantRow {
    pub id: String,
    pub client: String,
    pub scope: String,
    pub resource: String,
    pub created: String,
    pub refreshed: Option<String>,
}

pub(super) async fn view(server: &AuthServer, sub: &str) -> Result<AccountView, OAuthError> {
    let mut connections: Vec<ConnectionRow> = server
        .store
        .connections(sub)
        .await?
        .into_iter()
        .map(|c| ConnectionRow {
            route: c.route,
            issuer: c.issuer,
            connected: time(c.connected_at),
            refreshed: c.refreshed_at.map(time),
        })
        .collect();
    connections.sort_by(|a, b| a.route.cmp(&b.route));
    // Every grant is read to find the user's: the page is opened rarely, by a person.
    let mut grants = Vec::new();
    for grant in server.store.grants().await? {
        if grant.user.sub != sub || grant.revoked {
            continue;
        }
        grants.push(GrantRow {
            client: server.client_label(&grant.client_id).await?,
            id: grant.grant_id,
            scope: grant.scope,
            resource: grant.resource,
            created: time(grant.created_at),
            refreshed: grant.refreshed_at.map(time),
        });
    }
    grants.sort_by(|a, b| b.created.cmp(&a.created));
    Ok(AccountView {
        user: sub.to_owned(),
        connections,
        grants,
    })
}

/// Does what a form of the page asks: `disconnect` a `route`, or `revoke` a `grant`, the user's
/// own; anything else, or someone else's, is refused.
pub(super) async fn act(
    server: &AuthServer,
    sub: &str,
    form: &HashMap<String, String>,
) -> Result<(), OAuthError> {
    let refused = || OAuthError::Page(Box::new(error_page(400, "Nothing of yours to do that to")));
    match form.get("action").map(String::as_str) {
        Some("disconnect") => {
            let (Some(route), Some(connections)) = (form.get("route"), &server.connections) else {
                return Err(refused());
            };
            let configured = server.config.routes.iter().find(|r| &r.path == route);
            // Ended here even when the server cannot be told (that failure is logged).
            let ended = match connections
                .disconnect(sub, configured, route, Ended::User)
                .await
            {
                Ok(ended) => ended,
                Err(crate::connections::ConnectionError::Store(error)) => return Err(error.into()),
                Err(error) => {
                    tracing::warn!(%error, "a user's disconnect failed");
                    return Err(OAuthError::Page(Box::new(error_page(
                        502,
                        "The connection could not be ended; try again",
                    ))));
                }
            };
            if !ended {
                return Err(refused());
            }
            Ok(())
        }
        Some("revoke") => {
            let Some(id) = form.get("grant") else {
                return Err(refused());
            };
            match server.store.grant(id).await? {
                Some(grant) if grant.user.sub == sub && !grant.revoked => {
                    tracing::info!(user = sub, grant = %id, client_id = %grant.client_id, "a user revoked a grant on the connections page");
                    token::revoke_grant(server, id).await
                }
                _ => Err(refused()),
            }
        }
        _ => Err(refused()),
    }
}

/// The page: the user's connections and grants, each with its form to `path`; `csrf` is the
/// session's form token.
pub(super) fn page_of(view: &AccountView, csrf: &str, path: &str) -> Response {
    let form = |action: &str, name: &str, value: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"{path}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"action\" value=\"{action}\">\
             <input type=\"hidden\" name=\"{name}\" value=\"{value}\">\
             <button type=\"submit\" class=\"secondary\">{label}</button></form>",
            csrf = escape(csrf),
            value = escape(value),
        )
    };
    let since = |at: &str, refreshed: &Option<String>| match refreshed {
        Some(r) => format!("since {}, renewed {}", escape(at), escape(r)),
        None => format!("since {}", escape(at)),
    };
    let connections: String = view
        .connections
        .iter()
        .map(|c| {
            format!(
                "<li><strong><code>{route}</code></strong> at <code>{issuer}</code><br><small>{since}</small>{form}</li>",
                route = escape(&c.route),
                issuer = escape(&c.issuer),
                since = since(&c.connected, &c.refreshed),
                form = form("disconnect", "route", &c.route, "Disconnect"),
            )
        })
        .collect();
    let grants: String = view
        .grants
        .iter()
        .map(|g| {
            format!(
                "<li><strong>{client}</strong> for <code>{resource}</code> (<code>{scope}</code>)<br><small>{since}</small>{form}</li>",
                client = escape(&g.client),
                resource = escape(&g.resource),
                scope = escape(&g.scope),
                since = since(&g.created, &g.refreshed),
                form = form("revoke", "grant", &g.id, "Revoke"),
            )
        })
        .collect();
    let none = "<p><small>None.</small></p>";
    let list = |items: String| {
        if items.is_empty() {
            none.to_owned()
        } else {
            format!("<ul class=\"items\">{items}</ul>")
        }
    };
    page(
        200,
        "Your connections",
        &format!(
            "<h1>Your connections</h1><p>Signed in as <strong>{user}</strong>.</p>\
             <h2>MCP servers you connected</h2>{connections}\
             <h2>Apps you signed in to</h2>{grants}",
            user = escape(&view.user),
            connections = list(connections),
            grants = list(grants),
        ),
    )
}

/// A time as RFC 3339, to the second.
fn time(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
}
