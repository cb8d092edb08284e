//! Limits a hostile client runs into: registration per address and in all,
//! the bcrypt pool, one user's writes across sockets, unauthenticated
//! sockets per address, password guessing from many addresses, display
//! names, the web client's headers and origins, and reply pages by bytes.
//! Other addresses are 127.0.0.x source addresses on loopback.

mod common;

use std::collections::HashSet;

use common::{Client, TestServer, WAIT, connect_with_headers};
use serde_json::{Value, json};

fn register_req(name: &str) -> Value {
    json!({"username": name, "password": "password123"})
}

async fn from(s: &TestServer, ip: &str) -> Client {
    Client::connect_from(s, ip).await.expect("socket opens")
}

#[tokio::test]
async fn registration_is_limited_per_address_and_in_all() {
    let s = TestServer::start_with(|c| c.register_per_addr = 3).await;
    let mut a = from(&s, "127.0.0.2").await;
    for i in 0..3 {
        let mut c = from(&s, "127.0.0.2").await;
        c.ok("auth.register", register_req(&format!("a_user{i}"))).await;
    }
    let (code, msg) = a.err("auth.register", register_req("a_user3")).await;
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("rate_limited", "too many accounts created from this address; try again later")
    );
    // Another address has its own allowance.
    from(&s, "127.0.0.3").await.ok("auth.register", register_req("b_user0")).await;
    s.stop().await;

    let s = TestServer::start_with(|c| c.register_global_per_min = 2).await;
    from(&s, "127.0.0.2").await.ok("auth.register", register_req("g_one")).await;
    from(&s, "127.0.0.3").await.ok("auth.register", register_req("g_two")).await;
    let (code, msg) = from(&s, "127.0.0.4").await.err("auth.register", register_req("g_three")).await;
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("rate_limited", "too many accounts are being created right now; try again shortly")
    );
    s.stop().await;
}

#[tokio::test]
async fn a_registration_flood_from_one_address_is_refused_not_queued() {
    let s = TestServer::start_with(|c| {
        c.bcrypt_cost = 10;
        c.bcrypt_threads = 1;
        c.bcrypt_queue = 4;
        c.bcrypt_per_key = 1;
    })
    .await;
    Client::register(&s, "victim").await;
    // Ten sockets from one address ask for a hash at once: one is admitted
    // at a time, the rest are refused at once instead of queueing.
    let mut flood = Vec::new();
    for i in 0..10 {
        let mut c = from(&s, "127.0.0.2").await;
        let frame =
            json!({"type": "auth.register", "id": 1, "username": format!("flood{i}"), "password": "password123"});
        c.send_text(&frame.to_string()).await;
        flood.push(c);
    }
    // The victim logs in from its own address meanwhile.
    let mut victim = Client::connect(&s).await;
    victim.ok("auth.login", register_req("victim")).await;
    let mut refused = 0;
    for c in &mut flood {
        let r = c.recv_reply().await;
        match r["type"].as_str() {
            Some("ok") => {}
            _ => {
                assert_eq!(r["code"], "rate_limited", "{r}");
                assert_eq!(
                    r["message"],
                    "too many password checks in progress from this address; wait for the previous ones"
                );
                refused += 1;
            }
        }
    }
    assert!(refused >= 1, "a flood from one address is refused, not queued");
    s.stop().await;
}

#[tokio::test]
async fn one_users_writes_share_a_budget_across_sockets() {
    let s = TestServer::start_with(|c| {
        c.user_writes_burst = 5.0;
        c.user_writes_per_sec = 0.001;
    })
    .await;
    let mut bob = Client::register(&s, "bob_w").await;
    let first = Client::register(&s, "ann_w").await;
    let mut socks = vec![Client::with_token(&s, &first.access_token).await, first];
    socks.push(Client::with_token(&s, &socks[0].access_token).await);
    for i in 0..5 {
        socks[i % 3].send_dm("bob_w", &format!("m{i}")).await;
    }
    for c in &mut socks {
        let (code, msg) = c.err("message.send", json!({"to": "bob_w", "text": "one more"})).await;
        assert_eq!((code.as_str(), msg.as_str()), ("rate_limited", "too many writes from this account; slow down"));
        let (code, _) = c.err("post.create", json!({"text": "a post"})).await;
        assert_eq!(code, "rate_limited");
        c.ok("message.sync", json!({"since": "0"})).await; // reads are not writes
    }
    bob.send_dm("ann_w", "bob has his own budget").await;
    s.stop().await;
}

