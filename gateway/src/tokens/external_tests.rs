use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gateway_assertion::{KeyAlgorithm, SigningKey, jwk_set};
use serde_json::{Value, json};

use super::*;
use crate::config::file::FileConfig;
use crate::config::{Config, Route};
use crate::tokens::issuer_keys::REFETCH_SECS;

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://login.example/tenant/v2.0";
const V1_ISSUER: &str = "https://sts.example/tenant/";

/// The route `/mcp` of a gateway at https://gw.example, accepting tokens of the issuer `entra`
/// (whose keys are at `port`), with `extra` lines in its `[[issuers]]` table.
fn route(port: u16, extra: &str) -> (Config, Route) {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"https://gw.example\"\n\
         [[issuers]]\nname = \"entra\"\nissuer = \"{ISSUER}\"\nalso_issuers = [\"{V1_ISSUER}\"]\n\
         jwks_uri = \"http://127.0.0.1:{port}/keys\"\nallow_private_network = true\n\
         audiences = [\"api://mcp\"]\nsubject_claim = \"oid\"\n{extra}\n\
         [[routes]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:9/mcp\"\nissuers = [\"entra\"]\n"
    );
    let file = FileConfig::parse(&text).unwrap();
    let config = Config::validate(file, std::path::Path::new("gw.toml"), &|_| None).unwrap();
    let route = config.routes[0].clone();
    (config, route)
}

/// Claims as Entra ID's v2 tokens have them, for the route's resource.
fn entra_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": "https://gw.example/mcp", "oid": "0000-user", "sub": "pairwise",
        "azp": "client-app", "scp": "files.read files.write", "roles": ["Admin"],
        "groups": ["g1", "g2"], "exp": NOW + 600, "iat": NOW, "nbf": NOW,
    })
}

struct Issuer {
    key: SigningKey,
    served: Arc<AtomicUsize>,
    verifier: ExternalVerifier,
    route: Route,
}

async fn issuer(extra: &str) -> Issuer {
    let key = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    // Its EdDSA key, and an RSA one as Entra ID's are.
    let mut keys = serde_json::to_value(jwk_set([&key])).unwrap();
    keys["keys"].as_array_mut().unwrap().push(json!({
        "kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
        "n": test_fixtures::TEST_RSA_N, "e": test_fixtures::TEST_RSA_E,
    }));
    let keys = keys.to_string();
    let (port, served) = crate::tests_support::json_server(keys).await;
    let (config, route) = route(port, extra);
    let verifier = ExternalVerifier::new(&config.issuers, 60);
    Issuer {
        key,
        served,
        verifier,
        route,
    }
}

impl Issuer {
    fn sign(&self, claims: &Value) -> String {
        self.key.sign("JWT", claims).unwrap()
    }

    async fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        self.verifier
            .verify(&self.route, token.as_bytes(), NOW)
            .await
    }
}

#[tokio::test]
async fn an_entra_shaped_token_is_read_as_the_gateways_own_are() {
    let issuer = issuer("").await;
    let claims = issuer.verify(&issuer.sign(&entra_claims())).await.unwrap();
    assert_eq!(claims.sub, "0000-user", "the configured subject claim");
    assert_eq!(claims.client_id, "client-app");
    assert_eq!(claims.scope, "files.read files.write Admin");
    assert_eq!(claims.groups, ["g1", "g2"]);
    assert_eq!(claims.gid, None);
    // Its jti is its own digest, whatever jti it says (another issuer's could be anyone's).
    assert!(
        claims.jti.starts_with("ext:") && claims.jti.len() > 40,
        "{}",
        claims.jti
    );

    // A v1 token of the same tenant, its scopes a list, its audience an alias.
    let mut v1 = entra_claims();
    v1["iss"] = json!(V1_ISSUER);
    v1["aud"] = json!("api://mcp");
    v1["scp"] = json!(["files.read"]);
    v1["roles"] = Value::Null;
    let claims = issuer.verify(&issuer.sign(&v1)).await.unwrap();
    assert_eq!(claims.iss, V1_ISSUER);
    assert_eq!(claims.scope, "files.read");
    // Verified ones are kept: the key set was fetched once.
    issuer.verify(&issuer.sign(&v1)).await.unwrap();
    assert_eq!(issuer.served.load(Ordering::SeqCst), 1);

    // Kept, but not for a route that takes another issuer's tokens, whatever their audience.
    let token = issuer.sign(&entra_claims());
    issuer.verify(&token).await.unwrap();
    let mut elsewhere = issuer.route.clone();
    elsewhere.issuers = vec![Arc::new(crate::config::ExternalIssuer {
        name: "other".into(),
        issuers: vec!["https://other.example".into()],
        ..(*issuer.route.issuers[0]).clone()
    })];
    let refused = issuer
        .verifier
        .verify(&elsewhere, token.as_bytes(), NOW)
        .await;
    assert_eq!(refused.unwrap_err(), TokenError::WrongIssuer);
}

