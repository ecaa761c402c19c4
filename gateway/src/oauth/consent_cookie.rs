//! The consent cookie: before the user is known (they have not been to the identity provider yet), an
//! approval is remembered in a signed `__Host-` cookie bound to the client; once the user is known,
//! in the store too.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::tokens::keys::KeyRing;

/// How long a browser's approval of a client lasts.
pub(super) const MAX_AGE: u64 = 30 * 86_400;

/// The cookie-signing key, derived from the gateway's signing key so that both rotate together.
pub(super) fn key(keys: &KeyRing) -> [u8; 32] {
    super::derived_key(keys, "consent cookie")
}

/// The cookie's name for a client and resource: one cookie each, named without revealing them.
pub(super) fn name(client_id: &str, resource: &str) -> String {
    let digest = Sha256::digest(format!("{client_id}\0{resource}").as_bytes());
    format!(
        "__Host-mcpgw-consent-{}",
        &super::URL_SAFE_NO_PAD_ENGINE.encode(digest)[..16]
    )
}

/// What an approval covers: the client, the resource and the exact scope.
pub(super) struct Approval<'a> {
    pub client_id: &'a str,
    pub resource: &'a str,
    pub scope: &'a str,
}

/// The same bytes signed as before [`crate::tokens::secrets::signed`] served both cookies: the
/// approvals users already hold stay good.
fn mac(key: &[u8; 32], approval: &Approval, expires: u64) -> String {
    let expires = expires.to_string();
    let parts = [
        approval.client_id,
        approval.resource,
        approval.scope,
        &expires,
    ];
    crate::tokens::secrets::signed(key, &parts)
}

/// The `Set-Cookie` value for an approval, until `now + MAX_AGE`.
pub(super) fn set(key: &[u8; 32], approval: &Approval, now: u64) -> String {
    let expires = now + MAX_AGE;
    format!(
        "{}={expires}.{}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={MAX_AGE}",
        name(approval.client_id, approval.resource),
        mac(key, approval, expires)
    )
}

/// Whether a cookie value carries this approval now.
pub(super) fn approves(key: &[u8; 32], approval: &Approval, value: &str, now: u64) -> bool {
    let Some((expires, signature)) = value.split_once('.') else {
        return false;
    };
    let Ok(expires) = expires.parse::<u64>() else {
        return false;
    };
    expires > now && super::secrets_equal(signature, &mac(key, approval, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_approves_only_its_client_resource_and_scope_until_it_expires() {
        let key = [7u8; 32];
        let approval = Approval {
            client_id: "client-a",
            resource: "http://gw/mcp",
            scope: "mcp",
        };
        let cookie = set(&key, &approval, 1000);
        let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
        assert!(approves(&key, &approval, value, 1000));
        assert!(
            !approves(
                &key,
                &Approval {
                    client_id: "client-b",
                    ..approval
                },
                value,
                1000
            ),
            "bound to the client"
        );
        assert!(
            !approves(
                &key,
                &Approval {
                    resource: "http://gw/admin",
                    ..approval
                },
                value,
                1000
            ),
            "and the resource"
        );
        assert!(
            !approves(
                &key,
                &Approval {
                    scope: "mcp admin",
                    ..approval
                },
                value,
                1000
            ),
            "and the scope"
        );
        assert!(!approves(&[8u8; 32], &approval, value, 1000), "signed");
        assert!(
            !approves(&key, &approval, value, 1000 + MAX_AGE + 1),
            "expires"
        );
        assert!(!approves(&key, &approval, "9999999999.forged", 1000));
        assert!(
            cookie.starts_with("__Host-") && cookie.contains("Secure") && cookie.contains("Path=/")
        );
    }
}
