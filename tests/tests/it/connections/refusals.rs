//! What a connection refuses: a backend or server that is wrong in one way, a forged state, another
//! browser, another issuer; each with its clear error, and nothing kept.

use integration_tests::GatewayUnderTest;
use integration_tests::node;
use integration_tests::oauth::{
    Agent, Pkce, authorize_url, decide, public_client, query_of, to_consent,
};
use serde_json::{Value, json};

use super::{Remote, connected_gateway, plan};

/// A sign-in through a gateway in front of a remote server started with `remote_plan`: the
/// flow's report, and what the remote server saw.
async fn refused_sign_in(remote_plan: Value) -> (Value, Value) {
    let remote = Remote::start_with(remote_plan).await;
    let gateway = connected_gateway(&remote, "").await;
    let report = node::run(
        "connections-flow.mjs",
        &plan(&gateway, "alice", "wonderland"),
    )
    .await;
    (report, remote.stats().await)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_or_server_that_is_wrong_is_refused_with_a_clear_error_and_nothing_kept() {
    for (case, says, registers) in [
        (
            json!({ "authServer": "issuer-mismatch" }),
            "metadata names the issuer",
            false,
        ),
        (
            json!({ "authServer": "no-pkce" }),
            "does not support PKCE with S256",
            false,
        ),
        (
            json!({ "resource": "http://127.0.0.1:1/elsewhere" }),
            "metadata is for http://127.0.0.1:1/elsewhere",
            false,
        ),
        (
            json!({ "authServer": "no-access-token" }),
            "answer is not valid: the token response",
            true,
        ),
    ] {
        let (report, stats) = refused_sign_in(case.clone()).await;
        // The app's sign-in ends with an error it can show, naming the cause; it gets no code.
        let denied = &report["denied"];
        assert!(denied["error"].is_string(), "{case}: {report:#}");
        assert!(denied.get("code").is_none(), "{case}: {report:#}");
        let description = denied["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(says), "{case}: {description:?}");
        // No token reached the backend, and the gateway registered only where discovery passed.
        assert_eq!(stats["seen"], json!([]), "{case}: {stats:#}");
        assert_eq!(
            !stats["registered"].as_array().unwrap().is_empty(),
            registers,
            "{case}: {stats:#}"
        );
    }
}

/// Signs alice in at `gateway` in `agent` up to where the browser is sent on to `remote`'s server:
/// the `state` it carries there.
async fn sent_on(gateway: &GatewayUnderTest, remote: &Remote, agent: &mut Agent) -> String {
    let client = public_client(gateway).await;
    let pkce = Pkce::new();
    let url = authorize_url(
        gateway,
        &client,
        &pkce,
        &[("resource", &gateway.url("/tracker"))],
    );
    let consent = to_consent(gateway, agent, &url, "alice", "wonderland")
        .await
        .expect("the consent page");
    let onwards = decide(gateway, agent, &consent, "approve").await;
    assert!(
        onwards.starts_with(&format!("http://127.0.0.1:{}/", remote.as_port)),
        "sent on to the remote server: {onwards}"
    );
    query_of(&onwards)["state"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_with_an_unknown_state_another_browser_or_another_issuer_connects_no_one() {
    let remote = Remote::start(3600).await;
    let gateway = connected_gateway(&remote, "").await;
    let mut agent = Agent::new();

    // A state the gateway never sent.
    let (status, _, page) = agent
        .get(&gateway.url("/connect/callback?state=forged&code=x"))
        .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("unknown or expired"), "{page}");

    // A real sign-in, sent on to the remote server. Its link, followed by another browser (a victim
    // signed in there, say), must not connect the first user with the second's account: the flow
    // ends before any code is exchanged.
    let state = sent_on(&gateway, &remote, &mut agent).await;
    let issuer = format!("http://127.0.0.1:{}", remote.as_port);
    let back = format!(
        "{}?state={state}&code=x&iss={}",
        gateway.url("/connect/callback"),
        url::form_urlencoded::byte_serialize(issuer.as_bytes()).collect::<String>()
    );
    let (status, _, page) = Agent::new().get(&back).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("another browser"), "{page}");
    assert_eq!(
        remote.stats().await["tokenRequests"],
        0,
        "no code was exchanged"
    );
    let (status, _, page) = agent.get(&back).await;
    assert_eq!(status, 400, "the flow is spent: {page}");

    // Another sign-in; the browser comes back naming another issuer.
    let state = sent_on(&gateway, &remote, &mut agent).await;
    let forged = format!(
        "{}?state={state}&code=x&iss=http%3A%2F%2Fevil.example",
        gateway.url("/connect/callback")
    );
    let (status, location, body) = agent.get(&forged).await;
    assert_eq!(status, 302, "{body}");
    let back = query_of(&location.unwrap());
    assert_eq!(back["error"], "server_error", "{back:?}");
    assert!(
        back["error_description"].contains("names the issuer"),
        "{back:?}"
    );
    assert!(!back.contains_key("code"));
    // The flow is spent: the right issuer afterwards finds nothing to complete.
    let (status, _, page) = agent
        .get(&format!(
            "{}?state={state}&code=x",
            gateway.url("/connect/callback")
        ))
        .await;
    assert_eq!(status, 400, "{page}");
    assert_eq!(remote.stats().await["tokenRequests"], 0);
    assert_eq!(remote.stats().await["seen"], json!([]));
}
