//! The `local` provider's login and the consent page: their CSRF tokens, the browser that started,
//! and the wrong passwords allowed.

use test_fixtures::refreshing;

use super::{
    AsEndpoint, Browser, Harness, Pkce, authorize_query, has_location, hidden, location, query_of,
    text_of,
};

#[tokio::test]
async fn login_and_consent_need_their_csrf_token_and_the_browser_that_started() {
    let harness = Harness::new();
    let client = harness.public_client().await;
    let mut browser = Browser::default();
    let query = authorize_query(&client, &Pkce::new(), &[]);
    let started = browser.get(&harness, AsEndpoint::Authorize, &query).await;
    let pending = query_of(&location(&started))["pending"].clone();
    let login = browser
        .get(&harness, AsEndpoint::Login, &format!("pending={pending}"))
        .await;
    let csrf = hidden(&text_of(&login), "csrf");
    let sign_in = |csrf: Option<&'static str>, password: &'static str| {
        let mut form = vec![("username", "alice"), ("password", password)];
        form.extend(csrf.map(|c| ("csrf", c)));
        form
    };

    let mut forged = sign_in(Some("forged"), "wonderland");
    forged.push(("pending", &pending));
    let response = browser.post(&harness, AsEndpoint::Login, &forged).await;
    assert_eq!(
        response.status().as_u16(),
        403,
        "a login form with a forged CSRF token"
    );
    let mut without = sign_in(None, "wonderland");
    without.push(("pending", &pending));
    let response = browser.post(&harness, AsEndpoint::Login, &without).await;
    assert_eq!(
        response.status().as_u16(),
        403,
        "a login form without its CSRF token"
    );
    let mut wrong = sign_in(None, "wrong");
    wrong.extend([("pending", pending.as_str()), ("csrf", &csrf)]);
    let response = browser.post(&harness, AsEndpoint::Login, &wrong).await;
    assert_eq!(response.status().as_u16(), 401);
    assert!(text_of(&response).contains("wrong"));

    let mut good = sign_in(None, "wonderland");
    good.extend([("pending", pending.as_str()), ("csrf", &csrf)]);
    let response = Browser::default()
        .post(&harness, AsEndpoint::Login, &good)
        .await;
    assert_eq!(
        response.status().as_u16(),
        400,
        "another browser cannot finish this authorization"
    );

    let response = browser.post(&harness, AsEndpoint::Login, &good).await;
    assert_eq!(response.status().as_u16(), 302);
    let consent = browser
        .get(&harness, AsEndpoint::Consent, &format!("pending={pending}"))
        .await;
    let form = [("pending", pending.as_str()), ("decision", "approve")];
    let response = browser.post(&harness, AsEndpoint::Consent, &form).await;
    assert_eq!(
        (response.status().as_u16(), has_location(&response)),
        (403, false),
        "consent without its CSRF token"
    );
    let csrf = hidden(&text_of(&consent), "csrf");
    let form = [
        ("pending", pending.as_str()),
        ("csrf", &csrf),
        ("decision", "approve"),
    ];
    let response = browser.post(&harness, AsEndpoint::Consent, &form).await;
    assert_eq!(response.status().as_u16(), 302);
    assert!(query_of(&location(&response)).contains_key("code"));
}

#[tokio::test]
async fn five_wrong_passwords_abandon_the_authorization() {
    let harness = Harness::new();
    let client = harness.public_client().await;
    let mut browser = Browser::default();
    let query = authorize_query(&client, &Pkce::new(), &[]);
    let started = browser.get(&harness, AsEndpoint::Authorize, &query).await;
    let pending = query_of(&location(&started))["pending"].clone();
    let login = browser
        .get(&harness, AsEndpoint::Login, &format!("pending={pending}"))
        .await;
    let csrf = hidden(&text_of(&login), "csrf");
    let form = |password| {
        [
            ("pending", pending.clone()),
            ("csrf", csrf.clone()),
            ("username", "alice".to_owned()),
            ("password", password),
        ]
    };
    for attempt in 1..=5 {
        let form = form("wrong".to_owned());
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = browser.post(&harness, AsEndpoint::Login, &pairs).await;
        assert_eq!(response.status().as_u16(), 401, "attempt {attempt}");
    }
    let form = form("wonderland".to_owned());
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = browser.post(&harness, AsEndpoint::Login, &pairs).await;
    assert_eq!(
        response.status().as_u16(),
        400,
        "the right password comes too late"
    );
    assert!(!has_location(&response));
}

#[tokio::test]
async fn a_sign_in_to_the_users_own_page_ends_in_a_session_never_a_code_or_consent() {
    let harness = Harness::new();
    let mut browser = Browser::default();
    // No session: a form is refused, and the page sends the browser to sign in.
    let refused = browser
        .post(&harness, AsEndpoint::Account, &[("action", "revoke")])
        .await;
    assert_eq!(refused.status().as_u16(), 401);
    let started = browser.get(&harness, AsEndpoint::Account, "").await;
    assert_eq!(started.status().as_u16(), 302);
    let pending = query_of(&location(&started))["pending"].clone();
    // Its pending sign-in cannot be taken to the consent page (where it would end in a code).
    let consent = browser
        .get(&harness, AsEndpoint::Consent, &format!("pending={pending}"))
        .await;
    assert_eq!(consent.status().as_u16(), 400);
    let (login, signed_in) = browser.sign_in(&harness, &pending).await;
    assert!(login.contains("your connections page"));
    assert_eq!(signed_in.status().as_u16(), 302);
    assert!(location(&signed_in).ends_with("/connections"));
    assert!(!location(&signed_in).contains("code="));
    let session = signed_in
        .headers()
        .get_all(http::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("__Host-mcpgw-account="))
        .expect("a session");
    assert!(
        session.contains("HttpOnly")
            && session.contains("Secure")
            && session.contains("SameSite=Lax"),
        "{session}"
    );
    // Her app's grant is listed, with its form and the session's token.
    let (client, tokens) = harness.tokens().await;
    let page = browser.get(&harness, AsEndpoint::Account, "").await;
    assert_eq!(page.status().as_u16(), 200);
    let html = text_of(&page);
    assert!(
        html.contains("Signed in as <strong>alice</strong>"),
        "{html}"
    );
    let token = hidden(&html, "csrf");
    let grant = hidden(&html, "grant");
    let revoke = |grant: &str, csrf: &str| {
        [
            ("action", "revoke".to_owned()),
            ("grant", grant.to_owned()),
            ("csrf", csrf.to_owned()),
        ]
    };
    for (form, status) in [
        (revoke(&grant, "forged"), 403),
        (revoke("not-hers", &token), 400),
        (revoke(&grant, &token), 302),
        (revoke(&grant, &token), 400),
    ] {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = browser.post(&harness, AsEndpoint::Account, &pairs).await;
        assert_eq!(answer.status().as_u16(), status, "{form:?}");
    }
    // Revoked: her refresh token no longer works.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, _) = harness.token(&refreshing(&client, refresh)).await;
    assert_eq!(status, 400);
}
