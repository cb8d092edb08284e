//! Property tests (fuzzing on stable) of the pure parsers a client reaches
//! first: the HTTP request head (`http::parse_head`), the request envelope
//! and request types (`protocol::{Envelope, Request}`, parsed in that order
//! by `connection`), and the field validators. For every input: no panic,
//! heap in proportion to the input, and the results agree with each other.
//! Each target replays its corpus (`tests/corpus/<target>/`), then runs a
//! fixed number of generated cases; see `common/fuzz.rs` for the seed and
//! budget variables.

#[path = "common/fuzz.rs"]
mod fuzz;

use hubbub::http::{HeadError, MAX_HEAD_BYTES, origin_allowed, parse_head};
use hubbub::protocol::{Envelope, REQUEST_KINDS, Request};
use hubbub::validate;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value;

#[global_allocator]
static ALLOC: fuzz::Counting = fuzz::Counting;

/// Heap a parse may hold at once: linear in the input, plus a constant.
fn heap_bound(len: usize, per_byte: usize) -> usize {
    64 * 1024 + per_byte * len
}

fn check_head(buf: &[u8]) -> Result<(), TestCaseError> {
    let (parsed, heap) = fuzz::peak_heap(|| parse_head(buf));
    prop_assert!(heap <= heap_bound(buf.len(), 4), "{heap} heap bytes for a {}-byte head", buf.len());
    match parsed {
        Ok(Some((head, len))) => {
            prop_assert!(len <= buf.len());
            // A head completes only at its end: no shorter prefix does.
            for cut in [len / 2, len.saturating_sub(1)] {
                if cut < len {
                    prop_assert!(!matches!(parse_head(&buf[..cut]), Ok(Some(_))), "prefix of {cut} bytes completed");
                }
            }
            for name in ["host", "connection", "upgrade", "origin", "sec-websocket-key", ""] {
                let _ = head.header(name);
                let _ = head.header_has_token(name, "upgrade");
            }
            let _ = head.query_param("token");
            let _ = head.query_param("");
            let _ = origin_allowed(head.header("origin"), head.header("host"), &["*".into()], &[]);
            let _ = origin_allowed(head.header("origin"), head.header("host"), &[], &[]);
            let _ = origin_allowed(head.header("origin"), head.header("host"), &[], &["chat.example".into()]);
        }
        Ok(None) => prop_assert!(buf.len() < MAX_HEAD_BYTES, "{} bytes still partial", buf.len()),
        Err(HeadError::TooLarge) => prop_assert!(buf.len() >= MAX_HEAD_BYTES),
        Err(HeadError::Malformed(_)) => {}
        Err(HeadError::Gone) => prop_assert!(false, "a pure parse cannot be Gone"),
    }
    Ok(())
}

/// What `connection::handle_text` does with a text frame before dispatch:
/// the envelope, then the request; checks they agree.
fn check_request(text: &str) -> Result<(), TestCaseError> {
    let ((env, req), heap) = fuzz::peak_heap(|| {
        let env = serde_json::from_str::<Envelope>(text);
        let req = serde_json::from_str::<Request>(text);
        (env, req)
    });
    // serde_json's `Value` costs tens of bytes per token; 48 per input byte
    // leaves room for vector growth and no more.
    prop_assert!(heap <= heap_bound(text.len(), 48), "{heap} heap bytes for a {}-byte frame", text.len());
    if let Ok(req) = &req {
        let env = env.as_ref().map_err(|e| TestCaseError::fail(format!("request parsed, envelope not: {e}")))?;
        let kind = env.kind.as_ref().and_then(Value::as_str);
        prop_assert!(kind.is_some_and(|k| REQUEST_KINDS.contains(&k)), "parsed a request of kind {kind:?}");
        let _ = req.allowed_before_auth();
    }
    Ok(())
}

fn check_fields(s: &str) -> Result<(), TestCaseError> {
    let ((), heap) = fuzz::peak_heap(|| {
        let _ = validate::username(s);
        if let Ok(name) = validate::display_name(Some(s), "fallback") {
            assert!(name.chars().count() <= validate::MAX_DISPLAY_NAME_CHARS && !name.is_empty());
            assert!(!name.chars().any(char::is_control));
        }
        let _ = validate::bio(s);
        if let Ok(c) = validate::color(s) {
            assert!(c.len() == 7 && c == c.to_ascii_lowercase());
        }
        let _ = validate::avatar_url(s);
        if let Ok(q) = validate::search_query(s) {
            assert!(!q.is_empty() && q.chars().count() <= validate::MAX_QUERY_CHARS);
        }
        let _ = validate::message_text(s, 4000);
        let _ = validate::nonce(s);
        let _ = hubbub::model::MessageId::parse(s).map(|id| hubbub::model::rfc3339(id.unix_ms()));
    });
    prop_assert!(heap <= heap_bound(s.len(), 4), "{heap} heap bytes for a {}-byte field", s.len());
    Ok(())
}

fn corpus_bytes(target: &str) -> Vec<Vec<u8>> {
    fuzz::corpus(target).into_iter().map(|(_, b)| b).collect()
}

