//! Validation of user-supplied fields. Each function returns the cleaned
//! value or a `bad_request`/`too_large` error whose message says the rule.

use crate::error::{Error, bad_request};

/// Username rules: 3-32 characters of `[A-Za-z0-9_]`.
pub fn username(name: &str) -> Result<(), Error> {
    let n = name.chars().count();
    if !(3..=32).contains(&n) || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(bad_request("username must be 3-32 characters of A-Z, a-z, 0-9 and _"));
    }
    Ok(())
}

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// A display name: trimmed, 1-64 characters, no control characters.
/// `None` or blank means "use the username".
pub fn display_name(name: Option<&str>, username: &str) -> Result<String, Error> {
    let Some(name) = name.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(username.to_owned());
    };
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(bad_request(format!("display_name must be at most {MAX_DISPLAY_NAME_CHARS} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(bad_request("display_name must not contain control characters"));
    }
    Ok(name.to_owned())
}

/// Message text: not blank, at most `max_chars` characters.
pub fn message_text(text: &str, max_chars: usize) -> Result<(), Error> {
    if text.trim().is_empty() {
        return Err(bad_request("text must not be empty"));
    }
    if text.chars().count() > max_chars {
        return Err(Error::TooLarge(format!("text must be at most {max_chars} characters")));
    }
    Ok(())
}

/// Longest nonce, in characters.
pub const MAX_NONCE_CHARS: usize = 64;

/// A client nonce: 1-64 printable ASCII characters.
pub fn nonce(nonce: &str) -> Result<(), Error> {
    if nonce.is_empty() || nonce.len() > MAX_NONCE_CHARS || !nonce.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad_request(format!("nonce must be 1-{MAX_NONCE_CHARS} printable ASCII characters")));
    }
    Ok(())
}

/// A page size: `default` when absent, else 1..=`max`.
pub fn limit(limit: Option<u32>, default: usize, max: usize) -> Result<usize, Error> {
    match limit {
        None => Ok(default),
        Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
        Some(_) => Err(bad_request(format!("limit must be between 1 and {max}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["abc", "Alice_99", &"a".repeat(32)] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "with space", "émile", "a-b", &"a".repeat(33), ""] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_names_default_and_trim() {
        assert_eq!(display_name(None, "bob").unwrap(), "bob");
        assert_eq!(display_name(Some("  "), "bob").unwrap(), "bob");
        assert_eq!(display_name(Some(" Bob B "), "bob").unwrap(), "Bob B");
        assert!(display_name(Some("a\u{7}"), "bob").is_err());
        assert!(display_name(Some(&"x".repeat(65)), "bob").is_err());
    }

    #[test]
    fn texts_limits_nonces() {
        assert!(message_text(" ", 10).is_err());
        assert!(message_text("héllo", 5).is_ok());
        assert!(matches!(message_text("héllo!", 5), Err(Error::TooLarge(_))));
        assert!(nonce("abc-123").is_ok());
        assert!(nonce("has space").is_err());
        assert_eq!(limit(None, 50, 100).unwrap(), 50);
        assert!(limit(Some(0), 50, 100).is_err());
        assert!(limit(Some(101), 50, 100).is_err());
    }
}
