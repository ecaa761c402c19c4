//! Tests of the MCP headers' check against the body (`headers.rs`).

use super::*;
use crate::mcp::message::parse;

fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, value.parse().unwrap());
    }
    map
}

#[test]
fn mcp_method_is_required_from_2026_07_28() {
    for (version, required) in [
        ("2026-07-28", true),
        ("2027-01-01", true),
        ("2025-11-25", false),
        ("2025-06-18", false),
        ("draft", false),
        ("2026-7-28", false),
    ] {
        let sent = headers(&[("mcp-protocol-version", version)]);
        assert_eq!(requires_method_header(&sent), required, "{version}");
    }
    assert!(!requires_method_header(&headers(&[])));
}

#[test]
fn headers_must_say_what_the_body_says() {
    let call = parse(br#"{"id":1,"method":"tools/call","params":{"name":"get weather"}}"#).unwrap();
    let check = |pairs: &[(&'static str, &str)]| check_headers(&headers(pairs), &call);
    assert_eq!(check(&[]), Ok(()), "older versions send neither");
    assert_eq!(
        check(&[
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?Z2V0IHdlYXRoZXI=?=")
        ]),
        Ok(())
    );
    let error = check(&[("mcp-method", "tools/call"), ("mcp-name", "get_weather")]).unwrap_err();
    assert_eq!(
        error.0,
        "Header mismatch: Mcp-Name header value 'get_weather' does not match body value 'get weather'"
    );
    assert!(check(&[("mcp-method", "tools/list"), ("mcp-name", "get weather")]).is_err());
    assert!(
        check(&[("mcp-method", "tools/call")])
            .unwrap_err()
            .0
            .contains("required")
    );
    assert!(check(&[("mcp-name", "=?base64?!!?=")]).is_err());
    assert!(
        check(&[
            ("mcp-method", "tools/call"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "x")
        ])
        .is_err()
    );
    let list = parse(br#"{"id":1,"method":"tools/list"}"#).unwrap();
    assert_eq!(
        check_headers(&headers(&[("mcp-method", "tools/list")]), &list),
        Ok(())
    );
    let batch = parse(br#"[{"id":1,"method":"tools/list"}]"#).unwrap();
    assert!(check_headers(&headers(&[("mcp-method", "tools/list")]), &batch).is_err());
}
