//! The size of an idle socket's task, checked: every open socket keeps its
//! `serve` future alive for its whole life (tokio allocates the task with
//! the future inline), so each byte here is paid once per socket.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::app::App;
use crate::config::Config;

/// The most a socket's `serve` future may take, in a debug build (release
/// futures are smaller). It was 2,248 bytes before the setup moved out of
/// the async body and the loop's awaits were boxed (BENCHMARKS.md, memory
/// per idle socket). Raise it only with a reason.
const MAX_DEBUG_BYTES: usize = 1_152;

#[tokio::test]
async fn an_idle_sockets_task_stays_small() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::with_data_dir(dir.path());
    config.metrics_listen = crate::config::MetricsListen(None);
    let app: Arc<App> = App::build(config).await.expect("app");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).await.expect("connect");
    let (server, peer) = listener.accept().await.expect("accept");
    let ws = WebSocketStream::from_raw_socket(server, Role::Server, Some(crate::server::ws_config(&app.config))).await;
    let (_stop, stop) = watch::channel(false);
    let task = super::serve(app, ws, peer, (None, None), stop);
    let size = std::mem::size_of_val(&task);
    eprintln!("connection::serve future: {size} bytes");
    assert!(size <= MAX_DEBUG_BYTES, "an idle socket's task grew to {size} bytes (limit {MAX_DEBUG_BYTES})");
    drop(task);
    drop(client);
}
