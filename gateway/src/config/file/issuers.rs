//! `[[issuers]]`: authorization servers other than the gateway's own whose access tokens routes
//! accept (the gateway as a resource server), as written.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssuerFile {
    /// How routes name it (`issuers = ["…"]`).
    pub name: String,
    /// Its issuer identifier, exactly as its tokens' `iss` says it.
    pub issuer: String,
    /// More `iss` values of the same server (Entra ID's v1 tokens: `https://sts.windows.net/<tenant>/`).
    pub also_issuers: Option<Vec<String>>,
    /// Its keys; default: the `jwks_uri` of its metadata (OpenID discovery, then RFC 8414).
    pub jwks_uri: Option<String>,
    /// Audiences accepted besides the route's resource (Entra ID's `api://…` or application id).
    pub audiences: Option<Vec<String>>,
    /// Signing algorithms accepted; default RS256, PS256, ES256 and EdDSA.
    pub algorithms: Option<Vec<String>>,
    /// Whether tokens must say `typ: at+jwt` (RFC 9068); many identity providers' do not.
    pub require_typ: Option<bool>,
    /// The claim that names the user; default `sub` (Entra ID: `oid`).
    pub subject_claim: Option<String>,
    /// The claim that lists the user's groups, for the routes' policies; default `groups`.
    pub groups_claim: Option<String>,
    /// Its metadata and keys may be on private or loopback addresses, over plain http.
    pub allow_private_network: Option<bool>,
    /// How its opaque tokens are checked: by asking it (RFC 7662).
    pub introspection: Option<IntrospectionFile>,
}

/// `[issuers.introspection]`: the issuer's introspection endpoint and the gateway's client there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IntrospectionFile {
    /// Default: the `introspection_endpoint` of its metadata.
    pub endpoint: Option<String>,
    /// The gateway's client id at the issuer.
    pub client_id: String,
    /// The environment variable holding that client's secret (sent as `client_secret_basic`).
    pub client_secret_env: String,
    /// How long an answer is kept at most (never past the token's `exp`); default 60 s.
    #[serde(default, with = "humantime_serde")]
    pub cache: Option<std::time::Duration>,
}
