//! Operations through the real binary: the configuration file and
//! `hubbub config check|example`, `--log-format`, the separate `/metrics`
//! listener, and signing-key rotation (`hubbub keys rotate|retire`) on one
//! node and across nodes sharing a data directory.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::cluster::Cluster;
use common::{Client, Target, TestServer, free_port, http_get};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_hubbub");

/// Runs the binary to completion with `args` and no HUBBUB_* variables
/// except `env`.
fn hubbub(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("HUBBUB_") {
            c.env_remove(k);
        }
    }
    c.envs(env.iter().copied());
    c.output().expect("run hubbub")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn config_check_shows_each_setting_with_its_source_and_hides_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hubbub.toml");
    std::fs::write(
        &file,
        "bcrypt_cost = 5\nauth_timeout = 7\nmax_frame_bytes = 1000\nredis = [\"redis://u:secret@h:1\"]\nscylla_migrate = true\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = hubbub(&["config", "check", f, "--max-frame-bytes", "2000"], &[("HUBBUB_AUTH_TIMEOUT", "8")]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
    assert!(stdout.contains("bcrypt_cost = 5  # file"), "{stdout}");
    assert!(stdout.contains("auth_timeout = 8  # env"), "env beats the file: {stdout}");
    assert!(stdout.contains("max_frame_bytes = 2000  # flag"), "a flag beats the file: {stdout}");
    assert!(stdout.contains("scylla_migrate = true  # file"), "{stdout}");
    assert!(stdout.contains("write_timeout = 10  # default"), "{stdout}");
    assert!(stdout.contains("redis = [\"redis://u:***@h:1\"]"), "{stdout}");
    assert!(!stdout.contains("secret"), "passwords are redacted: {stdout}");
    // HUBBUB_CONFIG names the file too.
    let out = hubbub(&["config", "check"], &[("HUBBUB_CONFIG", f)]);
    assert!(text(&out.stdout).contains("bcrypt_cost = 5  # file"), "{}", text(&out.stderr));
}

#[test]
fn config_check_refuses_unknown_keys_bad_values_and_bad_toml() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("bcrypt_costt = 5\n", "unknown setting `bcrypt_costt`"),
        ("[push]\npush_ttl = 5\n", "unknown setting `push`"),
        ("bcrypt_cost = 99\n", "bcrypt-cost"),
        ("listen = [1, [2]]\n", "setting `listen`"),
        ("listen = \n", "not valid TOML"),
    ];
    for (body, expected) in cases {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, body).unwrap();
        let out = hubbub(&["config", "check", file.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(2), "{body:?} must be refused");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(expected), "{body:?}: {stderr}");
        // Serving with it fails the same way, before anything starts.
        let out = hubbub(&["--config", file.to_str().unwrap(), "--listen", "127.0.0.1:0"], &[]);
        assert_eq!(out.status.code(), Some(2), "{body:?}: {}", text(&out.stderr));
    }
}

