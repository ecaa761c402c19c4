use std::path::Path;

use super::*;
use crate::config::file::FileConfig;
use crate::config::server::DEFAULT_METRICS_LISTEN;
use crate::config::{Credentials, PrivateUseSchemes};

const MINIMAL: &str = r#"
[server]
listen = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"

[[routes]]
path = "/mcp"
upstream = "http://127.0.0.1:9000/mcp"
"#;

/// Parses and validates `text` as [`crate::config::load`] does a file called `gw.toml`.
fn validate(text: &str) -> Result<Config, String> {
    let path = Path::new("gw.toml");
    let file = FileConfig::parse(text)
        .map_err(|(key, reason)| ConfigError::new(path, key.as_deref(), reason).to_string())?;
    Config::validate(file, path, &|name| {
        (name == "KEY_PEM").then(|| "pem".to_owned())
    })
    .map_err(|e| e.to_string())
}

#[test]
fn a_minimal_config_gets_sane_defaults() {
    let config = validate(MINIMAL).unwrap();
    let route = &config.routes[0];
    assert_eq!(config.start.tokens.issuer, "http://127.0.0.1:8080");
    assert_eq!(route.resource, "http://127.0.0.1:8080/mcp");
    assert_eq!(
        route.metadata_url,
        "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(route.credentials, Credentials::Headers);
    assert_eq!(route.backend.host_header, "127.0.0.1:9000");
    assert_eq!(route.backend.path, "/mcp");
    assert_eq!(route.backend_audience, "http://127.0.0.1:9000/mcp");
    assert_eq!(
        config.start.listener.metrics_listen.unwrap().to_string(),
        DEFAULT_METRICS_LISTEN
    );
    assert_eq!(
        config.as_metadata_paths(),
        vec!["/.well-known/oauth-authorization-server"]
    );
}

#[test]
fn an_issuer_with_a_path_adds_the_path_inserted_metadata_url() {
    let config = validate(&MINIMAL.replace(
        "[[routes]]",
        "[tokens]\nissuer = \"http://127.0.0.1:8080/tenant\"\n[[routes]]",
    ))
    .unwrap();
    assert_eq!(
        config.as_metadata_paths(),
        vec![
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-authorization-server/tenant"
        ]
    );
}

#[test]
fn errors_name_the_file_and_the_key() {
    let cases = [
        (
            MINIMAL.replace(
                "public_url = \"http://127.0.0.1:8080\"",
                "public_url = \"http://h/x\"",
            ),
            "`server.public_url`",
        ),
        (
            MINIMAL.replace("path = \"/mcp\"", "path = \"mcp\""),
            "`routes[0].path`",
        ),
        (
            MINIMAL.replace("path = \"/mcp\"", "path = \"/token\""),
            "reserved",
        ),
        (
            MINIMAL.replace("9000/mcp\"", "9000/mcp\"\ncredentials = \"cookie\""),
            "`routes[0].credentials`",
        ),
        (
            MINIMAL.replace("9000/mcp\"", "9000/mcp\"\nrequired_scopes = [\"admin\"]"),
            "`routes[0].required_scopes[0]`",
        ),
        (
            MINIMAL.replace(
                "[[routes]]",
                "[tokens]\nsigning_key_env = \"MISSING\"\n[[routes]]",
            ),
            "MISSING is not set",
        ),
        (
            MINIMAL.replace(
                "[[routes]]",
                "[tokens]\nassertion_lifetime = \"1h\"\n[[routes]]",
            ),
            "`tokens.assertion_lifetime`",
        ),
        (
            MINIMAL.replace(
                "[[routes]]",
                "[metrics]\nlisten = \"127.0.0.1:8080\"\n[[routes]]",
            ),
            "`metrics.listen`",
        ),
        (
            format!("{MINIMAL}\n[[routes]]\npath = \"/mcp\"\nupstream = \"http://x/\"\n"),
            "`routes[1].path`",
        ),
        (
            MINIMAL.replace("http://127.0.0.1:9000/mcp", "ftp://x/"),
            "`routes[0].upstream`",
        ),
    ];
    for (text, needle) in cases {
        let err = validate(&text).unwrap_err();
        assert!(err.starts_with("gw.toml: "), "{err}");
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(!err.contains('\n'));
    }
}

#[test]
fn unknown_keys_and_bad_types_are_named_by_the_parser() {
    let (key, reason) =
        FileConfig::parse(&MINIMAL.replace("[[routes]]", "[[routes]]\nupstrem = 1")).unwrap_err();
    assert_eq!(key.as_deref(), Some("routes[0].upstrem"));
    assert!(reason.contains("unknown field"));
    let (key, _) =
        FileConfig::parse(&MINIMAL.replace("9000/mcp\"", "9000/mcp\"\nread_timeout = \"forever\""))
            .unwrap_err();
    assert_eq!(key.as_deref(), Some("routes[0].read_timeout"));
}

#[test]
fn the_signing_key_is_never_described() {
    let config = validate(&MINIMAL.replace(
        "[[routes]]",
        "[tokens]\nsigning_key_env = \"KEY_PEM\"\n[[routes]]",
    ))
    .unwrap();
    let described = config.describe();
    assert!(described.contains("environment variable KEY_PEM"));
    assert!(!described.contains("pem\n") && !format!("{config:?}").contains("\"pem\""));
}

#[test]
fn app_redirect_schemes_are_any_unless_the_operator_narrows_them() {
    let client = "[[clients]]\nclient_id = \"cursor\"\nredirect_uris = [\"cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback\"]\n";
    let config = validate(&format!("{MINIMAL}\n{client}")).unwrap();
    assert_eq!(config.auth.private_use_schemes, PrivateUseSchemes::Any);

    let narrowed = |schemes: &str| {
        MINIMAL.replace(
            "[[routes]]",
            &format!("[auth]\nprivate_use_redirect_schemes = {schemes}\n[[routes]]"),
        )
    };
    let config = validate(&narrowed("[\"Cursor\", \"com.example.app\"]")).unwrap();
    assert_eq!(
        config.auth.private_use_schemes,
        PrivateUseSchemes::Only(vec!["cursor".into(), "com.example.app".into()])
    );
    assert!(validate(&format!("{}\n{client}", narrowed("[\"cursor\"]"))).is_ok());
    let err = validate(&format!("{}\n{client}", narrowed("[\"vscode\"]"))).unwrap_err();
    assert!(
        err.contains("`clients[0].redirect_uris[0]`") && err.contains("one of: vscode"),
        "{err}"
    );
    let err = validate(&format!("{}\n{client}", narrowed("[]"))).unwrap_err();
    assert!(err.contains("(no app schemes)"), "{err}");

    for (bad, reason) in [
        ("[\"https\"]", "always accepted"),
        ("[\"javascript\"]", "run or read by the browser"),
        ("[\"DATA\"]", "run or read by the browser"),
        ("[\"ms-msdt\"]", "program of the operating system"),
        ("[\"smb\"]", "program of the operating system"),
        ("[\"1app\"]", "not a URI scheme"),
        ("[\"app/cb\"]", "not a URI scheme"),
        ("[\"\"]", "not a URI scheme"),
    ] {
        let err = validate(&narrowed(bad)).unwrap_err();
        assert!(
            err.contains("`auth.private_use_redirect_schemes[0]`") && err.contains(reason),
            "{bad}: {err}"
        );
    }
}

#[test]
fn a_redis_store_takes_its_url_credentials_from_the_environment_and_never_prints_them() {
    let with_store =
        |store: &str| MINIMAL.replace("[[routes]]", &format!("[store]\n{store}\n[[routes]]"));
    let text = with_store(
        "kind = \"redis\"\nurl = \"rediss://cache.internal:6380/2\"\nusername_env = \"KEY_PEM\"\n\
         password_env = \"KEY_PEM\"\ncluster = true\nkey_prefix = \"gw-a\"\nresponse_timeout = \"500ms\"",
    );
    let config = validate(&text).unwrap();
    let crate::config::StoreSettings::Redis(redis) = &config.start.store else {
        panic!("{:?}", config.start.store);
    };
    // The test's environment answers "pem" for KEY_PEM.
    assert_eq!(redis.url, "rediss://pem:pem@cache.internal:6380/2");
    assert!(redis.cluster);
    assert_eq!(redis.key_prefix, "gw-a");
    assert_eq!(
        redis.response_timeout,
        std::time::Duration::from_millis(500)
    );
    assert_eq!(redis.connect_timeout, std::time::Duration::from_secs(2));
    let printed = format!("{:?}", config.start.store);
    assert!(!printed.contains("pem"), "{printed}");
    assert_eq!(redis.printable_url(), "rediss://cache.internal:6380/2");

    for (store, needle) in [
        (
            "kind = \"redis\"",
            "`store.url`: a Redis store needs the server's URL",
        ),
        (
            "kind = \"redis\"\nurl = \"http://cache:6379\"",
            "`store.url`: must be redis://",
        ),
        (
            "kind = \"redis\"\nurl = \"redis://u:p@cache:6379\"",
            "`store.url`: holds credentials",
        ),
        (
            "kind = \"redis\"\nurl = \"redis://cache\"\npassword_env = \"NOPE\"",
            "`store.password_env`: the variable NOPE is not set",
        ),
        (
            "kind = \"redis\"\nurl = \"redis://cache\"\nkey_prefix = \"a{b}\"",
            "`store.key_prefix`",
        ),
        (
            "kind = \"redis\"\nurl = \"redis://cache\"\npath = \"x.db\"",
            "`store.path`: a Redis store has no path",
        ),
        (
            "url = \"redis://cache\"",
            "`store.url`: is only for kind = \"redis\"",
        ),
        (
            "kind = \"memory\"\ncluster = true",
            "`store.cluster`: is only for kind = \"redis\"",
        ),
    ] {
        let err = validate(&with_store(store)).unwrap_err();
        assert!(err.contains(needle), "{store}: {err}");
        assert!(!err.contains('\n'));
    }
}

#[test]
fn a_redis_store_over_tls_reads_its_certificate_files_and_names_the_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let cert = file(
        "cert.pem",
        "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n",
    );
    let key = file(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nMIIBAAAA\n-----END PRIVATE KEY-----\n",
    );
    let missing = dir.path().join("missing.pem").display().to_string();
    let with_store = |url: &str, files: &[(&str, &str)]| {
        let mut store = format!("kind = \"redis\"\nurl = \"{url}\"\n");
        for (key, path) in files {
            store += &format!("{key} = {path:?}\n");
        }
        MINIMAL.replace("[[routes]]", &format!("[store]\n{store}\n[[routes]]"))
    };
    let all = [
        ("tls_ca_file", cert.as_str()),
        ("tls_cert_file", &cert),
        ("tls_key_file", &key),
    ];
    let config = validate(&with_store("rediss://cache:6380", &all)).unwrap();
    let crate::config::StoreSettings::Redis(redis) = &config.start.store else {
        panic!("{:?}", config.start.store);
    };
    assert_eq!(
        redis.tls.ca.as_deref(),
        Some(std::fs::read(&cert).unwrap().as_slice())
    );
    assert!(redis.tls.client.is_some());
    assert!(
        config
            .describe()
            .contains("trusting the CA file, with a client certificate")
    );

    for (url, files, needle) in [
        (
            "redis://cache",
            &all[..1],
            "`store.tls_ca_file`: is only for a rediss:// (TLS) url",
        ),
        (
            "rediss://cache",
            &all[1..2],
            "`store.tls_key_file`: is needed with tls_cert_file",
        ),
        (
            "rediss://cache",
            &all[2..],
            "`store.tls_cert_file`: is needed with tls_key_file",
        ),
        (
            "rediss://cache",
            &[("tls_ca_file", missing.as_str())],
            "`store.tls_ca_file`: cannot read",
        ),
        (
            "rediss://cache",
            &[("tls_cert_file", key.as_str()), ("tls_key_file", &key)],
            "holds no PEM certificate",
        ),
        (
            "rediss://cache",
            &[("tls_cert_file", cert.as_str()), ("tls_key_file", &cert)],
            "holds no PEM private key",
        ),
    ] {
        let err = validate(&with_store(url, files)).unwrap_err();
        assert!(err.contains(needle), "{files:?}: {err}");
    }
    let on_sqlite = MINIMAL.replace(
        "[[routes]]",
        &format!("[store]\ntls_ca_file = {cert:?}\n[[routes]]"),
    );
    let err = validate(&on_sqlite).unwrap_err();
    assert!(
        err.contains("`store.tls_ca_file`: is only for kind = \"redis\""),
        "{err}"
    );
}

