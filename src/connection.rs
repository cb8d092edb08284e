//! One WebSocket connection: reads frames, enforces the per-socket limits
//! (frame size, request rate, authentication deadline), dispatches requests,
//! and writes replies and queued events, until the client leaves, the
//! server shuts down, or the hub asks the socket to close. Several
//! `message.send` requests of one socket run at once ([`pipeline`]).

pub mod fragment;
pub mod pipeline;
#[cfg(test)]
mod task_size;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use crate::app::App;
use crate::error::{Error, bad_request};
use crate::handlers::{self, ConnState, SocketAuth};
use crate::heartbeat::{Beat, Heartbeat};
use crate::hub::outq::OutReceiver;
use crate::hub::{ConnControl, OutFrame};
use crate::metrics::{self, FrameIn, FrameOut};
use crate::protocol::{Envelope, ErrorReply, OkReply, REQUEST_KINDS, Request, close};
use crate::ratelimit::{AddrSlot, TokenBucket};

/// Outbound frames written per flush when events are queued.
const WRITE_BATCH: usize = 64;

/// Bytes read and thrown away after refusing a frame, so the client's
/// unread rest does not turn the close into a TCP reset.
pub const DRAIN_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Longest time spent draining a refused frame.
pub const DRAIN_MAX_TIME: Duration = Duration::from_secs(5);

/// The write half of a socket.
type WsSink = futures_util::stream::SplitSink<WebSocketStream<TcpStream>, Message>;
/// The read half of a socket.
type WsStream = futures_util::stream::SplitStream<WebSocketStream<TcpStream>>;