#[test]
fn the_example_file_is_generated_from_the_flags_and_checks_clean() {
    let example = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/hubbub.example.toml"))
        .expect("deploy/hubbub.example.toml");
    let out = hubbub(&["config", "example"], &[]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout) == example,
        "deploy/hubbub.example.toml differs from the flags: run `cargo run -- config example > deploy/hubbub.example.toml`"
    );
    // Every setting, uncommented with its default, is a valid file that
    // changes nothing (settings without a default stay commented).
    let dir = tempfile::tempdir().unwrap();
    let active: String = example
        .lines()
        .filter_map(|l| {
            l.strip_prefix('#').filter(|l| l.contains(" = ") && !l.ends_with("\"\"") && !l.starts_with(' '))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(active.lines().count() > 60, "{active}");
    let file = dir.path().join("all.toml");
    std::fs::write(&file, &active).unwrap();
    let out = hubbub(&["config", "check", file.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn a_server_started_with_a_config_file_serves_with_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let file = dir.path().join("hubbub.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\nbcrypt_cost = 4\nmax_message_chars = 10\n\
             metrics_listen = \"127.0.0.1:{metrics_port}\"\nlog_format = \"json\"\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["--config", file.to_str().unwrap()])
        .env("HUBBUB_LOG", "info")
        .env_remove("HUBBUB_SCYLLA")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hubbub");
    let node = Addr(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    let deadline = tokio::time::Instant::now() + common::start_wait();
    while !matches!(http_get(node.0, "/healthz", &[]).await, Ok((200, _))) {
        assert!(tokio::time::Instant::now() < deadline, "the server never answered on the file's address");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut alice = Client::register(&node, "cfg_alice").await;
    let _bob = Client::register(&node, "cfg_bob").await;
    let (code, _) = alice.err("message.send", json!({"to": "cfg_bob", "text": "eleven char"})).await;
    assert_eq!(code, "too_large", "max_message_chars = 10 from the file");
    assert_eq!(http_get(node.0, "/metrics", &[]).await.unwrap().0, 404);
    let (status, body) =
        http_get(std::net::SocketAddr::from(([127, 0, 0, 1], metrics_port)), "/metrics", &[]).await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("hubbub_sockets_open"));
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let out = tokio::task::spawn_blocking(move || {
        let _ = child.wait();
        let mut s = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut s).unwrap();
        s
    });
    let log = tokio::time::timeout(Duration::from_secs(30), out).await.expect("server stops").unwrap();
    assert!(!log.contains('\u{1b}'), "no colour codes when stderr is not a terminal: {log}");
    let lines: Vec<&str> = log.lines().collect();
    assert!(!lines.is_empty());
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
}

/// A node address as a [`Target`].
struct Addr(std::net::SocketAddr);

impl Target for Addr {
    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.0)
    }
}

/// The `kid` in an access token's header.
fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let json: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    json["kid"].as_str().unwrap().to_owned()
}

/// The key ids a node publishes.
async fn jwks(addr: std::net::SocketAddr) -> Vec<String> {
    let (_, body) = http_get(addr, "/.well-known/jwks.json", &[]).await.unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

/// Polls `check` every 100 ms until it holds (at most 30 s).
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `hubbub keys ARGS --data-dir DIR`: (success, stdout + stderr).
fn keys(dir: &Path, args: &[&str]) -> (bool, String) {
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", dir.to_str().unwrap()]);
    let out = hubbub(&all, &[]);
    (out.status.success(), text(&out.stdout) + &text(&out.stderr))
}

/// The kid `hubbub keys rotate` printed.
fn new_kid(printed: &str) -> String {
    printed.split_whitespace().skip_while(|w| *w != "key").nth(1).expect("new signing key KID").to_owned()
}

#[tokio::test]
async fn a_rotated_key_keeps_old_tokens_working_until_it_is_retired() {
    let s = TestServer::start_with(|c| c.jwt_keys_reload_secs = 1).await;
    let alice = Client::register(&s, "rot_alice").await;
    let old_token = alice.access_token.clone();
    let old_kid = kid(&old_token);
    let (ok, out) = keys(&s.dir, &["rotate", "--jwt-key-activation-secs", "2"]);
    assert!(ok, "{out}");
    let kid2 = new_kid(&out);
    assert_ne!(kid2, old_kid);
    eventually("the node publishes both keys", || async { jwks(s.addr).await == [old_kid.clone(), kid2.clone()] })
        .await;
    // Until activation, and after it, the old token works; new logins get the new kid.
    let _ = Client::with_token(&s, &old_token).await;
    eventually("a login gets the new key", || async {
        kid(&Client::login(&s, "rot_alice").await.access_token) == kid2
    })
    .await;
    let new_token = Client::login(&s, "rot_alice").await.access_token;
    let _ = Client::with_token(&s, &old_token).await;
    // The old key may still have live tokens: retiring needs --force.
    let (ok, out) = keys(&s.dir, &["retire", &old_kid]);
    assert!(!ok && out.contains("may be live"), "{out}");
    let (ok, out) = keys(&s.dir, &["retire", &kid2]);
    assert!(!ok && out.contains("signing"), "the signing key cannot be retired: {out}");
    let (ok, out) = keys(&s.dir, &["retire", &old_kid, "--force"]);
    assert!(ok, "{out}");
    eventually("the node drops the retired key", || async { jwks(s.addr).await == [kid2.clone()] }).await;
    let mut c = Client::connect(&s).await;
    let (code, _) = c.err("auth.token", json!({ "token": old_token })).await;
    assert_eq!(code, "unauthorized", "a retired key's tokens are refused");
    let _ = Client::with_token(&s, &new_token).await;
    s.stop().await;
}

#[tokio::test]
async fn every_node_on_a_shared_data_directory_accepts_both_keys_of_a_rotation() {
    let Some(cluster) = Cluster::start_with_args(&["--jwt-keys-reload-secs", "1"]).await else { return };
    let [a, b, c] = &cluster.nodes[..] else { panic!("three nodes") };
    let old_token = Client::register(a, "rotc_alice").await.access_token;
    let old_kid = kid(&old_token);
    let (ok, out) = keys(&cluster.dir, &["rotate", "--jwt-key-activation-secs", "3"]);
    assert!(ok, "{out}");
    let kid2 = new_kid(&out);
    for n in [a, b, c] {
        eventually("every node publishes both keys", || async {
            jwks(n.addr).await == [old_kid.clone(), kid2.clone()]
        })
        .await;
    }
    eventually("node a signs with the new key", || async {
        kid(&Client::login(a, "rotc_alice").await.access_token) == kid2
    })
    .await;
    let new_token = Client::login(a, "rotc_alice").await.access_token;
    for n in [a, b, c] {
        let _ = Client::with_token(n, &old_token).await;
        let _ = Client::with_token(n, &new_token).await;
    }
    let (ok, out) = keys(&cluster.dir, &["list"]);
    assert!(ok && out.contains(&format!("{kid2}  signing")), "{out}");
    assert!(out.contains(&format!("{old_kid}  verifying")), "{out}");
}