#[test]
fn trusted_proxies_are_addresses_or_blocks_and_name_the_header_they_write() {
    let with_server = |lines: &str| {
        MINIMAL.replace(
            "public_url = \"http://127.0.0.1:8080\"",
            &format!("public_url = \"http://127.0.0.1:8080\"\n{lines}"),
        )
    };
    let config = validate(&with_server(
        "trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\", \"fd00::/8\"]\nclient_address_header = \"forwarded\"",
    ))
    .unwrap();
    let proxies = &config.server.trusted_proxies;
    assert!(proxies.contains("10.20.30.40".parse().unwrap()));
    assert!(proxies.contains("192.0.2.7".parse().unwrap()));
    assert!(!proxies.contains("192.0.2.8".parse().unwrap()));
    assert!(proxies.contains("fd00::1".parse().unwrap()));
    assert_eq!(
        proxies.header,
        crate::config::ClientAddressHeader::Forwarded
    );
    assert!(
        config.describe().contains(
            "client address: from Forwarded when the peer is one of [10.0.0.0/8, 192.0.2.7/32, fd00::/8]"
        ),
        "{}",
        config.describe()
    );
    assert!(
        validate(MINIMAL)
            .unwrap()
            .server
            .trusted_proxies
            .networks
            .is_empty()
    );

    for (lines, needle) in [
        (
            "trusted_proxies = [\"10.0.0.0/33\"]",
            "`server.trusted_proxies[0]`: \"10.0.0.0/33\" is not an address or a CIDR block",
        ),
        (
            "trusted_proxies = [\"proxy.internal\"]",
            "`server.trusted_proxies[0]`",
        ),
        (
            "trusted_proxies = [\"10.0.0.1\"]\nclient_address_header = \"X-Real-IP\"",
            "`server.client_address_header`: \"X-Real-IP\" is neither",
        ),
        (
            "client_address_header = \"Forwarded\"",
            "`server.client_address_header`: is read only from trusted_proxies",
        ),
    ] {
        let err = validate(&with_server(lines)).unwrap_err();
        assert!(err.contains(needle), "{lines}: {err}");
    }
}

