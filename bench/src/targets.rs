//! The servers of a bench run, each on a free port with one worker thread: the static upstream (nginx),
//! and the proxies in front of it — nginx `proxy_pass`, a bare Pingora, HAProxy checking the JWT, and
//! `mcp-auth-gateway` — plus the gateway's real backend and an upstream that holds SSE streams open.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use integration_tests::free_port;

use crate::procs::Proc;

/// What the static upstream answers to every `POST /mcp`: a JSON-RPC `tools/call` result.
pub const TOOL_RESULT: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}],"isError":false}}"#;

/// A started server and where to reach it.
pub struct Target {
    pub proc: Proc,
    pub port: u16,
}

impl Target {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// The directory a run keeps its configs, keys and logs in.
pub struct Workdir {
    pub dir: PathBuf,
}

impl Workdir {
    fn write(&self, name: &str, text: &str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    async fn start(&self, name: &str, program: &Path, args: &[&str], port: u16) -> Result<Target> {
        let mut proc = Proc::start(name, program, args, &[], &self.dir)?;
        proc.wait_port(port).await?;
        Ok(Target { proc, port })
    }

    /// The same, under `wrapper` (a program and its arguments, taking this one's command line after
    /// them) when it is not empty.
    async fn start_under(
        &self,
        wrapper: &[String],
        name: &str,
        program: &Path,
        args: &[&str],
        port: u16,
    ) -> Result<Target> {
        let Some((outer, outer_args)) = wrapper.split_first() else {
            return self.start(name, program, args, port).await;
        };
        let program = program.display().to_string();
        let mut all: Vec<&str> = outer_args.iter().map(String::as_str).collect();
        all.push(&program);
        all.extend_from_slice(args);
        self.start(name, Path::new(outer), &all, port).await
    }

    /// The part of an nginx config every instance shares: foreground, one worker, files in the workdir.
    fn nginx_main(&self, name: &str, http: &str) -> String {
        format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\npid {pid};\nerror_log {err} warn;\n\
             events {{ worker_connections 16384; }}\n\
             http {{\n  client_body_temp_path {tmp};\n  proxy_temp_path {tmp};\n  \
             keepalive_requests 10000000;\n{http}\n}}\n",
            pid = self.path(&format!("{name}.pid")),
            err = self.path(&format!("{name}.error.log")),
            tmp = self.dir.display(),
        )
    }

    /// Starts an nginx named `name` whose `http` block holds `http`, listening on `port`.
    async fn nginx(&self, nginx: &Path, name: &str, http: &str, port: u16) -> Result<Target> {
        let conf = self.write(&format!("{name}.conf"), &self.nginx_main(name, http))?;
        self.start(
            name,
            nginx,
            &["-c", conf.to_str().unwrap(), "-p", &self.path("")],
            port,
        )
        .await
    }

    /// The upstream: nginx answering every `/mcp` request with [`TOOL_RESULT`].
    pub async fn upstream(&self, nginx: &Path) -> Result<Target> {
        let port = free_port();
        let http = format!(
            "  access_log off;\n  server {{\n    listen 127.0.0.1:{port};\n    \
             location /mcp {{ default_type application/json; return 200 '{TOOL_RESULT}'; }}\n  }}"
        );
        self.nginx(nginx, "upstream", &http, port).await
    }

    /// b: nginx `proxy_pass` to the upstream over kept-alive connections, logging each request.
    pub async fn nginx_proxy(&self, nginx: &Path, upstream: u16) -> Result<Target> {
        let port = free_port();
        let http = format!(
            "  access_log {log};\n  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}\n  \
             server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://up;\n      \
             proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}",
            log = self.path("nginx-proxy.access.log"),
        );
        self.nginx(nginx, "nginx-proxy", &http, port).await
    }

    /// p: the bare Pingora pass-through.
    pub async fn pingora(
        &self,
        name: &str,
        program: &Path,
        upstream: u16,
        wrapper: &[String],
    ) -> Result<Target> {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let to = format!("127.0.0.1:{upstream}");
        self.start_under(wrapper, name, program, &[&listen, &to, "1"], port)
            .await
    }

