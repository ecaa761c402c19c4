//! Keeps a client's closed connection out of the ERROR log where Pingora offers no hook.
//!
//! A failed request is logged by [`crate::proxy`] at the level its cause deserves (Pingora's own
//! line for it is suppressed there). One line is not a request's: when reading the next request of a
//! kept-alive connection fails because the client reset it or left half a request, Pingora logs
//! `Fail to proxy: Downstream …` at ERROR, with no hook to suppress it. That is a client going away,
//! normal on the open internet, so this filter drops it.

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata};
use tracing_subscriber::layer::{Context, Filter};

/// Drops Pingora's ERROR lines about a client connection that failed between requests.
pub(crate) struct QuietClientDisconnects;

impl<S> Filter<S> for QuietClientDisconnects {
    fn enabled(&self, _meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &Context<'_, S>) -> bool {
        if *event.metadata().level() != Level::ERROR {
            return true;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        // Records bridged from the `log` crate carry their target in a field.
        let target = fields
            .log_target
            .as_deref()
            .unwrap_or(event.metadata().target());
        !(target.starts_with("pingora_proxy") && is_client_disconnect(&fields.message))
    }
}

/// The fields the filter reads.
#[derive(Default)]
struct Fields {
    message: String,
    log_target: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "log.target" => self.log_target = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

fn is_client_disconnect(message: &str) -> bool {
    message.starts_with("Fail to proxy: Downstream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_downstream_failures_are_client_disconnects() {
        assert!(is_client_disconnect(
            "Fail to proxy: Downstream ReadError context: during HTTP body-or-idle state, downstream session type: HTTP/1.1"
        ));
        assert!(!is_client_disconnect(
            "Fail to proxy: Upstream ConnectRefused context: Fail to connect"
        ));
        assert!(!is_client_disconnect("Downstream went away"));
    }
}
