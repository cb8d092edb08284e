//! The network edge over real sockets (issue 17): server heartbeats (a
//! client that answers pings stays, a silent one is closed with 4004) and
//! client addresses behind trusted proxies (the per-address login throttle
//! follows `X-Forwarded-For` only from a trusted peer).

mod common;

use common::{Client, TestServer, WAIT, connect_with_headers};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

/// A server that pings every second and closes after one unanswered ping.
async fn pinging_server() -> TestServer {
    TestServer::start_with(|c| {
        c.edge.ping_interval = 1;
        c.edge.ping_misses = 1;
    })
    .await
}

type Raw = tokio_tungstenite::WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a socket and registers `name` on it; returns the socket and the reply.
async fn registered(server: &TestServer, name: &str) -> (Raw, Value) {
    let (mut ws, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(server.ws_url()))
        .await
        .expect("connect in time")
        .expect("connect");
    assert_eq!(resp.headers().get("x-hubbub-ping-interval").and_then(|v| v.to_str().ok()), Some("1"));
    let req = json!({"type": "auth.register", "id": 1, "username": name, "password": "password123"});
    ws.send(Message::Text(req.to_string().into())).await.expect("send");
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next()).await.expect("reply in time").expect("open").expect("ok");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("json");
            assert_eq!(v["type"], "ok", "{v}");
            return (ws, v);
        }
    }
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_connected() {
    let server = pinging_server().await;
    let (mut ws, reply) = registered(&server, "pongy").await;
    assert_eq!(reply["data"]["ping_interval"], 1, "auth replies tell the interval");
    // Read (tungstenite answers each ping) until four pings came: four
    // intervals, twice what a silent client survives.
    let mut pings = 0;
    while pings < 4 {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a ping in time") {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(c))) => panic!("closed while answering pings: {c:?}"),
            Some(Ok(_)) => {}
            other => panic!("socket ended: {other:?}"),
        }
    }
    ws.send(Message::Text(json!({"type": "ping", "id": 2}).to_string().into())).await.expect("send");
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("reply in time") {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("json");
                assert_eq!((v["type"].as_str(), v["id"].as_u64()), (Some("ok"), Some(2)), "{v}");
                break;
            }
            Some(Ok(Message::Ping(_))) => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_silent_client_is_closed_with_4004() {
    let server = pinging_server().await;
    let (ws, _) = registered(&server, "silent").await;
    // From here on nobody answers: read the raw bytes (server frames are
    // unmasked) without ever writing a pong.
    let MaybeTlsStream::Plain(mut tcp) = ws.into_inner() else { panic!("plain TCP") };
    let (mut pings, mut code) = (0, None);
    let read = async {
        loop {
            let mut head = [0u8; 2];
            tcp.read_exact(&mut head).await.expect("server sends a frame");
            let len = usize::from(head[1] & 0x7f);
            assert!(len < 126, "control frames are short");
            let mut payload = vec![0u8; len];
            tcp.read_exact(&mut payload).await.expect("payload");
            match head[0] & 0x0f {
                0x9 => pings += 1,
                0x8 => {
                    code = Some(u16::from_be_bytes([payload[0], payload[1]]));
                    break;
                }
                op => panic!("unexpected opcode {op}"),
            }
        }
    };
    tokio::time::timeout(WAIT, read).await.expect("the server closes a silent client in time");
    assert_eq!(code, Some(4004), "close code for a peer that stopped answering pings");
    assert!(pings >= 1, "it was pinged before being closed");
}

/// Logs `alice` in with a wrong password five times (the per-address,
/// per-account budget), then with the right one, on one socket whose
/// upgrade carried `X-Forwarded-For: xff`; returns the last reply's code
/// (`None` when it succeeded).
async fn guess_then_login(server: &TestServer, xff: &str) -> Option<String> {
    let mut c = connect_with_headers(&server.ws_url(), &[("x-forwarded-for", xff)]).await.expect("upgrade");
    for _ in 0..5 {
        let (code, _) = c.err("auth.login", json!({"username": "alice", "password": "wrong-password"})).await;
        assert_eq!(code, "unauthorized");
    }
    login_code(&mut c).await
}

async fn login_code(c: &mut Client) -> Option<String> {
    let r = c.request("auth.login", json!({"username": "alice", "password": "password123"})).await;
    (r["type"] == "error").then(|| r["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_trusted_proxy_gives_the_client_address() {
    let server = TestServer::start_with(|c| c.edge.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")]).await;
    Client::register(&server, "alice").await;
    assert_eq!(guess_then_login(&server, "203.0.113.5").await.as_deref(), Some("rate_limited"));
    // Another client behind the same proxy is another address: not throttled.
    let mut other =
        connect_with_headers(&server.ws_url(), &[("x-forwarded-for", "203.0.113.6")]).await.expect("upgrade");
    assert_eq!(login_code(&mut other).await, None, "a different client address logs in");
}

#[tokio::test]
async fn a_forged_header_from_an_untrusted_peer_changes_nothing() {
    let server = TestServer::start_with(|c| c.edge.trusted_proxies = vec!["10.0.0.0/8".parse().expect("cidr")]).await;
    Client::register(&server, "alice").await;
    assert_eq!(guess_then_login(&server, "203.0.113.5").await.as_deref(), Some("rate_limited"));
    // 127.0.0.1 is not trusted: its header is ignored, it is still the same
    // throttled address.
    let mut forged =
        connect_with_headers(&server.ws_url(), &[("x-forwarded-for", "203.0.113.6")]).await.expect("upgrade");
    assert_eq!(login_code(&mut forged).await.as_deref(), Some("rate_limited"));
}
