//! The grants with no one at a browser: a machine client's `client_credentials` (with a secret, or a
//! `private_key_jwt` assertion) and an enterprise-managed sign-in's ID-JAG. Each bad input gets its
//! error, and no token.

use base64::Engine as _;
use gateway_assertion::{KeyAlgorithm, SigningKey, jwk_set};
use serde_json::{Value, json};

use super::{Harness, ORIGIN};
use crate::clock::now;

const RESOURCE: &str = "https://gw.example/mcp";
const CLIENT_CREDENTIALS: &str = "client_credentials";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const IDP: &str = "https://idp.example";

/// A JWK set as a TOML inline table.
fn toml_of(value: &Value) -> String {
    toml::Value::try_from(value).unwrap().to_string()
}

/// A gateway with a machine client `nightly` (secret in `NIGHTLY_SECRET`), a `private_key_jwt`
/// machine client `signer` holding `key`, and, where `idp_port` is given, the enterprise identity
/// provider `idp` whose keys are served there and whose ID-JAGs the client `agent` presents.
async fn machines(key: &SigningKey, idp_port: Option<u16>) -> Harness {
    let jwks = toml_of(&serde_json::to_value(jwk_set([key])).unwrap());
    let mut tables = format!(
        "[[clients]]\nclient_id = \"nightly\"\ngrant_types = [\"client_credentials\"]\n\
         token_endpoint_auth_method = \"client_secret_basic\"\nclient_secret_env = \"NIGHTLY_SECRET\"\n\
         [[clients]]\nclient_id = \"poster\"\ngrant_types = [\"client_credentials\"]\n\
         token_endpoint_auth_method = \"client_secret_post\"\nclient_secret_env = \"POSTER_SECRET\"\n\
         [[clients]]\nclient_id = \"signer\"\ngrant_types = [\"client_credentials\"]\n\
         token_endpoint_auth_method = \"private_key_jwt\"\njwks = {jwks}\n"
    );
    if let Some(port) = idp_port {
        tables += &format!(
            "[[clients]]\nclient_id = \"agent\"\ngrant_types = [\"{JWT_BEARER}\"]\n\
             token_endpoint_auth_method = \"client_secret_basic\"\nclient_secret_env = \"AGENT_SECRET\"\n\
             [[issuers]]\nname = \"idp\"\nissuer = \"{IDP}\"\n\
             jwks_uri = \"http://127.0.0.1:{port}/keys\"\nallow_private_network = true\n\
             [auth]\nenterprise_issuers = [\"idp\"]\n"
        );
    }
    Harness::with_tables("scopes_supported = [\"mcp\", \"admin\"]\n", &tables).await
}

