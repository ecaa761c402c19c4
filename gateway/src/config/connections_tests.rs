//! Tests of `[routes.oauth]` (`connections.rs`): what a route connecting users to its backend's own
//! authorization server reads, and each mistake named at its key.

use super::common_tests::{MINIMAL, validate_with_env};
use super::file::ClientAuthMethod;

/// A 32-byte key in base64, for `store.token_key_env`.
const TOKEN_KEY: &str = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";

/// The minimal config with an https backend connected per user, `extra` added to `[routes.oauth]`.
fn connected(extra: &str) -> String {
    MINIMAL
        .replace(
            "upstream = \"http://127.0.0.1:9000/mcp\"",
            &format!(
                "upstream = \"https://mcp.tracker.example/mcp\"\ncredentials = \"oauth\"\n\
                 [routes.oauth]\n{extra}"
            ),
        )
        .replace(
            "[server]",
            "[store]\ntoken_key_env = \"TOKEN_KEY\"\n\n\
             [provider]\nkind = \"github\"\nclient_id = \"id\"\nclient_secret_env = \"GITHUB_SECRET\"\n\n\
             [server]",
        )
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TOKEN_KEY", TOKEN_KEY),
        ("TRACKER_SECRET", "a-secret-of-the-tracker"),
        ("GITHUB_SECRET", "a-secret-of-github"),
    ]
}

#[test]
fn a_connected_route_discovers_by_default_and_reads_what_it_is_given() {
    let config = validate_with_env(&connected(""), &env()).unwrap();
    let connection = config.routes[0].connection.as_ref().unwrap();
    assert_eq!(connection.client, None);
    assert!(connection.scopes.is_empty() && connection.authorization_servers.is_empty());
    assert!(connection.send_resource && !connection.allow_private_network);
    assert!(config.start.token_key.is_some(), "tokens are sealed");

    let config = validate_with_env(
        &connected(
            "client_id = \"gateway\"\nclient_secret_env = \"TRACKER_SECRET\"\n\
             scopes = [\"issues:read\", \"offline_access\"]\nsend_resource = false\n\
             authorization_servers = [\"https://login.tracker.example/tenant\"]",
        ),
        &env(),
    )
    .unwrap();
    let connection = config.routes[0].connection.as_ref().unwrap();
    let client = connection.client.as_ref().unwrap();
    assert_eq!(client.client_id, "gateway");
    assert_eq!(client.secret.as_deref(), Some("a-secret-of-the-tracker"));
    assert_eq!(client.auth_method, ClientAuthMethod::ClientSecretBasic);
    assert!(!format!("{client:?}").contains("a-secret"), "{client:?}");
    assert_eq!(connection.scopes, ["issues:read", "offline_access"]);
    assert!(!connection.send_resource);
    assert_eq!(
        connection.authorization_servers,
        ["https://login.tracker.example/tenant"]
    );

    // Any other route connects no one.
    let config = validate_with_env(MINIMAL, &env()).unwrap();
    assert!(config.routes[0].connection.is_none());
}

#[test]
fn each_mistake_is_named_at_its_key() {
    let cases = [
        (
            connected("").replace("credentials = \"oauth\"\n", ""),
            "`routes[0].oauth`: is read only with credentials = \"oauth\"",
        ),
        (
            connected("client_secret_env = \"TRACKER_SECRET\""),
            "`routes[0].oauth.client_secret_env`: is read only with a client_id",
        ),
        (
            connected("token_endpoint_auth_method = \"client_secret_post\""),
            "`routes[0].oauth.token_endpoint_auth_method`: is read only with a client_id",
        ),
        (
            connected("client_id = \"gw\"\nclient_secret_env = \"UNSET\""),
            "the environment variable UNSET is not set",
        ),
        (
            connected(
                "client_id = \"gw\"\nclient_secret_env = \"TRACKER_SECRET\"\n\
                 token_endpoint_auth_method = \"none\"",
            ),
            "a public client (none) has no secret",
        ),
        (
            connected("client_id = \"gw\"\ntoken_endpoint_auth_method = \"client_secret_post\""),
            "a confidential client needs its secret's environment variable",
        ),
        (
            connected("client_id = \" \""),
            "`routes[0].oauth.client_id`: must not be empty",
        ),
        (
            connected("scopes = [\"read write\"]"),
            "`routes[0].oauth.scopes[0]`: \"read write\" is not an OAuth scope",
        ),
        (connected("scopes = [\"\"]"), "`routes[0].oauth.scopes[0]`"),
        (
            connected("authorization_servers = [\"http://login.tracker.example\"]"),
            "`routes[0].oauth.authorization_servers[0]`: http://login.tracker.example must be https",
        ),
        (
            connected("authorization_servers = [\"https://login.tracker.example/?tenant=1\"]"),
            "must have no query or fragment",
        ),
        (
            connected("authorization_servers = [\"login.tracker.example\"]"),
            "is not a URL",
        ),
        (
            connected("").replace("https://mcp.tracker.example", "http://10.0.0.5"),
            "`routes[0].upstream`: a backend sent users' tokens must be https",
        ),
        (
            connected("").replace("token_key_env = \"TOKEN_KEY\"\n", ""),
            "`store.token_key_env`: GitHub, OIDC and routes with credentials = \"oauth\" need a key",
        ),
        (
            connected("client_secret = \"inline\""),
            "unknown field `client_secret`",
        ),
        (
            connected("").replace(
                "[provider]\nkind = \"github\"\nclient_id = \"id\"\nclient_secret_env = \"GITHUB_SECRET\"\n",
                "",
            ),
            "`routes[0].credentials`: \"oauth\" needs a [provider]",
        ),
    ];
    for (text, says) in cases {
        let error = validate_with_env(&text, &env()).unwrap_err();
        assert!(error.contains(says), "{says:?} not in {error:?}\n{text}");
    }

    // On a private network, by the operator's word: plain http, to a backend and an issuer there.
    let private = connected(
        "allow_private_network = true\nauthorization_servers = [\"http://127.0.0.1:9001\"]",
    )
    .replace("https://mcp.tracker.example", "http://127.0.0.1:9000");
    let config = validate_with_env(&private, &env()).unwrap();
    assert!(
        config.routes[0]
            .connection
            .as_ref()
            .unwrap()
            .allow_private_network
    );
}
