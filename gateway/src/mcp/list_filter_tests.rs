use serde_json::json;

use super::*;

fn only_get(kind: Kind, name: &str) -> bool {
    kind != Kind::Tool || name.starts_with("get_")
}

fn header(status: u16, pairs: &[(&'static str, &str)]) -> ResponseHeader {
    let mut response = ResponseHeader::build(status, None).unwrap();
    for (name, value) in pairs {
        response.insert_header(*name, *value).unwrap();
    }
    response.insert_header("content-length", "10").unwrap();
    response
}

/// Runs `chunks` through a filter of an answer to lists `asked`, with `response` as its header.
fn run(asked: Vec<Value>, response: &mut ResponseHeader, chunks: &[&[u8]]) -> (Vec<u8>, usize) {
    let mut filter = ListFilter::new(asked);
    filter.start(response).unwrap();
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut body = Some(Bytes::copy_from_slice(chunk));
        filter.filter(&mut body, i + 1 == chunks.len(), &only_get);
        out.extend_from_slice(&body.unwrap_or_default());
    }
    (out, filter.hidden)
}

fn json_header() -> ResponseHeader {
    header(200, &[("content-type", "application/json")])
}

fn sse_header() -> ResponseHeader {
    header(200, &[("content-type", "text/event-stream")])
}

#[test]
fn a_json_list_keeps_what_the_caller_may_use_whatever_its_id() {
    let tools =
        json!([{"name": "get_a", "inputSchema": {}}, {"name": "delete_b"}, {"title": "no name"}]);
    // An id the client wrote as 1.0, answered as 1; a batch that repeats an id.
    for body in [
        json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools, "nextCursor": "c"}}),
        json!([
            {"jsonrpc": "2.0", "id": 1, "result": {"prompts": [{"name": "p"}]}},
            {"jsonrpc": "2.0", "id": 1, "result": {"tools": tools, "nextCursor": "c"}},
        ]),
    ] {
        let text = body.to_string();
        let mut response = json_header();
        let (out, hidden) = run(
            vec![json!(1.0)],
            &mut response,
            &[&text.as_bytes()[..20], &text.as_bytes()[20..]],
        );
        assert!(response.headers.get("content-length").is_none());
        let out: Value = serde_json::from_slice(&out).unwrap();
        let result = match &out {
            Value::Array(items) => &items[1]["result"],
            one => &one["result"],
        };
        assert_eq!(
            result["tools"],
            json!([{"name": "get_a", "inputSchema": {}}])
        );
        assert_eq!(result["cacheScope"], "private");
        assert_eq!(result["nextCursor"], "c");
        assert_eq!(hidden, 2);
    }
}

#[test]
fn an_sse_stream_is_rewritten_event_by_event_however_it_is_cut_and_framed() {
    let changed = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n";
    let list = json!({"jsonrpc": "2.0", "id": "l", "result": {"tools": [{"name": "get_a"}, {"name": "rm"}]}}).to_string();
    let batch =
        json!([{"jsonrpc": "2.0", "id": 9, "result": {"tools": [{"name": "rm"}]}}]).to_string();
    let call = "data: {\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{\"content\":[]}}\n\n";
    for newline in ["\n", "\r\n", "\r"] {
        let answer = format!("id: 1{newline}data: {list}{newline}{newline}");
        let batched = format!("data:{batch}{newline}{newline}");
        let stream = format!("{changed}{answer}{batched}{call}");
        let bytes = stream.as_bytes();
        for cut in [
            1,
            changed.len() + 3,
            changed.len() + answer.len() - 1,
            bytes.len() - 1,
        ] {
            let (out, hidden) = run(vec![], &mut sse_header(), &[&bytes[..cut], &bytes[cut..]]);
            let out = String::from_utf8(out).unwrap();
            assert!(out.starts_with(changed), "{newline:?} {cut}: {out}");
            assert!(out.ends_with(call), "not a list: passes as it came: {out}");
            let datas: Vec<Value> = out
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .map(|d| serde_json::from_str(d).unwrap())
                .collect();
            assert_eq!(datas[1]["result"]["tools"], json!([{"name": "get_a"}]));
            assert_eq!(datas[1]["result"]["cacheScope"], "private");
            assert_eq!(
                datas[2][0]["result"]["tools"],
                json!([]),
                "a batch on a stream"
            );
            assert!(out.contains("id: 1\n"), "{out}");
            assert_eq!(hidden, 2);
        }
    }
}

