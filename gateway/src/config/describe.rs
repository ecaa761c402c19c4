//! What the gateway prints of its config: the banner at start, and `check`'s description. No
//! secrets.

use super::runtime::Config;

impl Config {
    /// What the gateway prints when it starts: where to connect, and how.
    pub(crate) fn banner(&self) -> String {
        let mut out = String::from("mcp-auth-gateway is up.\n");
        for route in &self.routes {
            out += &format!(
                "  MCP server   {}   ({})\n",
                route.resource, route.resource_name
            );
        }
        if let Some(addr) = self.start.listener.metrics_listen {
            out += &format!("  Metrics      http://{addr}/metrics\n");
        }
        let first = &self.routes[self.default_route].resource;
        out += &format!(
            "Connect:\n  MCP Inspector  npx @modelcontextprotocol/inspector --transport http --server-url {first}\n                 \
             (Node.js 22.19 or later), then switch the server on in the page it opens\n  \
             Claude Code    claude mcp add --transport http gateway {first}\n"
        );
        if let Some(welcome) = &self.server.welcome {
            out += welcome;
            out += "\n";
        }
        out
    }

    /// What `check` prints: every route and where things are served. No secrets.
    pub(crate) fn describe(&self) -> String {
        let mut out = format!("{}: valid\n", self.source.display());
        out += &self.describe_server();
        out += &self.describe_state();
        out += &self.describe_grants();
        for (i, route) in self.routes.iter().enumerate() {
            out += &describe_route(
                route,
                i == self.default_route,
                self.start.commands.get(&route.path),
            );
        }
        out += &match &self.start.audit {
            None => "audit trail: off\n".to_owned(),
            Some(None) => "audit trail: stdout\n".to_owned(),
            Some(Some(file)) => format!("audit trail: {}\n", file.display()),
        };
        out
    }

    /// What the token endpoint gives besides sign-ins at the browser: machine clients' tokens
    /// and enterprise-managed sign-ins, and whom it trusts for those.
    fn describe_grants(&self) -> String {
        let mut out = String::new();
        if self.auth.machine_clients {
            out += "machine clients (client_credentials) get tokens naming themselves";
            out += if self.auth.private_key_jwt {
                ", some by private_key_jwt\n"
            } else {
                "\n"
            };
        }
        if !self.auth.enterprise_issuers.is_empty() {
            let names: Vec<String> = self
                .auth
                .enterprise_issuers
                .iter()
                .map(|i| format!("{} ({})", i.name, i.issuer()))
                .collect();
            out += &format!(
                "enterprise-managed sign-ins: ID-JAGs of {}\n",
                names.join(", ")
            );
        }
        out
    }

    /// Where it listens and how: TLS, client addresses, rate limits, metrics, traces, reload.
    fn describe_server(&self) -> String {
        let mut out = String::new();
        out += &format!(
            "listen {} (public URL {}), {} threads\n",
            self.start.listener.listen, self.server.public_url, self.start.listener.threads
        );
        if let Some(tls) = &self.server.tls {
            out += &format!(
                "https (TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1) with {} and {}, re-read when they change\n",
                tls.cert_file.display(),
                tls.key_file.display()
            );
        }
        let proxies = &self.server.trusted_proxies;
        out += &if proxies.networks.is_empty() {
            "client address: the TCP peer (no trusted proxies)\n".to_owned()
        } else {
            let networks: Vec<String> = proxies.networks.iter().map(|n| n.to_string()).collect();
            let header = match proxies.header {
                super::ClientAddressHeader::XForwardedFor => "X-Forwarded-For",
                super::ClientAddressHeader::Forwarded => "Forwarded",
            };
            format!(
                "client address: from {header} when the peer is one of [{}]\n",
                networks.join(", ")
            )
        };
        let limits = &self.rate_limits;
        out += &format!(
            "rate limits a minute per client address: authorize {}, login {}, consent {}, callback {}, \
             token {}, register {}, revoke {}, introspect {}; sign-ins per user name {} (0: none)\n",
            limits.authorize,
            limits.login,
            limits.consent,
            limits.callback,
            limits.token,
            limits.register,
            limits.revoke,
            limits.introspect,
            limits.login_per_user
        );
        out += &format!(
            "metrics {}\n",
            self.start
                .listener
                .metrics_listen
                .map_or("off".into(), |a| format!("http://{a}/metrics"))
        );
        out += &match &self.start.telemetry {
            Some(t) => format!(
                "traces to {} as {} (keeping {} of those started here)\n",
                t.printable_url(),
                t.service_name,
                t.sample_ratio
            ),
            None => "traces: off\n".to_owned(),
        };
        out += &format!(
            "reload on SIGHUP{}; upgrade socket {}; grace period {:?}\n",
            if self.server.watch_config {
                " and when the config or users file changes"
            } else {
                ""
            },
            self.start.listener.upgrade_socket.as_ref().map_or(
                "mcp-auth-gateway-<port>.sock in the runtime directory".to_owned(),
                |p| p.display().to_string()
            ),
            self.start.listener.grace_period
        );
        out
    }