/// Runs `check` on `cases` generated inputs (the corpus itself is replayed
/// by `corpus_replays_cleanly`).
fn run<S: Strategy>(
    target: &str,
    default_cases: u32,
    strategy: S,
    check: impl Fn(&S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = fuzz::runner(target, fuzz::cases(default_cases));
    if let Err(e) = runner.run(&strategy, |v| check(&v)) {
        panic!("fuzz target {target}: {e}");
    }
}

#[test]
fn corpus_replays_cleanly() {
    for (name, bytes) in fuzz::corpus("http_head") {
        check_head(&bytes).unwrap_or_else(|e| panic!("http_head/{name}: {e}"));
    }
    for (name, bytes) in fuzz::corpus("request") {
        let text = String::from_utf8_lossy(&bytes);
        check_request(&text).unwrap_or_else(|e| panic!("request/{name}: {e}"));
        check_fields(&text).unwrap_or_else(|e| panic!("request/{name} as a field: {e}"));
    }
}

/// Printable ASCII (and now and then any byte), cheap to generate.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![20 => 0x20u8..0x7f, 1 => any::<u8>()], 0..max)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Heads built from parts: methods, targets, versions, header lines and
/// line ends, in any mix (most complete, some cut short).
fn head_parts() -> impl Strategy<Value = Vec<u8>> {
    let method = prop::sample::select(vec!["GET", "POST", "get", "", "G\0T", "OPTIONS"]);
    let target = prop_oneof![Just("/ws".to_string()), Just("/ws?token=a.b.c&x".to_string()), text(40)];
    let version = prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0", "HTTP/2", "", "HTTP/1.1 extra"]);
    let eol = prop::sample::select(vec!["\r\n", "\r\n", "\r\n", "\n", "\r", ""]);
    let name = prop_oneof![
        prop::sample::select(vec!["Host", "Origin", "Connection", "Upgrade", "Sec-WebSocket-Key", ""])
            .prop_map(String::from),
        text(12),
    ];
    let value = prop_oneof![
        prop::sample::select(vec!["Upgrade", "websocket", "keep-alive, Upgrade", "http://h", ""])
            .prop_map(String::from),
        text(30),
    ];
    let header = (name, value, eol.clone());
    (method, target, version, eol.clone(), prop::collection::vec(header, 0..60), eol, 0usize..2000).prop_map(
        |(m, t, v, e1, headers, e2, pad)| {
            let mut s = format!("{m} {t} {v}{e1}");
            for (k, val, e) in headers {
                s.push_str(&format!("{k}: {val}{e}"));
            }
            s.push_str(e2);
            if pad > 1900 {
                s.push_str(&"x".repeat(pad * 4));
            }
            s.into_bytes()
        },
    )
}

#[test]
fn http_head_parser() {
    let strategy = prop_oneof![
        3 => fuzz::mutated(corpus_bytes("http_head")),
        2 => head_parts(),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ];
    run("http_head", 1500, strategy, |buf| check_head(buf));
}

#[test]
fn request_parser() {
    let strategy = prop_oneof![
        3 => fuzz::mutated(corpus_bytes("request")).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        2 => fuzz::request_like(),
        1 => fuzz::json_value().prop_map(|v| v.to_string()),
        1 => prop::collection::vec(any::<char>(), 0..200).prop_map(String::from_iter),
    ];
    run("request", 1500, strategy, |text| check_request(text));
}

#[test]
fn field_validators() {
    let strategy = prop_oneof![
        prop::collection::vec(any::<char>(), 0..80).prop_map(String::from_iter),
        prop::collection::vec(any::<char>(), 500..600).prop_map(String::from_iter),
        text(12).prop_map(|t| format!("#{t}")),
        (prop::sample::select(vec!["http://", "HTTPS://", "https:/", "ftp://"]), text(40))
            .prop_map(|(a, b)| a.to_owned() + &b),
        prop::collection::vec(prop::sample::select(b"0123456789-+ ".to_vec()), 0..22)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        fuzz::mutated(corpus_bytes("request")).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    run("fields", 1000, strategy, |s| check_fields(s));
}

/// The heap bound is real: a head or frame of the largest accepted size
/// parses within it, so a small input cannot make the server hold much.
#[test]
fn heap_is_bounded_at_the_size_limits() {
    let mut head = b"GET /ws HTTP/1.1\r\n".to_vec();
    while head.len() < MAX_HEAD_BYTES - 40 {
        head.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let (_, heap) = fuzz::peak_heap(|| parse_head(&head));
    assert!(heap <= heap_bound(head.len(), 4), "{heap}");
    // 64 KiB of the most allocation-hungry JSON: many tiny nested arrays.
    let text = format!("{{\"type\":\"ping\",\"id\":1,\"x\":[{}0]}}", "[],".repeat(21_000));
    let (_, heap) = fuzz::peak_heap(|| serde_json::from_str::<Envelope>(&text).map(|_| ()));
    assert!(heap <= heap_bound(text.len(), 48), "{heap} for {}", text.len());
}