#[test]
fn an_authorization_server_off_loopback_must_be_https_unless_the_operator_says_it_is_for_development()
 {
    let with_url = |url: &str, extra: &str| {
        MINIMAL.replace(
            "public_url = \"http://127.0.0.1:8080\"",
            &format!("public_url = \"{url}\"\n{extra}"),
        )
    };
    for fine in [
        "https://mcp.example.com",
        "http://localhost:8080",
        "http://app.localhost",
        "http://127.0.0.2:8080",
        "http://[::1]:8080",
    ] {
        assert!(validate(&with_url(fine, "")).is_ok(), "{fine}");
    }
    for insecure in [
        "http://mcp.example.com",
        "http://10.0.0.5:8080",
        "http://[fd00::1]",
    ] {
        let err = validate(&with_url(insecure, "")).unwrap_err();
        assert!(
            err.contains("`server.public_url`: must be https")
                && err.contains("allow_insecure_http"),
            "{insecure}: {err}"
        );
        assert!(validate(&with_url(insecure, "allow_insecure_http = true")).is_ok());
    }
}

#[test]
fn a_backend_audience_may_not_be_a_routes_resource() {
    let text = MINIMAL.replace(
        "upstream = \"http://127.0.0.1:9000/mcp\"",
        "upstream = \"http://127.0.0.1:9000/mcp\"\nbackend_audience = \"http://127.0.0.1:8080/other\"\n\n\
         [[routes]]\npath = \"/other\"\nupstream = \"http://127.0.0.1:9001/mcp\"",
    );
    let err = validate(&text).unwrap_err();
    assert!(
        err.contains("`routes[0].backend_audience`: http://127.0.0.1:8080/other is the resource of the route /other"),
        "{err}"
    );
    // With a trailing slash it is the same resource to the token check, and to this one.
    let err = validate(&text.replace("8080/other\"\n", "8080/other/\"\n")).unwrap_err();
    assert!(err.contains("is the resource of the route /other"), "{err}");
}

