//! A minimal hubbub client: open a socket from a chosen source address,
//! authenticate, send requests and wait for their replies. Every wait has a
//! deadline, and anything the server sends that does not fit is a counted
//! failure, never a panic.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hubbub::protocol::{AuthReply, ErrorCode, ErrorReply};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// An open socket.
pub type Ws = WebSocketStream<TcpStream>;

/// Password of every load-test user (bcrypt's cost is the server's choice).
pub const PASSWORD: &str = "loadtest-password";

/// Where to connect and which local addresses to connect from.
pub struct Target {
    /// The server.
    pub addr: SocketAddr,
    sources: Vec<IpAddr>,
    next: AtomicUsize,
    /// Timeout of each connect and each request.
    pub timeout: Duration,
}

impl Target {
    /// A target; for an IPv4 loopback target, sockets are spread over
    /// `127.0.0.1 ..= 127.0.0.<source_ips>` so that more than one ephemeral
    /// port range (about 28k ports) is available.
    pub fn new(addr: SocketAddr, source_ips: u8, timeout: Duration) -> Target {
        let sources = match addr.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => {
                (1..=source_ips.max(1)).map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))).collect()
            }
            _ => Vec::new(),
        };
        Target { addr, sources, next: AtomicUsize::new(0), timeout }
    }

    fn next_source(&self) -> Option<IpAddr> {
        if self.sources.is_empty() {
            return None;
        }
        Some(self.sources[self.next.fetch_add(1, Ordering::Relaxed) % self.sources.len()])
    }
}

/// Why something failed, as a short stable reason for the failure table.
#[derive(Debug)]
pub struct Fail(pub String);

impl Fail {
    fn io(stage: &str, e: &std::io::Error) -> Fail {
        Fail(format!("{stage}: {:?}", e.kind()))
    }
}

fn ws_error(e: WsError) -> Fail {
    match e {
        WsError::Http(resp) => Fail(format!("http {}", resp.status().as_u16())),
        WsError::Io(e) => Fail::io("ws io", &e),
        WsError::ConnectionClosed | WsError::AlreadyClosed => Fail("closed".into()),
        WsError::Protocol(p) => Fail(format!("ws protocol: {p}")),
        other => Fail(format!("ws: {}", other.to_string().chars().take(60).collect::<String>())),
    }
}

/// Small buffers: the load generator holds as many sockets as the server.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4 * 1024).write_buffer_size(0)
}

/// Opens a WebSocket, optionally authenticating at upgrade with `token`.
pub async fn connect(target: &Target, token: Option<&str>) -> Result<Ws, Fail> {
    let work = async {
        let sock = match target.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(|e| Fail::io("socket", &e))?;
        if let Some(ip) = target.next_source() {
            sock.bind(SocketAddr::new(ip, 0)).map_err(|e| Fail::io("bind", &e))?;
        }
        let stream = sock.connect(target.addr).await.map_err(|e| Fail::io("connect", &e))?;
        let _ = stream.set_nodelay(true);
        let url = match token {
            Some(t) => format!("ws://{}/ws?token={t}", target.addr),
            None => format!("ws://{}/ws", target.addr),
        };
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(client_config())).await.map_err(ws_error)?;
        Ok(ws)
    };
    timeout(target.timeout, work).await.map_err(|_| Fail("timeout: connect".into()))?
}

/// Sends one request and checks it is answered `ok`; returns its `data`.
/// An `error` reply becomes a failure naming the kind, code and message.
pub async fn request_ok(ws: &mut Ws, id: u64, kind: &str, fields: Value, limit: Duration) -> Result<Value, Fail> {
    match request(ws, id, kind, fields, limit).await {
        Ok(Ok(data)) => Ok(data),
        Ok(Err(e)) => Err(Fail(format!("{kind}: {} ({})", e.code.as_str(), e.message))),
        Err(Fail(r)) => Err(Fail(format!("{kind}: {r}"))),
    }
}

/// A reply: `Ok(data)` or the server's error.
pub type Reply = Result<Value, ErrorReply>;

