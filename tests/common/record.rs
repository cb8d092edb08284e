//! Frame recording for the schema check (tools/asyncapi): when
//! `HUBBUB_RECORD_FRAMES=DIR` is set, every text frame a test [`Client`]
//! sends or receives is appended as one JSON line to `DIR/rust-<pid>.jsonl`:
//! `{"dir":"send"|"recv","frame":<parsed frame>,"test":"<test>","conn":<n>}`,
//! plus `"mark":"malformed"` (deliberately invalid, not checked) or
//! `"mark":"expect_error"` (sent by `Client::err`, or after
//! `Client::expect_error_next`: may break the schema if the server refuses
//! it; `Client::malformed_next` gives the first mark). A frame that is not
//! JSON is recorded as a string.
//! Unset, nothing is written. tools/asyncapi/README.md describes the format.
//!
//! [`Client`]: super::Client

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

static FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Whether frames are being recorded in this run.
pub fn enabled() -> bool {
    std::env::var_os("HUBBUB_RECORD_FRAMES").is_some_and(|d| !d.is_empty())
}

/// A new connection number, unique within this process.
pub fn next_conn() -> u64 {
    NEXT_CONN.fetch_add(1, Ordering::Relaxed)
}

/// The name of the running test: libtest names the test's thread after it;
/// otherwise (a helper thread) the binary's name.
pub fn test_name() -> String {
    match std::thread::current().name() {
        Some(n) if n != "main" && !n.starts_with("tokio-") => n.to_owned(),
        _ => std::env::args().next().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_owned(),
    }
}

/// Appends one frame (`dir` is `send` or `recv`); a no-op unless enabled.
/// Recording failures panic: a run that asked for a record must get it whole.
pub fn frame(dir: &str, text: &str, test: &str, conn: u64, mark: Option<&str>) {
    if !enabled() {
        return;
    }
    let frame = serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.to_owned()));
    let mut line = json!({"dir": dir, "frame": frame, "test": test, "conn": conn});
    if let Some(m) = mark {
        line["mark"] = json!(m);
    }
    let mut file = FILE.lock().unwrap_or_else(|p| p.into_inner());
    if file.is_none() {
        let dir = std::env::var_os("HUBBUB_RECORD_FRAMES").unwrap_or_default();
        std::fs::create_dir_all(&dir).expect("create HUBBUB_RECORD_FRAMES dir");
        let path = std::path::Path::new(&dir).join(format!("rust-{}.jsonl", std::process::id()));
        *file = Some(std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open frame record"));
    }
    if let Some(f) = file.as_mut() {
        writeln!(f, "{line}").expect("write frame record");
    }
}
