//! The hostile-input suite: thousands of malformed and adversarial requests from a seeded generator
//! ([`generator`]), sent raw ([`wire`]), to every endpoint the gateway serves — broken encodings, huge and repeated parameters, odd methods
//! and headers, request-smuggling shapes, bad tokens and session ids — sent as raw bytes over TCP so
//! that nothing in between tidies them up; most carry a valid token and a body aimed at the MCP
//! route's policy ([`bodies`]: denied tools, prompts and resources, keys other parsers read
//! otherwise, batches, paths with dot segments). Every one must be answered without a 5xx within
//! seconds, and a dropped connection fails the suite unless the case expects one (what is not HTTP
//! at all, or frames its body two ways). Behind the route is a backend written in Go, which reads
//! JSON as Go servers do and records every request that reaches it: nothing denied may have run
//! there, nothing smuggled or unread may have arrived, and no answer may show a list unfiltered.
//! An HTTP/2 round ([`h2`]) sends the same over HTTP/2. The gateway must not panic, must keep
//! serving while slow and idle connections pile up, must hold no more memory after the suite than
//! a stated bound above what it held before, and must not grow round after round or flood after
//! flood. The seed is printed; `HOSTILE_SEED` replays a run.

mod bodies;
mod generator;
mod h2;
mod wire;

use std::time::{Duration, Instant};

use integration_tests::oauth::public_client;
use integration_tests::{GatewayBuilder, GatewayUnderTest, GoBackend};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::oauth_flow::users_file;
use generator::{ENDPOINTS, Generated, generate};
use wire::{Answer, exchange_raw, preview};

/// Requests the generator sends.
const REQUESTS: usize = 3000;
/// The longest any one answer may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// How much more the gateway may hold after the suite than before: its bounded caches (remembered
/// metadata-document failures, sessions, pending sign-ins) filling with what the suite sent, and the
/// allocator's slack. (Measured: about 3.5 MiB.)
const RSS_BOUND: u64 = 24 * 1024 * 1024;
/// How much it may still grow from the end of the first round to the end of the third (or from the
/// second flood of connections to the fourth): a leak would grow it by as much each time.
/// (Measured: about 0.3 MiB, and 1 MiB.)
const RSS_ROUND_BOUND: u64 = 4 * 1024 * 1024;
/// What 1,100 connections at once may leave with the allocator, for the next ones to reuse.
/// (Measured: about 40 MiB.)
const FLOOD_RSS_BOUND: u64 = 64 * 1024 * 1024;

struct Stack {
    gateway: GatewayUnderTest,
    /// The MCP route's backend: a Go server, which records what reaches it.
    backend: GoBackend,
    port: u16,
}

/// The gateway's config beyond its `[server]`: the local provider without rate limits, and the MCP
/// route to `backend` with the policy the bodies aim at.
fn sections(backend: &GoBackend) -> String {
    format!(
        "[provider]\nkind = \"local\"\nusers_file = {users:?}\n\n\
         [rate_limits]\nregister = 0\ntoken = 0\nauthorize = 0\nlogin = 0\nconsent = 0\n\
         callback = 0\nrevoke = 0\nintrospect = 0\nlogin_per_user = 0\n\n\
         [auth]\nclient_id_metadata_allow_private_network = true\n\n\
         [[routes]]\npath = \"/mcp\"\nupstream = \"{backend}\"\n{policy}",
        users = users_file().display().to_string(),
        backend = backend.url("/mcp"),
        policy = bodies::POLICY,
    )
}

async fn stack() -> Stack {
    let backend = GoBackend::start(true).await;
    let gateway = GatewayBuilder::new()
        .section(&sections(&backend))
        .start()
        .await;
    let port = url::Url::parse(&gateway.origin).unwrap().port().unwrap();
    Stack {
        gateway,
        backend,
        port,
    }
}

