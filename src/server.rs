//! The server: accepts connections until shutdown, routes each through the
//! HTTP front, upgrades `/ws` to a WebSocket, and at shutdown closes every
//! socket with a reconnect code, waits for them, and flushes the store.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::app::App;
use crate::config::Config;
use crate::connection;
use crate::error::Error;
use crate::handlers::SocketAuth;
use crate::http::{self, RequestHead};
use crate::ratelimit::{AddrCounter, AddrSlot};

/// Runs a node on `listener` until `shutdown` resolves, then shuts down
/// gracefully. Returns once every connection has ended and the store is flushed.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let metrics = crate::metrics_listener::bind(config.metrics_listen.0)
        .await
        .map_err(|e| Error::Internal(format!("cannot listen for /metrics on {:?}: {e}", config.metrics_listen.0)))?;
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
    let unauth = Arc::new(AddrCounter::new(app.config.max_unauth_per_addr));
    let fanout_rx = app.fanout_rx.lock().ok().and_then(|mut r| r.take());
    let fanout_task = fanout_rx.map(|rx| tokio::spawn(crate::fanout::run(app.clone(), rx, stop_rx.clone())));
    if let Some(m) = metrics {
        tracing::info!(metrics = ?m.local_addr().ok(), "serving /metrics");
        tokio::spawn(crate::metrics_listener::run(m, stop_rx.clone()));
    }

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
                let slot = Slot { _permit: permit, _done: done_tx.clone() };
                let front = Front { app: app.clone(), unauth: unauth.clone() };
                tokio::spawn(handle_connection(front, stream, peer, stop_rx.clone(), slot));
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
    if let Some(t) = fanout_task {
        let _ = t.await;
    }
    app.shutdown().await;
    app.store.close().await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Held by a connection's task for its whole life: a place under
/// `max_connections`, and a handle shutdown waits on.
struct Slot {
    _permit: OwnedSemaphorePermit,
    _done: mpsc::Sender<()>,
}

/// What a connection's HTTP phase needs: the app, and the count of
/// unauthenticated sockets per address.
struct Front {
    app: Arc<App>,
    unauth: Arc<AddrCounter>,
}

/// Binds the listening socket with a deep accept backlog: the standard
/// library's 128 overflows when thousands of clients reconnect at once (a
/// restart, a network blip), and each overflow costs a client a 1 s SYN retry.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accept backlog asked of the kernel (capped by `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;

/// The HTTP phase of a connection. A WebSocket upgrade hands the socket to
/// a new task sized for the WebSocket loop alone: an idle socket then does
/// not keep the memory of its HTTP phase (request head, handshake state).
async fn handle_connection(
    front: Front,
    mut stream: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    slot: Slot,
) {
    let Front { app, unauth } = front;
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
    let edge = &app.config.edge;
    let peer = crate::forwarded::client_addr(&edge.trusted_proxies, edge.client_address_header, peer, &head);
    if head.method != "GET" {
        return http::respond_text(&mut stream, "405 Method Not Allowed", "only GET is supported\n").await;
    }
    match head.path.as_str() {
        "/healthz" => http::respond_text(&mut stream, "200 OK", "ok\n").await,
        "/.well-known/jwks.json" => {
            http::respond(&mut stream, "200 OK", "application/json", app.auth.jwks_json().as_bytes()).await
        }
        "/ws" => {
            if let Some((ws, pre_auth, unauth_slot)) = upgrade(&app, &unauth, stream, peer, head, leftover).await {
                tokio::spawn(async move {
                    connection::serve(app, ws, peer, (pre_auth, unauth_slot), stop).await;
                    drop(slot);
                });
            }
        }
        path => match crate::web::asset(path) {
            Some(asset) => {
                let mut headers = vec![("content-type", asset.content_type), ("cache-control", "no-cache")];
                headers.extend(http::WEB_SECURITY_HEADERS);
                http::respond_with(&mut stream, "200 OK", &headers, asset.body).await
            }
            None => http::respond_text(&mut stream, "404 Not Found", "not found\n").await,
        },
    }
}

