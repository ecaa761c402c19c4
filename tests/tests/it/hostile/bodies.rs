//! Bodies aimed at the hostile suite's policy: calls of allowed and denied tools, prompts and
//! resources, lists, batches, and the shapes another JSON parser reads otherwise (keys repeated,
//! folded in case or Unicode, with a NUL, escaped; methods in another case; resource paths with dot
//! segments and encoded slashes), written by hand so that every such shape can be. And what the
//! backend behind may have run, and an answer may show: only what the policy allows.

use integration_tests::go_backend::{Arrival, Ran};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;

/// The route's policy: tools named `get_*`, the prompt `summary` and the runbooks' resources.
pub const POLICY: &str = "[routes.policy]\ndefault = \"deny\"\n\
    [[routes.policy.rules]]\neffect = \"allow\"\ntools = [\"get_*\"]\nprompts = [\"summary\"]\n\
    resources = [\"file:///srv/runbooks/*\"]\n";

/// What no list answer may show the caller: the backend's denied tool, prompt and resource.
pub const HIDDEN: &[&str] = &["delete_repo", "secret_prompt", "file:///etc/shadow"];

const TOOLS: &[&str] = &[
    "get_weather",
    "get_*",
    "delete_repo",
    "DELETE_REPO",
    "get_weather\\u0000delete_repo",
    "delete_repo\\u0000",
    "",
];
const PROMPTS: &[&str] = &["summary", "secret_prompt", "SUMMARY", "summary\\u0000"];
const URIS: &[&str] = &[
    "file:///srv/runbooks/deploy.md",
    "FILE:///srv/runbooks/%64eploy.md",
    "file:///etc/shadow",
    "file:///srv/runbooks/../../etc/shadow",
    "file:///srv/runbooks/%2e%2e/%2E%2E/etc/shadow",
    "file:///srv/runbooks/..%2F..%2Fetc%2Fshadow",
    "file:///srv/runbooks\\\\..\\\\..\\\\etc\\\\shadow",
    "file:///srv/runbooks/./deploy.md",
];
/// Keys that read as `name` (or `uri`) to a parser that folds them, or drops NULs, or unescapes.
const NAME_KEYS: &[&str] = &[
    "Name",
    "NAME",
    "nAme",
    "name\\u0000",
    "n\\u0061me",
    "\u{ff4e}\u{ff41}\u{ff4d}\u{ff45}",
    "name",
];
const URI_KEYS: &[&str] = &["Uri", "URI", "uri\\u0000", "\\u0075ri", "uri"];
/// Keys that read as the message's own fields, and what such a key says.
const TOP_KEYS: &[(&str, &str)] = &[
    ("METHOD", "\"tools/list\""),
    ("Method", "\"tools/call\""),
    ("method\\u0000", "\"prompts/list\""),
    ("Params", "{\"name\":\"delete_repo\"}"),
    ("param\u{17f}", "{\"name\":\"delete_repo\"}"),
    ("params", "{\"name\":\"delete_repo\"}"),
    ("ID", "99"),
    ("\u{ff4d}ethod", "\"tools/call\""),
];

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from.choose(rng).expect("a choice")
}

