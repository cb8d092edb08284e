//! Helpers of the fuzz/property targets (`tests/fuzz_*.rs`), on stable Rust
//! with proptest (`cargo fuzz` needs nightly):
//! - a fixed seed per target, printed, replaced by `HUBBUB_FUZZ_SEED`
//!   (a number, or `random`) to replay a failure or explore further;
//! - a case budget per target, replaced by `HUBBUB_FUZZ_CASES`;
//! - the corpus of interesting inputs kept in `tests/corpus/<target>/`,
//!   replayed whole on every run and used as the seeds of byte mutations;
//! - a counting global allocator, so a target can assert that parsing an
//!   input allocates in proportion to its size (no unbounded allocation).
//!
//! Not declared in `common/mod.rs`: only the fuzz binaries include it
//! (`#[path = "common/fuzz.rs"] mod fuzz;`), because it installs the
//! global allocator of the binary that includes it.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicIsize, Ordering};

use hubbub::protocol::REQUEST_KINDS;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

/// The system allocator, counting live bytes per thread and process-wide.
pub struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}
static GLOBAL_LIVE: AtomicIsize = AtomicIsize::new(0);
static GLOBAL_PEAK: AtomicIsize = AtomicIsize::new(0);

fn note(delta: isize) {
    // `try_with`: no panic while a thread's locals are being torn down.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
    let now = GLOBAL_LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
    GLOBAL_PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters move.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Runs `f` and returns its result with the most heap bytes it held at
/// once on this thread, above what the thread held before.
pub fn peak_heap<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    let peak = PEAK.with(Cell::get);
    (r, (peak - base).max(0) as usize)
}

/// Starts measuring the process-wide peak from the heap in use now.
pub fn reset_global_peak() -> usize {
    let now = GLOBAL_LIVE.load(Ordering::Relaxed);
    GLOBAL_PEAK.store(now, Ordering::Relaxed);
    now.max(0) as usize
}

/// The process-wide peak heap since [`reset_global_peak`].
pub fn global_peak() -> usize {
    GLOBAL_PEAK.load(Ordering::Relaxed).max(0) as usize
}

/// The seed of `target`: `HUBBUB_FUZZ_SEED` (a number, or `random`), else
/// a fixed one derived from the target's name, so CI runs are repeatable.
pub fn seed(target: &str) -> u64 {
    let seed = match std::env::var("HUBBUB_FUZZ_SEED").ok().as_deref().map(str::trim) {
        Some("random") => {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            t.as_nanos() as u64 ^ u64::from(std::process::id())
        }
        Some(s) if !s.is_empty() => s.parse().expect("HUBBUB_FUZZ_SEED is a number or `random`"),
        _ => target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)),
    };
    eprintln!("fuzz target {target}: seed {seed} (replay with HUBBUB_FUZZ_SEED={seed})");
    seed
}

/// The case budget: `HUBBUB_FUZZ_CASES` if set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("HUBBUB_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A proptest runner with `cases` cases, seeded by [`seed`], that keeps no
/// regression files (failures are added to the corpus by hand instead).
pub fn runner(target: &str, cases: u32) -> TestRunner {
    let seed = seed(target);
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&seed.wrapping_add(i as u64).to_le_bytes());
    }
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 2048, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Every file of `tests/corpus/<target>/`, sorted by name, with its name.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("corpus entry").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("read corpus file"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    files
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
pub enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Duplicate(usize, usize, u8),
    Truncate(usize),
}

/// Byte sequences that parsers tend to trip on.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"-1",
    b"0",
    b"1e999",
    b"-0.0",
    b"18446744073709551616",
    b"9223372036854775808",
    b"\\u0000",
    b"\\ud800",
    b"\xff",
    b"\xc3",
    b"\xe2\x80\xae",
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\0",
    b" ",
    b"%00",
    b"?",
    b"=",
    b"&",
    b"\x7f",
];