/// What reached the backend so far: nothing the policy denies ran there (as a Go server reads it),
/// nothing smuggled past the gateway or sent with a body it did not read arrived there.
async fn backend_saw_only_what_was_allowed(backend: &GoBackend, seed: &str) {
    for ran in backend.ran().await {
        assert!(bodies::allowed(&ran), "{seed}: the backend ran {ran:?}");
    }
    for arrival in backend.arrivals().await {
        assert!(
            bodies::expected(&arrival),
            "{seed}: {arrival:?} reached the backend"
        );
    }
}

/// A plain request that must be served, and quickly: the gateway is still itself.
async fn still_serves(stack: &Stack) {
    stack.gateway.still_serves().await;
}

/// One round of [`REQUESTS`] generated requests, eight at a time, as clients come: each answered
/// without a 5xx (or closed, only where the case allows it), a refusal of the gateway's own with a
/// reason, and no answer showing what the policy hides.
async fn hostile_round(stack: &Stack, rng: &mut StdRng, token: &str, client: &str, round: usize) {
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut closed = 0;
    // A few at a time, as clients come.
    for batch in 0..REQUESTS / 8 {
        let generated: Vec<Generated> = (0..8)
            .map(|_| generate(rng, stack.port, token, client))
            .collect();
        let answers =
            futures::future::join_all(generated.iter().map(|g| exchange_raw(stack.port, &g.bytes)))
                .await;
        for (generated, answer) in generated.iter().zip(answers) {
            match answer {
                Some(Answer {
                    status,
                    head: answer_head,
                    body,
                    whole,
                }) => {
                    *statuses.entry(status).or_default() += 1;
                    assert!(
                        status < 500,
                        "round {round}, batch {batch}: {status} for {}",
                        preview(&generated.bytes)
                    );
                    let text = String::from_utf8_lossy(&body);
                    assert!(
                        !(generated.aimed && bodies::shows_hidden(&text)),
                        "round {round}, batch {batch}: {text} answers {}",
                        preview(&generated.bytes)
                    );
                    // What the gateway refuses itself, it says why.
                    let gateways_own = generated.endpoint != "/mcp"
                        || !body.starts_with(br#"{"jsonrpc":"2.0","id":1,"result""#);
                    let head = generated.bytes.starts_with(b"HEAD ");
                    let said = (400..500).contains(&status) && gateways_own && generated.is_http;
                    if said && !head && whole {
                        assert!(
                            // Pingora's own refusals of what it cannot parse (400) or hold (431, more
                            // headers than it reads) come before the gateway's code, without a body.
                            !body.is_empty() || [400, 405, 431].contains(&status),
                            "round {round}, batch {batch}: an empty {status} ({answer_head}) for {}",
                            preview(&generated.bytes)
                        );
                    }
                }
                None => {
                    assert!(
                        generated.may_close,
                        "round {round}, batch {batch}: closed without an answer: {}",
                        preview(&generated.bytes)
                    );
                    closed += 1;
                }
            }
        }
    }
    eprintln!("answers by status: {statuses:?}; closed without an answer: {closed}");
    assert!(
        statuses.values().sum::<usize>() > REQUESTS * 9 / 10,
        "most requests are HTTP and get an answer"
    );
    backend_saw_only_what_was_allowed(&stack.backend, &format!("round {round}")).await;
}

/// 100 connections sending their headers a byte at a time and 1,000 idle ones, while a plain
/// request is served promptly; then they all close.
async fn flood(stack: &Stack) {
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut stream = TcpStream::connect(("127.0.0.1", stack.port)).await.unwrap();
        stream
            .write_all(b"POST /token HTTP/1.1\r\nHo")
            .await
            .unwrap();
        slow.push(stream);
    }
    for stream in &mut slow {
        let _ = stream.write_all(b"s").await;
    }
    still_serves(stack).await;
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(TcpStream::connect(("127.0.0.1", stack.port)).await.unwrap());
    }
    still_serves(stack).await;
    drop(slow);
    drop(idle);
    still_serves(stack).await;
}

