//! The small HTTP/1.1 front every connection starts with: read one request
//! head (bounded in size and time), answer plain endpoints, or hand an
//! upgrade to the WebSocket layer. Each plain response closes the connection.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head accepted, in bytes.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most headers accepted.
const MAX_HEADERS: usize = 48;

/// A parsed request head.
#[derive(Debug)]
pub struct RequestHead {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub query: Option<String>,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order (name compared case-insensitively).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl DoubleEndedIterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// True if a comma-separated header contains `token` (case-insensitively).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The first value of a query parameter (not percent-decoded: the values
    /// hubbub reads, tokens, are URL-safe).
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then_some(v)
        })
    }
}

/// Why a head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("request head too large")]
    TooLarge,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("connection closed or timed out")]
    Gone,
}

/// Reads one request head. Returns it with any bytes read past its end.
pub async fn read_head(stream: &mut TcpStream, limit: Duration) -> Result<(RequestHead, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let work = async {
        loop {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.map_err(|_| HeadError::Gone)?;
            if n == 0 {
                return Err(HeadError::Gone);
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some((head, len)) = parse_head(&buf)? {
                return Ok((head, buf[len..].to_vec()));
            }
        }
    };
    tokio::time::timeout(limit, work).await.map_err(|_| HeadError::Gone)?
}

/// Parses the request head at the start of `buf`: the head and its length
/// in bytes, or `None` when `buf` holds only part of one (read more).
/// `TooLarge` once `MAX_HEAD_BYTES` or more are buffered without a complete
/// head. Pure, so the property tests (`tests/fuzz_parsers.rs`) drive it.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let target = req.path.unwrap_or("/");
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
                None => (target.to_owned(), None),
            };
            let head = RequestHead {
                method: req.method.unwrap_or("").to_owned(),
                path,
                query,
                headers: req
                    .headers
                    .iter()
                    .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect(),
            };
            Ok(Some((head, len)))
        }
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => Ok(None),
        Ok(httparse::Status::Partial) => Err(HeadError::TooLarge),
        Err(e) => Err(HeadError::Malformed(e.to_string())),
    }
}

/// Writes a complete response and closes the write side.
pub async fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) {
    respond_with(stream, status, &[("content-type", content_type)], body).await;
}

/// Writes a complete response with extra headers and closes the write side.
pub async fn respond_with(stream: &mut TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        head.push_str("content-type: text/plain; charset=utf-8\r\n");
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("cache-control")) {
        head.push_str("cache-control: no-store\r\n");
    }
    head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    let work = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), work).await;
}

/// Writes a plain-text response.
pub async fn respond_text(stream: &mut TcpStream, status: &str, body: &str) {
    respond(stream, status, "text/plain; charset=utf-8", body.as_bytes()).await;
}

/// Whether a browser `Origin` may open a socket. No Origin (non-browser
/// clients) is allowed; so is one on the allowlist (`*` allows any); so is a
/// same-host origin: one whose host is in `public_hosts` when that is set,
/// else one whose host is the request's Host.
pub fn origin_allowed(origin: Option<&str>, host: Option<&str>, allowlist: &[String], public_hosts: &[String]) -> bool {
    let Some(origin) = origin else { return true };
    if allowlist.iter().map(|a| a.trim().trim_end_matches('/')).any(|a| a == "*" || a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    if !public_hosts.is_empty() {
        return !origin_host.is_empty() && public_hosts.iter().any(|h| h.trim().eq_ignore_ascii_case(origin_host));
    }
    matches!(host, Some(h) if !h.is_empty() && h.eq_ignore_ascii_case(origin_host))
}

/// Headers sent with the web client's files: a Content-Security-Policy that
/// allows only this origin's own script, style and socket (no inline code,
/// no plugins, no framing), framing refused for old browsers too, and no
/// Referer leaking the page's URL.
pub const WEB_SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let list = vec!["https://chat.example.com".to_string()];
        let o = |origin, host, list: &[String]| origin_allowed(origin, host, list, &[]);
        assert!(o(None, Some("h:1"), &list));
        assert!(o(Some("https://chat.example.com"), Some("api:1"), &list));
        assert!(!o(Some("https://evil.example"), Some("api:1"), &list));
        assert!(o(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080"), &[]));
        assert!(!o(Some("http://127.0.0.1:9999"), Some("127.0.0.1:8080"), &[]));
        assert!(o(Some("https://x"), None, &["*".to_string()]));
        assert!(o(Some("https://b.example"), None, &["https://a.example".into(), " https://b.example/".into()]));
        assert!(!o(Some("null"), Some("h"), &[]));
        // With public hosts, a rebinding page's Host header no longer counts.
        let public = vec!["chat.example.com".to_string()];
        assert!(!origin_allowed(Some("http://evil.example:8080"), Some("evil.example:8080"), &[], &public));
        assert!(origin_allowed(Some("https://chat.example.com"), Some("10.0.0.5:8080"), &[], &public));
    }
}
