//! Tests of `[server]`: trusted proxies, HTTPS off loopback, and the listener's certificate files.

use crate::config::common_tests::{MINIMAL, validate};

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
