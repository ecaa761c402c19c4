//! The official MCP conformance suite's client scenarios (`@modelcontextprotocol/conformance`
//! 0.2.0-alpha.12, `client` mode), with the gateway as the OAuth client: each scenario's mock MCP
//! server is a route's backend, and a user signing in through the gateway connects to it
//! (`tests/e2e/conformance-adapter.mjs`).
//!
//! Every `auth/*` scenario for an authorization-code client runs. The suite's extension scenarios
//! do not apply to a user's connection: `client-credentials-*`, `wif-jwt-bearer` and
//! `enterprise-managed-authorization` are grants without a user's consent at the backend's server,
//! and the `dpop` ones a sender-constrained token the gateway does not hold.

use integration_tests::conformance::client::run_scenario;

use crate::oauth_flow::users_file;

/// The scenarios, all on the 2025-11-25 protocol (the SDK client's; the adapter's client speaks it).
const SCENARIOS: [&str; 27] = [
    "auth/metadata-default",
    "auth/metadata-var1",
    "auth/metadata-var2",
    "auth/metadata-var3",
    "auth/basic-cimd",
    "auth/scope-from-www-authenticate",
    "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined",
    "auth/scope-step-up",
    "auth/scope-retry-limit",
    "auth/token-endpoint-auth-basic",
    "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none",
    "auth/pre-registration",
    "auth/2025-03-26-oauth-metadata-backcompat",
    "auth/2025-03-26-oauth-endpoint-fallback",
    "auth/resource-mismatch",
    "auth/offline-access-scope",
    "auth/offline-access-not-supported",
    "auth/authorization-server-migration",
    "auth/iss-supported",
    "auth/iss-not-advertised",
    "auth/iss-supported-missing",
    "auth/iss-wrong-issuer",
    "auth/iss-unexpected",
    "auth/iss-normalized",
    "auth/metadata-issuer-mismatch",
];

/// What does not pass, and why it does not apply: the suite's `basic-cimd` wants the `client_id`
/// of its own reference client (`https://conformance-test.local/client-metadata.json`), a URL
/// only that client can name. The gateway's own document is at its public URL, and only when that
/// is https (a document's URL must be); the suite's flow is over http, so the gateway registers
/// instead. Everything else in the scenario passes.
const NOT_APPLICABLE: [(&str, &str); 1] = [("auth/basic-cimd", "WARNING cimd-client-id-used")];

/// Checks that pass only when the gateway did what the scenario is about, not merely nothing wrong.
const MUST_SUCCEED: [(&str, &str); 9] = [
    ("auth/scope-step-up", "scope-step-up-escalation"),
    ("auth/scope-retry-limit", "scope-retry-limit"),
    ("auth/pre-registration", "pre-registration-auth"),
    (
        "auth/offline-access-scope",
        "sep-2207-offline-access-requested",
    ),
    (
        "auth/authorization-server-migration",
        "sep-2352-reregister-on-as-change",
    ),
    (
        "auth/iss-supported",
        "sep-2468-client-compare-iss-supported",
    ),
    ("auth/iss-normalized", "sep-2468-client-no-normalization"),
    ("auth/resource-mismatch", "resource-mismatch-rejected"),
    (
        "auth/metadata-issuer-mismatch",
        "sep-2468-client-validate-metadata-issuer",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn every_authorization_code_client_scenario_passes_with_the_gateway_as_the_client() {
    let users = users_file();
    let mut failures = Vec::new();
    for scenario in SCENARIOS {
        let run = run_scenario(scenario, &users).await;
        let expected: Vec<String> = NOT_APPLICABLE
            .iter()
            .filter(|(s, _)| *s == scenario)
            .map(|(_, check)| (*check).to_owned())
            .collect();
        let not_passed = run.not_passed();
        let applies = expected.is_empty();
        if not_passed != expected || run.passed != applies || run.checks.is_empty() {
            failures.push(format!(
                "{scenario}: {not_passed:?} (suite passed: {})\n{}",
                run.passed, run.output
            ));
        }
        for (_, check) in MUST_SUCCEED.iter().filter(|(s, _)| *s == scenario) {
            if run.status_of(check) != Some("SUCCESS") {
                failures.push(format!(
                    "{scenario}: {check} is {:?}\n{}",
                    run.status_of(check),
                    run.output
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
