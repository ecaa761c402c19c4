//! One reading of every message: a body the gateway decides on is read by the backend as the
//! gateway read it, or it does not reach the backend. The backend here is written in Go and reads
//! JSON as Go MCP servers do (keys case-insensitive, with Unicode folding, the last one winning;
//! one of them also drops NUL bytes from keys, as a library the Go SDK once used did), and it logs
//! what it ran. Each body below reads as an allowed message to a strict parser and as a denied one
//! (or an unfiltered list) to that backend: each must be refused, over HTTP/1.1 and HTTP/2, and the
//! backend must never run what the policy denies nor the client see a list unfiltered.

use integration_tests::{GatewayBuilder, GatewayTls, GoBackend};
use serde_json::{Value, json};

const POLICY: &str = r#"
[routes.policy]
default = "deny"
[[routes.policy.rules]]
effect = "allow"
tools = ["get_*"]
prompts = ["summary"]
resources = ["file:///srv/runbooks/*"]
"#;

/// Bodies that a strict parser reads as allowed and Go's `encoding/json` as denied, by route.
fn shapes() -> Vec<(&'static str, String)> {
    let json_route = [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","Name":"delete_repo"}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","METHOD":"tools/list"}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"METHOD":"tools/list"}"#.to_owned(),
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"get_weather\"},\"param\u{17f}\":{\"name\":\"delete_repo\"}}".to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","n\u0041me":"delete_repo"}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","name":"delete_repo"}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"name":"delete_repo"}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"TOOLS/CALL","params":{"name":"delete_repo"}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"summary","NAME":"secret_prompt"}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///srv/runbooks/deploy.md","Uri":"file:///etc/shadow"}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"summary","nAme":"secret_prompt"},"argument":{"name":"a","value":""}}}"#.to_owned(),
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_weather","NaMe":"delete_repo"}}]"#.to_owned(),
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping","Method":"tools/list"}]"#.to_owned(),
    ];
    let nul_route = [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","name\u0000":"delete_repo"}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","method\u0000":"tools/list"}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo\u0000"}}"#.to_owned(),
    ];
    let mut shapes: Vec<(&str, String)> = Vec::new();
    for body in json_route {
        shapes.push(("/json", body.clone()));
        shapes.push(("/sse", body));
    }
    shapes.extend(nul_route.into_iter().map(|b| ("/nul", b)));
    shapes
}

