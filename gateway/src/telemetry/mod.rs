//! What the gateway tells its operators, and how it gets out: the log and its writer
//! ([`log_writer`], with Pingora's own lines filtered by [`log_filter`]), the access log
//! ([`access_log`]) and audit trail ([`audit`]) of each request, the Prometheus [`metrics`], and
//! the spans of a request ([`trace`]), sent by the OpenTelemetry exporter ([`export`]) when
//! `[telemetry]` names a collector. Every layer reports here; this room reads only its own
//! settings from [`crate::config`].

pub(crate) mod access_log;
pub(crate) mod audit;
pub(crate) mod export;
pub(crate) mod log_filter;
pub(crate) mod log_writer;
pub(crate) mod metrics;
pub(crate) mod trace;

use crate::config::TelemetrySettings;
use log_writer::{LogFormat, LogWriter};

/// The log's writer and the trace exporter, set up once at start ([`init`]) and flushed at exit
/// ([`Telemetry::flush`]).
pub(crate) struct Telemetry {
    pub log: LogWriter,
    exporter: Option<export::Exporter>,
}

impl Telemetry {
    /// Sends what is left: the last lines of the log, and the spans not yet exported.
    pub(crate) fn flush(self) {
        self.log.flush();
        if let Some(exporter) = self.exporter {
            exporter.shutdown();
        }
    }
}

/// Logs go to stderr, the access log in batches; Pingora's own `log` records are bridged into
/// `tracing`, less its lines about clients that went away ([`log_filter`]); spans go to the
/// collector `settings` names, if any.
pub(crate) fn init(
    format: LogFormat,
    settings: Option<&TelemetrySettings>,
) -> anyhow::Result<Telemetry> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, fmt};

    let writer = LogWriter::start();
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    // The spans meant for traces are wanted only when they are sent. Off, no subscriber is
    // interested in them and `tracing` builds none; nor does any layer stand by unused (an absent
    // layer would declare itself interested in everything).
    let spans = if settings.is_some() { "info" } else { "off" };
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
    let exporter = match settings {
        Some(settings) => {
            let (traces, exporter) = export::layer(settings)?;
            registry.with(traces).init();
            Some(exporter)
        }
        None => {
            registry.init();
            None
        }
    };
    Ok(Telemetry {
        log: writer,
        exporter,
    })
}
