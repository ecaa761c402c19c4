//! The seeded generator of hostile requests: every endpoint, odd methods, headers and values,
//! smuggling shapes, and bodies aimed at the route's policy ([`super::bodies`]).

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;

use super::bodies;

pub(super) const ENDPOINTS: &[&str] = &[
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
pub(super) struct Generated {
    pub(super) bytes: Vec<u8>,
    pub(super) is_http: bool,
    pub(super) may_close: bool,
    pub(super) endpoint: &'static str,
    /// A body aimed at the policy, with a valid token: its answer must not show what is hidden.
    pub(super) aimed: bool,
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

pub(super) fn generate(rng: &mut StdRng, port: u16, token: &str, client: &str) -> Generated {
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