#[test]
fn a_policy_naming_groups_asks_github_for_organisations_and_check_prints_the_rules() {
    let text = MINIMAL.replace(
        "[[routes]]",
        "[provider]\nkind = \"github\"\nclient_id = \"id\"\nclient_secret_env = \"SECRET\"\n\
         [store]\ntoken_key_env = \"KEY\"\n[audit]\nfile = \"audit.jsonl\"\n[[routes]]",
    ) + "scopes_supported = [\"mcp\", \"tools:admin\"]\nrequired_scopes = [\"mcp\"]\n\
         [routes.policy]\n[[routes.policy.rules]]\nname = \"team\"\neffect = \"allow\"\n\
         tools = [\"deploy_*\"]\ngroups = [\"1234/5678\"]\nscopes = [\"tools:admin\"]\n";
    let path = Path::new("conf/gw.toml");
    let file = FileConfig::parse(&text).unwrap();
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let config = Config::validate(file, path, &|name| match name {
        "SECRET" => Some("s".into()),
        "KEY" => Some(key.clone()),
        _ => None,
    })
    .unwrap();
    let Some(crate::config::Provider::GitHub(github)) = &config.auth.provider else {
        panic!("a GitHub provider");
    };
    assert!(github.groups);
    assert_eq!(github.scopes, ["read:user", "user:email", "read:org"]);
    // Names that can be renamed and taken are refused: slugs and logins.
    let env = |name: &str| match name {
        "SECRET" => Some("s".into()),
        "KEY" => Some(key.clone()),
        _ => None,
    };
    for (named, key, says) in [
        (
            text.replace("1234/5678", "acme/platform"),
            "groups",
            "\"acme/platform\": GitHub groups are named by numeric id",
        ),
        (
            text.replace("1234/5678", "acme"),
            "groups",
            "\"acme\": GitHub groups are named by numeric id",
        ),
        (
            text.replace("groups = [\"1234/5678\"]", "users = [\"octocat\"]"),
            "users",
            "\"octocat\": GitHub users are named by numeric id",
        ),
    ] {
        let error = Config::validate(FileConfig::parse(&named).unwrap(), path, &env)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("routes[0].policy.rules[0].{key}`: {says}")),
            "{error}"
        );
    }
    let by_id = text.replace(
        "groups = [\"1234/5678\"]",
        "users = [\"github:583231\", \"github:*\"]",
    );
    Config::validate(FileConfig::parse(&by_id).unwrap(), path, &env).unwrap();
    assert_eq!(
        config.start.audit,
        Some(Some(Path::new("conf/audit.jsonl").to_owned()))
    );
    let described = config.describe();
    for line in [
        "policy: rules in order, the first that matches decides",
        "team allow tools [deploy_*] groups [1234/5678] with scopes [tools:admin]",
        "otherwise deny",
        "scopes granted only to the callers their rules match: tools:admin",
        "audit trail: conf/audit.jsonl",
    ] {
        assert!(described.contains(line), "{line}: {described}");
    }
}

