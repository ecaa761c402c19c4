//! Tests of the reading of a POST's messages (`message.rs`): what is read, and what is refused.

use super::*;

#[test]
fn a_meta_traceparent_is_read_and_a_meta_of_another_shape_refuses_nothing() {
    let traced = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{"progressToken":1,"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}"#;
    let parsed = parse(traced).unwrap();
    assert_eq!(
        parsed.messages[0].traceparent.as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    for meta in [r#""text""#, "[1]", "null", r#"{"traceparent":7}"#, "{}"] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"t","_meta":{meta}}}}}"#
        );
        let parsed = parse(body.as_bytes()).unwrap_or_else(|_| panic!("{meta}"));
        assert_eq!(parsed.messages[0].target().unwrap().name, "t", "{meta}");
        assert_eq!(parsed.messages[0].traceparent, None, "{meta}");
    }
}

#[test]
fn messages_name_what_they_use() {
    let body = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ech\u006f","arguments":{"name":"x"}}},
        {"jsonrpc":"2.0","id":"r","method":"resources/read","params":{"uri":"file:///a"}},
        {"jsonrpc":"2.0","id":null,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"}}},
        {"jsonrpc":"2.0","method":"notifications/initialized"},
        {"jsonrpc":"2.0","id":3,"method":"tools/list"}]"#;
    let parsed = parse(body).unwrap();
    assert!(parsed.batch);
    let m = &parsed.messages;
    assert_eq!(
        m[0].target(),
        Some(Target {
            kind: Kind::Tool,
            name: "echo"
        })
    );
    assert_eq!(m[0].id, Some(serde_json::json!(1)));
    assert_eq!(
        m[1].target(),
        Some(Target {
            kind: Kind::Resource,
            name: "file:///a"
        })
    );
    assert_eq!(
        m[2].target(),
        Some(Target {
            kind: Kind::Prompt,
            name: "p"
        })
    );
    assert_eq!(m[2].id, Some(serde_json::Value::Null));
    assert_eq!(m[3].id, None);
    assert_eq!(m[3].target(), None);
    assert_eq!(m[4].list(), Some(Kind::Tool));
    for body in [
        &br#"{"id":1,"method":"tools/call"}"#[..],
        br#"{"id":1,"method":"tools/call","params":{}}"#,
        br#"{"id":1,"method":"tools/call","params":{"name":null}}"#,
    ] {
        let call = parse(body).unwrap();
        let nameless = Target {
            kind: Kind::Tool,
            name: "",
        };
        assert_eq!(call.messages[0].target(), Some(nameless));
    }
}

#[test]
fn what_is_not_json_rpc_is_unreadable() {
    for body in [
        &br#"{"id":1,"method":"tools/call","params":{"name":7}}"#[..],
        br#"{"id":1,"method":"tools/call","params":["delete_repo"]}"#,
        br#"[]"#,
        b"",
        b"not json",
        br#"{"id":1,"method":"tools/call"} trailing"#,
    ] {
        assert_eq!(
            parse(body).err(),
            Some(Unreadable::NotJsonRpc),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

/// Each of these reads as another message to a parser that folds keys (Go's `encoding/json`:
/// case-insensitive, Unicode folding, the last key winning) or drops NUL bytes from them.
#[test]
fn a_body_another_parser_reads_otherwise_is_ambiguous() {
    for body in [
        &br#"{"id":1,"method":"tools/call","params":{"name":"get_weather","Name":"delete_repo"}}"#[..],
        br#"{"id":1,"method":"tools/call","params":{"name":"safe","name":"delete_repo"}}"#,
        br#"{"id":1,"method":"tools/list","method":"tools/call","params":{"name":"x"}}"#,
        br#"{"id":1,"method":"ping","METHOD":"tools/list"}"#,
        br#"{"id":1,"METHOD":"tools/list"}"#,
        "{\"id\":1,\"method\":\"tools/call\",\"param\u{17f}\":{\"name\":\"delete_repo\"},\"params\":{\"name\":\"x\"}}".as_bytes(),
        br#"{"id":1,"method":"tools/call","params":{"name":"x"},"method\u0000":"tools/call"}"#,
        br#"{"id":1,"method":"tools/call","params":{"name":"x","arguments":{},"arguments":{}}}"#,
        br#"{"id":1,"Id":2,"method":"tools/list"}"#,
        br#"{"id":1,"method":"tools/call","params":{"n\u0061me":"x","name":"y"}}"#,
        br#"{"id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","NAME":"b"}}}"#,
        br#"{"id":1,"method":"resources/read","params":{"uri":"file:///a","URI":"file:///b"}}"#,
        br#"{"id":1,"method":"Tools/Call","params":{"name":"delete_repo"}}"#,
        br#"{"id":1,"method":"tools/call","params":{"name":"delete_repo\u0000"}}"#,
        br#"[{"id":1,"method":"tools/list"},{"id":2,"method":"tools/call","params":{"name":"a","nAme":"b"}}]"#,
    ] {
        assert!(
            matches!(parse(body), Err(Unreadable::Ambiguous(_))),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let Err(Unreadable::Ambiguous(why)) = parse(
        br#"{"id":1,"method":"tools/call","params":{"name":"get_weather","Name":"delete_repo"}}"#,
    ) else {
        panic!("ambiguous")
    };
    assert_eq!(why.0, "params has two keys that read as \"name\"");
    // What the gateway does not read may hold any keys: a tool's arguments are the tool's.
    let arguments =
        br#"{"id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":1,"A":2,"a":3}}}"#;
    assert_eq!(
        parse(arguments).unwrap().messages[0].target().unwrap().name,
        "x"
    );
}

#[test]
fn the_first_message_reads_as_the_whole_body_reads_it() {
    for body in [
        &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#[..],
        br#"[{"id":1,"method":"prompts/get","params":{"name":"p"}},{"method":"ping"}]"#,
        br#"{"method":"tools/call","params":{"name":"x","NAME":"y"}}"#,
        br#"[{"method":"ping"},{"method":"tools/call","Method":"x"}]"#,
        br#"{"method":"Tools/Call"}"#,
        b"[]",
        b"  ",
        b"not json",
    ] {
        let whole = parse(body).map(|all| format!("{:?}", all.messages[0]));
        let first = first(body).map(|one| format!("{one:?}"));
        assert_eq!(first, whole, "{}", String::from_utf8_lossy(body));
    }
}
