//! The hostile-input suite: thousands of malformed and adversarial requests from a seeded generator,
//! to every endpoint the gateway serves — broken encodings, huge and repeated parameters, odd methods
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
mod h2;

use std::time::{Duration, Instant};

use integration_tests::oauth::public_client;
use integration_tests::{GatewayBuilder, GatewayUnderTest, GoBackend};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng, SeedableRng as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::oauth_flow::users_file;

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

const ENDPOINTS: &[&str] = &[
    "/mcp",
    "/authorize",
    "/login",
    "/consent",
    "/token",
    "/register",
    "/revoke",
    "/introspect",
    "/callback",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-protected-resource/mcp",
    "/.well-known/jwks.json",
    "/healthz",
    "/nowhere",
];

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "BREW", "get",
];

const PARAMS: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "state",
    "scope",
    "resource",
    "pending",
    "csrf",
    "token",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "username",
    "password",
    "decision",
    "access_token",
];

/// One generated request: whether it is HTTP at all, and whether the gateway may close without an
/// answer (not HTTP, or a body framed two ways, which no answer can follow safely).
struct Generated {
    bytes: Vec<u8>,
    is_http: bool,
    may_close: bool,
    endpoint: &'static str,
    /// A body aimed at the policy, with a valid token: its answer must not show what is hidden.
    aimed: bool,
}

