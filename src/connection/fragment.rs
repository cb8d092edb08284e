//! Writes text messages to a socket in frames of at most [`FRAGMENT_BYTES`].
//!
//! tungstenite serializes every frame into one per-socket output buffer and
//! never shrinks it, so one large reply (a page of posts or messages, up to
//! `max_reply_bytes`) used to leave its whole size allocated for the rest of
//! the socket's life: 2,000 sockets that each read one 58 KB timeline page
//! kept 68 KB apiece, against 3.7 KB idle (BENCHMARKS.md). A message longer
//! than [`FRAGMENT_BYTES`] goes out as one text frame and continuation frames
//! (RFC 6455 section 5.4; every WebSocket client reassembles them), cut at
//! UTF-8 character boundaries, so the buffer stays near the write buffer
//! size plus one fragment.

use bytes::Bytes;
use futures_util::{Sink, SinkExt};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

/// Largest frame payload the server writes, in bytes; longer text messages
/// are fragmented.
pub const FRAGMENT_BYTES: usize = 4 * 1024;

/// Queues `text` as one text message (fragmented when longer than
/// [`FRAGMENT_BYTES`]) without flushing; the sink may write part of it.
pub async fn feed_text<S>(sink: &mut S, text: Utf8Bytes) -> Result<(), WsError>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    if text.len() <= FRAGMENT_BYTES {
        return sink.feed(Message::Text(text)).await;
    }
    let bytes = Bytes::from(text.clone());
    let mut start = 0;
    for end in cuts(text.as_str(), FRAGMENT_BYTES) {
        let opcode = if start == 0 { Data::Text } else { Data::Continue };
        let last = end == text.len();
        sink.feed(Message::Frame(Frame::message(bytes.slice(start..end), OpCode::Data(opcode), last))).await?;
        start = end;
    }
    Ok(())
}

/// Writes `text` as one text message and flushes it.
pub async fn send_text<S>(sink: &mut S, text: Utf8Bytes) -> Result<(), WsError>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    feed_text(sink, text).await?;
    sink.flush().await
}

/// The end offsets of `s`'s fragments: each at most `max` bytes (at least
/// one character) and ending on a character boundary; the last is `s.len()`.
fn cuts(s: &str, max: usize) -> impl Iterator<Item = usize> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= s.len() {
            return None;
        }
        let mut end = (start + max).min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        if end == start {
            // `max` is smaller than this character: take the whole character.
            end = start + s[start..].chars().next().map_or(1, char::len_utf8);
        }
        start = end;
        Some(end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(s: &str, max: usize) -> Vec<&str> {
        let mut start = 0;
        cuts(s, max)
            .map(|end| {
                let p = &s[start..end];
                start = end;
                p
            })
            .collect()
    }

    #[test]
    fn cuts_cover_the_text_in_order_within_the_limit() {
        let s = "ab".repeat(5000);
        let p = pieces(&s, 4096);
        assert_eq!(p.iter().map(|x| x.len()).collect::<Vec<_>>(), vec![4096, 4096, 1808]);
        assert_eq!(p.concat(), s);
    }

    #[test]
    fn cuts_never_split_a_character() {
        // 3-byte characters against a limit that is not a multiple of 3.
        let s = "€".repeat(3000);
        let p = pieces(&s, 4096);
        assert!(p.iter().all(|x| x.len() <= 4096 && x.len() % 3 == 0));
        assert_eq!(p.concat(), s);
        // A character longer than the limit is kept whole.
        assert_eq!(pieces("a😀b", 2), vec!["a", "😀", "b"]);
        assert!(pieces("", 4096).is_empty());
    }
}
