//! Client ID Metadata Documents: a URL as `client_id`, fetched with SSRF guards, size and time limits,
//! and believed only when the document names itself.

use std::sync::Arc;

use axum::response::IntoResponse;
use integration_tests::oauth::refreshing;
use integration_tests::oauth::{Agent, Pkce, REDIRECT, authorize, authorize_url, exchange, token};
use serde_json::{Value, json};

use crate::oauth_flow::auth_stack;

const APP_REDIRECT: &str = "cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback";

/// Serves the test's client documents: `/good.json`, `/mismatch.json`, `/big.json`, `/slow.json`,
/// `/app.json` (a native app's private-use redirect) and `/script.json` (a `javascript:` one).
async fn documents() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let base = Arc::new(origin.clone());
    let doc = move |name: &'static str, client_id_of: &'static str, redirect: &'static str| {
        let base = base.clone();
        move || {
            let base = base.clone();
            async move {
                let body = json!({ "client_id": format!("{base}/{client_id_of}"), "client_name": format!("CIMD {name}"),
                                   "redirect_uris": [redirect], "token_endpoint_auth_method": "none" });
                ([("cache-control", "max-age=300")], axum::Json(body)).into_response()
            }
        }
    };
    let app = axum::Router::new()
        .route(
            "/good.json",
            axum::routing::get(doc("good", "good.json", REDIRECT)),
        )
        .route(
            "/mismatch.json",
            axum::routing::get(doc("mismatch", "someone-else.json", REDIRECT)),
        )
        .route(
            "/app.json",
            axum::routing::get(doc("app", "app.json", APP_REDIRECT)),
        )
        .route(
            "/script.json",
            axum::routing::get(doc("script", "script.json", "javascript:alert(1)")),
        )
        .route(
            "/big.json",
            axum::routing::get(|| async { "x".repeat(100_000) }),
        )
        .route(
            "/slow.json",
            axum::routing::get(std::future::pending::<String>),
        );
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (origin, server)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metadata_document_client_completes_the_flow() {
    let (origin, _server) = documents().await;
    let stack = auth_stack("[auth]\nclient_id_metadata_allow_private_network = true").await;
    let gateway = &stack.gateway;
    let metadata: Value = reqwest::get(gateway.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["client_id_metadata_document_supported"], true);

    let client = format!("{origin}/good.json");
    let pkce = Pkce::new();
    let mut agent = Agent::new();
    let url = authorize_url(gateway, &client, &pkce, &[]);
    // The sign-in page names the client as its document does.
    let (_, location, _) = agent.get(&url).await;
    let (_, _, login) = agent.get(&location.unwrap()).await;
    assert!(
        login.contains("CIMD good"),
        "the document's name is shown: {login}"
    );
    let query = authorize(gateway, &mut Agent::new(), &url, "alice", "wonderland").await;
    let code = &query["code"];
    let (status, tokens) = token(gateway, &exchange(&client, code, &pkce.verifier)).await;
    assert_eq!(status, 200, "{tokens}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_documents_and_private_addresses_are_refused_on_a_page() {
    let (origin, _server) = documents().await;
    let stack = auth_stack("[auth]\nclient_id_metadata_allow_private_network = true").await;
    let pkce = Pkce::new();
    let mut agent = Agent::new();
    for (path, reason) in [
        ("mismatch.json", "is not its URL"),
        ("big.json", "larger than"),
        ("slow.json", "too long"),
        ("missing.json", "HTTP 404"),
        ("script.json", "browser runs or reads"),
    ] {
        let started = std::time::Instant::now();
        let (status, location, body) = agent
            .get(&authorize_url(
                &stack.gateway,
                &format!("{origin}/{path}"),
                &pkce,
                &[],
            ))
            .await;
        assert_eq!((status, location), (400, None), "{path}: {body}");
        assert!(body.contains(reason), "{path}: {body}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{path} answered in bounded time"
        );
    }

    // Without the development switch: loopback (a private address) and plain http are refused.
    let strict = auth_stack("").await;
    let (status, _, body) = agent
        .get(&authorize_url(
            &strict.gateway,
            &format!("{origin}/good.json"),
            &pkce,
            &[],
        ))
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("not an https URL"), "{body}");
    let private = format!(
        "https://127.0.0.1:{}/good.json",
        origin.rsplit(':').next().unwrap()
    );
    let (status, _, body) = agent
        .get(&authorize_url(&strict.gateway, &private, &pkce, &[]))
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("private or reserved address"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_documents_can_be_switched_off() {
    let (origin, _server) = documents().await;
    let stack = auth_stack("[auth]\nclient_id_metadata_documents = false\nclient_id_metadata_allow_private_network = true").await;
    let metadata: Value =
        reqwest::get(stack.gateway.url("/.well-known/oauth-authorization-server"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(
        metadata
            .get("client_id_metadata_document_supported")
            .is_none()
    );
    let (status, _, body) = Agent::new()
        .get(&authorize_url(
            &stack.gateway,
            &format!("{origin}/good.json"),
            &Pkce::new(),
            &[],
        ))
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("not registered"), "{body}");
}

/// A document whose redirect is a native app's private-use scheme is a client like any other: the
/// authorization goes on to the sign-in page.
#[tokio::test(flavor = "multi_thread")]
async fn a_metadata_document_may_name_an_app_scheme() {
    let (origin, _server) = documents().await;
    let stack = auth_stack("[auth]\nclient_id_metadata_allow_private_network = true").await;
    let url = authorize_url(
        &stack.gateway,
        &format!("{origin}/app.json"),
        &Pkce::new(),
        &[("redirect_uri", APP_REDIRECT)],
    );
    let (status, location, body) = Agent::new().get(&url).await;
    assert_eq!(status, 302, "{body}");
    assert!(
        location.as_deref().is_some_and(|l| l.contains("/login?")),
        "{location:?}"
    );
}

/// Serves `/counted.json` (a good document) and `/gone.json` (404), counting the fetches of each.
async fn counted_documents() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let fetched = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (seen, base) = (fetched.clone(), origin.clone());
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let (seen, base) = (seen.clone(), base.clone());
        async move {
            seen.lock().unwrap().push(uri.path().to_owned());
            if uri.path() != "/counted.json" {
                return axum::http::StatusCode::NOT_FOUND.into_response();
            }
            let body = json!({ "client_id": format!("{base}/counted.json"), "client_name": "Counted",
                               "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none" });
            ([("cache-control", "no-cache")], axum::Json(body)).into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (origin, fetched)
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_are_fetched_only_at_authorize_and_a_failing_one_once_a_minute() {
    let (origin, fetched) = counted_documents().await;
    let stack = auth_stack("[auth]\nclient_id_metadata_allow_private_network = true").await;
    let gateway = &stack.gateway;
    let client = format!("{origin}/counted.json");
    let post = async |path: &str, form: &[(&str, &str)]| {
        reqwest::Client::new()
            .post(gateway.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    // Elsewhere than /authorize, a URL nobody signed in with is not fetched.
    let refresh = refreshing(client.as_str(), "x");
    assert_eq!(post("/token", &refresh).await, 400);
    assert_eq!(
        post("/revoke", &[("token", "x"), ("client_id", &client)]).await,
        200
    );
    let secret = [
        ("token", "x"),
        ("client_id", client.as_str()),
        ("client_secret", "s"),
    ];
    assert_eq!(post("/introspect", &secret).await, 401);
    assert!(
        fetched.lock().unwrap().is_empty(),
        "{:?}",
        fetched.lock().unwrap()
    );

    // At /authorize it is fetched once, and kept for the sign-in and the code (even with
    // no-cache); the refresh after needs no fetch either.
    let pkce = Pkce::new();
    let url = authorize_url(gateway, &client, &pkce, &[]);
    let back = authorize(gateway, &mut Agent::new(), &url, "alice", "wonderland").await;
    let (status, tokens) = token(gateway, &exchange(&client, &back["code"], &pkce.verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let refresh = refreshing(client.as_str(), refresh_token);
    let (status, refreshed) = token(gateway, &refresh).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(*fetched.lock().unwrap(), ["/counted.json"]);

    // A document that fails is fetched once, and its failure given again for a while.
    let gone = format!("{origin}/gone.json");
    for attempt in 0..3 {
        let (status, _, page) = Agent::new()
            .get(&authorize_url(gateway, &gone, &Pkce::new(), &[]))
            .await;
        assert_eq!(status, 400, "{page}");
        assert!(page.contains("HTTP 404"), "attempt {attempt}: {page}");
    }
    assert_eq!(*fetched.lock().unwrap(), ["/counted.json", "/gone.json"]);
}
