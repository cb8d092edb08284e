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

/// A display name: trimmed, 1-64 characters, no control characters and no
/// invisible ones ([`is_invisible`]: bidi controls, zero-width and other
/// format characters, fillers), so a name cannot hide or reorder text.
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
    if name.chars().any(is_invisible) {
        return Err(bad_request(
            "display_name must not contain invisible characters (bidi controls, zero-width or other format characters)",
        ));
    }
    Ok(name.to_owned())
}

/// The username a display name could pass for, if any: the name without a
/// leading `@`, when that has a username's shape. A display name that names
/// another user this way is refused (the caller looks it up).
pub fn display_name_as_username(display_name: &str) -> Option<&str> {
    let bare = display_name.strip_prefix('@').unwrap_or(display_name);
    username(bare).is_ok().then_some(bare)
}

/// True for characters that render as nothing or change the order or
/// joining of their neighbours: every Unicode format character
/// (general category Cf, which includes the bidi embeddings, overrides and
/// isolates, the zero-width space, joiners and marks, the BOM and tag
/// characters), plus the invisible fillers outside Cf (combining grapheme
/// joiner, Hangul fillers, Khmer inherent vowels, Mongolian variation
/// selectors). Emoji variation selectors stay allowed.
pub fn is_invisible(c: char) -> bool {
    const RANGES: &[(u32, u32)] = &[
        // Cf (Unicode 15.1)
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
        // invisible, but not Cf
        (0x034F, 0x034F),
        (0x115F, 0x1160),
        (0x17B4, 0x17B5),
        (0x180B, 0x180D),
        (0x180F, 0x180F),
        (0x3164, 0x3164),
        (0xFFA0, 0xFFA0),
    ];
    let c = c as u32;
    RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Longest bio, in characters.
pub const MAX_BIO_CHARS: usize = 500;

/// A bio: at most 500 characters, no control characters except newline.
/// Kept as sent; `""` empties it.
pub fn bio(bio: &str) -> Result<(), Error> {
    if bio.chars().count() > MAX_BIO_CHARS {
        return Err(bad_request(format!("bio must be at most {MAX_BIO_CHARS} characters")));
    }
    if bio.chars().any(|c| c.is_control() && c != '\n') {
        return Err(bad_request("bio must not contain control characters other than newline"));
    }
    Ok(())
}

/// A profile color: `#RRGGBB` in hex digits of either case; returned lowercase.
pub fn color(color: &str) -> Result<String, Error> {
    match color.strip_prefix('#') {
        Some(hex) if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(color.to_ascii_lowercase()),
        _ => Err(bad_request("color must be #RRGGBB (hex digits)")),
    }
}

/// Longest avatar URL, in characters.
pub const MAX_URL_CHARS: usize = 500;

/// An avatar URL: `http://` or `https://` (scheme in any case), a
/// non-empty host, at most 500 characters, no whitespace or control
/// characters. Returned as sent.
pub fn avatar_url(url: &str) -> Result<(), Error> {
    let invalid = || bad_request(format!("avatar_url must be an http(s) URL of at most {MAX_URL_CHARS} characters"));
    if url.chars().count() > MAX_URL_CHARS || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let lower = url.to_ascii_lowercase();
    let rest = ["https://", "http://"].iter().find_map(|p| lower.strip_prefix(p)).ok_or_else(invalid)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(invalid());
    }
    Ok(())
}

/// Longest search query, in characters.
pub const MAX_QUERY_CHARS: usize = 64;

/// A search query: trimmed, not blank, at most 64 characters. Every
/// character is literal (no wildcards).
pub fn search_query(query: &str) -> Result<&str, Error> {
    let q = query.trim();
    if q.is_empty() {
        return Err(bad_request("query must not be empty"));
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(bad_request(format!("query must be at most {MAX_QUERY_CHARS} characters")));
    }
    Ok(q)
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
        for hidden in ["a\u{202E}gnp.exe", "bo\u{200B}b", "\u{2066}x\u{2069}", "x\u{FEFF}", "\u{3164}", "a\u{E0041}"] {
            assert!(display_name(Some(hidden), "bob").is_err(), "{hidden:?}");
        }
        assert_eq!(display_name(Some("Zoë ❤\u{FE0F} 日本"), "bob").unwrap(), "Zoë ❤\u{FE0F} 日本");
        assert_eq!(display_name_as_username("@Alice_1"), Some("Alice_1"));
        assert_eq!(display_name_as_username("Alice B"), None);
    }

    #[test]
    fn profile_fields() {
        assert!(bio("two\nlines").is_ok());
        assert!(bio(&"é".repeat(500)).is_ok());
        assert!(bio(&"é".repeat(501)).is_err());
        assert!(bio("tab\there").is_err());
        assert_eq!(color("#A0b1C2").unwrap(), "#a0b1c2");
        for bad in ["a0b1c2", "#a0b1c", "#a0b1c2f", "#g0b1c2", "", "#ＡＢＣＤＥＦ"] {
            assert!(color(bad).is_err(), "{bad}");
        }
        assert!(avatar_url("https://cdn.example.com/a.png").is_ok());
        assert!(avatar_url("HTTP://example.com").is_ok());
        for bad in ["ftp://x.com/a", "javascript:alert(1)", "https://", "https:///path", "https://a b", ""] {
            assert!(avatar_url(bad).is_err(), "{bad}");
        }
        assert!(avatar_url(&format!("https://x.com/{}", "a".repeat(490))).is_err());
        assert_eq!(search_query("  Ann ").unwrap(), "Ann");
        assert!(search_query("   ").is_err());
        assert!(search_query(&"a".repeat(65)).is_err());
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
