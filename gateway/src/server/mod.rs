//! The process's life: [`serve`] builds one Pingora server from our own settings and runs it —
//! the data plane ([`crate::proxy`]) on the public listener, HTTPS when configured ([`tls`]), the
//! Prometheus endpoint on its own listener, a supervisor ([`supervise`]) per `command` route, the
//! [`reload`] of the config on SIGHUP, and a stop or an upgrade that loses no request
//! ([`draining`], [`defer_accept`], [`upgrade_socket`]). Process-wide settings come first
//! ([`process`]).

pub(crate) mod defer_accept;
pub(crate) mod draining;
pub(crate) mod process;
pub(crate) mod reload;
pub(crate) mod supervise;
pub(crate) mod tls;
pub(crate) mod upgrade_socket;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};
use pingora::services::background::background_service;

use crate::config::{ClientSettings, Config};
use crate::store::Store;
use crate::telemetry::access_log::AccessLog;
use crate::telemetry::audit::AuditLog;
use crate::telemetry::log_writer::LogFormat;
use crate::telemetry::{self, metrics};
use crate::tokens::keys::KeyRing;
use crate::{oauth, proxy, store, tokens};

/// Runs the gateway `config` describes until it is stopped or hands its sockets over; with
/// `upgrade`, takes them over from the gateway running now.
pub(crate) fn serve(
    config: Config,
    clients: Vec<ClientSettings>,
    log_format: LogFormat,
    upgrade: bool,
) -> anyhow::Result<()> {
    process::return_large_allocations();
    process::choose_tls_provider();
    let telemetry = telemetry::init(log_format, config.start.telemetry.as_ref())?;
    match process::raise_open_files_limit() {
        Ok(limit) => tracing::debug!("open files limit: {limit}"),
        Err(error) => tracing::warn!("could not raise the open files limit: {error}"),
    }
    // The config's clients go to the store, their secrets hashed; the plain secrets do not stay.
    let (store, keys) = open_state(&config, &clients)?;
    drop(clients);
    let config = Arc::new(config);

    let mut server = pingora_server(&config, upgrade)?;
    let mut readiness = add_supervisors(&mut server, &config);
    let reloader_listening = Arc::new(AtomicBool::new(false));
    readiness.push(reloader_listening.clone());
    // Register the metrics before the first scrape can come.
    std::sync::LazyLock::force(&metrics::METRICS);
    if config.auth.provider.is_some() {
        std::sync::LazyLock::force(&metrics::auth::AUTH);
    }
    let audit = open_audit(&config)?;
    let access_log = AccessLog {
        format: log_format,
        writer: telemetry.log.clone(),
        audit: audit.clone(),
    };
    metrics::METRICS.config_in_force();
    let gateway = data_plane(config.clone(), store.clone(), keys, readiness, access_log);
    let watchdog = gateway.watchdog().clone();
    let generations = proxy::Generations::new(gateway);
    let watch = proxy::Watch {
        watchdog,
        generations: generations.clone(),
    };
    let certificate = add_background(&mut server, &config, &store, watch)?;
    let draining = Arc::new(AtomicBool::new(false));
    server.add_service(background_service(
        "draining watch",
        draining::Watch {
            phases: std::sync::Mutex::new(Some(server.watch_execution_phase())),
            draining: draining.clone(),
        },
    ));
    let live = proxy::LiveGateway {
        generations: generations.clone(),
        draining,
    };
    add_listeners(
        &mut server,
        live,
        generations.clone(),
        &config,
        certificate.as_ref(),
    )?;
    server.add_service(background_service(
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
    if let Some(audit) = &audit {
        audit.flush();
    }
    telemetry.flush();
    Ok(())
}

/// Opens the store and loads the signing keys, on a runtime of its own: Pingora's starts later.
fn open_state(
    config: &Config,
    clients: &[ClientSettings],
) -> anyhow::Result<(Arc<dyn Store>, KeyRing)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = store::open(&config.start.store).await?;
        // What a key signed lives at most this long: access tokens, and the backend tokens the
        // gateway mints (an hour at most).
        let lifetime = config.auth.access_token_lifetime.as_secs().max(3600)
            + config.start.tokens.clock_skew.as_secs();
        let (keys, created_at) = KeyRing::at_start(&config.start.tokens, store.as_ref(), lifetime)
            .await
            .context("loading the signing key")?;
        if let Some(created_at) = created_at {
            metrics::auth::register_signing_key_age(created_at);
        }
        oauth::sync_config_clients(store.as_ref(), clients).await?;
        Ok((store, keys))
    })
}

