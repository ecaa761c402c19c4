use std::sync::Arc;

use gateway_assertion::{KeyAlgorithm, SigningKey};

use super::*;

const ISS: &str = "http://gw.test";
const NOW: u64 = 1_900_000_000;

fn ring() -> Arc<KeyRing> {
    Arc::new(KeyRing::new(
        SigningKey::generate(KeyAlgorithm::EdDsa).unwrap(),
        Vec::new(),
    ))
}

fn claims() -> AccessClaims {
    AccessClaims {
        iss: ISS.into(),
        sub: "alice".into(),
        aud: Audience::One("http://gw.test/mcp".into()),
        client_id: "c1".into(),
        scope: "mcp read".into(),
        exp: NOW + 300,
        iat: NOW,
        nbf: None,
        jti: "j1".into(),
        email: None,
        preferred_username: None,
        groups: Vec::new(),
        groups_truncated: false,
        gid: Some("g1".into()),
    }
}

#[test]
fn a_valid_token_verifies_and_is_cached() {
    let keys = ring();
    let verifier = AccessTokenVerifier::new(keys.clone(), ISS.into(), 30);
    let token = mint(&keys, &claims()).unwrap();
    let first = verifier.verify(&token, NOW).unwrap();
    let second = verifier.verify(&token, NOW).unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "the second check is served from the cache"
    );
    assert!(first.is_for("http://gw.test/mcp"));
    assert!(has_scopes(first.scopes(), &["mcp".into()]));
    assert!(!has_scopes(first.scopes(), &["admin".into()]));
}

#[test]
fn expiry_and_revocation_apply_to_cached_tokens_too() {
    let keys = ring();
    let verifier = AccessTokenVerifier::new(keys.clone(), ISS.into(), 30);
    let token = mint(&keys, &claims()).unwrap();
    verifier.verify(&token, NOW).unwrap();
    assert_eq!(verifier.verify(&token, NOW + 331), Err(TokenError::Expired));
    verifier.revocations.revoke("j1", NOW + 300, NOW);
    assert_eq!(verifier.verify(&token, NOW), Err(TokenError::Revoked));

    let other = mint(
        &keys,
        &AccessClaims {
            jti: "j2".into(),
            ..claims()
        },
    )
    .unwrap();
    verifier.verify(&other, NOW).unwrap();
    verifier.revocations.revoke("g1", NOW + 300, NOW);
    assert_eq!(
        verifier.verify(&other, NOW),
        Err(TokenError::Revoked),
        "revoking the grant revokes its tokens"
    );
}

#[test]
fn the_audience_accepts_a_trailing_slash_and_nothing_else() {
    let mut c = claims();
    c.aud = Audience::Many(vec!["http://other/".into(), "http://gw.test/mcp/".into()]);
    assert!(c.is_for("http://gw.test/mcp"));
    assert!(!c.is_for("http://gw.test/mc"));
    assert!(!c.is_for("http://gw.test/mcp/x"));
    c.aud = Audience::One("http://gw.test/mcp2".into());
    assert!(!c.is_for("http://gw.test/mcp"));
}

#[test]
fn each_defect_has_its_error() {
    let keys = ring();
    let verifier = AccessTokenVerifier::new(keys.clone(), ISS.into(), 30);
    let other = ring();
    let check = |token: &str| verifier.verify(token, NOW);

    assert_eq!(
        check(&mint(&other, &claims()).unwrap()),
        Err(TokenError::UnknownKey)
    );
    assert_eq!(
        check(&keys.active().sign("JWT", &claims()).unwrap()),
        Err(TokenError::WrongType)
    );
    let mut c = claims();
    c.iss = "http://evil".into();
    assert_eq!(
        check(&mint(&keys, &c).unwrap()),
        Err(TokenError::WrongIssuer)
    );
    let mut c = claims();
    c.exp = NOW - 100;
    assert_eq!(check(&mint(&keys, &c).unwrap()), Err(TokenError::Expired));
    let mut c = claims();
    c.nbf = Some(NOW + 100);
    assert_eq!(
        check(&mint(&keys, &c).unwrap()),
        Err(TokenError::NotYetValid)
    );
    let mut c = claims();
    c.jti = String::new();
    assert_eq!(
        check(&mint(&keys, &c).unwrap()),
        Err(TokenError::MissingClaim)
    );
    assert_eq!(check("abc.def.ghi"), Err(TokenError::Malformed));

    // A signature by another key under our kid.
    let good = mint(&keys, &claims()).unwrap();
    let forged = mint(&other, &claims()).unwrap();
    let spliced = format!(
        "{}.{}",
        good.rsplit_once('.').unwrap().0,
        forged.rsplit_once('.').unwrap().1
    );
    assert_eq!(check(&spliced), Err(TokenError::BadSignature));

    // alg "none" and HS256 under our kid.
    let kid = keys.active().kid().to_owned();
    let b64 = |v: &serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let body = b64(&serde_json::to_value(claims()).unwrap());
    let none = format!(
        "{}.{body}.",
        b64(&serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": kid}))
    );
    assert!(check(&none).is_err());
    let hs = format!(
        "{}.{body}.c2ln",
        b64(&serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}))
    );
    assert_eq!(check(&hs), Err(TokenError::AlgorithmNotAllowed));
}
