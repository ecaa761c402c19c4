//! `[telemetry]`: where the gateway sends its traces (OTLP over HTTP), under what service name, and
//! what share of the traces that start here it keeps. Without it nothing is traced.

use super::file::TelemetryFile;
use super::{ConfigError, Errors};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TelemetrySettings {
    /// Where spans are posted: `<otlp_endpoint>/v1/traces`.
    pub traces_url: String,
    pub service_name: String,
    /// The share of traces started here that are kept; a client's sampling decision stands.
    pub sample_ratio: f64,
}

impl TelemetrySettings {
    /// Where spans go, without any credentials the URL carries: for printing.
    pub(crate) fn printable_url(&self) -> String {
        match url::Url::parse(&self.traces_url) {
            Ok(mut url) => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.to_string()
            }
            Err(_) => "(unprintable)".to_owned(),
        }
    }
}

pub(super) fn settings(
    telemetry: Option<&TelemetryFile>,
    errors: &Errors,
) -> Result<Option<TelemetrySettings>, ConfigError> {
    let Some(telemetry) = telemetry else {
        return Ok(None);
    };
    let endpoint = url::Url::parse(&telemetry.otlp_endpoint)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            errors.at(
                "telemetry.otlp_endpoint",
                // Not echoed: a URL may carry credentials.
                "is not an http(s) URL (an OTLP/HTTP collector, e.g. \"http://127.0.0.1:4318\")",
            )
        })?;
    let sample_ratio = telemetry.sample_ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_ratio) {
        return Err(errors.at("telemetry.sample_ratio", "must be between 0 and 1"));
    }
    let service_name = telemetry
        .service_name
        .clone()
        .unwrap_or_else(|| "mcp-auth-gateway".to_owned());
    if service_name.trim().is_empty() {
        return Err(errors.at("telemetry.service_name", "must not be empty"));
    }
    Ok(Some(TelemetrySettings {
        traces_url: format!("{}/v1/traces", endpoint.as_str().trim_end_matches('/')),
        service_name,
        sample_ratio,
    }))
}