/// An edit at a position scaled to the input later (`usize` is a fraction
/// of the length, so shrinking moves edits towards the start).
pub fn edit() -> impl Strategy<Value = Edit> {
    let token = prop::sample::select(TOKENS).prop_map(<[u8]>::to_vec);
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(p, b)| Edit::Flip(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Set(p, b)),
        (any::<usize>(), token).prop_map(|(p, t)| Edit::Insert(p, t)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(p, b)| Edit::Insert(p, b)),
        (any::<usize>(), 1usize..16).prop_map(|(p, n)| Edit::Remove(p, n)),
        (any::<usize>(), 1usize..32, 1u8..6).prop_map(|(p, n, k)| Edit::Duplicate(p, n, k)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// Applies `edits` to `input`.
pub fn mutate(input: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = input.to_vec();
    for e in edits {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
        match e {
            Edit::Flip(p, bit) if !v.is_empty() => {
                let i = p % v.len();
                v[i] ^= 1 << bit;
            }
            Edit::Set(p, b) if !v.is_empty() => {
                let i = p % v.len();
                v[i] = *b;
            }
            Edit::Insert(p, bytes) => {
                let i = at(*p, v.len());
                v.splice(i..i, bytes.iter().copied());
            }
            Edit::Remove(p, n) if !v.is_empty() => {
                let i = p % v.len();
                let end = (i + n).min(v.len());
                v.drain(i..end);
            }
            Edit::Duplicate(p, n, k) if !v.is_empty() => {
                let i = p % v.len();
                let end = (i + n).min(v.len());
                let part: Vec<u8> = v[i..end].to_vec();
                for _ in 0..*k {
                    v.splice(end..end, part.iter().copied());
                }
            }
            Edit::Truncate(p) => {
                let i = at(*p, v.len());
                v.truncate(i);
            }
            _ => {}
        }
    }
    v
}

/// Inputs made by editing corpus entries, 1 to 8 edits each.
pub fn mutated(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(corpus), prop::collection::vec(edit(), 1..8)).prop_map(|(seed, edits)| mutate(&seed, &edits))
}

/// Any JSON value, with keys drawn mostly from the protocol's field names.
pub fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        3 => prop::sample::select(vec![
            "type", "id", "text", "to", "nonce", "username", "password", "token", "resume", "epoch", "offset",
            "since", "limit", "before", "after", "post_id", "with", "usernames", "display_name", "bio", "color",
            "avatar_url", "query", "old_password", "new_password", "refresh_token",
        ])
        .prop_map(str::to_string),
        1 => prop::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::collection::vec(any::<char>(), 0..24).prop_map(|c| Value::String(String::from_iter(c))),
        any::<u64>().prop_map(|n| Value::String(n.to_string())),
        prop::sample::select(REQUEST_KINDS).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A request object: a real kind, an id, and random fields.
pub fn request_like() -> impl Strategy<Value = String> {
    let name = prop::collection::vec(prop::sample::select(b"abcdefghijklmnopqrstuvwxyz_".to_vec()), 1..12)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned());
    (prop::sample::select(REQUEST_KINDS), json_value(), prop::collection::vec((name, json_value()), 0..6)).prop_map(
        |(kind, id, fields)| {
            let mut m = serde_json::Map::new();
            m.insert("type".into(), kind.into());
            m.insert("id".into(), id);
            for (k, v) in fields {
                m.insert(k, v);
            }
            Value::Object(m).to_string()
        },
    )
}

/// Decodes a corpus file written as hex (whitespace ignored).
pub fn unhex(text: &[u8]) -> Vec<u8> {
    let digits: Vec<u8> = text.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("hex"), 16).expect("hex digit pair"))
        .collect()
}

/// Values a field of a real request might hold: known and unknown names,
/// ids at the edges, texts at and past the limits, numbers, lists.
pub fn plausible() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec!["fuzz_peer", "fuzzer", "FUZZ_PEER", "nobody", "", "a", "frames_user"])
            .prop_map(Value::from),
        prop::sample::select(vec!["0", "1", "-1", "01", "9223372036854775807", "9223372036854775808", "1e3", " 1"])
            .prop_map(Value::from),
        any::<i64>().prop_map(|n| Value::from(n.to_string())),
        any::<u32>().prop_map(Value::from),
        (prop::sample::select(vec!["x", "é", " ", "\n", "\u{202e}", "😀"]), 0usize..4200)
            .prop_map(|(c, n)| Value::from(c.repeat(n))),
        prop::collection::vec(prop::sample::select(vec!["fuzz_peer", "fuzzer", "x"]), 0..120)
            .prop_map(|v| Value::from(v.into_iter().map(Value::from).collect::<Vec<_>>())),
        Just(json!({"epoch": "x", "offset": 1})),
    ]
}

/// Corpus requests (JSON objects) with fields replaced by [`plausible`] or
/// any values, or removed; the kind stays, so most reach their handler.
pub fn json_mutated(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = String> {
    let objects: Vec<serde_json::Map<String, Value>> = corpus
        .iter()
        .filter_map(|b| serde_json::from_slice::<Value>(b).ok()?.as_object().cloned())
        .filter(|o| o.len() > 1)
        .collect();
    let change = prop_oneof![3 => plausible().prop_map(Some), 1 => json_value().prop_map(Some), 1 => Just(None)];
    (prop::sample::select(objects), prop::collection::vec((any::<prop::sample::Index>(), change), 1..3)).prop_map(
        |(mut obj, changes)| {
            for (at, change) in changes {
                let keys: Vec<String> = obj.keys().filter(|k| *k != "type").cloned().collect();
                if keys.is_empty() {
                    continue;
                }
                let key = at.get(&keys).clone();
                match change {
                    Some(v) => obj.insert(key, v),
                    None => obj.remove(&key),
                };
            }
            Value::Object(obj).to_string()
        },
    )
}
