//! Every example config in `config/` validates, and a bad one fails with one line naming the key.

use std::path::PathBuf;
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
        // mcp-backend*.toml belong to the backend; every other file is a gateway config.
        let mut command = if name.starts_with("mcp-backend") {
            let mut c = Command::new(binary("mcp-backend"));
            c.arg("--check");
            c
        } else {
            let mut c = Command::new(binary("mcp-auth-gateway"));
            c.arg("check");
            c
        };
        // An example that names certbot's files is checked against a certificate made here, at
        // the same paths under a temporary root: the only change to the file.
        let (_certificates, path) = with_certificates_made(&path);
        // The secrets the examples name come from the environment; here, placeholders.
        let output = command
            .arg("--config")
            .arg(&path)
            .env("GITHUB_CLIENT_SECRET", "placeholder-secret")
            .env("OIDC_CLIENT_SECRET", "placeholder-secret")
            .env("REDIS_PASSWORD", "placeholder-secret")
            .env("WIKI_CLIENT_SECRET", "placeholder-secret")
            .env("CI_CLIENT_SECRET", "placeholder-secret-of-the-ci-job")
            .env("AGENT_CLIENT_SECRET", "placeholder-secret-of-the-agent")
            .env("EXCHANGE_CLIENT_SECRET", "placeholder-secret")
            .env(
                "GATEWAY_TOKEN_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )
            .current_dir(workspace_root())
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

/// `path` itself when it names no `/etc/letsencrypt/` files; else a copy naming files a test CA made at
/// the same paths under a temporary directory (returned, to keep it alive).
fn with_certificates_made(path: &std::path::Path) -> (Option<tempfile::TempDir>, PathBuf) {
    const CERTBOT: &str = "/etc/letsencrypt/";
    let text = std::fs::read_to_string(path).unwrap();
    if !text.contains(CERTBOT) {
        return (None, path.to_owned());
    }
    let root = tempfile::tempdir().unwrap();
    let ca = integration_tests::tls::TestCa::new(root.path());
    let issued = ca.server("example");
    let moved = text.replace(CERTBOT, &format!("{}{CERTBOT}", root.path().display()));
    for line in moved.lines() {
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        let file = match key.trim() {
            "cert_file" => &issued.cert,
            "key_file" => &issued.key,
            _ => continue,
        };
        let target = PathBuf::from(value.trim().trim_matches('"'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(file, &target).unwrap();
    }
    let copy = root.path().join(path.file_name().unwrap());
    std::fs::write(&copy, moved).unwrap();
    (Some(root), copy)
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

#[test]
fn a_bad_gateway_config_fails_with_one_line_naming_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = "[server]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"http://127.0.0.1:8080\"\n\n[[routes]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:9000/mcp\"\n";
    let cases = [
        (
            good.replace("upstream =", "upstreem ="),
            "`routes[0].upstreem`",
            "unknown field",
        ),
        (
            good.replace("/mcp\"\nupstream", "mcp\"\nupstream"),
            "`routes[0].path`",
            "must start with /",
        ),
        (
            good.replace("http://127.0.0.1:8080\"", "http://127.0.0.1:8080/base\""),
            "`server.public_url`",
            "origin only",
        ),
        (
            format!("{good}read_timeout = \"soon\"\n"),
            "`routes[0].read_timeout`",
            "invalid value",
        ),
        (
            format!("{good}[tokens]\nsigning_key_env = \"NO_SUCH_VARIABLE_FOR_TEST\"\n"),
            "`tokens.signing_key_env`",
            "not set",
        ),
        (
            format!(
                "{good}[routes.policy]\n[[routes.policy.rules]]\neffect = \"allow\"\n\
                 when = 'user.groups.exists(g, g == \"ops\"'\n"
            ),
            "`routes[0].policy.rules[0].when`",
            "not a CEL expression",
        ),
        (
            format!(
                "{good}[routes.policy]\n[[routes.policy.rules]]\neffect = \"deny\"\n\
                 [[routes.policy.rules]]\neffect = \"allow\"\ntools = [\"echo\"]\n"
            ),
            "`routes[0].policy.rules[1]`",
            "can never match",
        ),
    ];
    for (text, key, reason) in cases {
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, &text).unwrap();
        let output = Command::new(binary("mcp-auth-gateway"))
            .args(["check", "--config"])
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
            stderr.contains("gateway.toml") && stderr.contains(key) && stderr.contains(reason),
            "{text:?} gave {stderr}"
        );
    }
}

#[test]
fn check_prints_the_routes_and_never_the_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let pem =
        gateway_assertion::SigningKey::generate(gateway_assertion::KeyAlgorithm::EdDsa).unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"http://127.0.0.1:8080\"\n[tokens]\nsigning_key_env = \"GW_TEST_KEY\"\n\n\
         [[routes]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:9000/mcp\"\n\n[[routes]]\npath = \"/github/mcp\"\nupstream = \"https://api.githubcopilot.com/mcp/\"\ncredentials = \"bearer\"\n",
    )
    .unwrap();
    let output = Command::new(binary("mcp-auth-gateway"))
        .args(["check", "--config"])
        .arg(&path)
        .env("GW_TEST_KEY", pem.pkcs8_pem())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("route /mcp -> http://127.0.0.1:9000/mcp (default)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("route /github/mcp -> https://api.githubcopilot.com/mcp/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("environment variable GW_TEST_KEY"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("PRIVATE KEY")
            && !stdout.contains(pem.pkcs8_pem().lines().nth(1).unwrap()),
        "{stdout}"
    );
}
