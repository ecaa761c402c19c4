//! mcp-auth-gateway: an OAuth 2.1 gateway for MCP servers, on Pingora.
//!
//! [`run`] reads the config ([`config`]), opens the store ([`store`]) and loads the signing keys
//! ([`tokens`]), and builds one Pingora server from our own settings: the data plane ([`proxy`],
//! with the authorization server, [`oauth`], and the identity providers, [`idp`]) on the public
//! listener, HTTPS when configured ([`tls`]), the Prometheus endpoint ([`metrics`]) on its own
//! listener, a supervisor ([`supervise`]) per `command` route, and the [`reload`] of the config on
//! SIGHUP; traces ([`trace`]) go out through [`telemetry`]; a stop or an upgrade loses no request
//! ([`draining`], [`defer_accept`]). Only [`cli`] and [`run`] are public:
//! the binary needs nothing else, and the compiler then reports whatever nothing uses.

mod access_log;
mod admin;
mod audit;
mod cache;
pub mod cli;
mod clock;
mod config;
mod defer_accept;
mod draining;
mod file_stamp;
mod idp;
#[cfg(test)]
mod layers_tests;
mod log_filter;
mod log_writer;
mod metrics;
mod oauth;
mod policy;
mod process;
mod proxy;
mod rate_limit;
mod reload;
mod store;
mod supervise;
mod telemetry;
mod tls;
mod tokens;
mod trace;
mod upgrade_socket;

use std::sync::Arc;

use anyhow::{Context as _, bail};
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::log_writer::LogFormat;
use crate::tokens::keys::KeyRing;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if matches!(cli.command, Some(Command::HashPassword)) {
        return hash_password();
    }
    let Some(path) = cli.config.as_deref() else {
        bail!("--config FILE is required (see config/quickstart.toml)");
    };
    let config = config::load(path)?;
    match cli.command {
        Some(Command::Check) => {
            print!("{}", config.describe());
            Ok(())
        }
        Some(Command::HashPassword) => unreachable!("handled before the config is read"),
        Some(Command::Grants { user, client }) => on_the_store(&config, user, client, admin::list),
        Some(Command::Revoke { user, client }) => {
            on_the_store(&config, user, client, admin::revoke)
        }
        None => serve(config, cli.log_format, cli.upgrade),
    }
}

/// Runs an operator's command about the grants of `user` or `client` on the configured store, on
/// a runtime of its own, and prints what it says.
fn on_the_store<F, Fut>(
    config: &Config,
    user: Option<String>,
    client: Option<String>,
    command: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Arc<dyn store::Store>, admin::Holder) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    let holder = match (user, client) {
        (Some(user), _) => admin::Holder::User(user),
        (None, Some(client)) => admin::Holder::Client(client),
        (None, None) => admin::Holder::Everyone,
    };
    process::choose_tls_provider();
    if matches!(config.store, config::StoreSettings::Memory) {
        bail!(
            "the store is `memory`: it lives inside the running gateway, where no other process can reach it"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let printed =
        runtime.block_on(async { command(store::open(&config.store).await?, holder).await })?;
    print!("{printed}");
    Ok(())
}

/// `hash-password`: reads a password from stdin (one line) and prints its argon2id hash.
fn hash_password() -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("no password on stdin");
    }
    println!(
        "{}",
        idp::local::hash_password(password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?
    );
    Ok(())
}

/// Opens the store and loads the signing keys, on a runtime of its own: Pingora's start later.
fn open_state(
    config: &Config,
    clients: &[config::ClientSettings],
) -> anyhow::Result<(Arc<dyn store::Store>, KeyRing)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = store::open(&config.store).await?;
        // What a key signed lives at most this long: access tokens, and the backend tokens the
        // gateway mints (an hour at most).
        let lifetime = config.auth.access_token_lifetime.as_secs().max(3600)
            + config.tokens.clock_skew.as_secs();
        let (keys, created_at) = KeyRing::at_start(&config.tokens, store.as_ref(), lifetime)
            .await
            .context("loading the signing key")?;
        if let Some(created_at) = created_at {
            metrics::auth::register_signing_key_age(created_at);
        }
        oauth::sync_config_clients(store.as_ref(), clients).await?;
        Ok((store, keys))
    })
}