#[tokio::test]
async fn unauthenticated_sockets_are_capped_per_address() {
    let s = TestServer::start_with(|c| c.max_unauth_per_addr = 2).await;
    let mut first = from(&s, "127.0.0.2").await;
    let _second = from(&s, "127.0.0.2").await;
    assert_eq!(Client::connect_from(&s, "127.0.0.2").await.err(), Some(429));
    from(&s, "127.0.0.3").await.ok("ping", json!({})).await;
    // Authenticating gives the place back.
    let data = first.ok("auth.register", register_req("cap_user")).await;
    first.adopt(&data);
    let mut third = from(&s, "127.0.0.2").await;
    third.ok("ping", json!({})).await;
    // A token at upgrade never takes a place.
    let url = format!("{}?token={}", s.ws_url(), first.access_token);
    assert!(connect_with_headers(&url, &[]).await.is_ok());
    s.stop().await;
}

#[tokio::test]
async fn guessing_from_many_addresses_does_not_lock_out_the_owner() {
    let s = TestServer::start_with(|c| c.login_failures_per_user = 3).await;
    Client::register(&s, "rita_m").await;
    let wrong = json!({"username": "rita_m", "password": "wrong-password"});
    let mut attacker = from(&s, "127.0.0.2").await;
    for _ in 0..3 {
        assert_eq!(attacker.err("auth.login", wrong.clone()).await.0, "unauthorized");
    }
    assert_eq!(attacker.err("auth.login", register_req("rita_m")).await.0, "rate_limited");
    // A fresh attacking address gets one guess while the account is under attack.
    let mut other = from(&s, "127.0.0.3").await;
    assert_eq!(other.err("auth.login", wrong.clone()).await.0, "unauthorized");
    assert_eq!(other.err("auth.login", wrong.clone()).await.0, "rate_limited");
    // The owner, from an address with no failures, gets in with the right password.
    let mut owner = from(&s, "127.0.0.4").await;
    owner.ok("auth.login", register_req("rita_m")).await;
    s.stop().await;
}

#[tokio::test]
async fn display_names_cannot_hide_text_or_pass_for_another_user() {
    let s = TestServer::start().await;
    Client::register(&s, "Bob_d").await;
    let mut c = Client::connect(&s).await;
    for hidden in ["evil\u{202E}gnp.exe", "bo\u{200B}b", "\u{2066}x\u{2069}", "\u{3164}", "x\u{FEFF}y"] {
        let req = json!({"username": "mallory", "password": "password123", "display_name": hidden});
        let (code, msg) = c.err("auth.register", req).await;
        assert_eq!(code, "bad_request", "{hidden:?}");
        assert!(msg.contains("invisible"), "{msg}");
    }
    for fake in ["bob_d", "@BOB_D"] {
        let req = json!({"username": "mallory", "password": "password123", "display_name": fake});
        let (code, msg) = c.err("auth.register", req).await;
        assert_eq!((code.as_str(), msg.as_str()), ("bad_request", "display_name must not be another user's username"));
    }
    let req = json!({"username": "mallory", "password": "password123", "display_name": "Mallory ❤\u{FE0F}"});
    c.ok("auth.register", req).await;
    let (code, _) = c.err("profile.update", json!({"display_name": "Bob_D"})).await;
    assert_eq!(code, "bad_request");
    let (code, _) = c.err("profile.update", json!({"display_name": "a\u{200F}b"})).await;
    assert_eq!(code, "bad_request");
    let p = c.ok("profile.update", json!({"display_name": "@Mallory"})).await;
    assert_eq!(p["profile"]["display_name"], "@Mallory", "one's own username is fine");
    s.stop().await;
}

/// The status line and lower-cased headers of a GET.
async fn get_headers(s: &TestServer, path: &str) -> Vec<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.expect("connect");
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr).as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut buf)).await.expect("in time").expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().map(str::to_ascii_lowercase).collect()
}

