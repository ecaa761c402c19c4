//! The `local` identity provider: the operator's users file, each password kept as an argon2id hash.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};

use crate::config::LocalUser;
use crate::store::records::UserIdentity;

/// Checked when the username is unknown, so that a wrong name costs as long as a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("not a password").expect("hashing works"));

/// An argon2id PHC string for `password` (what `mcp-auth-gateway hash-password` prints).
pub(crate) fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// The users of the users file.
#[derive(Default)]
pub(crate) struct LocalUsers(Vec<LocalUser>);

impl LocalUsers {
    pub(crate) fn new(users: Vec<LocalUser>) -> Self {
        Self(users)
    }

    /// Who the users file says the user whose subject is `sub` is today; `None` when it no longer
    /// has them.
    pub(crate) fn identity(&self, sub: &str) -> Option<UserIdentity> {
        self.0.iter().find(|u| u.username == sub).map(identity)
    }

    /// The user `username` is, when `password` is theirs. As slow for an unknown name as for a
    /// wrong password, and off the proxy's worker threads: hashing is deliberately slow.
    pub(crate) async fn sign_in(&self, username: &str, password: &str) -> Option<UserIdentity> {
        let user = self.0.iter().find(|u| u.username == username);
        let hash = user.map_or(DUMMY_HASH.as_str(), |u| u.password_hash.as_str());
        let (hash, attempt) = (hash.to_owned(), password.to_owned());
        let verified = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    argon2::Argon2::default()
                        .verify_password(attempt.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        user.filter(|_| verified).map(identity)
    }
}

fn identity(user: &LocalUser) -> UserIdentity {
    UserIdentity {
        sub: user.username.clone(),
        email: user.email.clone(),
        preferred_username: Some(user.username.clone()),
        groups: user.groups.clone(),
        groups_truncated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_right_password_signs_in() {
        let users = LocalUsers::new(vec![LocalUser {
            username: "ada".into(),
            password_hash: hash_password("correct horse").unwrap(),
            email: Some("ada@example.com".into()),
            groups: vec!["admins".into()],
        }]);
        let ada = users
            .sign_in("ada", "correct horse")
            .await
            .expect("signed in");
        assert_eq!(ada.sub, "ada");
        assert_eq!(ada.email.as_deref(), Some("ada@example.com"));
        assert_eq!(ada.groups, ["admins"]);
        assert!(users.sign_in("ada", "wrong").await.is_none());
        assert!(users.sign_in("bob", "correct horse").await.is_none());
        assert!(users.sign_in("ada", "").await.is_none());
    }
}
