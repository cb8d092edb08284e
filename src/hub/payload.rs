//! What travels on a user's inbox channel and how frames are stamped with
//! their position. Payload format (a text header line, then the body):
//!   `F <except conn id or 0>\n<frame>`   deliver a frame
//!   `C <code> S <session>\n`             close one session's sockets
//!   `C <code> X <session or ->\n`        close all but a session's sockets

use bytes::{BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{CloseTarget, ConnId};
use crate::broker::Position;
use crate::model::SessionId;
use crate::protocol::{close, events};

/// A decoded inbox payload.
pub enum Payload {
    /// A frame for every socket of the user but `except` (0: none).
    Frame { except: u64, frame: Utf8Bytes },
    /// Close the targeted sockets with `code`.
    Close { code: u16, target: CloseTarget },
}

/// Encodes a frame for every socket of the user but `except`.
pub fn encode_frame(except: Option<ConnId>, frame: &Utf8Bytes) -> Bytes {
    let mut digits = itoa::Buffer::new();
    let except = digits.format(except.map_or(0, |c| c.0));
    let mut b = BytesMut::with_capacity(3 + except.len() + frame.len());
    b.put_slice(b"F ");
    b.put_slice(except.as_bytes());
    b.put_u8(b'\n');
    b.put_slice(frame.as_bytes());
    b.freeze()
}

/// The prefix of a presence-channel payload that ends one user's watches
/// of the channel's user (`U <watcher id>`), on every node; presence
/// events are JSON frames, so they never start with it.
pub const END_WATCH: &str = "U ";

/// Encodes a request to close some of the user's sockets.
pub fn encode_close(code: u16, target: &CloseTarget) -> Bytes {
    let s = match target {
        CloseTarget::Session(s) => format!("C {code} S {s}\n"),
        CloseTarget::AllExcept(s) => {
            format!("C {code} X {}\n", s.as_ref().map_or("-", |s| s.0.as_str()))
        }
    };
    Bytes::from(s)
}

/// Decodes an inbox payload; `None` if it is malformed.
pub fn decode(payload: &Bytes) -> Option<Payload> {
    let nl = payload.iter().position(|b| *b == b'\n')?;
    let header = std::str::from_utf8(&payload[..nl]).ok()?;
    let mut parts = header.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("F"), Some(except), None, None) => {
            let frame = Utf8Bytes::try_from(payload.slice(nl + 1..)).ok()?;
            Some(Payload::Frame { except: except.parse().unwrap_or(0), frame })
        }
        (Some("C"), Some(code), Some(kind), Some(session)) => {
            let code = code.parse().unwrap_or(close::SESSION_REVOKED);
            let target = match (kind, session) {
                ("S", s) => CloseTarget::Session(SessionId(s.to_owned())),
                ("X", "-") => CloseTarget::AllExcept(None),
                (_, s) => CloseTarget::AllExcept(Some(SessionId(s.to_owned()))),
            };
            Some(Payload::Close { code, target })
        }
        _ => None,
    }
}

/// `frame` (a JSON object) with `"pos":{"epoch":…,"offset":…}` added.
/// Runs once per delivery, so it builds the result in one allocation.
pub fn with_pos(frame: &Utf8Bytes, pos: &Position) -> Utf8Bytes {
    let Some(body) = frame.as_str().trim_end().strip_suffix('}') else { return frame.clone() };
    let mut out = String::with_capacity(body.len() + pos.epoch.len() + 64);
    out.push_str(body);
    out.push_str(",\"pos\":{\"epoch\":");
    push_json_string(&mut out, &pos.epoch);
    out.push_str(",\"offset\":");
    out.push_str(itoa::Buffer::new().format(pos.offset));
    out.push_str("}}");
    Utf8Bytes::from(out)
}

/// Appends `s` as a JSON string literal (quoted, escaped as serde_json does).
fn push_json_string(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
    }
}

/// The `sync.needed` event: the client may have missed inbox events and
/// should call `message.sync`; `pos`, when known, is where to continue from.
pub fn sync_needed(reason: &str, pos: Option<&Position>) -> Utf8Bytes {
    let frame =
        format!("{{\"type\":\"event\",\"event\":\"{}\",\"data\":{{\"reason\":\"{reason}\"}}}}", events::SYNC_NEEDED);
    let frame = Utf8Bytes::from(frame);
    match pos {
        Some(p) => with_pos(&frame, p),
        None => frame,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_added_to_the_frame_object() {
        let pos = Position { epoch: "ab".into(), offset: 3 };
        let f = with_pos(&Utf8Bytes::from("{\"type\":\"event\",\"event\":\"x\",\"data\":{}}"), &pos);
        let v: serde_json::Value = serde_json::from_str(f.as_str()).unwrap();
        assert_eq!(v["pos"], serde_json::json!({"epoch": "ab", "offset": 3}));
        let s: serde_json::Value = serde_json::from_str(sync_needed("gap", Some(&pos)).as_str()).unwrap();
        assert_eq!(s["event"], "sync.needed");
        assert_eq!(s["data"]["reason"], "gap");
        assert_eq!(s["pos"]["offset"], 3);
        let odd = Position { epoch: "a\"b\\c\n".into(), offset: u64::MAX };
        let v: serde_json::Value =
            serde_json::from_str(with_pos(&Utf8Bytes::from("{\"a\":1} "), &odd).as_str()).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1, "pos": {"epoch": "a\"b\\c\n", "offset": u64::MAX}}));
    }

    #[test]
    fn payloads_round_trip() {
        let f = Utf8Bytes::from("{}");
        match decode(&encode_frame(Some(ConnId(9)), &f)) {
            Some(Payload::Frame { except: 9, frame }) => assert_eq!(frame, f),
            _ => panic!("frame"),
        }
        match decode(&encode_close(4500, &CloseTarget::AllExcept(None))) {
            Some(Payload::Close { code: 4500, target: CloseTarget::AllExcept(None) }) => {}
            _ => panic!("close"),
        }
        assert!(decode(&Bytes::from_static(b"junk")).is_none());
    }
}