/// A body that breaks its framing (a bad chunk, under both Content-Length and chunked), on a route
/// whose policy reads bodies: the client's fault, `400`, never the gateway's `500` (the hostile
/// suite found this with HOSTILE_SEED=16565872979769951289).
#[tokio::test(flavor = "multi_thread")]
async fn a_body_with_broken_framing_is_the_clients_fault() {
    let stack = stack().await;
    let token = stack.gateway.token("/mcp", "alice");
    for framing in [
        "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n0\r\n\r\n",
        "Transfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n0\r\n\r\n",
    ] {
        let request = format!(
            "POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n{framing}"
        );
        let answer = exchange_raw(stack.port, request.as_bytes())
            .await
            .expect("an answer");
        assert_eq!(answer.status, 400, "{framing:?}");
    }
    assert!(
        stack.backend.arrivals().await.is_empty(),
        "nothing reached the backend"
    );
    still_serves(&stack).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_hostile_requests_get_no_5xx_no_panic_no_hang_and_bounded_memory() {
    let seed: u64 = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("hostile-input suite: HOSTILE_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut stack = stack().await;
    let client = public_client(&stack.gateway).await;
    let token = stack.gateway.token("/mcp", "alice");
    // Warm up: what a first request of each kind allocates once is not a leak.
    for endpoint in ENDPOINTS {
        let request = format!("GET {endpoint} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        exchange_raw(stack.port, request.as_bytes()).await;
    }
    let before = stack.gateway.process.rss_bytes();

    // Three rounds: memory may grow in the first (caches filling, the allocator's arenas) but not
    // round after round.
    let mut rss = vec![before];
    for round in 0..3 {
        hostile_round(&stack, &mut rng, &token, &client, round).await;
        rss.push(stack.gateway.process.rss_bytes());
    }
    let mib = |b: &u64| format!("{:.1}", *b as f64 / 1048576.0);
    eprintln!(
        "gateway RSS before and after each round, MiB: {:?}",
        rss.iter().map(mib).collect::<Vec<_>>()
    );
    assert!(
        rss[3] < rss[1] + RSS_ROUND_BOUND,
        "RSS still grows round after round: {rss:?}"
    );

    // The same aimed at the policy over HTTP/2, to a gateway serving HTTPS before the same backend.
    h2::round(&stack.backend, &mut rng, seed).await;

    // Slow clients (headers a byte at a time) and floods of idle connections hold nobody else up;
    // once they are gone, what they cost stays with the allocator for the next ones, and does not
    // grow flood after flood.
    let descriptors = stack.gateway.process.open_descriptors();
    let mut after_flood = Vec::new();
    for _ in 0..4 {
        flood(&stack).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while stack.gateway.process.open_descriptors() > descriptors + 8 {
            assert!(
                Instant::now() < deadline,
                "the closed connections are let go"
            );
            // Polling interval while the gateway sees the closes, not a guess at how long.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        after_flood.push(stack.gateway.process.rss_bytes());
    }
    eprintln!(
        "after each flood, MiB: {:?}",
        after_flood.iter().map(mib).collect::<Vec<_>>()
    );
    // The allocator's arenas (one per thread) settle within two floods; after that a flood fits
    // in what the earlier ones left.
    assert!(
        after_flood[3] < after_flood[1] + RSS_ROUND_BOUND,
        "each flood of connections costs more memory: {after_flood:?}"
    );
    assert!(
        after_flood[3] < before + FLOOD_RSS_BOUND,
        "floods left {} bytes over the start",
        after_flood[3] - before
    );

    assert!(stack.gateway.process.is_running(), "the gateway is alive");
    let stderr = stack.gateway.process.stderr();
    assert!(
        !stderr.contains("panicked"),
        "a request panicked:\n{stderr}"
    );
    assert!(
        rss[3] < before + RSS_BOUND,
        "RSS grew from {before} to {} bytes",
        rss[3]
    );
}