#[test]
fn what_cannot_be_read_is_not_passed_on() {
    let list =
        json!({"jsonrpc": "2.0", "id": 3, "result": {"tools": [{"name": "rm"}]}}).to_string();
    let refused = |out: &[u8]| {
        let out: Value = serde_json::from_slice(out).unwrap();
        assert_eq!(out["id"], 3);
        assert_eq!(out["error"]["code"], -32603);
    };
    // Compressed, of another type, not JSON, or larger than held.
    let (out, _) = run(
        vec![json!(3)],
        &mut header(
            200,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
        ),
        &[list.as_bytes()],
    );
    refused(&out);
    let mut other = header(200, &[("content-type", "text/plain")]);
    let (out, _) = run(vec![json!(3)], &mut other, &[list.as_bytes()]);
    refused(&out);
    assert_eq!(other.headers["content-type"], "application/json");
    let (out, _) = run(
        vec![json!(3)],
        &mut json_header(),
        &[
            b"{\"jsonrpc\":",
            b"\"2.0\", \"result\": {\"tools\": [{\"name\": \"rm\"}]",
        ],
    );
    refused(&out);
    let big = vec![b' '; MAX_HELD];
    let (out, _) = run(vec![json!(3)], &mut json_header(), &[&big, list.as_bytes()]);
    refused(&out);
    // On a stream: an event cut off by the end, or one with a result that is not JSON, is dropped.
    let cut = format!("data: {list}\n");
    let (out, _) = run(vec![], &mut sse_header(), &[cut.as_bytes()]);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    let (out, _) = run(
        vec![],
        &mut sse_header(),
        &[b"data: {\"result\": [oops\n\n"],
    );
    assert!(out.is_empty());
    // No body, or an error status with one of another type: nothing to filter.
    let mut accepted = header(202, &[]);
    let (out, _) = run(vec![], &mut accepted, &[b""]);
    assert!(out.is_empty());
    let (out, _) = run(
        vec![json!(3)],
        &mut header(404, &[("content-type", "text/plain")]),
        &[b"Session not found"],
    );
    assert_eq!(out, b"Session not found");
}

/// A client that folds keys (Go's `encoding/json`) reads `Result`, `Tools` and `Name` as `result`,
/// `tools` and `name`: they are filtered as those are, and an item named two ways is not shown.
#[test]
fn lists_are_filtered_as_a_client_that_folds_keys_reads_them() {
    let answer = json!({"jsonrpc": "2.0", "id": 1,
    "Result": {"Tools": [{"name": "get_a"}, {"name": "rm"}]},
    "result": {"toolſ": [{"name": "rm"}], "tools": [
        {"name": "get_b", "Name": "rm"}, {"name": "get_c"}, {"NAME": "rm"}
    ]}})
    .to_string();
    let (out, hidden) = run(vec![json!(1)], &mut json_header(), &[answer.as_bytes()]);
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["Result"]["Tools"], json!([{"name": "get_a"}]));
    assert_eq!(out["result"]["toolſ"], json!([]));
    assert_eq!(out["result"]["tools"], json!([{"name": "get_c"}]));
    assert_eq!(hidden, 4);
    // On a stream, an event spelling the result otherwise is read too.
    let event = format!(
        "data: {}\n\n",
        json!({"jsonrpc": "2.0", "id": 2, "RESULT": {"tools": [{"name": "rm"}]}})
    );
    let (out, _) = run(vec![], &mut sse_header(), &[event.as_bytes()]);
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("\"rm\""), "{out}");
    let escaped =
        "data: {\"jsonrpc\":\"2.0\",\"id\":3,\"r\\u0065sult\":{\"tools\":[{\"name\":\"rm\"}]}}\n\n";
    let (out, _) = run(vec![], &mut sse_header(), &[escaped.as_bytes()]);
    assert!(!String::from_utf8(out).unwrap().contains("\"rm\""));
}
