//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode, every
//! scenario) against our fixture MCP server, directly and through the gateway with a token from the
//! gateway's own OAuth flow; and the SSE streams a client opens and cuts, followed by a server's
//! request on the GET stream.

use integration_tests::conformance::{Fixture, SuiteRun, run_suite};
use integration_tests::oauth::{
    Agent, Pkce, authorize, authorize_url, exchange, public_client, token,
};
use integration_tests::{GatewayBuilder, GatewayUnderTest, node};
use serde_json::json;

use crate::oauth_flow::users_file;

/// What the pinned suite (0.1.16) runs with `--suite all`: a new version changes these.
const SCENARIOS: usize = 32;
const CHECKS: usize = 47;

/// A gateway with the local provider (user `alice`, password `wonderland`) and `/mcp` in front of
/// `fixture`.
async fn gateway_for(fixture: &Fixture) -> GatewayUnderTest {
    let users_path = users_file();
    GatewayBuilder::new()
        .section(&format!(
            "[provider]\nkind = \"local\"\nusers_file = {users:?}\n\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"{backend}\"\n",
            users = users_path.display().to_string(),
            backend = fixture.url(),
        ))
        .start()
        .await
}

/// An access token for `/mcp` from the gateway's authorization server: registration, authorization
/// with login and consent, and the code exchange.
async fn token_from_the_flow(gateway: &GatewayUnderTest) -> String {
    let client = public_client(gateway).await;
    let pkce = Pkce::new();
    let mut agent = Agent::new();
    let url = authorize_url(gateway, &client, &pkce, &[]);
    let query = authorize(gateway, &mut agent, &url, "alice", "wonderland").await;
    let (status, tokens) = token(gateway, &exchange(&client, &query["code"], &pkce.verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

fn assert_all_passed(run: &SuiteRun, what: &str) {
    let not_passed = run.not_passed();
    assert!(
        not_passed.is_empty(),
        "{what}: scenarios that did not pass: {not_passed:#?}\n{}",
        run.output
    );
    assert_eq!(
        (run.scenarios.len(), run.checks()),
        (SCENARIOS, CHECKS),
        "{what}: not every scenario ran: {:?}\n{}",
        run.scenarios.keys().collect::<Vec<_>>(),
        run.output
    );
}

/// Lines the gateway logged at WARN or ERROR.
fn warnings(gateway: &GatewayUnderTest) -> Vec<String> {
    gateway
        .process
        .stderr()
        .lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .map(str::to_owned)
        .collect()
}

/// Every scenario passes three full runs in a row, directly and then through the gateway, with no
/// timeout; and the gateway logs no warning while the suite opens and cuts its streams.
#[tokio::test(flavor = "multi_thread")]
async fn the_conformance_suite_passes_directly_and_through_the_gateway() {
    let fixture = Fixture::start(0).await;
    let gateway = gateway_for(&fixture).await;
    let bearer = token_from_the_flow(&gateway).await;
    for run in 1..=3 {
        let direct = run_suite(&fixture.url(), None).await;
        assert_all_passed(&direct, &format!("directly, run {run}"));
    }
    for run in 1..=3 {
        let proxied = run_suite(&gateway.url("/mcp"), Some(&bearer)).await;
        assert_all_passed(&proxied, &format!("through the gateway, run {run}"));
    }
    let warnings = warnings(&gateway);
    assert!(warnings.is_empty(), "{warnings:#?}");
}

/// The suite's client without a token is challenged on every scenario, never served: the gateway
/// stands between it and the fixture.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_the_suite_reaches_nothing() {
    let fixture = Fixture::start(0).await;
    let gateway = gateway_for(&fixture).await;
    let run = run_suite(&gateway.url("/mcp"), None).await;
    let passed: Vec<&String> = run
        .scenarios
        .iter()
        .filter(|(_, checks)| checks.iter().all(|c| c.status == "SUCCESS"))
        .map(|(scenario, _)| scenario)
        .collect();
    // A check may pass (a foreign Origin is refused either way), a whole scenario may not.
    assert!(
        passed.is_empty(),
        "passed without a token: {passed:?}\n{}",
        run.output
    );
    let stats: serde_json::Value = reqwest::get(fixture.stats_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["mcpRequestsReceived"], 0, "{stats}");
}

/// Streams opened and cut by the client, then an elicitation on the GET stream during a `tools/call`
/// (`stream-order.mjs`), `rounds` times through the gateway in front of a fixture that holds each
/// GET `get_delay_ms`; asserts what must hold whatever the timing.
async fn streams_then_elicitation(get_delay_ms: u64, wait_for_get: bool, rounds: usize) {
    let fixture = Fixture::start(get_delay_ms).await;
    let gateway = gateway_for(&fixture).await;
    let report = node::run_in(
        "conformance",
        "stream-order.mjs",
        &json!({
            "url": gateway.url("/mcp"),
            "token": gateway.token("/mcp", "alice"),
            "statsUrl": fixture.stats_url(),
            "rounds": rounds,
            "timeoutMs": 5000,
            "waitForGet": wait_for_get,
        }),
    )
    .await;
    assert!(report.get("error").is_none(), "{report:#}");
    let rounds_done = report["rounds"].as_array().unwrap();
    assert_eq!(rounds_done.len(), rounds, "{report:#}");
    let lost: Vec<usize> = rounds_done
        .iter()
        .enumerate()
        .filter(|(_, round)| round["elicitation"]["text"] != "answer=yes")
        .map(|(i, _)| i)
        .collect();
    assert!(
        lost.is_empty(),
        "the elicitation never reached the client in rounds {lost:?} of {rounds}: {report:#}"
    );
    for (i, round) in rounds_done.iter().enumerate() {
        assert_eq!(
            round["reopened"], 200,
            "round {i}: the backend still held the cut GET stream: {report:#}"
        );
    }
    let stats = &report["stats"];
    assert_eq!(
        stats["getStreamsClosedByPeer"], report["cutGetStreams"],
        "every cut stream was closed at the backend: {report:#}"
    );
    assert_eq!(stats["requestsOnBusySockets"], 0, "{report:#}");
    let warnings = warnings(&gateway);
    assert!(warnings.is_empty(), "{warnings:#?}");
}

/// A server's request on the GET stream during a `tools/call` reaches the client, round after
/// round, after the client opened and cut GET and POST SSE streams; every cut stream is closed at
/// the backend (it takes a new GET of the session, which it refuses while it holds the old one), and
/// no request is ever sent on a backend connection whose response is still open.
///
/// The SDK client sends its GET and its call at once, as it does after initialize; they race to the
/// gateway on two connections. (On the old code about one call in five was lost this way, which a
/// gateway that forwarded the call first caused: the backend took it before the GET.)
#[tokio::test(flavor = "multi_thread")]
async fn a_request_on_the_get_stream_reaches_the_client_after_streams_were_cut() {
    streams_then_elicitation(0, false, 20).await;
}

/// The same, with a backend that takes 150 ms to open a GET stream (work to do first), and the call
/// sent once the GET has surely left: the call must not overtake the GET on the way there. (On the
/// old code every round timed out.)
#[tokio::test(flavor = "multi_thread")]
async fn a_request_waits_for_a_get_stream_the_backend_is_slow_to_open() {
    streams_then_elicitation(150, true, 3).await;
}