#[tokio::test]
async fn an_rs256_token_is_checked_with_the_rsa_key_its_kid_names() {
    let issuer = issuer("").await;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(test_fixtures::TEST_RSA_PEM.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&header, &entra_claims(), &key).unwrap();
    assert_eq!(issuer.verify(&token).await.unwrap().sub, "0000-user");
    // The same claims, the RSA kid, but signed by another key: refused.
    let mut forged = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    forged.kid = Some("rsa-1".into());
    let other = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    let pem = jsonwebtoken::EncodingKey::from_ed_pem(other.pkcs8_pem().as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&forged, &entra_claims(), &pem).unwrap();
    assert!(issuer.verify(&token).await.is_err());
}

#[tokio::test]
async fn tokens_that_are_not_the_issuers_for_this_route_are_refused() {
    let issuer = issuer("").await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = entra_claims();
        change(&mut claims);
        issuer.sign(&claims)
    };
    let cases: Vec<(String, TokenError)> = vec![
        (
            with(&|c| c["iss"] = json!("https://evil.example/")),
            TokenError::WrongIssuer,
        ),
        (
            with(&|c| c["iss"] = json!(format!("{ISSUER}/"))),
            TokenError::WrongIssuer,
        ),
        (
            with(&|c| c["aud"] = json!("https://gw.example/other")),
            TokenError::WrongAudience,
        ),
        (with(&|c| c["exp"] = json!(NOW - 61)), TokenError::Expired),
        (
            with(&|c| c["nbf"] = json!(NOW + 61)),
            TokenError::NotYetValid,
        ),
        (with(&|c| c["oid"] = Value::Null), TokenError::MissingClaim),
    ];
    for (token, expected) in cases {
        assert_eq!(
            issuer.verify(&token).await.unwrap_err(),
            expected,
            "{token}"
        );
    }
    // Within the skew, still good.
    issuer
        .verify(&with(&|c| c["exp"] = json!(NOW - 59)))
        .await
        .unwrap();
}

#[tokio::test]
async fn none_and_hmac_with_the_public_key_are_refused_before_any_key_is_fetched() {
    let issuer = issuer("").await;
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = b64(&entra_claims());
    let none = format!("{}.{claims}.", b64(&json!({"alg": "none", "typ": "JWT"})));
    assert!(issuer.verify(&none).await.is_err());
    // An HS256 "signature" made with the issuer's public key as the secret.
    let public = serde_json::to_vec(issuer.key.public_jwk()).unwrap();
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let forged = jsonwebtoken::encode(
        &header,
        &entra_claims(),
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_eq!(
        issuer.verify(&forged).await.unwrap_err(),
        TokenError::AlgorithmNotAllowed
    );
    assert_eq!(issuer.served.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_unknown_key_is_looked_up_again_at_most_every_few_seconds() {
    let issuer = issuer("").await;
    let stranger = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    for _ in 0..5 {
        let token = stranger.sign("JWT", &entra_claims()).unwrap();
        assert_eq!(
            issuer.verify(&token).await.unwrap_err(),
            TokenError::UnknownKey
        );
    }
    assert_eq!(issuer.served.load(Ordering::SeqCst), 1, "fetched once");
    // Later, it may be looked up again.
    let token = stranger.sign("JWT", &entra_claims()).unwrap();
    let later = issuer
        .verifier
        .verify(&issuer.route, token.as_bytes(), NOW + REFETCH_SECS)
        .await;
    assert_eq!(later.unwrap_err(), TokenError::UnknownKey);
    assert_eq!(issuer.served.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_issuers_algorithms_and_typ_are_its_own() {
    let issuer = issuer("algorithms = [\"ES256\"]\nrequire_typ = true").await;
    let token = issuer.sign(&entra_claims());
    assert_eq!(
        issuer.verify(&token).await.unwrap_err(),
        TokenError::AlgorithmNotAllowed,
        "EdDSA is not among its algorithms"
    );
    let issuer = self::issuer("require_typ = true").await;
    let plain = issuer.sign(&entra_claims());
    assert_eq!(
        issuer.verify(&plain).await.unwrap_err(),
        TokenError::WrongType
    );
    let typed = issuer.key.sign("at+jwt", &entra_claims()).unwrap();
    issuer.verify(&typed).await.unwrap();
}

#[test]
fn scopes_come_from_scope_scp_and_roles_once_each() {
    let claims = json!({"scope": "a b", "scp": ["b", "c", "bad word", ""], "roles": "d"});
    assert_eq!(scopes(&claims), ["a", "b", "c", "d"]);
    assert!(scopes(&json!({"scp": 5})).is_empty());
}

#[test]
fn an_okta_shaped_token_names_its_client_by_cid_and_its_scopes_in_scp() {
    let (_, route) = route(1, "");
    let okta = crate::config::ExternalIssuer {
        subject_claim: "sub".into(),
        ..(*route.issuers[0]).clone()
    };
    let claims = json!({
        "ver": 1, "jti": "AT.okta", "iss": ISSUER, "aud": "api://default", "iat": NOW,
        "exp": NOW + 3600, "cid": "0oa1okta", "uid": "00u1", "scp": ["mcp", "offline_access"],
        "sub": "alice@acme.example", "groups": ["Everyone", "ops"],
    });
    let read = access_claims(&claims, &okta, NOW).unwrap();
    assert_eq!(read.sub, "alice@acme.example");
    assert_eq!(read.client_id, "0oa1okta");
    assert_eq!(read.scope, "mcp offline_access");
    assert_eq!(read.groups, ["Everyone", "ops"]);
}
