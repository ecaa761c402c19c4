//! Machine clients, enterprise identity providers and introspecting issuers in the config: each
//! mistake named at its key.

use super::common_tests::{MINIMAL, validate_with_env};

/// A gateway with a GitHub sign-in, and `tables` after its route.
fn with(tables: &str) -> Result<super::Config, String> {
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let text = MINIMAL.replace(
        "[[routes]]",
        "[provider]\nkind = \"github\"\nclient_id = \"id\"\nclient_secret_env = \"SECRET\"\n\
         [store]\ntoken_key_env = \"KEY\"\n[[routes]]",
    ) + tables;
    validate_with_env(
        &text,
        &[
            ("SECRET", "s"),
            ("KEY", &key),
            ("CI_SECRET", "a-secret-of-twenty-chars"),
        ],
    )
}

const MACHINE: &str = "[[clients]]\nclient_id = \"ci\"\ngrant_types = [\"client_credentials\"]\n\
     token_endpoint_auth_method = \"client_secret_basic\"\nclient_secret_env = \"CI_SECRET\"\n";

#[test]
fn a_machine_client_is_advertised_and_needs_the_gateways_own_server() {
    let config = with(MACHINE).unwrap();
    assert!(config.auth.machine_clients && !config.auth.private_key_jwt);
    // Without a [provider] there is no authorization server to ask.
    let text = format!("{MINIMAL}\n{MACHINE}");
    let err = validate_with_env(&text, &[("CI_SECRET", "a-secret-of-twenty-chars")]).unwrap_err();
    assert!(
        err.contains("`clients[0].grant_types[0]`") && err.contains("add a [provider]"),
        "{err}"
    );
}

#[test]
fn a_machine_clients_mistakes_are_named() {
    let cases = [
        (
            MACHINE.replace("\"client_credentials\"", "\"password\""),
            "`clients[0].grant_types[0]`",
            "must be one of",
        ),
        (
            MACHINE.replace(
                "\"client_credentials\"",
                "\"client_credentials\", \"refresh_token\"",
            ),
            "`clients[0].grant_types[1]`",
            "no refresh token",
        ),
        (
            format!("{MACHINE}redirect_uris = [\"https://app.example/cb\"]\n"),
            "`clients[0].redirect_uris`",
            "only for a client with the authorization_code grant",
        ),
        (
            MACHINE
                .replace("client_secret_basic", "none")
                .replace("client_secret_env = \"CI_SECRET\"\n", ""),
            "`clients[0].token_endpoint_auth_method`",
            "must authenticate",
        ),
        (
            MACHINE
                .replace("client_secret_basic", "private_key_jwt")
                .replace("client_secret_env = \"CI_SECRET\"\n", ""),
            "`clients[0].jwks`",
            "needs its public keys",
        ),
        (
            MACHINE.replace("client_secret_basic", "private_key_jwt"),
            "`clients[0].client_secret_env`",
            "not a secret",
        ),
        (
            MACHINE
                .replace("client_secret_basic", "private_key_jwt")
                .replace(
                    "client_secret_env = \"CI_SECRET\"\n",
                    "jwks_uri = \"http://keys.example/jwks\"\n",
                ),
            "`clients[0].jwks_uri`",
            "https",
        ),
        (
            format!("{MACHINE}jwks_uri = \"https://keys.example/jwks\"\n"),
            "`clients[0].jwks`",
            "for a private_key_jwt client",
        ),
        (
            MACHINE
                .replace("client_secret_basic", "private_key_jwt")
                .replace(
                    "client_secret_env = \"CI_SECRET\"\n",
                    "jwks = { keys = [{ kty = \"OKP\", crv = \"Ed25519\", x = \"***\" }] }\n",
                ),
            "`clients[0].jwks.keys[0]`",
            "not a usable key",
        ),
    ];
    for (tables, key, reason) in cases {
        let err = with(&tables).unwrap_err();
        assert!(
            err.contains(key) && err.contains(reason),
            "{tables}\n=> {err}"
        );
    }
}

#[test]
fn keys_in_the_config_and_published_keys_are_both_taken() {
    let inline = MACHINE
        .replace("client_secret_basic", "private_key_jwt")
        .replace(
            "client_secret_env = \"CI_SECRET\"\n",
            "jwks = { keys = [{ kty = \"OKP\", crv = \"Ed25519\", x = \"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\", kid = \"k1\" }] }\n",
        );
    assert!(with(&inline).unwrap().auth.private_key_jwt);
    let published = MACHINE
        .replace("client_secret_basic", "private_key_jwt")
        .replace(
            "client_secret_env = \"CI_SECRET\"\n",
            "jwks_uri = \"http://127.0.0.1:9999/jwks\"\n",
        );
    assert!(with(&published).unwrap().auth.private_key_jwt);
}

