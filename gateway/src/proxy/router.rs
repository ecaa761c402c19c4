//! Classifies a request by its path: one of the gateway's own endpoints, or a protected MCP route.
//! Pure and precomputed, so the hot path is one hash lookup.

use std::collections::HashMap;

use crate::config::Config;
use crate::oauth::AsEndpoint;

pub(super) const JWKS_PATH: &str = "/.well-known/jwks.json";
pub(super) const ROOT_RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Health,
    Ready,
    Jwks,
    AuthServerMetadata,
    /// The protected resource metadata of route number N.
    ResourceMetadata(usize),
    /// Protected MCP route number N.
    Mcp(usize),
    /// An endpoint of the authorization server.
    AuthServer(AsEndpoint),
    NotFound,
}

impl Endpoint {
    /// Whether browsers from any origin may read it (public discovery documents).
    pub(crate) fn is_public_document(self) -> bool {
        matches!(
            self,
            Endpoint::Jwks | Endpoint::AuthServerMetadata | Endpoint::ResourceMetadata(_)
        )
    }
}

pub(super) struct Router {
    exact: HashMap<String, Endpoint>,
}

impl Router {
    pub(super) fn new(config: &Config) -> Self {
        let mut exact = HashMap::new();
        exact.insert("/healthz".to_owned(), Endpoint::Health);
        exact.insert("/readyz".to_owned(), Endpoint::Ready);
        exact.insert(JWKS_PATH.to_owned(), Endpoint::Jwks);
        for path in config.as_metadata_paths() {
            exact.insert(path, Endpoint::AuthServerMetadata);
        }
        exact.insert(
            ROOT_RESOURCE_METADATA_PATH.to_owned(),
            Endpoint::ResourceMetadata(config.default_route),
        );
        if config.auth.provider.is_some() {
            for endpoint in [
                AsEndpoint::Authorize,
                AsEndpoint::Login,
                AsEndpoint::Consent,
                AsEndpoint::Token,
                AsEndpoint::Revoke,
                AsEndpoint::Introspect,
                AsEndpoint::Callback,
                AsEndpoint::Account,
            ] {
                exact.insert(endpoint.path().to_owned(), Endpoint::AuthServer(endpoint));
            }
            if config.auth.dynamic_registration {
                exact.insert(
                    AsEndpoint::Register.path().to_owned(),
                    Endpoint::AuthServer(AsEndpoint::Register),
                );
            }
            if config.routes.iter().any(|r| r.connection.is_some()) {
                for endpoint in [AsEndpoint::ConnectCallback, AsEndpoint::ClientMetadata] {
                    exact.insert(endpoint.path().to_owned(), Endpoint::AuthServer(endpoint));
                }
            }
        }
        for (i, route) in config.routes.iter().enumerate() {
            exact.insert(route.metadata_path.clone(), Endpoint::ResourceMetadata(i));
            exact.insert(route.path.clone(), Endpoint::Mcp(i));
            // Clients that normalise the URL may add a trailing slash.
            exact.insert(format!("{}/", route.path), Endpoint::Mcp(i));
        }
        Self { exact }
    }

    pub(super) fn classify(&self, path: &str) -> Endpoint {
        self.exact.get(path).copied().unwrap_or(Endpoint::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_the_gateway_answers_itself_is_reserved_from_routes() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.toml");
        std::fs::write(&users, "[[users]]\nusername = \"a\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\n").unwrap();
        let path = dir.path().join("gw.toml");
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"https://gw.example\"\n\
             [tokens]\nissuer = \"https://gw.example/tenant\"\n\
             [provider]\nkind = \"local\"\nusers_file = {users:?}\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:9/mcp\"\n",
            users = users.display().to_string()
        );
        std::fs::write(&path, config).unwrap();
        let (config, _) = crate::config::Config::starting(crate::config::load(&path).unwrap());
        let router = Router::new(&config);
        let own: Vec<&String> = router
            .exact
            .iter()
            .filter(|(_, e)| !matches!(e, Endpoint::Mcp(_)))
            .map(|(path, _)| path)
            .collect();
        assert!(own.len() > 10, "{own:?}");
        for path in own {
            assert!(crate::config::is_reserved(path), "{path} is not reserved");
        }
    }
}