    /// h: HAProxy checking the ES256 JWT (signature, `alg`, `exp`, `iss`, `aud`) with `jwt_verify`, passing
    /// the subject on, dropping the client's credentials, and logging each request.
    pub async fn haproxy(
        &self,
        haproxy: &Path,
        upstream: u16,
        public_key: &Path,
        issuer: &str,
        audience: &str,
    ) -> Result<Target> {
        let port = free_port();
        let conf = format!(
            r#"global
  nbthread 1
  maxconn 4096
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend mcp
  bind 127.0.0.1:{port}
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request deny deny_status 401 unless {{ var(txn.alg) -m str ES256 }}
  http-request deny deny_status 401 unless {{ var(txn.bearer),jwt_verify(txn.alg,"{key}") -m int 1 }}
  http-request set-var(txn.now) date()
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request deny deny_status 401 if {{ var(txn.exp),sub(txn.now) -m int lt 0 }}
  http-request deny deny_status 401 unless {{ var(txn.bearer),jwt_payload_query('$.iss') -m str {issuer} }}
  http-request deny deny_status 401 unless {{ var(txn.bearer),jwt_payload_query('$.aud') -m str {audience} }}
  http-request set-header X-Forwarded-User %[var(txn.bearer),jwt_payload_query('$.sub')]
  http-request del-header Authorization
  default_backend upstream
backend upstream
  server up 127.0.0.1:{upstream}
"#,
            key = public_key.display(),
        );
        let conf = self.write("haproxy.cfg", &conf)?;
        self.start(
            "haproxy",
            haproxy,
            &["-db", "-f", conf.to_str().unwrap()],
            port,
        )
        .await
    }

    /// c: `mcp-auth-gateway` with one worker thread, the ES256 key the bench mints tokens with, the `local`
    /// provider and the `sqlite` store; `/mcp` goes to the static upstream, `/backend` to `mcp-backend` and
    /// `/sse` to the stream holder.
    pub async fn gateway(
        &self,
        name: &str,
        program: &Path,
        signing_key: &Path,
        routes: &GatewayRoutes,
        store: &Store,
        wrapper: &[String],
    ) -> Result<(Target, u16)> {
        // Long because most of it is the config file, kept whole so that it reads as the file does.
        let port = free_port();
        let metrics = free_port();
        let users = crate::workspace().join("config/users/quickstart.toml");
        let conf = format!(
            r#"[server]
listen = "127.0.0.1:{port}"
public_url = "{public_url}"
threads = 1
grace_period = "1s"

[metrics]
listen = "127.0.0.1:{metrics}"

[tokens]
signing_key_file = "{key}"
algorithm = "ES256"

[store]
{store}

[provider]
kind = "local"
users_file = "{users}"

[rate_limits]
token = 0
authorize = 0
login = 0
login_per_user = 0
register = 0

# The load comes from one address: thousands of streams from it are what is measured.
[limits]
max_connections_per_client = 0
max_requests_per_client = 0

# Another authorization server, whose tokens `/external` takes. Its keys are the gateway's own, at
# the gateway's JWKS, so that the bench needs no other server: its tokens differ by `iss` alone.
[[issuers]]
name = "idp"
issuer = "{external_issuer}"
jwks_uri = "http://127.0.0.1:{port}/.well-known/jwks.json"
algorithms = ["ES256"]
allow_private_network = true

[[routes]]
path = "/mcp"
upstream = "http://127.0.0.1:{upstream}/mcp"
default = true

[[routes]]
path = "/external"
upstream = "http://127.0.0.1:{upstream}/mcp"
issuers = ["idp"]
gateway_tokens = false

[[routes]]
path = "/backend"
upstream = "http://127.0.0.1:{backend}/mcp"
backend_audience = "http://127.0.0.1:{backend}/mcp"

[[routes]]
path = "/sse"
upstream = "http://127.0.0.1:{sse}/mcp"
read_timeout = "1h"

[[routes]]
path = "/policy"
upstream = "http://127.0.0.1:{upstream}/mcp"
{policy}

[[routes]]
path = "/allow"
upstream = "http://127.0.0.1:{upstream}/mcp"
[routes.policy]
default = "allow"
"#,
            policy = twenty_rules(),
            external_issuer = EXTERNAL_ISSUER,
            key = signing_key.display(),
            public_url = match store {
                Store::Redis {
                    public_url: Some(url),
                    ..
                } => url.clone(),
                _ => format!("http://127.0.0.1:{port}"),
            },
            store = match store {
                Store::Sqlite => format!(
                    "kind = \"sqlite\"\npath = {:?}",
                    self.path(&format!("{name}.db"))
                ),
                Store::Redis { port, .. } =>
                    format!("kind = \"redis\"\nurl = \"redis://127.0.0.1:{port}\""),
            },
            users = users.display(),
            upstream = routes.upstream,
            backend = routes.backend,
            sse = routes.sse,
        );
        let conf = self.write(&format!("{name}.toml"), &conf)?;
        let target = self
            .start_under(
                wrapper,
                name,
                program,
                &["--config", conf.to_str().unwrap()],
                port,
            )
            .await?;
        Ok((target, metrics))
    }