fn basic(id: &str, secret: &str) -> String {
    let pair = format!("{id}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

impl Harness {
    /// `/token` with `form`, authenticating with `authorization` if given.
    async fn token_as(&self, authorization: Option<&str>, form: &[(&str, &str)]) -> (u16, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(value) = authorization {
            headers.push(("authorization", value));
        }
        let response = self
            .call(
                super::AsEndpoint::Token,
                http::Method::POST,
                None,
                &headers,
                body.into_bytes(),
            )
            .await;
        (response.status().as_u16(), super::json_of(&response))
    }

    /// The claims of an access token this server issued.
    fn claims_of(&self, answer: &Value) -> std::sync::Arc<crate::tokens::access::AccessClaims> {
        let token = answer["access_token"].as_str().expect("an access token");
        self.server.verifier.verify(token, now()).unwrap()
    }
}

#[tokio::test]
async fn a_machine_client_gets_a_token_naming_itself_and_no_refresh_token() {
    let key = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    let harness = machines(&key, None).await;
    let secret = basic("nightly", "secret-of-NIGHTLY_SECRET");
    let (status, answer) = harness
        .token_as(
            Some(&secret),
            &[("grant_type", CLIENT_CREDENTIALS), ("resource", RESOURCE)],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("refresh_token").is_none(), "{answer}");
    let claims = harness.claims_of(&answer);
    assert_eq!(
        (claims.sub.as_str(), claims.client_id.as_str()),
        ("nightly", "nightly")
    );
    assert!(claims.is_for(RESOURCE) && claims.gid.is_none());
    assert_eq!(
        claims.scope, "mcp admin",
        "asking nothing: all the route offers"
    );

    // The secret in the form, for a client registered so; a narrower scope.
    let (status, answer) = harness
        .token_as(
            None,
            &[
                ("grant_type", CLIENT_CREDENTIALS),
                ("client_id", "poster"),
                ("client_secret", "secret-of-POSTER_SECRET"),
                ("scope", "mcp"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(harness.claims_of(&answer).scope, "mcp");
}

#[tokio::test]
async fn machine_credentials_that_are_wrong_get_nothing() {
    let key = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    let harness = machines(&key, None).await;
    let cc = ("grant_type", CLIENT_CREDENTIALS);
    let wrong = basic("nightly", "not-the-secret-at-all");
    let (status, answer) = harness.token_as(Some(&wrong), &[cc]).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // The basic client's secret sent in the form: not how it authenticates.
    let (status, answer) = harness
        .token_as(
            None,
            &[
                cc,
                ("client_id", "nightly"),
                ("client_secret", "secret-of-NIGHTLY_SECRET"),
            ],
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // A scope the route does not offer; a resource it does not serve.
    let secret = basic("nightly", "secret-of-NIGHTLY_SECRET");
    let (status, answer) = harness
        .token_as(Some(&secret), &[cc, ("scope", "root")])
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, answer) = harness
        .token_as(
            Some(&secret),
            &[cc, ("resource", "https://gw.example/other")],
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_target"))
    );
    // A public client, registered by anyone, may not use the grant; nor register for it.
    let public = harness.public_client().await;
    let (status, answer) = harness.token_as(None, &[cc, ("client_id", &public)]).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{answer}"
    );
    let (status, answer) = harness
        .register(&json!({ "client_name": "Bot", "redirect_uris": [test_fixtures::REDIRECT],
            "grant_types": [CLIENT_CREDENTIALS], "token_endpoint_auth_method": "client_secret_basic" }))
        .await;
    assert_eq!(
        status, 400,
        "dynamic registration makes no machine clients: {answer}"
    );
}

/// A `private_key_jwt` assertion of `signer`, with `overrides` on its claims.
fn client_assertion(key: &SigningKey, overrides: Value) -> String {
    let mut claims = json!({
        "iss": "signer", "sub": "signer", "aud": ORIGIN,
        "exp": now() + 60, "iat": now(), "jti": super::super::random_token(8),
    });
    for (name, value) in overrides.as_object().unwrap() {
        claims[name] = value.clone();
    }
    key.sign("JWT", &claims).unwrap()
}

#[tokio::test]
async fn a_private_key_jwt_assertion_is_checked_and_used_once() {
    let key = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    let harness = machines(&key, None).await;
    let with = |assertion: &str| {
        vec![
            ("grant_type", CLIENT_CREDENTIALS.to_owned()),
            ("client_assertion_type", ASSERTION_TYPE.to_owned()),
            ("client_assertion", assertion.to_owned()),
        ]
    };
    let send = async |assertion: &str| {
        let form = with(assertion);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        harness.token_as(None, &form).await
    };
    let good = client_assertion(&key, json!({}));
    let (status, answer) = send(&good).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(harness.claims_of(&answer).sub, "signer");
    // Its token endpoint is an audience too (RFC 7523 §3).
    let to_endpoint = client_assertion(&key, json!({ "aud": format!("{ORIGIN}/token") }));
    assert_eq!(send(&to_endpoint).await.0, 200);

    let other_key = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    let refused = [
        (good.clone(), "already used"),
        (
            client_assertion(&key, json!({ "aud": "https://elsewhere.example" })),
            "another audience",
        ),
        (
            client_assertion(&key, json!({ "exp": now() - 120 })),
            "expired",
        ),
        (
            client_assertion(&key, json!({ "exp": now() + 7200 })),
            "too long",
        ),
        (
            client_assertion(&key, json!({ "iss": "nightly" })),
            "iss is not",
        ),
        (client_assertion(&key, json!({ "jti": null })), "jti"),
        (client_assertion(&other_key, json!({})), "no key"),
        (
            client_assertion(&key, json!({ "sub": "nightly", "iss": "nightly" })),
            "must authenticate with client_secret_basic",
        ),
    ];
    for (assertion, why) in refused {
        let (status, answer) = send(&assertion).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (401, Some("invalid_client")),
            "{why}: {answer}"
        );
        let said = answer["error_description"].as_str().unwrap_or_default();
        assert!(said.contains(why), "{why}: {said}");
    }
    // An HMAC "signature" made with the public key as its secret, and `none`.
    let public = serde_json::to_vec(key.public_jwk()).unwrap();
    let hmac = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "iss": "signer", "sub": "signer", "aud": ORIGIN, "exp": now() + 60, "jti": "h" }),
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    let unsigned = format!(
        "{}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            json!({ "iss": "signer", "sub": "signer", "aud": ORIGIN, "exp": now() + 60, "jti": "n" })
                .to_string()
        )
    );
    for forged in [hmac, unsigned] {
        let (status, answer) = send(&forged).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (401, Some("invalid_client")),
            "{answer}"
        );
    }
    // An assertion beside a secret: two methods.
    let mut both = with(&client_assertion(&key, json!({})));
    both.push(("client_secret", "x".repeat(20)));
    let both: Vec<(&str, &str)> = both.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, answer) = harness.token_as(None, &both).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

