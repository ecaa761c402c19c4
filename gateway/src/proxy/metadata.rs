//! The discovery documents, rendered once at start: RFC 9728 protected resource metadata for each
//! route, and RFC 8414 authorization server metadata, whose `issuer` is byte-identical to every
//! route's `authorization_servers[0]`.

use bytes::Bytes;
use serde_json::json;

use super::router::JWKS_PATH;
use crate::config::{ASYMMETRIC, CLIENT_CREDENTIALS, Config, JWT_BEARER, Route};
use crate::oauth::AsEndpoint;
use crate::oauth::{AUTH_METHODS, GRANT_TYPES};

/// RFC 9728 §2 metadata for one route.
pub(super) fn protected_resource(config: &Config, route: &Route) -> Bytes {
    // The servers whose tokens the route takes: the gateway's own first, where it does.
    let mut servers: Vec<&str> = Vec::new();
    if route.gateway_tokens {
        servers.push(&config.start.tokens.issuer);
    }
    servers.extend(route.issuers.iter().map(|i| i.issuer()));
    let mut doc = json!({
        "resource": route.resource,
        "authorization_servers": servers,
        "bearer_methods_supported": ["header"],
        "resource_name": route.resource_name,
    });
    // Empty parameters are omitted (RFC 9728 §3.2).
    if !route.scopes_supported.is_empty() {
        doc["scopes_supported"] = json!(route.scopes_supported);
    }
    serde_json::to_vec(&doc).expect("JSON").into()
}

/// RFC 8414 §2 metadata. Only what works is advertised: without a login provider there is no
/// authorization endpoint, so none is listed.
pub(super) fn authorization_server(config: &Config) -> Bytes {
    let scopes = config.supported_scopes();
    let base = &config.server.public_url;
    let mut doc = json!({
        "issuer": config.start.tokens.issuer,
        "jwks_uri": format!("{base}{JWKS_PATH}"),
        "response_types_supported": ["code"],
        "scopes_supported": scopes,
    });
    if config.auth.provider.is_some() {
        let endpoint = |e: AsEndpoint| format!("{base}{}", e.path());
        doc["authorization_endpoint"] = json!(endpoint(AsEndpoint::Authorize));
        doc["token_endpoint"] = json!(endpoint(AsEndpoint::Token));
        doc["revocation_endpoint"] = json!(endpoint(AsEndpoint::Revoke));
        let mut grants = GRANT_TYPES.to_vec();
        if config.auth.machine_clients {
            grants.push(CLIENT_CREDENTIALS);
        }
        if !config.auth.enterprise_issuers.is_empty() {
            grants.push(JWT_BEARER);
        }
        doc["grant_types_supported"] = json!(grants);
        doc["response_modes_supported"] = json!(["query"]);
        doc["code_challenge_methods_supported"] = json!(["S256"]);
        let mut methods = AUTH_METHODS.to_vec();
        if config.auth.private_key_jwt {
            methods.push("private_key_jwt");
            // RFC 8414 §2: required where private_key_jwt is listed.
            doc["token_endpoint_auth_signing_alg_values_supported"] = json!(ASYMMETRIC);
            doc["revocation_endpoint_auth_signing_alg_values_supported"] = json!(ASYMMETRIC);
        }
        doc["token_endpoint_auth_methods_supported"] = json!(methods);
        doc["revocation_endpoint_auth_methods_supported"] = json!(methods);
        doc["introspection_endpoint"] = json!(endpoint(AsEndpoint::Introspect));
        doc["introspection_endpoint_auth_methods_supported"] =
            json!(["client_secret_basic", "client_secret_post"]);
        doc["authorization_response_iss_parameter_supported"] = json!(true);
        if config.auth.cimd.enabled {
            doc["client_id_metadata_document_supported"] = json!(true);
        }
        if config.auth.dynamic_registration {
            doc["registration_endpoint"] = json!(endpoint(AsEndpoint::Register));
        }
    }
    serde_json::to_vec(&doc).expect("JSON").into()
}