    /// Its tokens' issuer and signing key, and its store.
    fn describe_state(&self) -> String {
        let mut out = format!(
            "issuer {}, signing key: {:?} ({:?})\n",
            self.start.tokens.issuer, self.start.tokens.key, self.start.tokens.algorithm
        );
        out += &match &self.start.store {
            super::StoreSettings::Sqlite(path) => format!("store SQLite {}\n", path.display()),
            super::StoreSettings::Memory => "store memory (nothing kept)\n".to_owned(),
            super::StoreSettings::Redis(redis) => format!(
                "store Redis{} {} (keys {}:…){}{}\n",
                if redis.cluster { " Cluster" } else { "" },
                redis.printable_url(),
                redis.key_prefix,
                if redis.tls.ca.is_some() {
                    ", trusting the CA file"
                } else {
                    ""
                },
                if redis.tls.client.is_some() {
                    ", with a client certificate"
                } else {
                    ""
                },
            ),
        };
        out
    }
}

/// How users connect to a route's backend: as which client, asking for what, and where.
fn describe_connection(connection: &super::connections::ConnectionSettings) -> String {
    let client = match &connection.client {
        Some(client) => format!(
            "the client {} registered beforehand ({})",
            client.client_id,
            client.auth_method.as_str()
        ),
        None => "a client of its own making (its metadata document, else dynamic registration)"
            .to_owned(),
    };
    let scopes = match connection.scopes.as_slice() {
        [] => "the scopes the backend names".to_owned(),
        scopes => format!("the scopes [{}]", scopes.join(" ")),
    };
    let servers = match connection.authorization_servers.as_slice() {
        [] => "the authorization server the backend names".to_owned(),
        servers => format!("only the authorization servers {}", servers.join(", ")),
    };
    format!(
        "  each user connects their own account at the backend's authorization server: as {client}, \
         asking for {scopes}, {} the resource parameter; {servers}{}\n",
        if connection.send_resource {
            "with"
        } else {
            "without"
        },
        if connection.allow_private_network {
            "; private addresses and plain http allowed"
        } else {
            ""
        }
    )
}

/// A route: its backend, resource and scopes, its policy, its command.
fn describe_route(
    route: &super::Route,
    default: bool,
    command: Option<&super::BackendCommand>,
) -> String {
    let mut out = String::new();
    out += &format!(
        "route {} -> {}{}\n  resource {}\n  metadata {}\n  scopes required [{}] of [{}]; credentials {:?}, backend audience {}\n",
        route.path,
        route.backend.url,
        if default { " (default)" } else { "" },
        route.resource,
        route.metadata_url,
        route.required_scopes.join(" "),
        route.scopes_supported.join(" "),
        route.credentials,
        route.backend_audience,
    );
    match &route.policy {
        None => {
            out +=
                "  policy: none (every admitted caller may use every tool, resource and prompt)\n"
        }
        Some(policy) => {
            out += "  policy: rules in order, the first that matches decides\n";
            for rule in &policy.rules {
                out += &format!("    {}\n", rule.describe());
            }
            out += &format!(
                "    otherwise {}\n",
                match policy.default {
                    super::Effect::Allow => "allow",
                    super::Effect::Deny => "deny",
                }
            );
            let mut reserved: Vec<&str> = policy.restricted_scopes().collect();
            reserved.sort_unstable();
            reserved.dedup();
            if !reserved.is_empty() {
                out += &format!(
                    "    scopes granted only to the callers their rules match: {}\n",
                    reserved.join(" ")
                );
            }
        }
    }
    if let Some(connection) = &route.connection {
        out += &describe_connection(connection);
    }
    if let Some(exchange) = &route.exchange {
        let subject = match exchange.subject {
            super::SubjectToken::IdentityProvider => "their token at the identity provider",
            super::SubjectToken::Assertion => "the gateway's signed assertion",
            super::SubjectToken::Caller => "the token their issuer gave them",
        };
        out += &format!(
            "  each user's token exchanged at {} as {}, for audience {}{}, presenting {subject}\n",
            exchange.token_endpoint,
            exchange.client_id,
            exchange.audience,
            exchange
                .scope
                .as_ref()
                .map(|s| format!(" and scope {s}"))
                .unwrap_or_default(),
        );
    }
    if !route.issuers.is_empty() {
        let mut takes: Vec<String> = Vec::new();
        if route.gateway_tokens {
            takes.push("the gateway's own".into());
        }
        for issuer in &route.issuers {
            takes.push(format!(
                "{} ({}; algorithms {}{}{}{})",
                issuer.name,
                issuer.issuers.join(", "),
                issuer.algorithms.join(" "),
                if issuer.audiences.is_empty() {
                    String::new()
                } else {
                    format!("; audiences also {}", issuer.audiences.join(" "))
                },
                if issuer.require_typ {
                    "; at+jwt only"
                } else {
                    ""
                },
                if issuer.introspection.is_some() {
                    "; opaque tokens introspected"
                } else {
                    ""
                },
            ));
        }
        out += &format!("  access tokens: {}\n", takes.join("; "));
    }
    if let Some(command) = command {
        out += &format!(
            "  command: {} {}\n",
            command.program,
            command.args.join(" ")
        );
    }
    out
}
