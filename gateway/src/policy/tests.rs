use super::*;
use crate::config::Config;
use crate::config::file::FileConfig;

/// The policy of a route `/mcp` offering `mcp`, `tools:admin` and `files:write`, whose
/// `[routes.policy]` section is `policy`.
fn policy(policy: &str) -> Result<Policy, String> {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"http://127.0.0.1:1\"\n\
         [[routes]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:9/mcp\"\n\
         scopes_supported = [\"mcp\", \"tools:admin\", \"files:write\"]\nrequired_scopes = [\"mcp\"]\n\
         [routes.policy]\n{policy}"
    );
    let path = std::path::Path::new("gw.toml");
    let file = FileConfig::parse(&text).map_err(|(_, reason)| reason)?;
    let config = Config::validate(file, path, &|_| None).map_err(|e| e.to_string())?;
    Ok(config.routes[0].policy.clone().expect("a policy"))
}

fn caller<'a>(sub: &'a str, groups: &'a [String], scope: &'a str) -> Caller<'a> {
    Caller {
        sub,
        name: sub,
        email: "".into(),
        groups,
        groups_truncated: false,
        client_id: "c1",
        scope,
    }
}

/// A decision as the audit trail has it: its outcome and the rule that made it.
fn said(policy: &Policy, decision: &Decision) -> String {
    format!("{} {}", decision.outcome(), decision.reason().name(policy))
}

fn tool(name: &str) -> Target<'_> {
    Target {
        kind: Kind::Tool,
        name,
    }
}

const RULES: &str = r#"
default = "deny"
[[routes.policy.rules]]
name = "no-deletes-for-contractors"
effect = "deny"
tools = ["delete_*"]
groups = ["contractors"]
[[routes.policy.rules]]
name = "admins"
effect = "allow"
tools = ["delete_*", "admin_*"]
groups = ["admins"]
scopes = ["tools:admin"]
[[routes.policy.rules]]
name = "readers"
effect = "allow"
tools = ["get_*", "list_*"]
resources = ["file:///public/*"]
[[routes.policy.rules]]
name = "bob-echo"
effect = "allow"
tools = ["echo"]
users = ["bob"]
"#;

#[test]
fn the_first_rule_that_matches_decides() {
    let policy = policy(RULES).unwrap();
    let none: Vec<String> = vec![];
    let admins = vec!["admins".to_owned()];
    let both = vec!["contractors".to_owned(), "admins".to_owned()];
    let d = |c: &Caller, t| said(&policy, &decide(&policy, c, "tools/call", t));

    assert_eq!(
        d(&caller("ada", &none, "mcp"), tool("get_weather")),
        "allow readers"
    );
    assert_eq!(
        d(
            &caller("ada", &admins, "mcp tools:admin"),
            tool("delete_repo")
        ),
        "allow admins"
    );
    assert_eq!(
        d(
            &caller("ada", &both, "mcp tools:admin"),
            tool("delete_repo")
        ),
        "deny no-deletes-for-contractors",
        "the deny rule comes first"
    );
    assert_eq!(
        d(&caller("ada", &none, "mcp"), tool("delete_repo")),
        "deny default"
    );
    assert_eq!(
        d(&caller("bob", &none, "mcp"), tool("echo")),
        "allow bob-echo"
    );
    assert_eq!(
        d(&caller("carol", &none, "mcp"), tool("echo")),
        "deny default"
    );
    // Resources and prompts are matched by their own lists.
    let resource = |name| Target {
        kind: Kind::Resource,
        name,
    };
    let prompt = |name| Target {
        kind: Kind::Prompt,
        name,
    };
    let ada = caller("ada", &none, "");
    assert_eq!(d(&ada, resource("file:///public/a/b.txt")), "allow readers");
    assert_eq!(d(&ada, resource("file:///private/a")), "deny default");
    assert_eq!(d(&ada, prompt("get_x")), "deny default");
}

#[test]
fn a_missing_scope_that_would_allow_asks_for_a_step_up() {
    let policy = policy(RULES).unwrap();
    let admins = vec!["admins".to_owned()];
    assert_eq!(
        decide(
            &policy,
            &caller("ada", &admins, "mcp"),
            "tools/call",
            tool("admin_reset")
        ),
        Decision::StepUp {
            scopes: &["tools:admin".to_owned()],
            rule: 1
        }
    );
    // Only those the rule matches may step up, and be granted the scope.
    assert!(may_be_granted(
        &policy,
        &caller("ada", &admins, ""),
        "tools:admin"
    ));
    assert!(!may_be_granted(
        &policy,
        &caller("eve", &[], ""),
        "tools:admin"
    ));
    assert!(
        may_be_granted(&policy, &caller("eve", &[], ""), "files:write"),
        "not reserved"
    );
    assert!(may_be_granted(&policy, &caller("eve", &[], ""), "mcp"));
}