/// Why the loop ended; decides the close frame sent.
enum End {
    /// A clean close: send the frame, then wait for the client's reply.
    Close(u16, &'static str),
    /// The byte stream can no longer be parsed (an oversized or invalid
    /// frame): send the close frame as raw bytes, then drain.
    Refuse(u16, &'static str),
    Gone,
}

/// Serves one upgraded socket until it ends. `start` holds the user when
/// the upgrade request carried a valid token, else the socket's place
/// among its address's unauthenticated sockets, given back once it
/// authenticates.
///
/// Every open socket keeps this future alive for its whole life, so its
/// size is paid per socket (`connection/task_size.rs` checks it): the
/// setup runs here, outside the async block (an async fn would keep a
/// slot for each argument besides the locals made from them), and every
/// await but the idle `select!` is boxed, so its state exists only while
/// it runs.
pub fn serve(
    app: Arc<App>,
    ws: WebSocketStream<TcpStream>,
    peer: SocketAddr,
    start: (Option<SocketAuth>, Option<AddrSlot>),
    mut shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send {
    let (pre_auth, unauth_slot) = start;
    let pre_auth = pre_auth.map(Box::new);
    let (sink, mut stream) = ws.split();
    let (tx, mut rx) = crate::hub::outq::channel(app.config.outbound_queue);
    let control = Arc::new(ConnControl::default());
    let auth_window = Duration::from_secs(app.config.auth_timeout);
    let mut socket = Socket {
        conn: ConnState::new(app.hub.next_conn_id(), peer, tx, control.clone()),
        sink,
        write_timeout: Duration::from_secs(app.config.write_timeout),
        auth_window,
        auth_deadline: Instant::now() + auth_window,
        unauth_slot,
        bucket: TokenBucket::new(app.config.rate_burst, app.config.rate_per_sec),
        refused_in_a_row: 0,
        abuse_limit: (app.config.rate_burst as u32).saturating_mul(4).max(100),
        beat: Heartbeat::new(app.config.edge.ping_every(), app.config.edge.ping_misses),
        pipe: pipeline::Pipeline::default(),
    };
    let gauge = metrics::SocketGauge::open();
    async move {
        let _gauge = gauge;
        if let Some(a) = pre_auth {
            Box::pin(socket.pre_authenticate(&app, *a)).await;
        }
        // One timer for the authentication deadline and the heartbeat,
        // kept across iterations: re-armed only when its deadline moves.
        let timer = tokio::time::sleep_until(socket.auth_deadline);
        tokio::pin!(timer);
        let end = loop {
            let authed = socket.conn.auth.is_some();
            let due = next_due(&socket.beat, (!authed).then_some(socket.auth_deadline));
            if let Some(d) = due {
                if timer.deadline() != d {
                    timer.as_mut().reset(d);
                }
            }
            // No awaits in the branches: what a branch does runs below,
            // boxed, so its state is not part of the idle socket's.
            let step = tokio::select! {
                incoming = stream.next(), if socket.pipe.has_room() => match incoming {
                    None => break End::Gone,
                    Some(Ok(m)) => Step::Message(m),
                    Some(Err(e)) => break read_error_end(e),
                },
                frame = socket.pipe.next_reply() => Step::Reply(frame),
                Some(frame) = rx.recv() => Step::Events(frame),
                (code, reason) = control.closed() => break End::Close(code, reason),
                _ = &mut timer, if due.is_some() => Step::Timer(authed),
                _ = shutdown.changed() => break End::Close(close::SERVER_RESTART, "server restarting; reconnect"),
            };
            let flow = match step {
                Step::Message(m) => Box::pin(socket.on_message(&app, m)).await,
                Step::Reply(frame) => Box::pin(socket.write_reply(frame)).await,
                Step::Events(frame) => {
                    let t = socket.write_timeout;
                    (!Box::pin(write_events(&mut socket.sink, &mut rx, frame, t)).await).then_some(End::Gone)
                }
                Step::Timer(authed) => Box::pin(socket.on_timer(authed)).await,
            };
            if let Some(end) = flow {
                break end;
            }
        };
        Box::pin(finish(&app, socket, stream, end)).await;
    }
}

/// What woke the socket's loop.
enum Step {
    Message(Message),
    Reply(Utf8Bytes),
    Events(OutFrame),
    /// The timer fired; whether the socket was authenticated then.
    Timer(bool),
}

/// One socket's state between frames.
struct Socket {
    conn: ConnState,
    sink: WsSink,
    write_timeout: Duration,
    auth_window: Duration,
    /// When an unauthenticated socket is closed.
    auth_deadline: Instant,
    /// The socket's place among its address's unauthenticated sockets.
    unauth_slot: Option<AddrSlot>,
    bucket: TokenBucket,
    refused_in_a_row: u32,
    /// Refusals in a row past which the client is abusive.
    abuse_limit: u32,
    beat: Heartbeat,
    pipe: pipeline::Pipeline,
}

impl Socket {
    /// Makes the socket the user its upgrade request's token named.
    async fn pre_authenticate(&mut self, app: &App, a: SocketAuth) {
        if let Err(e) = Box::pin(self.conn.become_user(app, a.user, a.session, None)).await {
            let frame = error_frame(&None, &e);
            self.write_reply(frame).await;
        }
    }

    /// Writes one reply; `Some(End::Gone)` when the socket is gone.
    async fn write_reply(&mut self, frame: Utf8Bytes) -> Option<End> {
        (!write_text(&mut self.sink, frame, self.write_timeout).await).then_some(End::Gone)
    }

    /// Handles one message from the client; `Some` ends the socket.
    async fn on_message(&mut self, app: &Arc<App>, msg: Message) -> Option<End> {
        self.beat.heard();
        let reply = match msg {
            Message::Close(_) => return Some(End::Gone),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return None,
            data if !self.bucket.try_take() => {
                metrics::global().frame_in(FrameIn::RateLimited);
                self.refused_in_a_row += 1;
                if self.refused_in_a_row > self.abuse_limit {
                    return Some(End::Close(close::RATE_ABUSE, "too many requests over the rate limit"));
                }
                let id = match &data {
                    Message::Text(text) => request_id(text),
                    _ => None,
                };
                error_frame(&id, &Error::RateLimited("too many requests; slow down".into()))
            }
            Message::Text(text) => {
                self.refused_in_a_row = 0;
                match parse_text(&text) {
                    Ok(p) => return self.on_request(app, p).await,
                    Err(frame) => frame,
                }
            }
            _ => {
                self.refused_in_a_row = 0;
                metrics::global().frame_in(FrameIn::Binary);
                error_frame(&None, &bad_request("binary frames are not supported; send JSON as text frames"))
            }
        };
        self.write_reply(reply).await
    }

    /// Runs a parsed request, in the pipeline or in order.
    async fn on_request(&mut self, app: &Arc<App>, p: Parsed) -> Option<End> {
        let p = self.pipe.offer(app, &self.conn, p)?;
        if !self.pipe.drain(&mut self.sink, self.write_timeout).await {
            return Some(End::Gone);
        }
        let was_authed = self.conn.auth.is_some();
        let frame = run_parsed(app, &mut self.conn, p).await;
        if was_authed && self.conn.auth.is_none() {
            self.auth_deadline = Instant::now() + self.auth_window;
        }
        if self.conn.auth.is_some() {
            drop(self.unauth_slot.take());
        }
        self.write_reply(frame).await
    }

    /// The timer fired: close an unauthenticated socket past its deadline,
    /// ping, or close a peer that stopped answering pings.
    async fn on_timer(&mut self, authed: bool) -> Option<End> {
        let now = Instant::now();
        if !authed && now >= self.auth_deadline {
            return Some(End::Close(close::AUTH_TIMEOUT, "authentication timeout"));
        }
        if !(self.beat.enabled() && now >= self.beat.due()) {
            return None;
        }
        match self.beat.tick() {
            Beat::Dead => Some(End::Close(close::PING_TIMEOUT, "no answer to pings; reconnect")),
            Beat::Ping => (!write_message(&mut self.sink, Message::Ping(Default::default()), self.write_timeout).await)
                .then_some(End::Gone),
        }
    }
}

/// Ends a socket: waits for its running requests, detaches its user, and
/// closes as `end` says.
async fn finish(app: &App, socket: Socket, mut stream: WsStream, end: End) {
    let Socket { mut conn, mut sink, pipe, write_timeout, .. } = socket;
    pipe.finish().await;
    conn.forget_user(app).await;
    match end {
        End::Close(code, reason) => {
            let frame = CloseFrame { code: CloseCode::from(code), reason: Utf8Bytes::from_static(reason) };
            let _ = timeout(write_timeout, sink.send(Message::Close(Some(frame)))).await;
            // Give the client a moment to answer the close handshake.
            let _ = timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = stream.next().await {} }).await;
        }
        End::Refuse(code, reason) => {
            if let Ok(mut ws) = stream.reunite(sink) {
                refuse(ws.get_mut(), code, reason, write_timeout).await;
            }
        }
        End::Gone => {}
    }
}

/// When the socket's timer must fire next: the heartbeat's next beat (if
/// pings are on) or the authentication deadline (while unauthenticated),
/// whichever comes first; `None` when neither applies.
fn next_due(beat: &Heartbeat, auth_deadline: Option<Instant>) -> Option<Instant> {
    let beat = beat.enabled().then(|| beat.due());
    match (beat, auth_deadline) {
        (Some(b), Some(a)) => Some(b.min(a)),
        (b, a) => b.or(a),
    }
}

/// How a read error ends the socket: a frame over the size limit gets 1009,
/// invalid UTF-8 in a text message 1007, any other protocol violation 1002
/// (RFC 6455 section 7.4.1); a vanished peer gets nothing.
fn read_error_end(e: WsError) -> End {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match e {
        WsError::Capacity(_) => End::Refuse(close::TOO_BIG, "frame too large"),
        WsError::Utf8(_) => End::Refuse(close::INVALID_PAYLOAD, "invalid UTF-8 in a text frame"),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Gone,
        WsError::Protocol(_) => End::Refuse(close::PROTOCOL_ERROR, "WebSocket protocol error"),
        _ => End::Gone,
    }
}

/// Ends a socket whose input can no longer be parsed: writes the close
/// frame as raw bytes (the WebSocket layer's read state is broken), ends
/// our direction (FIN), then reads and discards what the client still
/// sends, up to [`DRAIN_MAX_BYTES`] or [`DRAIN_MAX_TIME`], until it closes.
/// Closing with unread input would make the kernel answer with a reset,
/// which can destroy the close frame before the client reads it.
async fn refuse(tcp: &mut TcpStream, code: u16, reason: &str, write_timeout: Duration) {
    let mut frame = vec![0x88, (2 + reason.len()) as u8];
    frame.extend_from_slice(&code.to_be_bytes());
    frame.extend_from_slice(reason.as_bytes());
    let write = async {
        tcp.write_all(&frame).await?;
        tcp.shutdown().await
    };
    if !matches!(timeout(write_timeout, write).await, Ok(Ok(()))) {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut left = DRAIN_MAX_BYTES;
    let drain = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(n) if n > 0 && n < left => left -= n,
                _ => return,
            }
        }
    };
    let _ = timeout(DRAIN_MAX_TIME, drain).await;
}

