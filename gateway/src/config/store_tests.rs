//! Tests of `[store]`: a Redis store's credentials and TLS files, and what is never printed.

use crate::config::common_tests::{MINIMAL, validate};

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