fn serve(config: Config, log_format: LogFormat, upgrade: bool) -> anyhow::Result<()> {
    process::return_large_allocations();
    process::choose_tls_provider();
    let (log, exporter) = init_tracing(log_format, config.telemetry.as_ref())?;
    match process::raise_open_files_limit() {
        Ok(limit) => tracing::debug!("open files limit: {limit}"),
        Err(error) => tracing::warn!("could not raise the open files limit: {error}"),
    }
    let mut config = config;
    // The config's clients go to the store, their secrets hashed; the plain secrets do not stay.
    let clients = std::mem::take(&mut config.clients);
    let (store, keys) = open_state(&config, &clients)?;
    drop(clients);
    let config = Arc::new(config);

    let conf = ServerConf {
        threads: config.server.threads,
        grace_period_seconds: Some(config.server.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(config.server.grace_period.as_secs().max(1)),
        upgrade_sock: upgrade_socket::resolve(
            config.server.upgrade_socket.as_deref(),
            config.server.listen.port(),
        )?
        .display()
        .to_string(),
        ..ServerConf::default()
    };
    let opt = pingora::server::configuration::Opt {
        upgrade,
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    server.bootstrap();
    let mut readiness = add_supervisors(&mut server, &config);
    let reloader_listening = Arc::new(std::sync::atomic::AtomicBool::new(false));
    readiness.push(reloader_listening.clone());
    // Register the metrics before the first scrape can come.
    std::sync::LazyLock::force(&metrics::METRICS);
    if config.auth.provider.is_some() {
        std::sync::LazyLock::force(&metrics::auth::AUTH);
    }
    server.add_service(pingora::services::background::background_service(
        "store purge",
        store::Purger(store.clone()),
    ));
    let audit = match &config.audit {
        None => None,
        Some(file) => Some(Arc::new(audit::AuditLog::open(file.as_deref()).map_err(
            |e| {
                let file = file
                    .as_deref()
                    .map_or("stdout".into(), |f| f.display().to_string());
                anyhow::anyhow!("cannot open the audit trail {file}: {e}")
            },
        )?)),
    };
    let audit_trail = audit.clone();
    let access_log = access_log::AccessLog {
        format: log_format,
        writer: log.clone(),
        audit,
    };
    metrics::METRICS.config_in_force();
    let gateway = data_plane(config.clone(), store.clone(), keys, readiness, access_log);
    let watchdog = gateway.watchdog().clone();
    let generations = proxy::Generations::new(gateway);
    server.add_service(pingora::services::background::background_service(
        "watchdog",
        proxy::Watch {
            watchdog,
            generations: generations.clone(),
        },
    ));
    let certificate = match &config.server.tls {
        Some(files) => {
            let certificate = tls::ServedCertificate::load(files)?;
            server.add_service(pingora::services::background::background_service(
                "TLS certificate watch",
                tls::CertificateWatch(certificate.clone()),
            ));
            Some(certificate)
        }
        None => None,
    };
    server.add_service(pingora::services::background::background_service(
        "TCP_DEFER_ACCEPT",
        defer_accept::DeferAccept(config.server.listen),
    ));
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    server.add_service(pingora::services::background::background_service(
        "draining watch",
        draining::Watch {
            phases: std::sync::Mutex::new(Some(server.watch_execution_phase())),
            draining: draining.clone(),
        },
    ));
    add_listeners(
        &mut server,
        proxy::LiveGateway {
            generations: generations.clone(),
            draining,
        },
        generations.clone(),
        &config,
        certificate.as_ref(),
    )?;
    server.add_service(pingora::services::background::background_service(
        "config reload",
        reload::Reloader {
            path: config.source.clone(),
            generations,
            store,
            certificate,
            listening: reloader_listening,
        },
    ));

    for route in &config.routes {
        let (path, backend, resource) = (&route.path, &route.backend.url, &route.resource);
        tracing::info!("MCP server {path} -> {backend} at {resource}");
    }
    print!("{}", config.banner());
    server.run(RunArgs::default());
    // Pingora has stopped every service: the last access and audit lines, and spans, can go out.
    log.flush();
    if let Some(audit) = &audit_trail {
        audit.flush();
    }
    if let Some(exporter) = exporter {
        exporter.shutdown();
    }
    Ok(())
}

/// A supervisor service per `command` route; their flags say whether each backend process runs.
fn add_supervisors(
    server: &mut Server,
    config: &Config,
) -> Vec<Arc<std::sync::atomic::AtomicBool>> {
    let mut supervised = Vec::new();
    for route in &config.routes {
        if let Some(command) = &route.command {
            let supervisor = supervise::Supervisor::new(route.path.clone(), command.clone());
            supervised.push(supervisor.running_flag());
            server.add_service(pingora::services::background::background_service(
                &format!("command for {}", route.path),
                supervisor,
            ));
        }
    }
    supervised
}

/// The data plane, with the authorization server when a provider is configured.
fn data_plane(
    config: Arc<Config>,
    store: Arc<dyn store::Store>,
    keys: KeyRing,
    readiness: Vec<Arc<std::sync::atomic::AtomicBool>>,
    access_log: access_log::AccessLog,
) -> proxy::Gateway {
    let keys = Arc::new(keys);
    let verifier = Arc::new(tokens::access::AccessTokenVerifier::new(
        keys.clone(),
        config.tokens.issuer.clone(),
        config.tokens.clock_skew.as_secs(),
    ));
    let auth = config.auth.provider.is_some().then(|| {
        Arc::new(oauth::AuthServer::new(
            config.clone(),
            store.clone(),
            keys.clone(),
            verifier.clone(),
        ))
    });
    let shared_store = store.is_shared().then(|| store.clone());
    proxy::Gateway::new(
        config,
        keys,
        verifier,
        auth,
        shared_store,
        readiness,
        access_log,
    )
}

/// The data plane on the public listener (HTTPS with `certificate`), behind a count of each client
/// address's connections, and Prometheus on its own when configured.
fn add_listeners(
    server: &mut Server,
    gateway: proxy::LiveGateway,
    generations: proxy::Generations,
    config: &Config,
    certificate: Option<&Arc<tls::ServedCertificate>>,
) -> anyhow::Result<()> {
    let mut http = pingora::proxy::http_proxy(&server.configuration, gateway);
    let mut options = pingora::apps::HttpServerOptions::default();
    // An HTTP/2 connection with no request open is closed after this (HTTP/1.1's keep-alive
    // has Pingora's own 60 s).
    options.h2_idle_timeout = Some(config.server.http2_idle_timeout);
    http.server_options = Some(options);
    let mut proxy = pingora::services::listening::Service::new(
        "mcp-auth-gateway".to_owned(),
        proxy::PerClientConnections {
            proxy: Arc::new(http),
            generations,
            counts: Arc::default(),
        },
    );
    // No read buffer in front of client connections: Pingora's default one is 64 KiB, zero-filled
    // on accept, so each idle SSE stream held 64 KiB of RSS, while the HTTP/1 session reads into
    // its own header and body buffers anyway.
    let mut listener = ListenerConfig::tcp(config.server.listen.to_string())
        .l4_buffer(L4BufferSettings::default().read(0));
    if let Some(certificate) = certificate {
        listener = listener.tls(certificate.listener_settings()?);
    }
    proxy.add_listener(listener);
    server.add_service(proxy);
    if let Some(addr) = config.server.metrics_listen {
        let mut prometheus = pingora_prometheus::prometheus_http_service();
        prometheus.add_tcp(&addr.to_string());
        server.add_service(prometheus);
    }
    Ok(())
}

/// Logs go to stderr, the access log in batches; Pingora's own `log` records are bridged into
/// `tracing`, less its lines about clients that went away ([`log_filter`]). Returns the writer, to
/// flush before exit.
fn init_tracing(
    format: LogFormat,
    telemetry: Option<&config::TelemetrySettings>,
) -> anyhow::Result<(log_writer::LogWriter, Option<telemetry::Exporter>)> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, fmt};

    let writer = log_writer::LogWriter::start();
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    // The spans meant for traces are wanted only when they are sent. Off, no subscriber is
    // interested in them and `tracing` builds none; nor does any layer stand by unused (an absent
    // layer would declare itself interested in everything).
    let spans = if telemetry.is_some() { "info" } else { "off" };
    let filter =
        tracing_subscriber::EnvFilter::try_new(format!("{directives},{}={spans}", trace::SPANS))
            .or_else(|_| {
                tracing_subscriber::EnvFilter::try_new(format!("info,{}={spans}", trace::SPANS))
            })?;
    let layer = fmt::layer().with_writer(writer.clone()).with_ansi(false);
    let layer = match format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer.json().boxed(),
    };
    // The log shows neither the spans nor, in its lines, their names.
    let log = layer
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            meta.target() != trace::SPANS
        }))
        .with_filter(log_filter::QuietClientDisconnects);
    let registry = tracing_subscriber::registry().with(filter).with(log);
    match telemetry {
        Some(settings) => {
            let (traces, exporter) = telemetry::layer(settings)?;
            registry.with(traces).init();
            Ok((writer, Some(exporter)))
        }
        None => {
            registry.init();
            Ok((writer, None))
        }
    }
}
