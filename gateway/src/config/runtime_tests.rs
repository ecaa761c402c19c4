use std::path::Path;

use super::*;
use crate::config::common_tests::{MINIMAL, validate};
use crate::config::file::FileConfig;
use crate::config::server::DEFAULT_METRICS_LISTEN;
use crate::config::{Credentials, PrivateUseSchemes};

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
fn a_client_id_the_gateway_reserves_for_its_own_sign_ins_is_refused() {
    let client =
        "[[clients]]\nclient_id = \"_account\"\nredirect_uris = [\"https://app.example/cb\"]\n";
    let err = validate(&format!("{MINIMAL}\n{client}")).unwrap_err();
    assert!(
        err.contains("`clients[0].client_id`") && err.contains("must not start with `_`"),
        "{err}"
    );
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

/// MINIMAL with an `[[issuers]]` entry named "idp" (with `issuer_extra` lines), and `route_lines`
/// in its route (default: taking its tokens).
fn with_issuer(issuer_extra: &str, route_lines: &str) -> String {
    let route_lines = if route_lines.contains("issuers") {
        route_lines.to_owned()
    } else {
        format!("issuers = [\"idp\"]\n{route_lines}")
    };
    MINIMAL.replace(
        "[[routes]]",
        &format!(
            "[[issuers]]\nname = \"idp\"\nissuer = \"https://idp.example/realms/mcp\"\n{issuer_extra}\n\
             [[routes]]\n{route_lines}\n"
        ),
    )
}

#[test]
fn a_route_takes_the_tokens_of_the_issuers_it_names() {
    let config = validate(&with_issuer("", "gateway_tokens = false")).unwrap();
    let route = &config.routes[0];
    assert!(!route.gateway_tokens);
    assert_eq!(route.issuers[0].issuer(), "https://idp.example/realms/mcp");
    assert_eq!(
        route.issuers[0].algorithms,
        ["RS256", "PS256", "ES256", "EdDSA"]
    );
    assert_eq!(route.issuers[0].subject_claim, "sub");
    assert!(
        config
            .describe()
            .contains("access tokens: idp (https://idp.example/realms/mcp")
    );
    assert!(validate(&with_issuer("", "")).unwrap().routes[0].gateway_tokens);
}

#[test]
fn an_issuer_that_cannot_be_trusted_as_written_is_refused_at_its_key() {
    for (issuer_extra, route_extra, key, reason) in [
        (
            "algorithms = [\"HS256\"]",
            "",
            "issuers[0].algorithms[0]",
            "only signatures by a private key",
        ),
        (
            "algorithms = [\"none\"]",
            "",
            "issuers[0].algorithms[0]",
            "only signatures by a private key",
        ),
        (
            "algorithms = []",
            "",
            "issuers[0].algorithms",
            "at least one",
        ),
        (
            "jwks_uri = \"http://idp.example/keys\"",
            "",
            "issuers[0].jwks_uri",
            "must be https",
        ),
        (
            "also_issuers = [\"ftp://x\"]",
            "",
            "issuers[0].also_issuers[0]",
            "must be https",
        ),
        (
            "audiences = [\"\"]",
            "",
            "issuers[0].audiences[0]",
            "must not be empty",
        ),
        (
            "subject_claim = \" \"",
            "",
            "issuers[0].subject_claim",
            "must not be empty",
        ),
        (
            "",
            "issuers = [\"other\"]",
            "routes[0].issuers[0]",
            "no [[issuers]] entry is named \"other\"",
        ),
        (
            "",
            "gateway_tokens = false\nissuers = []",
            "routes[0].gateway_tokens",
            "would accept no token",
        ),
    ] {
        let err = validate(&with_issuer(issuer_extra, route_extra)).unwrap_err();
        assert!(
            err.contains(&format!("`{key}`")) && err.contains(reason),
            "{issuer_extra} {route_extra}: {err}"
        );
    }
    let twice = with_issuer("", "").replace(
        "[[routes]]",
        "[[issuers]]\nname = \"idp\"\nissuer = \"https://other.example\"\n[[routes]]",
    );
    assert!(validate(&twice).unwrap_err().contains("`issuers[1].name`"));
    // Over plain http only where private networks are allowed.
    let local = "issuer = \"http://127.0.0.1:8080/realms/mcp\"\nallow_private_network = true";
    let text = with_issuer("", "").replace("issuer = \"https://idp.example/realms/mcp\"", local);
    assert!(validate(&text).is_ok(), "{text}");
}
