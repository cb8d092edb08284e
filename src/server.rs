//! The server: accepts connections until shutdown, routes each through the
//! HTTP front, upgrades `/ws` to a WebSocket, and at shutdown closes every
//! socket with a reconnect code, waits for them, and flushes the store.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::app::App;
use crate::config::Config;
use crate::connection;
use crate::error::Error;
use crate::handlers::SocketAuth;
use crate::http::{self, RequestHead};

/// Runs a node on `listener` until `shutdown` resolves, then shuts down
/// gracefully. Returns once every connection has ended and the store is flushed.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let app = App::build(config).await?;
    let local = listener.local_addr().map_err(|e| Error::Internal(e.to_string()))?;
    tracing::info!(
        listen = %local,
        data_dir = %app.config.data_dir.display(),
        "hubbub listening on http://{local} (WebSocket at ws://{local}/ws), data in {}",
        app.config.data_dir.display()
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    // Each connection task holds a clone; recv() returns None once all are gone.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let slots = Arc::new(Semaphore::new(app.config.max_connections));

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    drop(stream); // over max_connections: refuse at once
                    continue;
                };
                let (app, stop, done) = (app.clone(), stop_rx.clone(), done_tx.clone());
                tokio::spawn(async move {
                    handle_connection(app, stream, peer, stop).await;
                    drop(permit);
                    drop(done);
                });
            }
            () = &mut shutdown => break,
        }
    }

    tracing::info!("shutting down: closing sockets");
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_tx);
    let grace = Duration::from_secs(app.config.shutdown_grace);
    if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
        tracing::warn!("some connections did not finish within the shutdown grace period");
    }
    app.store.close().await;
    tracing::info!("shutdown complete");
    Ok(())
}

async fn handle_connection(app: Arc<App>, mut stream: TcpStream, peer: SocketAddr, stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let head_timeout = Duration::from_secs(app.config.auth_timeout);
    let (head, leftover) = match http::read_head(&mut stream, head_timeout).await {
        Ok(x) => x,
        Err(http::HeadError::TooLarge) => {
            return http::respond_text(&mut stream, "431 Request Header Fields Too Large", "request head too large\n")
                .await;
        }
        Err(http::HeadError::Malformed(m)) => {
            return http::respond_text(&mut stream, "400 Bad Request", &format!("{m}\n")).await;
        }
        Err(http::HeadError::Gone) => return,
    };
    if head.method != "GET" {
        return http::respond_text(&mut stream, "405 Method Not Allowed", "only GET is supported\n").await;
    }
    match head.path.as_str() {
        "/healthz" => http::respond_text(&mut stream, "200 OK", "ok\n").await,
        "/.well-known/jwks.json" => {
            http::respond(&mut stream, "200 OK", "application/json", app.auth.jwks_json().as_bytes()).await
        }
        "/metrics" => {
            let body = crate::metrics::global().render();
            http::respond(&mut stream, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body.as_bytes()).await
        }
        "/ws" => upgrade(app, stream, peer, head, leftover, stop).await,
        _ => http::respond_text(&mut stream, "404 Not Found", "not found\n").await,
    }
}

/// The WebSocket settings every socket uses: small buffers so idle sockets
/// stay cheap, and the configured message size limit. The write buffer is
/// not capped here: one reply can be large (a full page of long messages),
/// and every reply is bounded by the page limits; queued events are bounded
/// by the outbound queue.
pub fn ws_config(config: &Config) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(config.max_frame_bytes))
        .max_frame_size(Some(config.max_frame_bytes))
}

async fn upgrade(
    app: Arc<App>,
    mut stream: TcpStream,
    peer: SocketAddr,
    head: RequestHead,
    leftover: Vec<u8>,
    stop: watch::Receiver<bool>,
) {
    let key = head.header("sec-websocket-key").map(str::to_owned);
    let is_upgrade = head.header_has_token("connection", "upgrade") && head.header_has_token("upgrade", "websocket");
    let (Some(key), true) = (key, is_upgrade) else {
        return http::respond_text(&mut stream, "426 Upgrade Required", "this endpoint speaks WebSocket\n").await;
    };
    if head.header("sec-websocket-version").map(str::trim) != Some("13") {
        let body = b"WebSocket version 13 required\n";
        return http::respond_with(&mut stream, "426 Upgrade Required", &[("sec-websocket-version", "13")], body).await;
    }
    if !http::origin_allowed(head.header("origin"), head.header("host"), &app.config.allowed_origins) {
        tracing::debug!(origin = ?head.header("origin"), "refused WebSocket origin");
        return http::respond_text(&mut stream, "403 Forbidden", "origin not allowed\n").await;
    }
    let token = head
        .query_param("token")
        .map(str::to_owned)
        .or_else(|| head.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(|t| t.trim().to_owned()));
    let pre_auth = match token {
        None => None,
        Some(t) => match app.auth.verify_token(&t).await {
            Ok((user, session)) => Some(SocketAuth { user, session }),
            Err(e) => {
                let status = if e.is_server_side() { "503 Service Unavailable" } else { "401 Unauthorized" };
                return http::respond_text(&mut stream, status, &format!("{}\n", e.client_message())).await;
            }
        },
    };
    let accept = derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let cfg = Some(ws_config(&app.config));
    let ws = WebSocketStream::from_partially_read(stream, leftover, Role::Server, cfg).await;
    connection::serve(app, ws, peer, pre_auth, stop).await;
}