/// Sends a request with numeric id `id` and waits for its reply, skipping
/// events and other replies.
pub async fn request(ws: &mut Ws, id: u64, kind: &str, mut fields: Value, limit: Duration) -> Result<Reply, Fail> {
    if let Some(obj) = fields.as_object_mut() {
        obj.insert("type".into(), json!(kind));
        obj.insert("id".into(), json!(id));
    }
    ws.send(Message::text(fields.to_string())).await.map_err(ws_error)?;
    let work = async {
        loop {
            let text = match ws.next().await {
                None => return Err(Fail("closed".into())),
                Some(Err(e)) => return Err(ws_error(e)),
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(f))) => {
                    return Err(Fail(format!("closed {}", f.map_or(1005, |f| u16::from(f.code)))));
                }
                Some(Ok(_)) => continue,
            };
            if let Some(reply) = parse_reply(&text, id) {
                return Ok(reply);
            }
        }
    };
    timeout(limit, work).await.map_err(|_| Fail(format!("timeout: {kind}")))?
}

/// The reply to request `id` in `text`, or `None` if `text` is anything else.
pub fn parse_reply(text: &str, id: u64) -> Option<Reply> {
    let v: Value = serde_json::from_str(text).ok()?;
    if v.get("id").and_then(Value::as_u64) != Some(id) {
        return None;
    }
    match v.get("type").and_then(Value::as_str)? {
        "ok" => Some(Ok(v.get("data").cloned().unwrap_or(Value::Null))),
        "error" => serde_json::from_value::<ErrorReply>(v).ok().map(Err),
        _ => None,
    }
}

/// Registers `username`, or logs in if it exists; returns the access token.
pub async fn register_or_login(ws: &mut Ws, username: &str, limit: Duration) -> Result<String, Fail> {
    let creds = json!({"username": username, "password": PASSWORD});
    let reply = match request(ws, 1, "auth.register", creds.clone(), limit).await? {
        Err(e) if e.code == ErrorCode::Conflict => request(ws, 2, "auth.login", creds, limit).await?,
        other => other,
    };
    match reply {
        Ok(data) => serde_json::from_value::<AuthReply>(data)
            .map(|a| a.access_token)
            .map_err(|_| Fail("auth: malformed reply".into())),
        Err(e) => Err(Fail(format!("auth: {}", e.code.as_str()))),
    }
}

/// Opens a socket, authenticates `username` with a password and closes it;
/// returns the access token for later reconnects.
pub async fn obtain_token(target: &Target, username: &str) -> Result<String, Fail> {
    let mut ws = connect(target, None).await?;
    let token = register_or_login(&mut ws, username, target.timeout).await;
    let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
    token
}

/// Username of load-test user `i` (valid: `A-Za-z0-9_`, at most 32 characters).
pub fn username(prefix: &str, i: usize) -> String {
    format!("{prefix}_{i}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_matched_by_id() {
        assert_eq!(parse_reply(r#"{"type":"ok","id":7,"data":{"a":1}}"#, 7).unwrap().unwrap()["a"], 1);
        assert!(parse_reply(r#"{"type":"ok","id":8,"data":{}}"#, 7).is_none());
        assert!(parse_reply(r#"{"type":"event","event":"message.new","data":{}}"#, 7).is_none());
        let e = parse_reply(r#"{"type":"error","id":7,"code":"unknown_type","message":"x"}"#, 7).unwrap();
        assert_eq!(e.unwrap_err().code, ErrorCode::UnknownType);
        assert!(parse_reply("not json", 7).is_none());
    }

    #[test]
    fn sources_spread_over_loopback_addresses() {
        let t = Target::new("127.0.0.1:8080".parse().unwrap(), 3, Duration::from_secs(1));
        let got: Vec<_> = (0..4).map(|_| t.next_source().unwrap().to_string()).collect();
        assert_eq!(got, ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"]);
        let remote = Target::new("[::1]:8080".parse().unwrap(), 3, Duration::from_secs(1));
        assert!(remote.next_source().is_none());
    }

    #[test]
    fn usernames_are_valid() {
        let u = username("lt", 199_999);
        assert!(u.len() <= 32 && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
}