/// The JSON-RPC messages of an answer, whether it came as JSON or on an SSE stream.
fn messages(content_type: &str, body: &str) -> Vec<Value> {
    let values: Vec<Value> = if content_type.starts_with("text/event-stream") {
        body.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    } else if body.is_empty() {
        Vec::new()
    } else {
        vec![serde_json::from_str(body).unwrap()]
    };
    values
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items,
            one => vec![one],
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_a_go_backend_would_read_otherwise_is_refused_over_http1_and_http2() {
    let go = GoBackend::start(false).await;
    let go_nul = GoBackend::start(true).await;
    let dir = tempfile::tempdir().unwrap();
    let tls = GatewayTls::issued(dir.path());
    let gateway = GatewayBuilder::new()
        .tls(&tls)
        .section(&format!(
            "[audit]\nfile = \"audit.jsonl\"\n\n\
             [[routes]]\npath = \"/json\"\nupstream = \"{}\"\n{POLICY}\n\
             [[routes]]\npath = \"/sse\"\nupstream = \"{}\"\n{POLICY}\n\
             [[routes]]\npath = \"/nul\"\nupstream = \"{}\"\n{POLICY}\n",
            go.url("/mcp"),
            go.url("/sse"),
            go_nul.url("/mcp"),
        ))
        .start()
        .await;
    let clients = [
        (
            http::Version::HTTP_11,
            tls.client_builder().http1_only().build().unwrap(),
        ),
        (http::Version::HTTP_2, tls.client_builder().build().unwrap()),
    ];
    let post = |client: &reqwest::Client, path: &str, body: String| {
        gateway.mcp_post_on(client, path, body).send()
    };
    let mut refused = 0;
    for (version, client) in &clients {
        for (path, body) in shapes() {
            let response = post(client, path, body.clone()).await.unwrap();
            assert_eq!(response.version(), *version);
            assert_eq!(response.status(), 400, "{path} {body}");
            let answer: Value = response.json().await.unwrap();
            assert_eq!(answer["error"]["code"], -32600, "{path} {body}: {answer}");
            refused += 1;
        }

        // What reads one way only goes through, and lists come filtered, as JSON and on SSE.
        for path in ["/json", "/sse", "/nul"] {
            let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "get_weather"}});
            let response = post(client, path, call.to_string()).await.unwrap();
            assert_eq!(response.status(), 200);
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            let answer = messages(&content_type, &response.text().await.unwrap());
            assert_eq!(answer[0]["result"]["content"][0]["text"], "ran get_weather");
            for (method, field, hidden) in [
                ("tools/list", "tools", "delete_repo"),
                ("prompts/list", "prompts", "secret_prompt"),
                ("resources/list", "resources", "file:///etc/shadow"),
            ] {
                let list = json!({"jsonrpc": "2.0", "id": 8, "method": method});
                let response = post(client, path, list.to_string()).await.unwrap();
                assert_eq!(response.status(), 200);
                let content_type = response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let text = response.text().await.unwrap();
                let answer = messages(&content_type, &text);
                let items = answer[0]["result"][field]
                    .as_array()
                    .unwrap_or_else(|| panic!("{text}"));
                assert!(!items.is_empty(), "{method} on {path}: {text}");
                assert!(
                    !text.contains(hidden),
                    "{method} on {path} shows {hidden}: {text}"
                );
            }
            let denied = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "delete_repo"}});
            let response = post(client, path, denied.to_string()).await.unwrap();
            let answer: Value = response.json().await.unwrap();
            assert_eq!(answer["error"]["code"], -32602, "{answer}");
            // A resource the rule allows, by a path another server resolves elsewhere: refused.
            for uri in [
                "file:///srv/runbooks/../../etc/shadow",
                "file:///srv/runbooks/%2e%2e/%2e%2e/etc/shadow",
                "file:///srv/runbooks/..%2F..%2Fetc%2Fshadow",
                "FILE:///srv/runbooks/..\\..\\etc\\shadow",
            ] {
                let read = json!({"jsonrpc": "2.0", "id": 10, "method": "resources/read", "params": {"uri": uri}});
                let response = post(client, path, read.to_string()).await.unwrap();
                let answer: Value = response.json().await.unwrap();
                assert_eq!(answer["error"]["code"], -32602, "{uri}: {answer}");
            }
        }
    }

    // The backends ran what was allowed, and nothing else: no denied tool, prompt or resource, and
    // no list but those asked for plainly (each filtered on its way back).
    let mut ran = go.ran().await;
    ran.extend(go_nul.ran().await);
    for entry in &ran {
        assert!(
            ["tools/call", "tools/list", "prompts/list", "resources/list"]
                .contains(&entry.method.as_str()),
            "the backend ran {entry:?}"
        );
        assert!(
            entry.method != "tools/call" || entry.name == "get_weather",
            "the backend ran {entry:?}"
        );
        assert!(entry.uri.is_empty(), "the backend read {entry:?}");
    }
    let lists = ran.iter().filter(|e| e.method.ends_with("/list")).count();
    assert_eq!(lists, 2 * 3 * 3, "only the plain lists reached a backend");

    // Each refusal is in the audit trail.
    let audit = std::fs::read_to_string(gateway.dir().join("audit.jsonl")).unwrap();
    let ambiguous = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["rule"] == "ambiguous" && l["decision"] == "deny" && l["status"] == 400)
        .count();
    assert_eq!(ambiguous, refused);
}