async fn write_events<S>(sink: &mut S, rx: &mut OutReceiver, first: OutFrame, limit: Duration) -> bool
where
    S: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    let work = async {
        fragment::feed_text(sink, first).await?;
        let mut n = 1;
        while n < WRITE_BATCH {
            match rx.try_recv() {
                Some(f) => fragment::feed_text(sink, f).await?,
                None => break,
            }
            n += 1;
        }
        sink.flush().await?;
        Ok::<u64, WsError>(n as u64)
    };
    match timeout(limit, work).await {
        Ok(Ok(n)) => {
            metrics::global().frames_out(FrameOut::Event, n);
            true
        }
        _ => false,
    }
}

/// The request id of a frame, if it has a valid one (for replies that do
/// not parse the whole request).
fn request_id(text: &str) -> Option<serde_json::Value> {
    serde_json::from_str::<Envelope>(text).ok()?.id.filter(|id| id.is_string() || id.is_number())
}

/// A request frame that parsed: its id, kind and request.
pub struct Parsed {
    id: Option<serde_json::Value>,
    kind: &'static str,
    started: std::time::Instant,
    req: Request,
}

/// Parses one text frame into a request, or the error reply it gets.
fn parse_text(text: &str) -> Result<Parsed, Utf8Bytes> {
    let m = metrics::global();
    let env = match serde_json::from_str::<Envelope>(text) {
        Ok(env) => env,
        Err(e) => {
            m.frame_in(FrameIn::Invalid);
            return Err(error_frame(&None, &bad_request(format!("invalid JSON: {e}"))));
        }
    };
    if let Some(id) = &env.id {
        if !(id.is_string() || id.is_number()) {
            m.frame_in(FrameIn::Invalid);
            return Err(error_frame(&None, &bad_request("`id` must be a string or a number")));
        }
    }
    let kind = match &env.kind {
        Some(serde_json::Value::String(k)) => k.as_str(),
        None => {
            m.frame_in(FrameIn::Invalid);
            return Err(error_frame(&env.id, &bad_request("missing `type`")));
        }
        Some(_) => {
            m.frame_in(FrameIn::Invalid);
            return Err(error_frame(&env.id, &bad_request("`type` must be a string")));
        }
    };
    let Some(kind_index) = REQUEST_KINDS.iter().position(|k| *k == kind) else {
        m.frame_in(FrameIn::Invalid);
        return Err(error_frame(&env.id, &Error::UnknownType(kind.chars().take(64).collect())));
    };
    m.frame_in(FrameIn::Request(kind_index));
    let started = std::time::Instant::now();
    let kind = REQUEST_KINDS[kind_index];
    match serde_json::from_str::<Request>(text) {
        Ok(req) => Ok(Parsed { id: env.id, kind, started, req }),
        Err(e) => Err(error_frame(&env.id, &bad_request(format!("invalid `{kind}` request: {e}")))),
    }
}

