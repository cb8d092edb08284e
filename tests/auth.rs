//! Accounts, tokens, sessions, origins and the HTTP endpoints.

mod common;

use common::{Client, Ended, TestServer, connect_with_headers, http_get};
use serde_json::json;

#[tokio::test]
async fn register_validates_and_names_are_unique_case_insensitively() {
    let s = TestServer::start().await;
    let mut c = Client::connect(&s).await;
    for (fields, code) in [
        (json!({"username": "ab", "password": "password123"}), "bad_request"),
        (json!({"username": "bad name", "password": "password123"}), "bad_request"),
        (json!({"username": "okname", "password": "short"}), "bad_request"),
        (json!({"username": "okname", "password": "x".repeat(73)}), "bad_request"),
        (json!({"username": "okname"}), "bad_request"),
    ] {
        assert_eq!(c.err("auth.register", fields).await.0, code);
    }
    let data = c
        .ok("auth.register", json!({"username": "Quinn", "password": "password123", "display_name": "Q. Quinn"}))
        .await;
    assert_eq!(data["user"]["username"], "Quinn");
    assert_eq!(data["user"]["display_name"], "Q. Quinn");
    assert_eq!(data["expires_in"], 900);
    let mut other = Client::connect(&s).await;
    let (code, _) = other.err("auth.register", json!({"username": "quinn", "password": "password123"})).await;
    assert_eq!(code, "conflict");
    // Exactly 72 bytes is accepted.
    other.ok("auth.register", json!({"username": "long_pw", "password": "p".repeat(72)})).await;
    s.stop().await;
}

#[tokio::test]
async fn login_checks_the_password_and_throttles_guessing() {
    let s = TestServer::start_with(|c| c.login_failures_per_user = 3).await;
    Client::register(&s, "rita").await;
    let mut c = Client::connect(&s).await;
    let data = c.ok("auth.login", json!({"username": "RITA", "password": "password123"})).await;
    assert_eq!(data["user"]["username"], "rita");
    for _ in 0..3 {
        let (code, msg) = c.err("auth.login", json!({"username": "rita", "password": "wrong-password"})).await;
        assert_eq!(code, "unauthorized");
        assert_eq!(msg, "invalid username or password");
    }
    let (code, _) = c.err("auth.login", json!({"username": "rita", "password": "password123"})).await;
    assert_eq!(code, "rate_limited", "even the right password waits after too many failures");
    let (code, msg) = c.err("auth.login", json!({"username": "nobody_here", "password": "whatever1"})).await;
    assert_eq!((code.as_str(), msg.as_str()), ("unauthorized", "invalid username or password"));
    s.stop().await;
}

#[tokio::test]
async fn tokens_authenticate_by_frame_query_or_header() {
    let s = TestServer::start().await;
    let sam = Client::register(&s, "sam").await;
    let mut by_frame = Client::with_token(&s, &sam.access_token).await;
    assert_eq!(by_frame.username, "sam");
    by_frame.ok("conversation.list", json!({})).await;

    let mut by_query = Client::connect_url(&format!("{}?token={}", s.ws_url(), sam.access_token)).await;
    by_query.ok("conversation.list", json!({})).await;

    let bearer = format!("Bearer {}", sam.access_token);
    let mut by_header = connect_with_headers(&s.ws_url(), &[("authorization", &bearer)]).await.unwrap();
    by_header.ok("conversation.list", json!({})).await;

    let refused = connect_with_headers(&format!("{}?token=garbage", s.ws_url()), &[]).await;
    assert_eq!(refused.err(), Some(401));
    let mut c = Client::connect(&s).await;
    assert_eq!(c.err("auth.token", json!({"token": "garbage"})).await.0, "unauthorized");
    s.stop().await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let s = TestServer::start_with(|c| c.refresh_reuse_grace_ms = 0).await;
    let mut tess = Client::register(&s, "tess").await;
    let first_refresh = tess.refresh_token.clone();
    let first_access = tess.access_token.clone();
    let mut other_socket = Client::with_token(&s, &first_access).await;

    let mut c = Client::connect(&s).await;
    let data = c.ok("auth.refresh", json!({"refresh_token": first_refresh})).await;
    assert_ne!(data["refresh_token"], json!(first_refresh));
    assert_eq!(data["user"]["username"], "tess");
    let second_refresh = data["refresh_token"].as_str().unwrap().to_owned();
    c.ok("conversation.list", json!({})).await; // the socket is now tess's

    // Presenting the used token again: refused, and the whole session ends.
    let mut thief = Client::connect(&s).await;
    let (code, _) = thief.err("auth.refresh", json!({"refresh_token": first_refresh})).await;
    assert_eq!(code, "unauthorized");
    assert_eq!(other_socket.ended().await, Ended::Close(4500));
    assert_eq!(tess.ended().await, Ended::Close(4500));
    assert_eq!(c.ended().await, Ended::Close(4500));
    let mut again = Client::connect(&s).await;
    assert_eq!(again.err("auth.refresh", json!({"refresh_token": second_refresh})).await.0, "unauthorized");
    assert_eq!(again.err("auth.token", json!({"token": first_access})).await.0, "unauthorized");
    assert_eq!(again.err("auth.refresh", json!({"refresh_token": "not-a-token"})).await.0, "unauthorized");
    s.stop().await;
}