const ENTERPRISE: &str = "[[issuers]]\nname = \"okta\"\nissuer = \"https://acme.okta.com\"\n\
     [[clients]]\nclient_id = \"agent\"\ngrant_types = [\"urn:ietf:params:oauth:grant-type:jwt-bearer\"]\n\
     token_endpoint_auth_method = \"client_secret_basic\"\nclient_secret_env = \"CI_SECRET\"\n";

#[test]
fn enterprise_sign_ins_need_a_trusted_identity_provider_and_not_github() {
    let err = with(ENTERPRISE).unwrap_err();
    assert!(
        err.contains("`clients[0].grant_types[0]`") && err.contains("auth.enterprise_issuers"),
        "{err}"
    );
    let err = with(&format!(
        "{ENTERPRISE}[auth]\nenterprise_issuers = [\"okta\"]\n"
    ))
    .unwrap_err();
    assert!(
        err.contains("`auth.enterprise_issuers`") && err.contains("GitHub"),
        "{err}"
    );
    let err = with(&format!(
        "{ENTERPRISE}[auth]\nenterprise_issuers = [\"auth0\"]\n"
    ))
    .unwrap_err();
    assert!(
        err.contains("`auth.enterprise_issuers[0]`") && err.contains("\"auth0\""),
        "{err}"
    );
}

#[test]
fn an_introspecting_issuer_needs_its_secret_and_a_bounded_cache() {
    let issuer = "[[issuers]]\nname = \"kc\"\nissuer = \"https://sso.example/realms/a\"\n\
         [issuers.introspection]\nclient_id = \"gateway\"\nclient_secret_env = \"CI_SECRET\"\n";
    let config = with(issuer).unwrap();
    let introspection = config.issuers[0].introspection.as_ref().unwrap();
    assert_eq!(introspection.cache_secs, 60);
    assert!(
        !format!("{introspection:?}").contains("twenty"),
        "the secret is never printed"
    );
    let err = with(&issuer.replace("CI_SECRET", "UNSET")).unwrap_err();
    assert!(
        err.contains("`issuers[0].introspection.client_secret_env`") && err.contains("UNSET"),
        "{err}"
    );
    let err = with(&format!("{issuer}cache = \"2h\"\n")).unwrap_err();
    assert!(
        err.contains("`issuers[0].introspection.cache`") && err.contains("at most 1h"),
        "{err}"
    );
}

const EXCHANGE: &str = "credentials = \"exchange\"\n[routes.exchange]\n\
     token_endpoint = \"https://idp.example/oauth2/token\"\nclient_id = \"gateway\"\n\
     client_secret_env = \"CI_SECRET\"\n";

#[test]
fn an_exchange_route_asks_for_its_backends_audience_as_whom_it_is_told() {
    let config = with(EXCHANGE).unwrap();
    let exchange = config.routes[0].exchange.as_ref().unwrap();
    assert_eq!(
        exchange.audience, "http://127.0.0.1:9000/mcp",
        "the backend's, by default"
    );
    assert_eq!(exchange.subject, super::SubjectToken::IdentityProvider);
    assert!(
        !format!("{exchange:?}").contains("twenty"),
        "the secret is never printed"
    );

    let cases = [
        (
            "credentials = \"exchange\"\n".to_owned(),
            "`routes[0].exchange`",
            "is needed",
        ),
        (
            EXCHANGE.replace("credentials = \"exchange\"\n", ""),
            "`routes[0].exchange`",
            "only with credentials = \"exchange\"",
        ),
        (
            EXCHANGE.replace("https://idp.example", "http://idp.example"),
            "`routes[0].exchange.token_endpoint`",
            "must be https",
        ),
        (
            EXCHANGE.replace("CI_SECRET", "UNSET"),
            "`routes[0].exchange.client_secret_env`",
            "UNSET",
        ),
        (
            format!("{EXCHANGE}subject_token = \"caller\"\n"),
            "`routes[0].exchange.subject_token`",
            "names none",
        ),
    ];
    for (route_lines, key, reason) in cases {
        let err = with(&route_lines).unwrap_err();
        assert!(
            err.contains(key) && err.contains(reason),
            "{route_lines}\n=> {err}"
        );
    }
    // The user's token at the identity provider needs a provider that keeps it.
    let text = format!("{MINIMAL}{EXCHANGE}");
    let err = validate_with_env(&text, &[("CI_SECRET", "a-secret-of-twenty-chars")]).unwrap_err();
    assert!(
        err.contains("`routes[0].exchange.subject_token`") && err.contains("assertion"),
        "{err}"
    );
    let assertion = format!("{text}subject_token = \"assertion\"\n");
    validate_with_env(&assertion, &[("CI_SECRET", "a-secret-of-twenty-chars")]).unwrap();
}