/// Runs one parsed request alone; returns the reply frame.
async fn run_parsed(app: &App, conn: &mut ConnState, p: Parsed) -> Utf8Bytes {
    let result = handlers::dispatch(app, conn, p.req).await;
    reply_frame(&p.id, p.kind, p.started, result)
}

/// The reply frame of a request's result (and its latency metric).
fn reply_frame(
    id: &Option<serde_json::Value>,
    kind: &str,
    started: std::time::Instant,
    result: crate::error::Result<handlers::Reply>,
) -> Utf8Bytes {
    metrics::global().request_seconds.observe(metrics::since(started));
    match result {
        Ok(data) => ok_frame(id, &data),
        Err(e) => {
            if e.is_server_side() {
                tracing::error!(kind, error = %e, "request failed");
            }
            error_frame(id, &e)
        }
    }
}

/// Writes one text message within `limit` (fragmented when long:
/// [`fragment`]); false when the socket is gone.
pub(crate) async fn write_text<S>(sink: &mut S, text: Utf8Bytes, limit: Duration) -> bool
where
    S: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    matches!(timeout(limit, fragment::send_text(sink, text)).await, Ok(Ok(())))
}

/// Writes one message within `limit`; false when the socket is gone.
async fn write_message<S>(sink: &mut S, message: Message, limit: Duration) -> bool
where
    S: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    matches!(timeout(limit, sink.send(message)).await, Ok(Ok(())))
}

fn ok_frame(id: &Option<serde_json::Value>, data: &serde_json::value::RawValue) -> Utf8Bytes {
    metrics::global().frames_out(FrameOut::Ok, 1);
    let reply = OkReply { kind: "ok", id, data };
    Utf8Bytes::from(serde_json::to_string(&reply).unwrap_or_else(|_| "{\"type\":\"ok\"}".into()))
}

/// Serializes an `error` reply for `e`, echoing the request id.
pub fn error_frame(id: &Option<serde_json::Value>, e: &Error) -> Utf8Bytes {
    let m = metrics::global();
    m.frames_out(FrameOut::Error, 1);
    m.error(e.code());
    let reply = ErrorReply { kind: "error".into(), id: id.clone(), code: e.code(), message: e.client_message() };
    Utf8Bytes::from(serde_json::to_string(&reply).unwrap_or_else(|_| "{\"type\":\"error\"}".into()))
}