#[test]
fn server_tls_loads_its_files_and_names_what_is_wrong_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let key = rcgen::KeyPair::generate().unwrap();
    let other_key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_file = write("cert.pem", &cert.pem());
    let key_file = write("key.pem", &key.serialize_pem());
    let other_key_file = write("other.key", &other_key.serialize_pem());
    let missing = dir.path().join("missing.pem").display().to_string();
    let with_tls = |public_url: &str, cert: &str, key: &str| {
        MINIMAL
            .replace("http://127.0.0.1:8080", public_url)
            .replace(
                "[[routes]]",
                &format!("[server.tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n\n[[routes]]"),
            )
    };

    let config = validate(&with_tls("https://127.0.0.1:8080", &cert_file, &key_file)).unwrap();
    assert_eq!(config.server.hsts.as_deref(), Some("max-age=31536000"));
    // Strict-Transport-Security: a value to send as it is, or none; nothing else.
    let hsts = |value: &str| {
        validate(
            &with_tls("https://127.0.0.1:8080", &cert_file, &key_file).replace(
                "\n\n[[routes]]",
                &format!("\nhsts = {value:?}\n\n[[routes]]"),
            ),
        )
    };
    assert_eq!(hsts("").unwrap().server.hsts, None);
    assert_eq!(
        hsts("max-age=0").unwrap().server.hsts.as_deref(),
        Some("max-age=0")
    );
    for bad in [
        "one year",
        "max-age=",
        "max-age=1y",
        "includeSubDomains",
        " ; max-age=1",
    ] {
        let error = hsts(bad).unwrap_err();
        assert!(error.contains("`server.tls.hsts`: "), "{bad:?}: {error}");
    }
    let tls = config.server.tls.as_ref().expect("server.tls");
    assert_eq!(tls.cert_file.display().to_string(), cert_file);
    assert_eq!(tls.key_file.display().to_string(), key_file);
    assert!(
        config
            .describe()
            .contains("https (TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1)")
    );

    for (public_url, cert, key, needle) in [
        (
            "https://127.0.0.1:8080",
            cert_file.as_str(),
            other_key_file.as_str(),
            "`server.tls.key_file`: the private key in",
        ),
        (
            "https://127.0.0.1:8080",
            &key_file,
            &key_file,
            "`server.tls.cert_file`: ",
        ),
        (
            "https://127.0.0.1:8080",
            &cert_file,
            &cert_file,
            "`server.tls.key_file`: ",
        ),
        (
            "https://127.0.0.1:8080",
            &missing,
            &key_file,
            "`server.tls.cert_file`: cannot read",
        ),
        (
            "https://127.0.0.1:8080",
            &cert_file,
            &missing,
            "`server.tls.key_file`: cannot read",
        ),
        (
            "http://127.0.0.1:8080",
            &cert_file,
            &key_file,
            "`server.public_url`: is http, but server.tls",
        ),
    ] {
        let err = validate(&with_tls(public_url, cert, key)).unwrap_err();
        assert!(err.contains(needle), "{cert} {key}: {err}");
        assert!(!err.contains('\n'), "{err}");
    }
    // The mismatch names both files.
    let err = validate(&with_tls(
        "https://127.0.0.1:8080",
        &cert_file,
        &other_key_file,
    ))
    .unwrap_err();
    assert!(
        err.contains("is not the key of the first certificate in") && err.contains(&cert_file),
        "{err}"
    );
    // A key file with a certificate in it holds no key; a certificate file with a key, no certificate.
    let err = validate(&with_tls("https://127.0.0.1:8080", &cert_file, &cert_file)).unwrap_err();
    assert!(err.contains("holds no PEM private key"), "{err}");
    let err = validate(&with_tls("https://127.0.0.1:8080", &key_file, &key_file)).unwrap_err();
    assert!(err.contains("holds no PEM certificate"), "{err}");
}