#[test]
fn identities_match_by_user_name_email_client_and_expression() {
    let policy = policy(
        r#"
[[routes.policy.rules]]
effect = "allow"
emails = ["*@Example.com"]
tools = ["mail"]
[[routes.policy.rules]]
effect = "allow"
clients = ["c1"]
tools = ["client_tool"]
[[routes.policy.rules]]
effect = "allow"
tools = ["ops_*"]
when = 'user.groups.exists(g, g.endsWith("-ops")) && mcp.name != "ops_nuke"'
[[routes.policy.rules]]
effect = "deny"
when = 'user.department == "x"'
[[routes.policy.rules]]
effect = "allow"
tools = ["after_a_broken_deny"]
"#,
    )
    .unwrap();
    let mut ada = caller("ada", &[], "mcp");
    let d = |c: &Caller, t| decide(&policy, c, "tools/call", t).allows();
    assert!(!d(&ada, tool("mail")), "no verified email");
    ada.email = "ada@example.com".into();
    assert!(d(&ada, tool("mail")));
    assert!(d(&ada, tool("client_tool")));
    ada.client_id = "c2";
    assert!(!d(&ada, tool("client_tool")));
    let ops = vec!["db-ops".to_owned()];
    assert!(d(&caller("ada", &ops, ""), tool("ops_restart")));
    assert!(!d(&caller("ada", &ops, ""), tool("ops_nuke")));
    assert!(!d(&caller("ada", &[], ""), tool("ops_restart")));
    assert!(
        !d(&caller("ada", &[], ""), tool("after_a_broken_deny")),
        "a deny rule whose expression fails holds"
    );
}

#[test]
fn rules_that_cannot_match_are_refused_with_the_reason() {
    for (rules, expected) in [
        (
            "[[routes.policy.rules]]\neffect = \"allow\"\ntools = []\n",
            "rules[0].tools`: an empty list matches nothing",
        ),
        (
            "[[routes.policy.rules]]\neffect = \"allow\"\ngroups = []\n",
            "rules[0].groups`: an empty list",
        ),
        (
            "[[routes.policy.rules]]\neffect = \"allow\"\ntools = [\"a\"]\nscopes = [\"nope\"]\n",
            "\"nope\" is not in the route's scopes_supported",
        ),
        (
            "[[routes.policy.rules]]\neffect = \"allow\"\nscopes = [\"mcp\"]\n",
            "\"mcp\" is a required scope",
        ),
        (
            "[[routes.policy.rules]]\neffect = \"deny\"\ntools = [\"*\"]\n\
             [[routes.policy.rules]]\neffect = \"allow\"\ntools = [\"echo\"]\ngroups = [\"a\"]\n",
            "rules[1]`: can never match: rules[0] before it",
        ),
        (
            "[[routes.policy.rules]]\neffect = \"deny\"\ntools = [\"a\", \"b\"]\n\
             [[routes.policy.rules]]\nname = \"late\"\neffect = \"allow\"\ntools = [\"b\"]\n",
            "rules[1]`: can never match",
        ),
        (
            "[[routes.policy.rules]]\neffect = \"allow\"\ntools = [\"a\", \"\"]\n",
            "rules[0].tools`: an empty name matches nothing",
        ),
        (
            "[[routes.policy.rules]]\neffect = \"allow\"\nwhen = \"request.ip == 1\"\n",
            "rules[0].when`: request is not a variable here",
        ),
        (
            "[[routes.policy.rules]]\neffect = \"allow\"\nwhen = \"user.groups.exists(\"\n",
            "rules[0].when`: not a CEL expression",
        ),
        ("default = \"maybe\"\n", "unknown variant"),
        (
            "[[routes.policy.rules]]\neffect = \"allow\"\ntool = [\"a\"]\n",
            "unknown field `tool`",
        ),
    ] {
        let error = policy(rules).unwrap_err();
        assert!(error.contains(expected), "{rules}: {error}");
    }
    // A rule narrower in who it matches is no shadow, nor is one about other things.
    policy(
        "[[routes.policy.rules]]\neffect = \"deny\"\ntools = [\"a\"]\ngroups = [\"x\"]\n\
         [[routes.policy.rules]]\neffect = \"allow\"\ntools = [\"a\"]\n\
         [[routes.policy.rules]]\neffect = \"allow\"\nprompts = [\"a\"]\n",
    )
    .unwrap();
}

