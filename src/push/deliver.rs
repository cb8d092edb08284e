//! Sending one notification: a Web Push request (RFC 8030 headers, an
//! RFC 8291 body, a VAPID `Authorization`) or a Matrix push gateway
//! `notify` call, and what the answer means for the queue.

use std::time::Duration;

use serde_json::json;

use super::webpush::{self, MAX_PLAINTEXT, Subscriber};
use crate::model::now_ms;
use crate::store::push::{Device, DeviceTarget, PushJob};

/// What became of one send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the push service or gateway.
    Sent,
    /// The endpoint or gateway says the device is gone (404/410, `rejected`).
    Gone,
    /// Try again later (network error, timeout, 429, 5xx).
    Retry(String),
    /// Refused for good (other 4xx, undecodable keys): drop the notification.
    Refused(String),
}

/// What a sender needs besides the job.
pub struct Sender {
    pub http: reqwest::Client,
    pub vapid: webpush::Vapid,
    /// `TTL` header of Web Push requests, seconds.
    pub ttl: u64,
    /// Matrix push gateway base URL, if configured.
    pub gateway_url: Option<String>,
}

/// Most bytes of message text a notification carries (cut at a character
/// boundary): keeps a Web Push payload within its 4 KiB record.
pub const MAX_PREVIEW_BYTES: usize = 1000;

fn preview(text: &str) -> &str {
    if text.len() <= MAX_PREVIEW_BYTES {
        return text;
    }
    let mut end = MAX_PREVIEW_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The decrypted Web Push payload (protocol.md "Push notifications"):
/// fields the preview setting hides are absent.
pub fn webpush_payload(job: &PushJob) -> serde_json::Value {
    let mut p = json!({
        "type": "message.new",
        "conversation": job.conversation.0,
        "message_id": job.message.0.to_string(),
        "count": job.count,
    });
    if !job.sender.is_empty() {
        p["from"] = json!(job.sender);
    }
    if !job.text.is_empty() {
        p["text"] = json!(preview(&job.text));
    }
    p
}

/// The Matrix push gateway request body for `job` to `device`.
pub fn gateway_body(job: &PushJob, device: &Device) -> Option<serde_json::Value> {
    let DeviceTarget::Gateway { pushkey, app_id, data } = &device.target else { return None };
    let data: serde_json::Value = serde_json::from_str(data).unwrap_or_else(|_| json!({}));
    let mut n = json!({
        "event_id": job.message.0.to_string(),
        "room_id": job.conversation.0,
        "type": "m.room.message",
        "counts": { "unread": job.count },
        "prio": "high",
        "devices": [{ "app_id": app_id, "pushkey": pushkey, "pushkey_ts": device.created_ms / 1000, "data": data }],
    });
    if !job.sender.is_empty() {
        n["sender"] = json!(job.sender);
        n["sender_display_name"] = json!(job.sender);
    }
    if !job.text.is_empty() {
        n["content"] = json!({ "msgtype": "m.text", "body": preview(&job.text) });
    }
    Some(json!({ "notification": n }))
}

fn status_outcome(status: reqwest::StatusCode) -> Outcome {
    match status.as_u16() {
        200..=299 => Outcome::Sent,
        404 | 410 => Outcome::Gone,
        429 | 500..=599 => Outcome::Retry(format!("status {status}")),
        _ => Outcome::Refused(format!("status {status}")),
    }
}

impl Sender {
    /// Sends `job` to `device` once.
    pub async fn send(&self, job: &PushJob, device: &Device) -> Outcome {
        match &device.target {
            DeviceTarget::WebPush { endpoint, p256dh, auth } => self.webpush(job, endpoint, p256dh, auth).await,
            DeviceTarget::Gateway { pushkey, .. } => self.gateway(job, device, pushkey).await,
        }
    }

    async fn webpush(&self, job: &PushJob, endpoint: &str, p256dh: &str, auth: &str) -> Outcome {
        let Ok(to) = Subscriber::parse(p256dh, auth) else {
            return Outcome::Refused("undecodable subscription keys".into());
        };
        let payload = webpush_payload(job).to_string();
        let body = match webpush::encrypt(&to, &payload.as_bytes()[..payload.len().min(MAX_PLAINTEXT)]) {
            Ok(b) => b,
            Err(e) => return Outcome::Refused(e.to_string()),
        };
        let Some(audience) = webpush::origin(endpoint) else {
            return Outcome::Refused("endpoint has no origin".into());
        };
        let request = self
            .http
            .post(endpoint)
            .header("TTL", self.ttl.to_string())
            .header("Urgency", "high")
            .header("Topic", webpush::topic(&job.conversation.0))
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Authorization", self.vapid.authorization_at(&audience, now_ms() / 1000))
            .body(body);
        match request.send().await {
            Ok(r) => status_outcome(r.status()),
            Err(e) => Outcome::Retry(e.without_url().to_string()),
        }
    }

    async fn gateway(&self, job: &PushJob, device: &Device, pushkey: &str) -> Outcome {
        let Some(base) = &self.gateway_url else {
            return Outcome::Retry("no --push-gateway-url configured".into());
        };
        let Some(body) = gateway_body(job, device) else { return Outcome::Refused("not a gateway device".into()) };
        let url = format!("{}/_matrix/push/v1/notify", base.trim_end_matches('/'));
        let response = match self.http.post(url).json_body(&body).send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(e.without_url().to_string()),
        };
        let outcome = status_outcome(response.status());
        if outcome != Outcome::Sent {
            return outcome;
        }
        // Bounded read: a gateway's answer is a small JSON object.
        let answer = match tokio::time::timeout(Duration::from_secs(10), response.bytes()).await {
            Ok(Ok(b)) if b.len() <= 64 * 1024 => b,
            _ => return Outcome::Sent,
        };
        let rejected = serde_json::from_slice::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v.get("rejected").and_then(|r| r.as_array()).cloned())
            .unwrap_or_default();
        if rejected.iter().any(|k| k.as_str() == Some(pushkey)) { Outcome::Gone } else { Outcome::Sent }
    }
}

/// `RequestBuilder::json` needs reqwest's `json` feature; this sets the
/// same body and header without it.
trait JsonBody {
    fn json_body(self, v: &serde_json::Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, v: &serde_json::Value) -> Self {
        self.header("Content-Type", "application/json").body(v.to_string())
    }
}
