//! Masking of credentials, so that no tool ever puts a usable token into the model's context.

/// Tokens shorter than this are masked entirely.
pub const MIN_REVEALING_LEN: usize = 16;

/// `abcd…wxyz` (first 4 and last 4 characters) for a token of 16 characters or more, `****` for a
/// shorter one. Counts characters, not bytes, so a multi-byte token is never cut mid-character.
pub fn mask_token(token: &str) -> String {
    let count = token.chars().count();
    if count < MIN_REVEALING_LEN {
        return "****".to_owned();
    }
    let head: String = token.chars().take(4).collect();
    let tail: String = token.chars().skip(count - 4).collect();
    format!("{head}…{tail}")
}

/// A credential header's value, masked: an auth scheme word (`Bearer`, `Basic`, …) stays readable, the
/// credential after it is masked.
pub fn mask_credential(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, rest)) if is_scheme(scheme) => {
            format!("{scheme} {}", mask_token(rest.trim()))
        }
        _ => mask_token(value),
    }
}

fn is_scheme(word: &str) -> bool {
    ["bearer", "basic", "dpop", "token", "digest"]
        .iter()
        .any(|s| word.eq_ignore_ascii_case(s))
}

/// Whether a header (by name) carries a credential and must be masked.
pub fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "auth",
        "token",
        "secret",
        "cookie",
        "key",
        "session",
        "password",
        "assertion",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tokens_are_masked_entirely() {
        for token in ["", "a", "abcdefgh", "abcdefghijklmno"] {
            assert_eq!(mask_token(token), "****", "length {}", token.len());
        }
    }

    #[test]
    fn long_tokens_show_four_and_four() {
        assert_eq!(mask_token("abcdefghijklmnop"), "abcd…mnop");
        let forty = "0123456789abcdefghijklmnopqrstuvwxyzABCD";
        assert_eq!(forty.len(), 40);
        assert_eq!(mask_token(forty), "0123…ABCD");
    }

    #[test]
    fn multi_byte_tokens_count_characters() {
        // 16 characters, 48 bytes: revealed by characters, never split inside one.
        let token = "ééééaaaaaaaaüüüü".replace('a', "€");
        assert_eq!(token.chars().count(), 16);
        assert_eq!(mask_token(&token), "éééé…üüüü");
        // 15 multi-byte characters are over 16 bytes but still too short to reveal anything.
        assert_eq!(mask_token(&"€".repeat(15)), "****");
    }

    #[test]
    fn never_more_than_eight_token_characters() {
        for len in [0, 1, 8, 15, 16, 17, 40, 500] {
            let token: String = std::iter::repeat_n('x', len).collect();
            let shown = mask_token(&token).chars().filter(|c| *c == 'x').count();
            assert!(shown <= 8, "length {len} showed {shown}");
        }
    }

    #[test]
    fn credential_values_keep_their_scheme() {
        assert_eq!(
            mask_credential("Bearer abcdefghijklmnopqrstuvwxyz"),
            "Bearer abcd…wxyz"
        );
        assert_eq!(mask_credential("Bearer short"), "Bearer ****");
        assert_eq!(mask_credential("abcdefghijklmnopqrstuvwxyz"), "abcd…wxyz");
        assert!(is_credential_header("Authorization"));
        assert!(is_credential_header("X-Api-Key"));
        assert!(is_credential_header("X-Forwarded-Access-Token"));
        assert!(!is_credential_header("Accept"));
    }
}