#[test]
fn without_rules_the_default_decides() {
    let deny = policy("").unwrap();
    assert_eq!(deny.default, Effect::Deny);
    assert!(!decide(&deny, &caller("a", &[], ""), "tools/call", tool("x")).allows());
    let allow = policy("default = \"allow\"\n").unwrap();
    assert!(decide(&allow, &caller("a", &[], ""), "tools/call", tool("x")).allows());
}

/// Names that cannot be taken: users by `sub` only (a display name can be edited to anyone's); a
/// user whose groups were cut short meets every rule that denies by group, and no rule that allows
/// by group they were not seen in.
#[test]
fn users_match_by_sub_and_a_short_group_list_meets_every_deny() {
    let rules = policy(RULES).unwrap();
    let none: Vec<String> = vec![];
    let admins = vec!["admins".to_owned()];
    let d = |c: &Caller, t| said(&rules, &decide(&rules, c, "tools/call", t));
    let carol_named_bob = Caller {
        name: "bob",
        ..caller("carol", &none, "mcp")
    };
    assert_eq!(d(&carol_named_bob, tool("echo")), "deny default");
    let cut_short = Caller {
        groups_truncated: true,
        ..caller("ada", &admins, "mcp tools:admin")
    };
    assert_eq!(
        d(&cut_short, tool("delete_repo")),
        "deny no-deletes-for-contractors",
        "maybe a contractor too"
    );
    assert_eq!(d(&cut_short, tool("admin_x")), "allow admins");
    let no_groups_cut_short = Caller {
        groups_truncated: true,
        ..caller("ada", &none, "mcp tools:admin")
    };
    assert_eq!(d(&no_groups_cut_short, tool("admin_x")), "deny default");
    // A deny rule's `when` about the user holds for one whose groups were cut short.
    let when = policy(
        "default = \"allow\"\n[[routes.policy.rules]]\nname = \"no-interns\"\neffect = \"deny\"\n\
         tools = [\"deploy\"]\nwhen = 'user.groups.exists(g, g == \"interns\")'\n",
    )
    .unwrap();
    let decided = |c: &Caller| said(&when, &decide(&when, c, "tools/call", tool("deploy")));
    assert_eq!(decided(&caller("ada", &admins, "mcp")), "allow default");
    assert_eq!(
        decided(&Caller {
            groups_truncated: true,
            ..caller("ada", &admins, "mcp")
        }),
        "deny no-interns"
    );
}

/// Resource URIs are compared normalised (RFC 3986 §6), and one a rule names that servers read
/// differently as a path is refused, before any rule, even where a rule would allow it.
#[test]
fn resource_uris_are_normalised_and_dot_segments_refused_where_a_rule_names_them() {
    let policy = policy(
        "default = \"allow\"\n\
         [[routes.policy.rules]]\nname = \"no-etc\"\neffect = \"deny\"\nresources = [\"FILE:///etc/*\"]\n\
         [[routes.policy.rules]]\nname = \"runbooks\"\neffect = \"allow\"\nresources = [\"file:///srv/runbooks/*\"]\n",
    )
    .unwrap();
    let none: Vec<String> = vec![];
    let ada = caller("ada", &none, "mcp");
    let d = |name| {
        let target = Target {
            kind: Kind::Resource,
            name,
        };
        said(&policy, &decide(&policy, &ada, "resources/read", target))
    };
    assert_eq!(d("file:///etc/passwd"), "deny no-etc");
    assert_eq!(
        d("File:///%65tc/passwd"),
        "deny no-etc",
        "an encoded letter"
    );
    assert_eq!(d("file:///srv/runbooks/deploy.md"), "allow runbooks");
    for sneaky in [
        "file:///srv/runbooks/../../etc/shadow",
        "file:///srv/runbooks/%2e%2e/%2E%2E/etc/shadow",
        "file:///srv/runbooks/..%2F..%2Fetc%2Fshadow",
        "file:///srv/runbooks\\..\\..\\etc\\shadow",
        "file:///tmp/../etc/shadow",
    ] {
        assert_eq!(d(sneaky), "deny ambiguous_uri", "{sneaky}");
    }
    // Where no rule leads, the default decides as for any other URI.
    assert_eq!(d("file:///home/x/../y"), "allow default");
}

#[test]
fn a_deny_rule_cannot_be_about_scopes() {
    let error = policy(
        "[[routes.policy.rules]]\neffect = \"deny\"\ntools = [\"x\"]\nscopes = [\"tools:admin\"]\n",
    )
    .unwrap_err();
    assert!(
        error.contains("a deny rule cannot be about scopes"),
        "{error}"
    );
}
