//! `/token`: codes bound to their client, verifier, redirect and resource, used once; refreshes that
//! never widen the scope.

use super::{Browser, Harness, Pkce, authorize_query, exchange, refreshing};

/// A token request built from a fresh code: `(client, code, verifier, other client) -> form`.
type Bad = fn(&str, &str, &str, &str) -> Vec<(String, String)>;

fn owned(form: Vec<(&str, &str)>) -> Vec<(String, String)> {
    form.into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test]
async fn the_token_endpoint_checks_verifier_redirect_and_client() {
    let harness = Harness::new();
    let other_client = harness.public_client().await;
    let cases: Vec<(&str, Bad, u16, &str)> = vec![
        (
            "wrong verifier",
            |c, code, v, _| owned(exchange(c, code, &format!("{v}x"))),
            400,
            "invalid_grant",
        ),
        (
            "no verifier",
            |c, code, v, _| {
                owned(
                    exchange(c, code, v)
                        .into_iter()
                        .filter(|(k, _)| *k != "code_verifier")
                        .collect(),
                )
            },
            400,
            "invalid_request",
        ),
        (
            "another redirect_uri",
            |c, code, v, _| {
                let mut form = owned(exchange(c, code, v));
                form.retain(|(k, _)| k != "redirect_uri");
                form.push(("redirect_uri".into(), "http://127.0.0.1:1/other".into()));
                form
            },
            400,
            "invalid_grant",
        ),
        (
            "another client",
            |_, code, v, other| owned(exchange(other, code, v)),
            400,
            "invalid_grant",
        ),
        (
            "an unknown client",
            |_, code, v, _| owned(exchange("no-such-client", code, v)),
            401,
            "invalid_client",
        ),
        (
            "a secret from a public client",
            |c, code, v, _| {
                let mut form = owned(exchange(c, code, v));
                form.push(("client_secret".into(), "guess".into()));
                form
            },
            401,
            "invalid_client",
        ),
        (
            "another resource",
            |c, code, v, _| {
                let mut form = owned(exchange(c, code, v));
                form.push(("resource".into(), "http://elsewhere.example/mcp".into()));
                form
            },
            400,
            "invalid_target",
        ),
        (
            "an unsupported grant",
            |c, _, _, _| owned(vec![("grant_type", "password"), ("client_id", c)]),
            400,
            "unsupported_grant_type",
        ),
    ];
    for (case, make, status, error) in cases {
        let (client, code, pkce) = harness.code().await;
        let form = make(&client, &code, &pkce.verifier, &other_client);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (got, body) = harness.token(&pairs).await;
        assert_eq!(got, status, "{case}: {body}");
        assert_eq!(body["error"], error, "{case}");
        assert!(body.get("access_token").is_none(), "{case}");
    }
}