#[tokio::test]
async fn web_files_forbid_framing_inline_code_and_referrers() {
    let s = TestServer::start().await;
    for path in ["/", "/app.js", "/app.css"] {
        let h = get_headers(&s, path).await;
        assert!(h[0].contains(" 200 "), "{path}: {h:?}");
        let csp = h.iter().find(|l| l.starts_with("content-security-policy:")).expect("CSP");
        for part in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(h.contains(&"x-frame-options: deny".to_owned()), "{path}: {h:?}");
        assert!(h.contains(&"referrer-policy: no-referrer".to_owned()), "{path}: {h:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn with_public_hosts_the_host_header_is_not_trusted_for_origins() {
    let s = TestServer::start_with(|c| c.public_hosts = vec!["chat.example.com".into()]).await;
    let url = s.ws_url();
    // A rebinding page: its Origin matches the Host header it controls.
    let rebound = format!("http://{}", s.addr);
    assert_eq!(connect_with_headers(&url, &[("origin", &rebound)]).await.err(), Some(403));
    assert!(connect_with_headers(&url, &[("origin", "https://chat.example.com")]).await.is_ok());
    assert!(connect_with_headers(&url, &[]).await.is_ok(), "no Origin: not a browser");
    s.stop().await;
}

/// Pages through `kind` with `cursor_field`, checking each reply's size.
async fn page_all(c: &mut Client, kind: &str, mut req: Value, list: &str, cap: usize) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    for pages in 1..1000 {
        let r = c.request(kind, req.clone()).await;
        assert_eq!(r["type"], "ok", "{r}");
        let len = r.to_string().len();
        assert!(len <= cap, "{kind} page {pages} is {len} bytes, over {cap}");
        let data = &r["data"];
        out.extend(data[list].as_array().expect("list").iter().cloned());
        match kind {
            "message.sync" if data["more"] == true => req["since"] = data["next"].clone(),
            "message.sync" => return (out, pages),
            _ if data["next_before"].is_string() => req["before"] = data["next_before"].clone(),
            _ => return (out, pages),
        }
    }
    panic!("{kind} never ended");
}

#[tokio::test]
async fn big_pages_are_cut_by_bytes_and_skip_nothing() {
    let cap = 20_000;
    let s = TestServer::start_with(|c| {
        c.max_reply_bytes = cap;
        c.rate_burst = 1000.0;
        c.user_writes_burst = 1000.0;
    })
    .await;
    let mut ann = Client::register(&s, "ann_p").await;
    let mut bob = Client::register(&s, "bob_p").await;
    let text = "é".repeat(3000); // ~6 KB of JSON per message
    let mut sent = Vec::new();
    for i in 0..12 {
        sent.push(ann.send_dm("bob_p", &format!("{i} {text}")).await["id"].clone());
    }
    let (synced, pages) =
        page_all(&mut bob, "message.sync", json!({"since": "0", "limit": 200}), "messages", cap).await;
    let ids: Vec<Value> = synced.iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, sent, "sync returns every message once, in order");
    assert!(pages >= 4, "{pages} pages");
    let (history, _) =
        page_all(&mut bob, "message.history", json!({"with": "ann_p", "limit": 100}), "messages", cap).await;
    let mut newest_first = sent.clone();
    newest_first.reverse();
    assert_eq!(history.iter().map(|m| m["id"].clone()).collect::<Vec<_>>(), newest_first);

    let post_text = "ö".repeat(280);
    let mut posts = Vec::new();
    for _ in 0..40 {
        posts.push(ann.ok("post.create", json!({"text": post_text})).await["post"]["id"].clone());
    }
    posts.reverse();
    let (items, pages) =
        page_all(&mut bob, "timeline.user", json!({"username": "ann_p", "limit": 100}), "items", cap).await;
    let got: Vec<Value> = items.iter().map(|i| i["post"]["id"].clone()).collect();
    assert_eq!(got, posts);
    assert_eq!(got.iter().map(Value::to_string).collect::<HashSet<_>>().len(), 40);
    assert!(pages >= 2, "{pages} pages");
    s.stop().await;
}
