//! The ScyllaDB store without a ScyllaDB: connecting fails fast with a
//! clear, typed error (never a hang or a panic), both in the library and
//! in the `hubbub` binary. Runs everywhere; needs no server.

use std::process::Command;
use std::time::{Duration, Instant};

use hubbub::error::StoreError;
use hubbub::store::{ScyllaOptions, ScyllaStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn options(addr: String) -> ScyllaOptions {
    let mut o = ScyllaOptions::new(vec![addr], "hubbub");
    o.request_timeout = Duration::from_millis(500);
    o
}

/// A port where nothing listens (bound, then released).
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    addr
}

/// A listener that speaks something other than CQL (`garbage: true`: an
/// HTTP error reply to anything, else silence) until the test ends.
async fn not_cql(garbage: bool) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                if garbage {
                    let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
                } else {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            });
        }
    });
    addr
}

async fn assert_fails_fast(addr: String) {
    let started = Instant::now();
    let err = match ScyllaStore::open(&options(addr.clone())).await {
        Ok(_) => panic!("opened a store at {addr}"),
        Err(e) => e,
    };
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains(&addr), "names the address: {err}");
    let err = ScyllaStore::migrate(&options(addr)).await.expect_err("migrate without a server");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn nothing_listening_is_unavailable_at_once() {
    assert_fails_fast(closed_port()).await;
}

#[tokio::test]
async fn a_peer_that_answers_http_is_unavailable() {
    assert_fails_fast(not_cql(true).await).await;
}

#[tokio::test]
async fn a_silent_peer_is_unavailable_after_the_timeout() {
    assert_fails_fast(not_cql(false).await).await;
}

fn hubbub(args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .args(args)
        .args(["--data-dir", dir.path().to_str().unwrap(), "--scylla-request-timeout-ms", "500"])
        .env("HUBBUB_LOG", "error")
        .env_remove("HUBBUB_SCYLLA")
        .output()
        .expect("run hubbub");
    // Logs go to stderr (stdout only carries command output).
    let mut log = String::from_utf8_lossy(&out.stderr).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stdout));
    (out.status.code().unwrap_or(-1), log)
}

// Multi-threaded: the silent peer keeps accepting while the binary runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_non_zero_with_a_clear_error() {
    let down = closed_port();
    let (code, log) = hubbub(&["migrate", "--scylla", &down]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("migrate failed") && log.contains("cannot connect to ScyllaDB"), "{log}");

    let silent = not_cql(false).await;
    let (code, log) = hubbub(&["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "off", "--scylla", &silent]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("server failed") && log.contains("no CQL answer"), "{log}");
}
