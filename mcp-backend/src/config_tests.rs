//! Tests of mcp-backend's settings (`config.rs`): its arguments and environment, and what each refuses.

use super::*;
use clap::Parser as _;

fn cli(args: &[&str]) -> Cli {
    Cli::parse_from(std::iter::once("mcp-backend").chain(args.iter().copied()))
}

fn load(args: &[&str], toml: &str) -> Result<Settings, String> {
    let file = FileConfig::parse(toml).map_err(|(k, r)| format!("{k:?}: {r}"))?;
    Settings::from_parts(&cli(args), file).map_err(|e| e.to_string())
}

#[test]
fn an_unknown_key_is_named() {
    let (key, reason) = FileConfig::parse("[target]\nurll = \"x\"\n").unwrap_err();
    assert_eq!(key.as_deref(), Some("target.urll"));
    assert!(reason.contains("unknown field `urll`"), "{reason}");
}

#[test]
fn a_bad_value_is_named_by_its_key() {
    let (key, reason) = FileConfig::parse("[target]\ntimeout = \"soon\"\n").unwrap_err();
    assert_eq!(key.as_deref(), Some("target.timeout"));
    assert!(!reason.contains('\n'));
    let (key, _) = FileConfig::parse("listen = 9000\n").unwrap_err();
    assert_eq!(key.as_deref(), Some("listen"));
}

#[test]
fn signed_mode_needs_jwks_issuer_and_audience() {
    let err = load(&[], "").unwrap_err();
    assert!(
        err.contains("gateway.jwks") && err.contains("trust_unsigned_headers"),
        "{err}"
    );
    let err = load(&["--gateway-jwks", "http://gw/jwks"], "").unwrap_err();
    assert!(err.contains("gateway.issuer"), "{err}");
    let ok = load(
        &[
            "--gateway-jwks",
            "http://gw/jwks",
            "--gateway-issuer",
            "http://gw",
            "--audience",
            "x",
        ],
        "",
    )
    .unwrap();
    let Mode::Http(http) = ok.mode else {
        panic!("http mode")
    };
    assert!(matches!(http.trust, TrustSettings::Signed { .. }));
    assert_eq!(http.listen.to_string(), DEFAULT_LISTEN);
}

#[test]
fn flags_override_the_file() {
    let s = load(
        &[
            "--trust-unsigned-headers",
            "--target",
            "http://127.0.0.1:1/echo",
        ],
        "[target]\nurl = \"https://example.com/\"\ntimeout = \"1500ms\"\n",
    )
    .unwrap();
    assert_eq!(s.target.url.as_str(), "http://127.0.0.1:1/echo");
    assert_eq!(s.target.timeout, Duration::from_millis(1500));
}

#[test]
fn bad_values_name_their_flag_or_key() {
    let err = load(&["--trust-unsigned-headers", "--target", "ftp://x"], "").unwrap_err();
    assert!(err.starts_with("--target:"), "{err}");
    let err = load(
        &["--trust-unsigned-headers"],
        "[gateway]\ntoken_header = \"bad header\"\n",
    )
    .unwrap_err();
    assert!(err.starts_with("`gateway.token_header`:"), "{err}");
    let err = load(
        &["--trust-unsigned-headers"],
        "[target]\ntimeout = \"0s\"\n",
    )
    .unwrap_err();
    assert!(err.contains("target.timeout"), "{err}");
    let err = load(
        &[
            "--gateway-jwks",
            "/no/such/file",
            "--gateway-issuer",
            "i",
            "--audience",
            "a",
        ],
        "",
    )
    .unwrap_err();
    assert!(err.starts_with("--gateway-jwks:"), "{err}");
}

#[test]
fn stdio_mode_needs_no_gateway() {
    let s = load(&["--stdio"], "").unwrap();
    assert!(matches!(s.mode, Mode::Stdio { ref token_env } if token_env == DEFAULT_TOKEN_ENV));
}