#[tokio::test]
async fn a_replayed_code_revokes_the_grant_it_issued() {
    let harness = Harness::new();
    let (client, code, pkce) = harness.code().await;
    let (status, tokens) = harness
        .token(&exchange(&client, &code, &pkce.verifier))
        .await;
    assert_eq!(status, 200, "{tokens}");
    let (status, body) = harness
        .token(&exchange(&client, &code, &pkce.verifier))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let access = tokens["access_token"].as_str().unwrap();
    let verified = harness.server.verifier.verify(access, crate::clock::now());
    assert!(
        verified.is_err(),
        "the first exchange's access token is revoked"
    );
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = refreshing(&client, refresh);
    let (status, body) = harness.token(&form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "and its refresh token"
    );
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_but_never_widen_it() {
    let harness = Harness::new();
    let (client, tokens) = harness.tokens().await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = [refreshing(&client, refresh), vec![("scope", "mcp admin")]].concat();
    let (status, body) = harness.token(&form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    let form = [refreshing(&client, refresh), vec![("scope", "mcp")]].concat();
    let (status, body) = harness.token(&form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "mcp");
}

#[tokio::test]
async fn a_redirect_uri_left_out_of_the_authorization_may_be_left_out_of_the_token_request() {
    let harness = Harness::new();
    let client = harness.public_client().await;
    let pkce = Pkce::new();
    // The client registered one redirect URI, so /authorize may omit it (OAuth 2.1 §4.1.1)...
    let query = authorize_query(&client, &pkce, &[("redirect_uri", "")]);
    let redirect = Browser::default().authorize(&harness, &query).await;
    // ...and then /token need not repeat it (§4.1.3); naming another one still fails.
    let base = [
        ("grant_type", "authorization_code"),
        ("client_id", client.as_str()),
        ("code", redirect["code"].as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let (status, body) = harness.token(&base).await;
    assert_eq!(status, 200, "{body}");

    let redirect = Browser::default().authorize(&harness, &query).await;
    let mut form = base.to_vec();
    form[2] = ("code", redirect["code"].as_str());
    form.push(("redirect_uri", "http://127.0.0.1:1/elsewhere"));
    let (status, body) = harness.token(&form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[tokio::test]
async fn refreshes_racing_with_one_token_all_get_its_one_successor() {
    let harness = Harness::new();
    let (client, tokens) = harness.tokens().await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = refreshing(client.as_str(), refresh);
    let mut successors = Vec::new();
    for _ in 0..5 {
        let (status, body) = harness.token(&form).await;
        assert_eq!(status, 200, "{body}");
        successors.push(body["refresh_token"].as_str().unwrap().to_owned());
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "one chain: {successors:?}");
    assert_ne!(successors[0], refresh);
    // The chain goes on from that successor; the grant was never revoked.
    let next = refreshing(client.as_str(), successors[0].as_str());
    let (status, body) = harness.token(&next).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_grant_ends_at_its_maximum_age_however_often_it_was_refreshed() {
    let harness = Harness::new();
    let (client, tokens) = harness.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    let claims = harness
        .server
        .verifier
        .verify(access, crate::clock::now())
        .unwrap();
    let grant_id = claims.gid.clone().unwrap();
    let refresh_with = |token| refreshing(client.as_str(), token);
    let first = tokens["refresh_token"].as_str().unwrap();
    let (status, refreshed) = harness.token(&refresh_with(first)).await;
    assert_eq!(status, 200, "{refreshed}");
    // Made 90 days and a second ago, by the default auth.grant_max_lifetime.
    let mut grant = harness
        .server
        .store
        .grant(&grant_id)
        .await
        .unwrap()
        .unwrap();
    grant.created_at = crate::clock::now() - 90 * 86_400 - 1;
    harness.server.store.put_grant(&grant).await.unwrap();
    let second = refreshed["refresh_token"].as_str().unwrap();
    let (status, body) = harness.token(&refresh_with(second)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("maximum age"),
        "{body}"
    );
}

/// `/mcp` offering `tools:admin`, which its policy reserves for the group `admins`.
const RESERVED: &str = "scopes_supported = [\"mcp\", \"tools:admin\"]\nrequired_scopes = [\"mcp\"]\n\
    [routes.policy]\n[[routes.policy.rules]]\neffect = \"allow\"\ntools = [\"admin_*\"]\n\
    groups = [\"admins\"]\nscopes = [\"tools:admin\"]\n";

/// The scope alice is granted when she asks for `mcp tools:admin`, and after a refresh.
async fn granted(harness: &Harness) -> (String, String) {
    let client = harness.public_client().await;
    let pkce = Pkce::new();
    let query = authorize_query(&client, &pkce, &[("scope", "mcp tools:admin")]);
    let code = Browser::default().authorize(harness, &query).await["code"].clone();
    let (status, tokens) = harness
        .token(&exchange(&client, &code, &pkce.verifier))
        .await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = refreshing(client.as_str(), refresh);
    let (status, refreshed) = harness.token(&form).await;
    assert_eq!(status, 200, "{refreshed}");
    let scope = |t: &serde_json::Value| t["scope"].as_str().unwrap().to_owned();
    (scope(&tokens), scope(&refreshed))
}

#[tokio::test]
async fn a_scope_a_policy_reserves_is_granted_only_to_the_users_its_rule_names() {
    let outsider = Harness::configured("", RESERVED);
    assert_eq!(
        granted(&outsider).await,
        ("mcp".to_owned(), "mcp".to_owned()),
        "asked for, not granted: the rest of the request stands"
    );
    let admin = Harness::configured("groups = [\"admins\"]", RESERVED);
    assert_eq!(
        granted(&admin).await,
        ("mcp tools:admin".to_owned(), "mcp tools:admin".to_owned())
    );
}