/// An ID-JAG of the enterprise identity provider, for `agent`, alice and the route, with
/// `overrides` on its claims; `typ` its header's.
fn id_jag(key: &SigningKey, typ: &str, overrides: Value) -> String {
    let mut claims = json!({
        "iss": IDP, "sub": "alice", "aud": ORIGIN, "client_id": "agent", "resource": RESOURCE,
        "scope": "mcp", "exp": now() + 300, "iat": now(), "jti": super::super::random_token(8),
    });
    for (name, value) in overrides.as_object().unwrap() {
        claims[name] = value.clone();
    }
    key.sign(typ, &claims).unwrap()
}

#[tokio::test]
async fn an_id_jag_signs_its_user_in_once_for_its_client_and_resource() {
    let key = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    let idp_key = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    let keys = serde_json::to_string(&jwk_set([&idp_key])).unwrap();
    let (port, _) = crate::tests_support::json_server(keys).await;
    let harness = machines(&key, Some(port)).await;
    let agent = basic("agent", "secret-of-AGENT_SECRET");
    let present = async |assertion: &str, extra: &[(&str, &str)]| {
        let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
        form.extend_from_slice(extra);
        harness.token_as(Some(&agent), &form).await
    };
    let typ = "oauth-id-jag+jwt";
    let good = id_jag(&idp_key, typ, json!({}));
    let (status, answer) = present(&good, &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("refresh_token").is_none());
    let claims = harness.claims_of(&answer);
    assert_eq!(
        (
            claims.sub.as_str(),
            claims.client_id.as_str(),
            claims.scope.as_str()
        ),
        ("alice", "agent", "mcp"),
        "the user, through the client, with what the identity provider approved"
    );

    let other_idp = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    let refused = [
        (good.clone(), "already used"),
        (
            id_jag(&idp_key, typ, json!({ "aud": "https://other-as.example" })),
            "another audience",
        ),
        (
            id_jag(&idp_key, typ, json!({ "client_id": "someone-else" })),
            "another client",
        ),
        (
            id_jag(&idp_key, typ, json!({ "exp": now() - 120 })),
            "expired",
        ),
        (id_jag(&idp_key, "JWT", json!({})), "typ"),
        (
            id_jag(&idp_key, typ, json!({ "sub": "mallory" })),
            "not a user",
        ),
        (
            id_jag(&idp_key, typ, json!({ "iss": "https://evil.example" })),
            "not an enterprise",
        ),
        (id_jag(&other_idp, typ, json!({})), "no key"),
        (
            id_jag(&idp_key, typ, json!({ "resource": null })),
            "no resource",
        ),
        (
            id_jag(&idp_key, typ, json!({ "scope": "admin" })),
            "approve",
        ),
    ];
    for (assertion, why) in refused {
        let (status, answer) = present(&assertion, &[("scope", "mcp")]).await;
        let said = answer["error_description"].as_str().unwrap_or_default();
        assert!(
            status == 400 && said.contains(why),
            "{why}: {status} {answer}"
        );
        assert!(answer.get("access_token").is_none());
    }
    // Another resource than the ID-JAG's.
    let fresh = id_jag(&idp_key, typ, json!({}));
    let (status, answer) = present(&fresh, &[("resource", "https://gw.example/other")]).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_target"))
    );
    // A client that may not use the grant: a machine client.
    let fresh = id_jag(&idp_key, typ, json!({ "client_id": "nightly" }));
    let nightly = basic("nightly", "secret-of-NIGHTLY_SECRET");
    let (status, answer) = harness
        .token_as(
            Some(&nightly),
            &[("grant_type", JWT_BEARER), ("assertion", &fresh)],
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

#[tokio::test]
async fn a_client_that_publishes_its_keys_is_checked_against_them() {
    let key = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
    let keys = serde_json::to_string(&jwk_set([&key])).unwrap();
    let (port, served) = crate::tests_support::json_server(keys).await;
    let tables = format!(
        "[[clients]]\nclient_id = \"signer\"\ngrant_types = [\"client_credentials\"]\n\
         token_endpoint_auth_method = \"private_key_jwt\"\njwks_uri = \"http://127.0.0.1:{port}/keys\"\n"
    );
    let harness = Harness::with_tables("", &tables).await;
    for _ in 0..2 {
        let assertion = client_assertion(&key, json!({}));
        let (status, answer) = harness
            .token_as(
                None,
                &[
                    ("grant_type", CLIENT_CREDENTIALS),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &assertion),
                ],
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(
        served.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "its keys are fetched once, and kept"
    );
    // A key it does not publish: its keys are asked for again only after a while.
    let stranger = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
    let forged = client_assertion(&stranger, json!({}));
    let (status, _) = harness
        .token_as(
            None,
            &[
                ("grant_type", CLIENT_CREDENTIALS),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &forged),
            ],
        )
        .await;
    assert_eq!(status, 401);
}
