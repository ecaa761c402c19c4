//! What starts the process: how it listens, its store, its signing keys, the key that seals the
//! identity provider's tokens, its audit trail, where its traces go, and the MCP servers it starts
//! for `command` routes. It is fixed for the life of the process: a reload compares the next one
//! with it only to name what needs a restart ([`Start::differences`]), and keeps it whole.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::routes::BackendCommand;
use super::server::Listener;
use super::store::StoreSettings;
use super::telemetry::TelemetrySettings;
use super::tokens::TokenSettings;

#[derive(Clone, PartialEq)]
pub(crate) struct Start {
    pub listener: Listener,
    pub store: StoreSettings,
    pub tokens: TokenSettings,
    /// `store.token_key_env`: the key that seals the identity provider's tokens at rest, with
    /// GitHub or OpenID Connect (those in the store were sealed with it).
    pub token_key: Option<[u8; 32]>,
    /// The audit trail of policy decisions: `Some(None)` is stdout.
    pub audit: Option<Option<PathBuf>>,
    /// Where traces go, if anywhere.
    pub telemetry: Option<TelemetrySettings>,
    /// The MCP server each `command` route starts, by the route's path.
    pub commands: BTreeMap<String, BackendCommand>,
}

impl std::fmt::Debug for Start {
    /// All but the key that seals tokens, which is said to be set or not.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Start")
            .field("listener", &self.listener)
            .field("store", &self.store)
            .field("tokens", &self.tokens)
            .field("token_key", &self.token_key.map(|_| "set"))
            .field("audit", &self.audit)
            .field("telemetry", &self.telemetry)
            .field("commands", &self.commands)
            .finish()
    }
}

impl Start {
    /// The keys whose value `next` changes: what only a restart applies.
    pub(crate) fn differences(&self, next: &Start) -> Vec<&'static str> {
        let (now, then) = (&self.listener, &next.listener);
        [
            ("server.listen", now.listen != then.listen),
            ("server.threads", now.threads != then.threads),
            ("server.grace_period", now.grace_period != then.grace_period),
            ("metrics.listen", now.metrics_listen != then.metrics_listen),
            (
                "limits.http2_idle_timeout",
                now.http2_idle_timeout != then.http2_idle_timeout,
            ),
            (
                "server.upgrade_socket",
                now.upgrade_socket != then.upgrade_socket,
            ),
            // The certificate files may change; HTTPS cannot be turned on or off.
            ("server.tls", now.https != then.https),
            ("store", self.store != next.store),
            ("tokens", self.tokens != next.tokens),
            ("audit", self.audit != next.audit),
            ("telemetry", self.telemetry != next.telemetry),
            // Another key: those in the store were sealed with this one. A key first set now has
            // sealed nothing yet, and is taken ([`super::Config::reloaded`]); none, with a provider
            // that keeps no tokens, needs none.
            (
                "store.token_key_env",
                matches!((self.token_key, next.token_key), (Some(now), Some(then)) if now != then),
            ),
            // Each route's command, whatever the routes' order.
            ("routes.command", self.commands != next.commands),
        ]
        .into_iter()
        .filter_map(|(key, differs)| differs.then_some(key))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::file::FileConfig;
    use crate::config::{Config, Loaded};

    const ROUTE: &str = "[[routes]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:9000/mcp\"\n";

    fn loaded(text: &str) -> Loaded {
        let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
        let other = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32]);
        let env = |name: &str| match name {
            "SECRET" => Some("s".to_owned()),
            "KEY" => Some(key.clone()),
            "OTHER_KEY" => Some(other.clone()),
            _ => None,
        };
        Loaded::validate(FileConfig::parse(text).unwrap(), Path::new("gw.toml"), &env).unwrap()
    }

    fn server(listen: &str, threads: u32) -> String {
        format!(
            "[server]\nlisten = \"{listen}\"\npublic_url = \"http://127.0.0.1:8080\"\nthreads = {threads}\n"
        )
    }

    #[test]
    fn a_reload_swaps_the_live_part_keeps_the_start_part_and_names_what_differs() {
        let (running, _) = Config::starting(loaded(&(server("127.0.0.1:8080", 2) + ROUTE)));
        let next = server("127.0.0.1:9090", 4)
            + "[store]\nkind = \"memory\"\n"
            + ROUTE
            + "[[routes]]\npath = \"/other\"\nupstream = \"http://127.0.0.1:9001/mcp\"\n\
               command = { program = \"mcp-backend\" }\n";
        let reloaded = running.reloaded(loaded(&next));
        assert_eq!(
            reloaded.restart,
            ["server.listen", "server.threads", "store", "routes.command"]
        );
        // The start part is the running one, whole; the routes are the next file's.
        assert_eq!(*reloaded.config.start, *running.start);
        assert_eq!(reloaded.config.start.listener.listen.port(), 8080);
        let paths: Vec<&str> = reloaded
            .config
            .routes
            .iter()
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(paths, ["/mcp", "/other"]);
        // The same file again changes nothing that needs a restart.
        let again = running.reloaded(loaded(&(server("127.0.0.1:8080", 2) + ROUTE)));
        assert!(again.restart.is_empty(), "{:?}", again.restart);
    }

    #[test]
    fn command_routes_in_another_order_change_nothing() {
        let route = |path: &str, program: &str| {
            format!(
                "[[routes]]\npath = \"{path}\"\nupstream = \"http://127.0.0.1:9000{path}\"\n\
                 command = {{ program = \"{program}\" }}\n"
            )
        };
        let gateway = server("127.0.0.1:8080", 2);
        let (running, _) = Config::starting(loaded(
            &(gateway.clone() + &route("/a", "a") + &route("/b", "b")),
        ));
        // The same commands of the same routes, listed the other way round.
        let reordered = gateway.clone() + &route("/b", "b") + &route("/a", "a");
        assert!(running.reloaded(loaded(&reordered)).restart.is_empty());
        // Commands swapped between the routes.
        let swapped = gateway + &route("/a", "b") + &route("/b", "a");
        assert_eq!(
            running.reloaded(loaded(&swapped)).restart,
            ["routes.command"]
        );
    }

    #[test]
    fn a_key_to_seal_tokens_is_taken_when_first_set_and_kept_once_set() {
        let (running, _) = Config::starting(loaded(&(server("127.0.0.1:8080", 2) + ROUTE)));
        assert!(running.start.token_key.is_none());
        let github = |key_env: &str| {
            server("127.0.0.1:8080", 2)
                + "[provider]\nkind = \"github\"\nclient_id = \"id\"\nclient_secret_env = \"SECRET\"\n"
                + &format!("[store]\ntoken_key_env = \"{key_env}\"\n")
                + ROUTE
        };
        let reloaded = running.reloaded(loaded(&github("KEY")));
        assert!(reloaded.restart.is_empty(), "{:?}", reloaded.restart);
        assert_eq!(reloaded.config.start.token_key, Some([7u8; 32]));
        // Once set, another key is named and the one the store's tokens were sealed with stays.
        let again = reloaded.config.reloaded(loaded(&github("OTHER_KEY")));
        assert_eq!(again.restart, ["store.token_key_env"]);
        assert_eq!(again.config.start.token_key, Some([7u8; 32]));
    }
}
