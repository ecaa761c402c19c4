//! The discovery documents, rendered once at start: RFC 9728 protected resource metadata for each
//! route, and RFC 8414 authorization server metadata, whose `issuer` is byte-identical to every
//! route's `authorization_servers[0]`.

use bytes::Bytes;
use serde_json::json;

use crate::config::{Config, Route};
use crate::routes::JWKS_PATH;

/// RFC 9728 §2 metadata for one route.
pub fn protected_resource(config: &Config, route: &Route) -> Bytes {
    let mut doc = json!({
        "resource": route.resource,
        "authorization_servers": [config.tokens.issuer],
        "bearer_methods_supported": ["header"],
        "resource_name": route.resource_name,
    });
    // Empty parameters are omitted (RFC 9728 §3.2).
    if !route.scopes_supported.is_empty() {
        doc["scopes_supported"] = json!(route.scopes_supported);
    }
    serde_json::to_vec(&doc).expect("JSON").into()
}

/// RFC 8414 §2 metadata. Only what works is advertised: endpoints join as they are built.
pub fn authorization_server(config: &Config) -> Bytes {
    let mut scopes: Vec<&str> = config
        .routes
        .iter()
        .flat_map(|r| r.scopes_supported.iter().map(String::as_str))
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    let doc = json!({
        "issuer": config.tokens.issuer,
        "jwks_uri": format!("{}{JWKS_PATH}", config.public_url),
        "response_types_supported": ["code"],
        "scopes_supported": scopes,
    });
    serde_json::to_vec(&doc).expect("JSON").into()
}
