//! The hostile suite's HTTP/2 round: the bodies aimed at the policy, over HTTP/2 to a gateway
//! serving HTTPS (where HTTP/2 is spoken), many streams on few connections, with what only HTTP/2
//! allows among them: a body on a GET, PUT or DELETE without a length, in DATA frames, and a body
//! in frames of a few bytes each, on a connection of its own (which the gateway's HTTP/2 may close,
//! `ENHANCE_YOUR_CALM`, as a flood of small frames). Every other request is answered without a
//! 5xx and without a reset, and the backend sees only what the policy allows.

use std::time::Duration;

use futures::StreamExt as _;
use integration_tests::{GatewayBuilder, GatewayTls, GoBackend};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;

use super::{backend_saw_only_what_was_allowed, bodies, sections};

/// Requests of the round.
const REQUESTS: usize = 2000;
/// Streams open at once, over `CONNECTIONS` connections.
const AT_ONCE: usize = 32;
const CONNECTIONS: usize = 4;

/// A request as shown in a failure, how it was sent, and its answer: the status, the HTTP version,
/// the body.
type Answered = (String, Sent, reqwest::Result<(u16, http::Version, String)>);

/// What a request is: whether its answer must not show what the policy hides, and whether its
/// connection may be closed under it (a flood of small frames).
#[derive(Clone, Copy)]
struct Sent {
    aimed: bool,
    may_close: bool,
}

/// One request of the round, on `client` (or, for a body in small frames, on `flood`, a
/// connection of its own).
fn request(
    rng: &mut StdRng,
    client: &reqwest::Client,
    flood: &reqwest::Client,
    gateway: &integration_tests::GatewayUnderTest,
    token: &str,
) -> (reqwest::RequestBuilder, Sent) {
    let plain = |aimed| Sent {
        aimed,
        may_close: false,
    };
    let body = bodies::body(rng);
    match rng.gen_range(0..10) {
        // A body without a length on another method than POST: refused unread.
        0 => {
            let method = [http::Method::GET, http::Method::PUT, http::Method::DELETE]
                .choose(rng)
                .unwrap()
                .clone();
            let frames: Vec<Result<String, std::io::Error>> = vec![Ok(body)];
            let request = client
                .request(method, gateway.url("/mcp"))
                .bearer_auth(token)
                .body(reqwest::Body::wrap_stream(futures::stream::iter(frames)));
            (request, plain(true))
        }
        // The authorization server's endpoints, with what is not a form.
        1 => {
            let path = *["/token", "/introspect", "/revoke", "/register"]
                .choose(rng)
                .unwrap();
            (client.post(gateway.url(path)).body(body), plain(false))
        }
        // A POST streamed in frames of a few bytes, no length.
        2 => {
            let frames: Vec<Result<String, std::io::Error>> = body
                .as_bytes()
                .chunks(7)
                .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
                .collect();
            let request = gateway.mcp_post_on(
                flood,
                "/mcp",
                reqwest::Body::wrap_stream(futures::stream::iter(frames)),
            );
            let sent = Sent {
                aimed: true,
                may_close: true,
            };
            (request, sent)
        }
        _ => {
            let mut request = gateway.mcp_post_on(client, "/mcp", body);
            if rng.gen_bool(0.2) {
                request = request
                    .header("mcp-method", "tools/call")
                    .header("mcp-name", "get_weather");
            }
            (request, plain(true))
        }
    }
}

/// The round: [`REQUESTS`] requests over HTTP/2, [`AT_ONCE`] at a time.
pub async fn round(backend: &GoBackend, rng: &mut StdRng, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let tls = GatewayTls::issued(dir.path());
    let gateway = GatewayBuilder::new()
        .tls(&tls)
        .section(&sections(backend))
        .start()
        .await;
    let token = gateway.token("/mcp", "alice");
    // One more, for the bodies in small frames.
    let clients: Vec<reqwest::Client> = (0..=CONNECTIONS)
        .map(|_| {
            tls.client_builder()
                .http2_prior_knowledge()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap()
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    // Each request is sent by the client it was built with.
    let flood = &clients[CONNECTIONS];
    let requests: Vec<(reqwest::RequestBuilder, Sent)> = (0..REQUESTS)
        .map(|i| request(rng, &clients[i % CONNECTIONS], flood, &gateway, &token))
        .collect();
    let results: Vec<Answered> = futures::stream::iter(requests)
        .map(|(request, sent)| async move {
            let (client, request) = request.build_split();
            let request = request.unwrap();
            let shown = format!("{} {}", request.method(), request.url());
            let answer = async {
                let response = client.execute(request).await?;
                let status = response.status().as_u16();
                let version = response.version();
                Ok((status, version, response.text().await?))
            }
            .await;
            (shown, sent, answer)
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let mut closed = 0;
    for (shown, sent, answer) in results {
        let (status, version, text) = match answer {
            Ok(answered) => answered,
            Err(_) if sent.may_close => {
                closed += 1;
                continue;
            }
            Err(e) => panic!("HOSTILE_SEED={seed}, HTTP/2: {shown}: {e:?}"),
        };
        *statuses.entry(status).or_default() += 1;
        assert_eq!(version, http::Version::HTTP_2);
        assert!(
            status < 500,
            "HOSTILE_SEED={seed}, HTTP/2: {status} for {shown}: {text}"
        );
        assert!(
            !(sent.aimed && bodies::shows_hidden(&text)),
            "HOSTILE_SEED={seed}, HTTP/2: {text} answers {shown}"
        );
    }
    eprintln!(
        "HTTP/2 answers by status: {statuses:?}; closed under a flood of small frames: {closed}"
    );
    backend_saw_only_what_was_allowed(backend, &format!("HOSTILE_SEED={seed}, HTTP/2")).await;
    assert!(!gateway.process.stderr().contains("panicked"));
}
