//! Traces: with `--otlp-endpoint`, each tool call is a span sent to that OTLP/HTTP collector,
//! continuing the trace of the HTTP request that carried it (the gateway's `traceparent`), so that a
//! trace shows the gateway's spans and this server's joined. Without it the spans are never built.

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use rmcp::RoleServer;
use rmcp::service::RequestContext;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// The target of the spans meant for traces (not the log's).
pub const SPANS: &str = "spans";

pub struct Exporter(SdkTracerProvider);

impl Exporter {
    /// Sends what is left.
    pub fn shutdown(self) {
        let _ = self.0.shutdown();
    }
}

/// The layer sending [`SPANS`] spans to `<endpoint>/v1/traces`.
pub fn layer<S>(endpoint: &str) -> anyhow::Result<(Box<dyn Layer<S> + Send + Sync>, Exporter)>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(std::time::Duration::from_secs(5))
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("mcp-backend").build())
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("mcp-backend"))
        .with_location(false)
        .with_threads(false)
        .with_filter(Targets::new().with_target(SPANS, tracing::Level::INFO));
    Ok((Box::new(layer), Exporter(provider)))
}

/// The span of a call to `tool`, within the trace its HTTP request names.
pub fn tool_span(tool: &'static str, ctx: &RequestContext<RoleServer>) -> Span {
    let span = tracing::info_span!(
        target: SPANS,
        "tool",
        otel.name = %format_args!("tools/call {tool}"),
        otel.kind = "server",
        mcp.method.name = "tools/call",
        gen_ai.tool.name = tool,
    );
    let headers = ctx
        .extensions
        .get::<http::request::Parts>()
        .map(|parts| &parts.headers);
    if let Some(headers) = headers.filter(|_| !span.is_disabled()) {
        let parent =
            TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
        let _ = span.set_parent(parent);
    }
    span
}
