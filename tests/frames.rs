//! Hostile frames end in a clean WebSocket close the client can read: an
//! oversized message gets 1009 with its reason (the server drains what the
//! client is still sending instead of resetting the connection), invalid
//! UTF-8 in a text frame gets 1007. A long reply goes out in frames of at
//! most 4 KiB, cut between characters.

mod common;

use std::time::Duration;

use common::{Client, TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// What a client that sent `payload` as one text message then reads sees:
/// the close code and reason, or the error that ended the read.
async fn close_after_sending(url: &str, payload: String) -> Result<(u16, String), String> {
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect in time")
        .expect("connect");
    // A reset shows first here: the server stopped reading and the rest of
    // the message could not be delivered.
    match tokio::time::timeout(WAIT, ws.send(Message::Text(payload.into()))).await.expect("send in time") {
        Ok(()) => {}
        Err(e) => return Err(format!("send error: {e}")),
    }
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("the socket ends in time") {
            Some(Ok(Message::Close(Some(f)))) => return Ok((f.code.into(), f.reason.to_string())),
            Some(Ok(Message::Close(None))) => return Err("close without a code".into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("read error: {e}")),
            None => return Err("stream ended without a close frame".into()),
        }
    }
}

#[tokio::test]
async fn oversized_messages_close_with_1009_and_a_reason_every_time() {
    let s = TestServer::start().await;
    for size in [64 * 1024 + 1, 1024 * 1024] {
        for round in 0..10 {
            let got = close_after_sending(&s.ws_url(), "x".repeat(size)).await;
            assert_eq!(got, Ok((1009, "frame too large".to_owned())), "{size} bytes, round {round}");
        }
    }
    s.stop().await;
}

/// A masked client frame with `opcode` and `payload` (RFC 6455 section 5.2).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Opens a WebSocket by hand over raw TCP (the client library refuses to
/// send invalid UTF-8), returning the stream after the 101 response.
async fn raw_socket(s: &TestServer) -> TcpStream {
    let mut tcp = TcpStream::connect(s.addr).await.expect("connect");
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        s.addr
    );
    tcp.write_all(req.as_bytes()).await.expect("write upgrade");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(WAIT, tcp.read(&mut b)).await.expect("101 in time").expect("read");
        assert_eq!(n, 1, "server closed during the handshake");
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    tcp
}

/// Reads server frames until a close frame; returns its code and reason.
async fn read_close(tcp: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // Unmasked server frames with short payloads: [b0, len, payload...].
        if buf.len() >= 2 && buf.len() >= 2 + (buf[1] & 0x7f) as usize {
            let len = (buf[1] & 0x7f) as usize;
            assert!(len < 126, "short frames only");
            let frame: Vec<u8> = buf.drain(..2 + len).collect();
            if frame[0] & 0x0f == 0x8 {
                let code = u16::from_be_bytes([frame[2], frame[3]]);
                return (code, String::from_utf8_lossy(&frame[4..]).into_owned());
            }
            continue;
        }
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut chunk))
            .await
            .expect("a close frame in time")
            .expect("read without a reset");
        assert!(n > 0, "connection ended without a close frame");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007_every_time() {
    let s = TestServer::start().await;
    for round in 0..10 {
        let mut tcp = raw_socket(&s).await;
        tcp.write_all(&client_frame(0x1, b"{\"type\":\"ping\",\"x\":\"\xff\xfe\"}")).await.expect("send");
        let (code, reason) = read_close(&mut tcp).await;
        assert_eq!((code, reason.as_str()), (1007, "invalid UTF-8 in a text frame"), "round {round}");
    }
    // A fragmented text message whose UTF-8 is split across frames stays valid.
    let mut tcp = raw_socket(&s).await;
    let text = "{\"type\":\"ping\",\"id\":1,\"x\":\"é\"}".as_bytes();
    let cut = text.iter().position(|b| *b == 0xc3).expect("é") + 1;
    let mut first = client_frame(0x1, &text[..cut]);
    first[0] &= 0x7f; // FIN off
    tcp.write_all(&first).await.expect("send");
    tcp.write_all(&client_frame(0x0, &text[cut..])).await.expect("send");
    let mut reply = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut reply)).await.expect("reply").expect("read");
    assert!(String::from_utf8_lossy(&reply[..n]).contains("\"type\":\"ok\""), "a split é is valid UTF-8");
    s.stop().await;
}