/// One message, as JSON text.
fn message(rng: &mut StdRng, id: u32) -> String {
    let (method, mut params): (&str, Vec<(String, String)>) = match rng.gen_range(0..10) {
        0..=2 => (
            "tools/call",
            vec![
                ("name".into(), format!("\"{}\"", pick(rng, TOOLS))),
                ("arguments".into(), "{\"a\":1,\"A\":2}".into()),
            ],
        ),
        3 => (
            "prompts/get",
            vec![("name".into(), format!("\"{}\"", pick(rng, PROMPTS)))],
        ),
        4 | 5 => (
            "resources/read",
            vec![("uri".into(), format!("\"{}\"", pick(rng, URIS)))],
        ),
        6 => {
            let reference = if rng.gen_bool(0.5) {
                format!(
                    "{{\"type\":\"ref/prompt\",\"name\":\"{}\"}}",
                    pick(rng, PROMPTS)
                )
            } else {
                format!(
                    "{{\"type\":\"ref/resource\",\"uri\":\"{}\"}}",
                    pick(rng, URIS)
                )
            };
            (
                "completion/complete",
                vec![
                    ("ref".into(), reference),
                    ("argument".into(), "{\"name\":\"a\",\"value\":\"\"}".into()),
                ],
            )
        }
        7 => (
            *["tools/list", "prompts/list", "resources/list"]
                .choose(rng)
                .unwrap(),
            Vec::new(),
        ),
        8 => (
            *["Tools/Call", "TOOLS/CALL", "tools/call ", "ping"]
                .choose(rng)
                .unwrap(),
            vec![("name".into(), "\"delete_repo\"".into())],
        ),
        _ => ("notifications/initialized", Vec::new()),
    };
    // A second key another parser reads as the name or URI.
    if rng.gen_bool(0.3) {
        let (keys, value) = if method == "resources/read" {
            (URI_KEYS, "\"file:///etc/shadow\"")
        } else {
            (NAME_KEYS, "\"delete_repo\"")
        };
        params.push((pick(rng, keys).to_owned(), value.to_owned()));
    }
    let mut fields: Vec<(String, String)> = vec![("jsonrpc".into(), "\"2.0\"".into())];
    if !method.starts_with("notifications/") {
        fields.push(("id".into(), id.to_string()));
    }
    fields.push(("method".into(), format!("\"{method}\"")));
    if !params.is_empty() || rng.gen_bool(0.2) {
        fields.push(("params".into(), object(&params)));
    }
    // A top-level key another parser reads as one of the message's own.
    if rng.gen_bool(0.2) {
        let (key, value) = TOP_KEYS.choose(rng).unwrap();
        fields.push(((*key).to_owned(), (*value).to_owned()));
    }
    if rng.gen_bool(0.5) {
        fields.shuffle(rng);
    }
    object(&fields)
}

fn object(fields: &[(String, String)]) -> String {
    let inner: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("\"{key}\":{value}"))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A body of one message, or a batch of a few.
pub fn body(rng: &mut StdRng) -> String {
    if rng.gen_bool(0.25) {
        let messages: Vec<String> = (0..rng.gen_range(1..5))
            .map(|i| message(rng, i + 1))
            .collect();
        format!("[{}]", messages.join(","))
    } else {
        message(rng, 1)
    }
}

/// Whether a resource URI the backend read is one the policy allows: in the runbooks, by a path
/// every server reads alike.
fn runbook(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    lower.starts_with("file:///srv/runbooks/")
        && !["..", "/./", "%2e", "%2f", "%5c", "\\"]
            .iter()
            .any(|bad| lower.contains(bad))
}

/// Whether what the backend ran (as a Go server reads a message) is something the policy allows.
pub fn allowed(ran: &Ran) -> bool {
    match ran.method.as_str() {
        "tools/call" => ran.name.starts_with("get_") && !ran.name.contains('\0'),
        "prompts/get" => ran.name == "summary",
        "resources/read" | "resources/subscribe" => runbook(&ran.uri),
        "completion/complete" => {
            (ran.name.is_empty() || ran.name == "summary")
                && (ran.uri.is_empty() || runbook(&ran.uri))
        }
        _ => true,
    }
}

/// Whether a request that reached the backend may have: a POST to the route's backend, or another
/// method's request without a body (a GET of a stream). Nothing smuggled, nothing unread.
pub fn expected(arrival: &Arrival) -> bool {
    arrival.path == "/mcp" && (arrival.method == "POST" || arrival.body == 0)
}

/// Whether an answer shows something the caller may not see: a list item the policy hides, or
/// the result of a denied call.
pub fn shows_hidden(answer: &str) -> bool {
    answer.contains("\"result\"")
        && (HIDDEN.iter().any(|h| {
            answer.contains(&format!("\"name\":\"{h}\""))
                || answer.contains(&format!("\"uri\":\"{h}\""))
        }) || answer.contains("ran delete_repo"))
}