/// What a fuzzed value may be.
fn value(rng: &mut StdRng, client: &str) -> String {
    let long = |n: usize| "a".repeat(n);
    match rng.gen_range(0..16) {
        0 => String::new(),
        1 => "%".into(),
        2 => "%zz%g0%".into(),
        3 => "%00%0d%0aSet-Cookie:%20x=y".into(),
        4 => "%ff%fe%c3%28".into(),
        5 => long(rng.gen_range(100..9000)),
        6 => "%C3%A9%E6%BC%A2%F0%9F%99%82".into(),
        7 => "javascript%3Aalert(1)".into(),
        8 => "https%3A%2F%2Fevil.example%2F".into(),
        9 => "http%3A%2F%2F127.0.0.1%3A1%2Fcallback".into(),
        10 => client.into(),
        11 => "code".into(),
        12 => "S256".into(),
        13 => "..%2F..%2Fetc%2Fpasswd".into(),
        14 => format!(
            "https%3A%2F%2F127.0.0.1%3A{}%2Fdoc.json",
            rng.gen_range(1..65535)
        ),
        _ => (0..rng.gen_range(1..40))
            .map(|_| format!("%{:02X}", rng.r#gen::<u8>()))
            .collect(),
    }
}

/// A query or form of fuzzed parameters, some repeated.
fn params(rng: &mut StdRng, client: &str) -> String {
    let count = rng.gen_range(0..12);
    (0..count)
        .map(|_| {
            let name = *PARAMS.choose(rng).unwrap();
            format!("{name}={}", value(rng, client))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A request to the MCP route with a valid token and a body aimed at its policy, as clients of
/// several versions send one (with `Mcp-Method` at times, a batch at times; now and then with
/// another method than POST, whose body a policy route must refuse unread).
fn aimed(rng: &mut StdRng, port: u16, token: &str) -> Generated {
    let body = bodies::body(rng);
    let method = if rng.gen_bool(0.1) {
        *["GET", "PUT", "DELETE"].choose(rng).unwrap()
    } else {
        "POST"
    };
    let mut head = format!(
        "{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
    );
    if rng.gen_bool(0.2) {
        head += "Mcp-Method: tools/call\r\nMcp-Name: get_weather\r\n";
    }
    if rng.gen_bool(0.1) {
        head += "MCP-Protocol-Version: 2026-07-28\r\n";
    }
    head += &format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    Generated {
        bytes,
        is_http: true,
        may_close: false,
        endpoint: "/mcp",
        aimed: true,
    }
}

fn generate(rng: &mut StdRng, port: u16, token: &str, client: &str) -> Generated {
    if rng.gen_bool(0.6) {
        return aimed(rng, port, token);
    }
    let endpoint = *ENDPOINTS.choose(rng).unwrap();
    let mut is_http = true;
    let method = if rng.gen_bool(0.03) {
        is_http = false;
        "G\u{7f}T"
    } else {
        *METHODS.choose(rng).unwrap()
    };
    let query = params(rng, client);
    let target = if query.is_empty() {
        endpoint.to_owned()
    } else {
        format!("{endpoint}?{query}")
    };
    let body: Vec<u8> = match rng.gen_range(0..8) {
        0 | 1 => Vec::new(),
        2 => params(rng, client).into_bytes(),
        3 => br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#.to_vec(),
        4 => br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"#.to_vec(),
        5 => (0..rng.gen_range(1..4096))
            .map(|_| rng.r#gen::<u8>())
            .collect(),
        6 => format!(
            r#"{{"redirect_uris":["{}"],"client_name":{}}}"#,
            value(rng, client),
            "1".repeat(rng.gen_range(1..2000))
        )
        .into_bytes(),
        _ => vec![b'['; rng.gen_range(1..20_000)],
    };
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    let mut framed = false;
    for _ in 0..rng.gen_range(0..8) {
        let header = match rng.gen_range(0..22) {
            0 => format!("Authorization: Bearer {token}\r\n"),
            1 => "Authorization: Bearer not.a.token\r\n".into(),
            2 => format!(
                "Authorization: Bearer {}\r\n",
                "x".repeat(rng.gen_range(1..20_000))
            ),
            3 => "Authorization: Basic %%%\r\n".into(),
            4 => "Authorization: Bearer \u{e9}\u{e9}\r\n".into(),
            5 => "Content-Type: application/json\r\n".into(),
            6 => "Content-Type: application/x-www-form-urlencoded\r\n".into(),
            7 => "Content-Type: multipart/form-data; boundary=\r\n".into(),
            8 => "Cookie: __Host-mcp-gw-auth=; =; ;;;\r\n".into(),
            9 => "Mcp-Session-Id: echo-session\r\nMcp-Session-Id: other\r\n".into(),
            10 => "Mcp-Session-Id: \u{e9}\r\n".into(),
            11 => "Origin: null\r\n".into(),
            12 => "Origin: https://evil.example\r\n".into(),
            13 => "X-Forwarded-For: 1.2.3.4, garbage, ::1\r\n".into(),
            14 => "X_Forwarded_User: mallory\r\n".into(),
            15 => "Upgrade: websocket\r\nConnection: Upgrade\r\n".into(),
            16 => "Expect: 100-continue\r\n".into(),
            17 => format!("X-Big: {}\r\n", "b".repeat(rng.gen_range(1..40_000))),
            18 => (0..rng.gen_range(1..120))
                .map(|i| format!("X-H{i}: v\r\n"))
                .collect(),
            19 => "Accept: text/event-stream\r\n".into(),
            20 => "Host: evil.example\r\n".into(),
            _ => {
                // Request-smuggling shapes: a length and chunking together, or a bad chunk.
                framed = true;
                if rng.gen_bool(0.5) {
                    "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n".into()
                } else {
                    "Transfer-Encoding: chunked, identity\r\n".into()
                }
            }
        };
        head += &header;
    }
    let mut bytes;
    if framed {
        head += "\r\n";
        bytes = head.into_bytes();
        bytes
            .extend_from_slice(b"zz\r\nnot hex\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n");
    } else {
        head += &format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        bytes = head.into_bytes();
        bytes.extend_from_slice(&body);
    }
    Generated {
        bytes,
        is_http,
        may_close: !is_http || framed,
        endpoint,
        aimed: false,
    }
}

/// What came back: the status, the body, and whether all of the body came (a gateway that closes
/// a connection with the client's bytes still unread resets it, and the end of an answer in flight
/// may be lost).
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
    whole: bool,
}

/// Sends `bytes` on a new connection and reads the answer, `None` if the gateway closed without one.
/// Panics if nothing comes within [`ANSWER_WITHIN`].
async fn exchange_raw(port: u16, bytes: &[u8]) -> Option<Answer> {
    let read = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        // The gateway may answer and close before it has read everything: not an error here.
        let _ = stream.write_all(bytes).await;
        let mut answer = Vec::new();
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
            if complete(&answer, bytes.starts_with(b"HEAD ")) {
                break;
            }
        }
        answer
    };
    let answer = tokio::time::timeout(ANSWER_WITHIN, read)
        .await
        .unwrap_or_else(|_| panic!("no answer within {ANSWER_WITHIN:?} to {:?}", preview(bytes)));
    let whole = complete(&answer, bytes.starts_with(b"HEAD "));
    let text = String::from_utf8_lossy(&answer);
    let status = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Some(Answer {
        status,
        head: head.to_owned(),
        body: body.as_bytes().to_vec(),
        whole,
    })
}

/// Whether a response has all arrived: its head, and the body its `Content-Length` announces (none
/// for a `HEAD`, and only the head of an SSE stream).
fn complete(answer: &[u8], to_head: bool) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    // A stream (the backend holds a session's GET open) is answered once its head is.
    if to_head
        || head
            .to_ascii_lowercase()
            .contains("content-type: text/event-stream")
    {
        return true;
    }
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    match length {
        Some(length) => body.len() >= length,
        // Chunked or until close: the gateway closes (the requests say `Connection: close`).
        None => head.starts_with("HTTP/1.1 1") || body.ends_with("0\r\n\r\n"),
    }
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()
}

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