/// Pingora's server, with our settings rather than its argv and file: threads, the grace period of
/// a stop, and the socket an upgrade takes the listeners over from.
fn pingora_server(config: &Config, upgrade: bool) -> anyhow::Result<Server> {
    let conf = ServerConf {
        threads: config.start.listener.threads,
        grace_period_seconds: Some(config.start.listener.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(
            config.start.listener.grace_period.as_secs().max(1),
        ),
        upgrade_sock: upgrade_socket::resolve(
            config.start.listener.upgrade_socket.as_deref(),
            config.start.listener.listen.port(),
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
    Ok(server)
}

/// The audit trail, when the config asks for one: its file, or stdout.
fn open_audit(config: &Config) -> anyhow::Result<Option<Arc<AuditLog>>> {
    let Some(file) = &config.start.audit else {
        return Ok(None);
    };
    let audit = AuditLog::open(file.as_deref()).map_err(|e| {
        let file = file
            .as_deref()
            .map_or("stdout".into(), |f| f.display().to_string());
        anyhow::anyhow!("cannot open the audit trail {file}: {e}")
    })?;
    Ok(Some(Arc::new(audit)))
}

/// The services that run beside the listeners: the store's purge, the watchdog's look at open
/// requests, the certificate's watch (its certificate returned, when the listener is HTTPS) and
/// `TCP_DEFER_ACCEPT` on the listener.
fn add_background(
    server: &mut Server,
    config: &Config,
    store: &Arc<dyn Store>,
    watch: proxy::Watch,
) -> anyhow::Result<Option<Arc<tls::ServedCertificate>>> {
    server.add_service(background_service(
        "store purge",
        store::Purger(store.clone()),
    ));
    server.add_service(background_service("watchdog", watch));
    let certificate = match &config.server.tls {
        Some(files) => {
            let certificate = tls::ServedCertificate::load(files)?;
            server.add_service(background_service(
                "TLS certificate watch",
                tls::CertificateWatch(certificate.clone()),
            ));
            Some(certificate)
        }
        None => None,
    };
    server.add_service(background_service(
        "TCP_DEFER_ACCEPT",
        defer_accept::DeferAccept(config.start.listener.listen),
    ));
    Ok(certificate)
}

/// A supervisor service per `command` route; their flags say whether each backend process runs.
fn add_supervisors(server: &mut Server, config: &Config) -> Vec<Arc<AtomicBool>> {
    let mut supervised = Vec::new();
    for (path, command) in &config.start.commands {
        let supervisor = supervise::Supervisor::new(path.clone(), command.clone());
        supervised.push(supervisor.running_flag());
        server.add_service(background_service(
            &format!("command for {path}"),
            supervisor,
        ));
    }
    supervised
}

/// The data plane, with the authorization server when a provider is configured.
fn data_plane(
    config: Arc<Config>,
    store: Arc<dyn Store>,
    keys: KeyRing,
    readiness: Vec<Arc<AtomicBool>>,
    access_log: AccessLog,
) -> proxy::Gateway {
    let keys = Arc::new(keys);
    let verifier = Arc::new(tokens::access::AccessTokenVerifier::new(
        keys.clone(),
        config.start.tokens.issuer.clone(),
        config.start.tokens.clock_skew.as_secs(),
    ));
    let auth = config.auth.provider.is_some().then(|| {
        Arc::new(oauth::AuthServer::new(
            config.clone(),
            store.clone(),
            keys.clone(),
            verifier.clone(),
            access_log.audit.clone(),
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
    options.h2_idle_timeout = Some(config.start.listener.http2_idle_timeout);
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
    let mut listener = ListenerConfig::tcp(config.start.listener.listen.to_string())
        .l4_buffer(L4BufferSettings::default().read(0));
    if let Some(certificate) = certificate {
        listener = listener.tls(certificate.listener_settings()?);
    }
    proxy.add_listener(listener);
    server.add_service(proxy);
    if let Some(addr) = config.start.listener.metrics_listen {
        let mut prometheus = pingora_prometheus::prometheus_http_service();
        prometheus.add_tcp(&addr.to_string());
        server.add_service(prometheus);
    }
    Ok(())
}