#[tokio::test]
async fn a_lost_refresh_reply_can_be_retried_and_a_forged_secret_revokes_nothing() {
    let s = TestServer::start().await; // default grace period
    let vic = Client::register(&s, "vic").await;
    let mut c = Client::connect(&s).await;
    let first = c.ok("auth.refresh", json!({"refresh_token": vic.refresh_token})).await;
    // The client never saw `first`; it retries with the same token at once.
    let retry = c.ok("auth.refresh", json!({"refresh_token": vic.refresh_token})).await;
    assert_ne!(first["refresh_token"], retry["refresh_token"]);
    // Someone who knows only the session id (it is in the access token) and
    // guesses a secret cannot end the session.
    let sid = vic.refresh_token.split('.').next().unwrap();
    let forged = format!("{sid}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(c.err("auth.refresh", json!({"refresh_token": forged})).await.0, "unauthorized");
    let newest = retry["refresh_token"].as_str().unwrap();
    c.ok("auth.refresh", json!({"refresh_token": newest})).await;
    s.stop().await;
}

#[tokio::test]
async fn logout_revokes_the_session_and_closes_its_other_sockets() {
    let s = TestServer::start().await;
    let mut uma = Client::register(&s, "uma").await;
    let mut same_session = Client::with_token(&s, &uma.access_token).await;
    let mut other_session = Client::login(&s, "uma").await;

    uma.ok("auth.logout", json!({})).await;
    assert_eq!(same_session.ended().await, Ended::Close(4500));
    // This socket stays open but is no longer authenticated.
    assert_eq!(uma.err("conversation.list", json!({})).await.0, "unauthorized");
    uma.ok("ping", json!({})).await;
    // The session's tokens are dead; other sessions are untouched.
    assert_eq!(uma.err("auth.token", json!({"token": uma.access_token.clone()})).await.0, "unauthorized");
    let rt = uma.refresh_token.clone();
    assert_eq!(uma.err("auth.refresh", json!({"refresh_token": rt})).await.0, "unauthorized");
    other_session.ok("conversation.list", json!({})).await;
    assert_eq!(connect_with_headers(&format!("{}?token={}", s.ws_url(), uma.access_token), &[]).await.err(), Some(401));
    s.stop().await;
}

#[tokio::test]
async fn unauthenticated_sockets_are_closed_after_the_deadline() {
    let s = TestServer::start_with(|c| c.auth_timeout = 1).await;
    let mut idle = Client::connect(&s).await;
    idle.ok("ping", json!({})).await;
    assert_eq!(idle.ended().await, Ended::Close(4002));
    s.stop().await;
}

#[tokio::test]
async fn origins_are_checked_at_upgrade() {
    let s = TestServer::start_with(|c| c.allowed_origins = vec!["https://chat.example.com".into()]).await;
    let url = s.ws_url();
    assert_eq!(connect_with_headers(&url, &[("origin", "https://evil.example")]).await.err(), Some(403));
    assert!(connect_with_headers(&url, &[("origin", "https://chat.example.com")]).await.is_ok());
    let same_host = format!("http://{}", s.addr);
    assert!(connect_with_headers(&url, &[("origin", &same_host)]).await.is_ok());
    assert!(connect_with_headers(&url, &[]).await.is_ok(), "no Origin (websocat, mobile) is allowed");
    s.stop().await;
}

#[tokio::test]
async fn health_and_jwks_endpoints() {
    let s = TestServer::start().await;
    assert_eq!(http_get(s.addr, "/healthz", &[]).await.unwrap(), (200, "ok\n".into()));
    let (status, body) = http_get(s.addr, "/.well-known/jwks.json", &[]).await.unwrap();
    assert_eq!(status, 200);
    let jwks: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(http_get(s.addr, "/nope", &[]).await.unwrap().0, 404);
    assert_eq!(http_get(s.addr, "/ws", &[]).await.unwrap().0, 426);
    // The generated key is private to the server's user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.dir.join("jwt-ed25519.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    s.stop().await;
}

#[tokio::test]
async fn sockets_per_user_are_capped_without_losing_tokens() {
    let s = TestServer::start_with(|c| c.max_sockets_per_user = 2).await;
    let first = Client::register(&s, "wynn").await;
    let _second = Client::with_token(&s, &first.access_token).await;
    let mut third = Client::connect(&s).await;
    let (code, _) = third.err("auth.login", json!({"username": "wynn", "password": "password123"})).await;
    assert_eq!(code, "limit_exceeded");
    let (code, _) = third.err("auth.refresh", json!({"refresh_token": first.refresh_token})).await;
    assert_eq!(code, "limit_exceeded");
    let refresh = first.refresh_token.clone();
    drop(first);
    // Once a socket has gone, the same refresh token still works.
    for attempt in 0.. {
        let r = third.request("auth.refresh", json!({"refresh_token": refresh})).await;
        if r["type"] == "ok" {
            break;
        }
        assert_eq!(r["code"], "limit_exceeded", "{r}");
        assert!(attempt < 200, "the closed socket was never detached");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    third.ok("conversation.list", json!({})).await;
    s.stop().await;
}
