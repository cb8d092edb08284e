//! The browser client is served from the binary: `GET /` and its assets.

mod common;

use common::{TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A raw GET returning (status line, lowercase head, body).
async fn get(s: &TestServer, path: &str) -> (String, String, String) {
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr);
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut buf)).await.expect("response in time").unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_owned();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test]
async fn root_serves_the_web_client() {
    let s = TestServer::start().await;
    let (status, head, body) = get(&s, "/").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");
    assert!(head.contains("cache-control: no-cache"), "{head}");
    assert!(!head.contains("no-store"), "{head}");
    assert!(body.contains("<script type=\"module\" src=\"/app.js\">"), "{body}");

    let (status, head, body) = get(&s, "/app.js").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(body.contains("from '/sdk/index.js'"), "app.js is built on the SDK");
    // The SDK's modules, served beside app.js (they import each other relatively).
    for file in ["index.js", "client.js", "session.js", "delivery.js", "util.js", "kinds.js"] {
        let (status, head, body) = get(&s, &format!("/sdk/{file}")).await;
        assert_eq!(status, "HTTP/1.1 200 OK", "/sdk/{file}");
        assert!(head.contains("content-type: text/javascript"), "{head}");
        assert!(head.contains("content-security-policy"), "{head}");
        assert!(!body.is_empty());
    }
    let (_, _, sdk) = get(&s, "/sdk/delivery.js").await;
    assert!(sdk.contains("message.sync"));
    let (status, _, _) = get(&s, "/sdk/index.d.ts").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, head, _) = get(&s, "/app.css").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(head.contains("content-type: text/css"), "{head}");

    let (status, _, _) = get(&s, "/?x=1").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "the query string is ignored");
    let (status, _, _) = get(&s, "/nope.js").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (_, head, _) = get(&s, "/healthz").await;
    assert!(head.contains("cache-control: no-store"), "plain endpoints keep no-store");
}

#[tokio::test]
async fn the_pages_own_origin_may_open_a_socket() {
    let s = TestServer::start().await;
    let origin = format!("http://{}", s.addr);
    let mut c = common::connect_with_headers(&s.ws_url(), &[("Origin", &origin)]).await.expect("same origin admitted");
    c.ok("ping", serde_json::json!({})).await;
    let other = common::connect_with_headers(&s.ws_url(), &[("Origin", "http://evil.example")]).await;
    assert!(matches!(other, Err(403)));
}