/// The header of a masked client text frame of `len` payload bytes (64-bit
/// length form), with mask key 0 so the payload goes as is.
fn big_frame_header(len: u64) -> Vec<u8> {
    let mut h = vec![0x81, 0x80 | 127];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

#[tokio::test]
async fn a_client_on_a_slower_link_gets_1009_and_no_reset() {
    // Over a real network a big frame arrives over time, after the server
    // has already refused it: every byte must still be read, or the kernel
    // answers the late ones with a reset that destroys the close frame.
    let s = TestServer::start().await;
    for round in 0..10 {
        let mut tcp = raw_socket(&s).await;
        let total = 1024 * 1024;
        tcp.write_all(&big_frame_header(total as u64)).await.expect("header");
        let chunk = vec![b'x'; 64 * 1024];
        for i in 0..total / chunk.len() {
            tcp.write_all(&chunk).await.unwrap_or_else(|e| panic!("round {round}: chunk {i} refused: {e}"));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (code, reason) = read_close(&mut tcp).await;
        assert_eq!((code, reason.as_str()), (1009, "frame too large"), "round {round}");
        // Then a clean end of stream (FIN), not a reset.
        let mut rest = [0u8; 64];
        let n = tokio::time::timeout(WAIT, tcp.read(&mut rest)).await.expect("end in time");
        assert!(matches!(n, Ok(0)), "round {round}: {n:?}");
    }
    s.stop().await;
}

/// One server frame read by hand: FIN bit, opcode, payload.
async fn read_server_frame(tcp: &mut TcpStream) -> (bool, u8, Vec<u8>) {
    let mut head = [0u8; 2];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut head)).await.expect("frame in time").expect("read");
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            tcp.read_exact(&mut l).await.expect("read");
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            tcp.read_exact(&mut l).await.expect("read");
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut payload)).await.expect("payload in time").expect("read");
    (head[0] & 0x80 != 0, head[0] & 0x0f, payload)
}

#[tokio::test]
async fn a_long_reply_arrives_whole_in_frames_of_at_most_4_kib_cut_between_characters() {
    let s = TestServer::start().await;
    let mut ann = Client::register(&s, "ann").await;
    // 30 posts of 279 characters, 4- and 2-byte ones: a ~33 KB page.
    let texts: Vec<String> = (0..30).map(|i| format!("{i:02} {}", "😀é".repeat(138))).collect();
    for t in &texts {
        ann.ok("post.create", json!({ "text": t })).await;
    }

    // A client library sees one message holding the whole page.
    let page = ann.ok("timeline.user", json!({"username": "ann", "limit": 30})).await;
    let got: Vec<&str> =
        page["items"].as_array().expect("items").iter().map(|it| it["post"]["text"].as_str().expect("text")).collect();
    let want: Vec<&str> = texts.iter().rev().map(String::as_str).collect();
    assert_eq!(got, want, "newest first, every character intact");

    // On the wire: a text frame, then continuation frames, each at most
    // 4096 bytes and valid UTF-8 on its own; FIN on the last only.
    let mut tcp = raw_socket(&s).await;
    let login = br#"{"type":"auth.login","id":1,"username":"ann","password":"password123"}"#;
    tcp.write_all(&client_frame(0x1, login)).await.expect("send");
    let (fin, op, reply) = read_server_frame(&mut tcp).await;
    assert!(fin && op == 0x1 && String::from_utf8_lossy(&reply).contains("\"type\":\"ok\""));
    let req = br#"{"type":"timeline.user","id":2,"username":"ann","limit":30}"#;
    tcp.write_all(&client_frame(0x1, req)).await.expect("send");
    let mut frames = Vec::new();
    loop {
        let (fin, op, payload) = read_server_frame(&mut tcp).await;
        if frames.is_empty() && op != 0x1 {
            continue; // an event or a control frame before the reply
        }
        frames.push((op, payload));
        if fin {
            break;
        }
    }
    let n = frames.len();
    for (i, (op, payload)) in frames.iter().enumerate() {
        assert_eq!(*op, if i == 0 { 0x1 } else { 0x0 }, "frame {i}: text first, then continuations");
        assert!(payload.len() <= 4096, "frame {i}: {} bytes", payload.len());
        assert!(std::str::from_utf8(payload).is_ok(), "frame {i} ends between characters");
    }
    let whole: Vec<u8> = frames.into_iter().flat_map(|(_, p)| p).collect();
    assert!(whole.len() > 30_000 && n >= whole.len().div_ceil(4096), "{n} frames for {} bytes", whole.len());
    let v: serde_json::Value = serde_json::from_slice(&whole).expect("the frames join into one JSON reply");
    assert_eq!((v["type"].as_str(), v["id"].as_i64()), (Some("ok"), Some(2)));
    assert_eq!(v["data"], page);
    s.stop().await;
}
