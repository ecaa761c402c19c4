//! Every example config in `config/` validates, and a bad one fails with one line naming the key.

use std::process::Command;

use integration_tests::{binary, workspace_root};

#[test]
fn every_example_config_validates() {
    let mut checked = 0;
    for entry in std::fs::read_dir(workspace_root().join("config")).expect("config/ exists") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let program = if name.starts_with("mcp-backend") {
            binary("mcp-backend")
        } else {
            panic!(
                "{name}: no binary is known to read this config; name it mcp-backend*.toml or teach this test"
            );
        };
        let output = Command::new(program)
            .args(["--check", "--config"])
            .arg(&path)
            .output()
            .expect("the binary runs");
        assert!(
            output.status.success(),
            "{name} does not validate: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        checked += 1;
    }
    assert!(checked > 0, "no example configs were found");
}

#[test]
fn a_bad_backend_config_fails_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[target]\nurll = \"http://x\"\n",
            "`target.urll`",
            "unknown field",
        ),
        (
            "[target]\ntimeout = \"soon\"\n",
            "`target.timeout`",
            "invalid value",
        ),
        ("listen = \"nowhere\"\n", "`listen`", "invalid"),
        (
            "[gateway]\ntrust_unsigned_headers = \"yes\"\n",
            "`gateway.trust_unsigned_headers`",
            "invalid type",
        ),
        (
            "[target]\nurl = \"ftp://x\"\n[gateway]\ntrust_unsigned_headers = true\n",
            "`target.url`",
            "http",
        ),
        (
            "[gateway]\nissuer = \"http://gw\"\n",
            "`gateway.jwks`",
            "required",
        ),
    ];
    for (text, key, reason) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let output = Command::new(binary("mcp-backend"))
            .args(["--check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "one line for {text:?}: {stderr}"
        );
        assert!(
            stderr.contains(key) && stderr.contains(reason),
            "{text:?} gave {stderr}"
        );
        assert!(stderr.contains("bad.toml"), "names the file: {stderr}");
    }
}
