//! Users' connections made and ended, as the operator reads them: each in the log and, when the
//! config keeps one, in the audit trail ([`crate::telemetry::audit`]), with the reason it ended.

use super::Connections;
use super::errors::ConnectionError;
use crate::store::ConnectionRecord;
use crate::telemetry::audit::ConnectionLine;

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The user disconnected, on their connections page.
    User,
    /// The operator revoked the user (`revoke --user`).
    Operator,
    /// The backend's server refused to refresh the user's token.
    RefreshRefused,
    /// The backend names another authorization server now.
    ServerChanged,
    /// The backend refused a token that cannot be renewed.
    TokenRefused,
    /// The backend asked for more scope than the user granted.
    MoreScope,
    /// The token expired, and the server gave no refresh token.
    Expired,
    /// The tokens were sealed under another key than the store's.
    KeyChanged,
}

impl Ended {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Ended::User => "user",
            Ended::Operator => "operator",
            Ended::RefreshRefused => "refresh_refused",
            Ended::ServerChanged => "server_changed",
            Ended::TokenRefused => "token_refused",
            Ended::MoreScope => "more_scope",
            Ended::Expired => "expired",
            Ended::KeyChanged => "key_changed",
        }
    }
}

impl Connections {
    /// Ends `sub`'s connection at `route` here, for `why`; the connection, if there was one.
    pub(super) async fn end(
        &self,
        sub: &str,
        route: &str,
        why: Ended,
    ) -> Result<Option<ConnectionRecord>, ConnectionError> {
        let ended = self.store.delete_connection(sub, route).await?;
        if let Some(record) = &ended {
            tracing::info!(
                user = sub,
                route,
                reason = why.as_str(),
                "a user's connection to a backend ended"
            );
            self.audit(&ConnectionLine {
                event: "disconnected",
                route,
                user: sub,
                issuer: &record.issuer,
                reason: Some(why.as_str()),
            });
        }
        Ok(ended)
    }

    /// `sub` connected at `route`, to `issuer`'s server.
    pub(super) fn connected(&self, sub: &str, route: &str, issuer: &str) {
        tracing::info!(user = sub, route, issuer, "a user connected to a backend");
        self.audit(&ConnectionLine {
            event: "connected",
            route,
            user: sub,
            issuer,
            reason: None,
        });
    }

    fn audit(&self, line: &ConnectionLine) {
        if let Some(audit) = &self.audit {
            audit.write(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ended;

    #[test]
    fn each_reason_has_its_own_name() {
        let all = [
            Ended::User,
            Ended::Operator,
            Ended::RefreshRefused,
            Ended::ServerChanged,
            Ended::TokenRefused,
            Ended::MoreScope,
            Ended::Expired,
            Ended::KeyChanged,
        ];
        let names: std::collections::HashSet<_> = all.iter().map(|e| e.as_str()).collect();
        assert_eq!(names.len(), all.len());
    }
}