    /// A `redis-server` for the gateway's Redis store, keeping nothing on disk.
    pub async fn redis(&self) -> Result<Target> {
        let port = free_port();
        let port_text = port.to_string();
        let args = [
            "--port",
            &port_text,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        self.start("redis", Path::new("redis-server"), &args, port)
            .await
    }

    /// The real `mcp-backend`, trusting the gateway's keys, answering in plain JSON.
    pub async fn backend(&self, program: &Path, port: u16, gateway: &str) -> Result<Target> {
        let conf = format!(
            "listen = \"127.0.0.1:{port}\"\njson_response = true\n\n[gateway]\njwks = \"{gateway}/.well-known/jwks.json\"\n\
             issuer = \"{gateway}\"\naudience = \"http://127.0.0.1:{port}/mcp\"\n"
        );
        let conf = self.write("mcp-backend.toml", &conf)?;
        self.start(
            "mcp-backend",
            program,
            &["--config", conf.to_str().unwrap()],
            port,
        )
        .await
    }
}

/// Where the gateway keeps its state: a SQLite file of its own, or the Redis on `port`. A replica
/// beside others takes their `public_url`, the name a load balancer would give them all.
pub enum Store {
    Sqlite,
    Redis {
        port: u16,
        public_url: Option<String>,
    },
}

/// The issuer of the tokens `/external` takes.
pub const EXTERNAL_ISSUER: &str = "https://idp.bench.example";

/// The policy of `/policy`: 20 rules, the last of which allows the bench's `show_auth_token` to
/// anyone, so that every request tries them all — ten about other tools (globs), nine about every
/// tool but for other users, emails, groups or clients.
fn twenty_rules() -> String {
    let mut rules = String::from("[routes.policy]\ndefault = \"deny\"\n");
    for i in 0..10 {
        let effect = if i % 2 == 0 { "deny" } else { "allow" };
        rules += &format!(
            "[[routes.policy.rules]]\neffect = \"{effect}\"\ntools = [\"admin_{i}_*\", \"delete_{i}\", \"*_{i}_danger\"]\n"
        );
    }
    for i in 0..9 {
        let who = match i % 4 {
            0 => format!("users = [\"user-{i}\", \"robot-{i}-*\"]"),
            1 => format!("emails = [\"*@team{i}.example.com\"]"),
            2 => format!("groups = [\"team-{i}\", \"oncall-{i}\"]"),
            _ => format!("clients = [\"client-{i}\"]"),
        };
        rules += &format!("[[routes.policy.rules]]\neffect = \"deny\"\n{who}\n");
    }
    rules +=
        "[[routes.policy.rules]]\neffect = \"allow\"\ntools = [\"show_auth_token\", \"list_*\"]\n";
    rules
}

/// The ports the gateway's routes point at.
pub struct GatewayRoutes {
    pub upstream: u16,
    pub backend: u16,
    pub sse: u16,
}
