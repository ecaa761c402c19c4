//! Who is calling: the token and identity of one request, carried in that request's extensions.

use std::fmt;

/// A bearer token. Its `Debug` is masked, so that logging a [`Caller`] can never leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token from a header or variable value: surrounding whitespace and a leading `Bearer ` scheme
    /// word are dropped; an empty value is no token.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let raw = match raw.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ if raw.eq_ignore_ascii_case("bearer") => "",
            _ => raw,
        };
        (!raw.is_empty()).then(|| Token(raw.to_owned()))
    }

    /// The token itself, to send it on. Never log it.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", crate::mask::mask_token(&self.0))
    }
}

/// The caller of one request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The backend token the tools act with (the identity provider's, or one the gateway minted).
    pub token: Option<Token>,
    /// The user: the assertion's `sub` (or the `X-Forwarded-User` header when unsigned headers are
    /// trusted).
    pub user: Option<String>,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    pub client_id: Option<String>,
    /// The request id for logs: the gateway's `X-Request-Id`, or one made here.
    pub request_id: String,
}

impl Caller {
    /// The user's name for a log line.
    pub fn user_for_log(&self) -> &str {
        self.user.as_deref().unwrap_or("-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_word_and_blanks_are_dropped() {
        assert_eq!(Token::parse(" Bearer abc ").unwrap().secret(), "abc");
        assert_eq!(Token::parse("bearer abc").unwrap().secret(), "abc");
        assert_eq!(Token::parse("abc").unwrap().secret(), "abc");
        assert!(Token::parse("  ").is_none());
        assert!(Token::parse("Bearer ").is_none());
    }

    #[test]
    fn debug_output_is_masked() {
        let token = Token::parse("abcdefghijklmnopqrstuvwxyz").unwrap();
        let caller = Caller {
            token: Some(token),
            ..Caller::default()
        };
        let printed = format!("{caller:?}");
        assert!(!printed.contains("abcdefghijklmnopqrstuvwxyz"));
        assert!(printed.contains("abcd…wxyz"));
    }
}