/// Bytes of outbound frames gathered before they are written to the socket
/// (every flush writes the rest): the writer's batch of queued events goes
/// out in a few system calls instead of one per frame. tungstenite never
/// shrinks that buffer, so its peak (this plus one frame, at most
/// `connection::fragment::FRAGMENT_BYTES`) stays allocated for the socket's
/// life: 4 KiB keeps it near 8 KiB on a busy socket, and measured the same
/// typing-event rate as 8 KiB (BENCHMARKS.md).
pub const WRITE_BUFFER_BYTES: usize = 4 * 1024;

/// The WebSocket settings every socket uses: small buffers so idle sockets
/// stay cheap, and the configured message size limit.
///
/// tungstenite allocates (and zero-fills) the read buffer eagerly and keeps
/// it for the socket's life; 1 KiB instead of 4 KiB took an idle socket from
/// 9.8 to 6.9 KiB of server RSS, and 512 B instead of 1 KiB from 5.0-5.2 to
/// 4.5-4.7 KiB (BENCHMARKS.md). Requests are small JSON frames (a direct
/// message of 200 characters is ~300 bytes); a larger frame grows the
/// buffer to its size and is read 512 bytes per system call. Long replies and
/// events are written in fragments (`connection::fragment`), so the write
/// buffer's size is bounded by [`WRITE_BUFFER_BYTES`] plus one fragment
/// rather than by the largest reply; queued events are bounded by the
/// outbound queue.
pub fn ws_config(config: &Config) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(512)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(Some(config.max_frame_bytes))
        .max_frame_size(Some(config.max_frame_bytes))
}

/// An upgraded socket: the WebSocket, its user when the request carried a
/// valid token, else its place among the address's unauthenticated sockets.
type Upgraded = (WebSocketStream<TcpStream>, Option<SocketAuth>, Option<AddrSlot>);

/// Checks and answers an upgrade request; `None` when it was refused.
async fn upgrade(
    app: &App,
    unauth: &Arc<AddrCounter>,
    mut stream: TcpStream,
    peer: SocketAddr,
    head: RequestHead,
    leftover: Vec<u8>,
) -> Option<Upgraded> {
    let key = head.header("sec-websocket-key").map(str::to_owned);
    let is_upgrade = head.header_has_token("connection", "upgrade") && head.header_has_token("upgrade", "websocket");
    let (Some(key), true) = (key, is_upgrade) else {
        http::respond_text(&mut stream, "426 Upgrade Required", "this endpoint speaks WebSocket\n").await;
        return None;
    };
    if head.header("sec-websocket-version").map(str::trim) != Some("13") {
        let body = b"WebSocket version 13 required\n";
        http::respond_with(&mut stream, "426 Upgrade Required", &[("sec-websocket-version", "13")], body).await;
        return None;
    }
    let (allowed, public) = (&app.config.allowed_origins, &app.config.public_hosts);
    if !http::origin_allowed(head.header("origin"), head.header("host"), allowed, public) {
        tracing::debug!(origin = ?head.header("origin"), "refused WebSocket origin");
        http::respond_text(&mut stream, "403 Forbidden", "origin not allowed\n").await;
        return None;
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
                http::respond_text(&mut stream, status, &format!("{}\n", e.client_message())).await;
                return None;
            }
        },
    };
    let unauth_slot = match pre_auth {
        Some(_) => None,
        None => {
            let Some(slot) = unauth.try_acquire(peer.ip()) else {
                let body = "too many unauthenticated sockets from this address\n";
                http::respond_text(&mut stream, "429 Too Many Requests", body).await;
                return None;
            };
            Some(slot)
        }
    };
    let accept = derive_accept_key(key.as_bytes());
    let ping = app.config.edge.ping_interval;
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nX-Hubbub-Ping-Interval: {ping}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await.ok()?;
    let cfg = Some(ws_config(&app.config));
    Some((WebSocketStream::from_partially_read(stream, leftover, Role::Server, cfg).await, pre_auth, unauth_slot))
}
