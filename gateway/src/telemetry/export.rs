//! The OpenTelemetry exporter: when `[telemetry]` names a collector, the spans of
//! [`super::trace`] go there over OTLP/HTTP (protobuf), in batches from a thread of their own,
//! with the W3C trace context as the way traces cross processes. [`Exporter::shutdown`] sends what is left at exit.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

use crate::config::TelemetrySettings;
use crate::telemetry::trace::SPANS;

pub(crate) struct Exporter(SdkTracerProvider);

impl Exporter {
    /// Sends the spans not yet sent, waiting for the collector a few seconds at most.
    pub(crate) fn shutdown(self) {
        if let Err(error) = self.0.shutdown() {
            tracing::warn!("the last spans could not be sent: {error}");
        }
    }
}

/// The layer that turns the [`SPANS`] spans into OpenTelemetry spans sent to the collector.
pub(crate) fn layer<S>(
    settings: &TelemetrySettings,
) -> anyhow::Result<(Box<dyn Layer<S> + Send + Sync>, Exporter)>
where
    S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(&settings.traces_url)
        .with_timeout(std::time::Duration::from_secs(5))
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("mcp-auth-gateway");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // The gateway's source lines and threads are not the operator's business.
        .with_location(false)
        .with_threads(false)
        // Its spans only (all at INFO, so that no finer log record is asked for): the log's events
        // are not span events.
        .with_filter(Targets::new().with_target(SPANS, tracing::Level::INFO));
    Ok((Box::new(layer), Exporter(provider)))
}
