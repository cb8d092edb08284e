//! The `/metrics` listener: Prometheus metrics on their own address
//! (`--metrics-listen`, default `127.0.0.1:9464`), apart from the public
//! listener, so a node put on the internet does not publish its internals.
//! Separate rather than protected by a password: Prometheus scrapes it
//! without credentials to manage, and a loopback or private-network address
//! is enforced by the kernel, not by code that could be misconfigured.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::http;

/// Scrapes served at once; more wait for a turn.
const MAX_SCRAPES: usize = 8;
/// Time a scraper has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds the configured address, if any.
pub async fn bind(addr: Option<std::net::SocketAddr>) -> std::io::Result<Option<TcpListener>> {
    match addr {
        Some(a) => TcpListener::bind(a).await.map(Some),
        None => Ok(None),
    }
}

/// Serves `GET /metrics` (and `/healthz`) on `listener` until `stop` is true.
pub async fn run(listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_SCRAPES));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(permit) = slots.clone().acquire_owned().await else { return };
                    tokio::spawn(async move {
                        serve(stream).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

async fn serve(mut stream: TcpStream) {
    let Ok((head, _)) = http::read_head(&mut stream, HEAD_TIMEOUT).await else { return };
    match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/metrics") => {
            let body = crate::metrics::global().render();
            http::respond(&mut stream, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body.as_bytes()).await
        }
        ("GET", "/healthz") => http::respond_text(&mut stream, "200 OK", "ok\n").await,
        _ => http::respond_text(&mut stream, "404 Not Found", "not found\n").await,
    }
}
