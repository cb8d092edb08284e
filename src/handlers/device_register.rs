//! `device.register`: register this session's push device (Web Push
//! subscription or Matrix gateway pushkey). Bounded per user
//! (`--push-max-devices`); the same endpoint/pushkey again updates the
//! existing device. The session's logout removes it.

use super::{ConnState, Reply, device_list::view, reply};
use crate::app::App;
use crate::error::{Error, Result, bad_request};
use crate::model::now_ms;
use crate::protocol::{DeviceRegister, DeviceRegistered};
use crate::push::webpush::Subscriber;
use crate::store::push::{Device, DeviceId, DeviceTarget, Registered};

/// Longest endpoint URL accepted, in bytes.
pub const MAX_ENDPOINT_BYTES: usize = 2048;
/// Longest gateway pushkey, in bytes.
pub const MAX_PUSHKEY_BYTES: usize = 512;
/// Longest gateway app id, in bytes.
pub const MAX_APP_ID_BYTES: usize = 64;
/// Largest gateway `data` object, serialized, in bytes.
pub const MAX_DATA_BYTES: usize = 1024;

pub async fn handle(app: &App, conn: &mut ConnState, r: DeviceRegister) -> Result<Reply> {
    let me = conn.user()?.clone();
    let target = target(app, r)?;
    let device = Device {
        id: DeviceId(app.ids.next_id()),
        user: me.user.id,
        session: me.session.clone(),
        target,
        created_ms: now_ms(),
    };
    let max = app.config.push.push_max_devices;
    let (device, created) = match app.store.add_device(&device, max).await? {
        Registered::New(d) => (d, true),
        Registered::Updated(d) => (d, false),
        Registered::Full => return Err(Error::LimitExceeded(format!("at most {max} push devices per user"))),
    };
    reply(&DeviceRegistered { device: view(&device, &me.session), created })
}

fn target(app: &App, r: DeviceRegister) -> Result<DeviceTarget> {
    match r.platform.as_str() {
        "webpush" => {
            let endpoint = r.endpoint.ok_or_else(|| bad_request("`endpoint` is required for webpush"))?;
            check_url(&endpoint, app.config.push.push_allow_http, "endpoint")?;
            let keys = r.keys.ok_or_else(|| bad_request("`keys` {p256dh, auth} is required for webpush"))?;
            Subscriber::parse(&keys.p256dh, &keys.auth).map_err(|e| bad_request(e.to_string()))?;
            Ok(DeviceTarget::WebPush { endpoint, p256dh: keys.p256dh, auth: keys.auth })
        }
        "gateway" => {
            if app.config.push.push_gateway_url.is_none() {
                return Err(bad_request("this server has no push gateway (--push-gateway-url)"));
            }
            let pushkey = r.pushkey.filter(|k| !k.is_empty() && k.len() <= MAX_PUSHKEY_BYTES);
            let pushkey = pushkey.ok_or_else(|| bad_request("`pushkey`: 1 to 512 bytes"))?;
            let app_id = r.app_id.filter(|a| {
                (1..=MAX_APP_ID_BYTES).contains(&a.len())
                    && a.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            });
            let app_id = app_id.ok_or_else(|| bad_request("`app_id`: 1 to 64 of A-Z a-z 0-9 . _ -"))?;
            let data = match r.data {
                None => "{}".to_owned(),
                Some(v @ serde_json::Value::Object(_)) => v.to_string(),
                Some(_) => return Err(bad_request("`data` must be an object")),
            };
            if data.len() > MAX_DATA_BYTES {
                return Err(Error::TooLarge(format!("`data` over {MAX_DATA_BYTES} bytes")));
            }
            Ok(DeviceTarget::Gateway { pushkey, app_id, data })
        }
        _ => Err(bad_request("`platform` must be `webpush` or `gateway`")),
    }
}

/// An https URL of at most [`MAX_ENDPOINT_BYTES`]; `http://` only with
/// `--push-allow-http` and a loopback host.
pub fn check_url(url: &str, allow_http: bool, what: &str) -> Result<()> {
    if url.len() > MAX_ENDPOINT_BYTES {
        return Err(bad_request(format!("`{what}` over {MAX_ENDPOINT_BYTES} bytes")));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad_request(format!("`{what}` is not a URL")));
    }
    let host_ok = |rest: &str| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.contains('@')
    };
    if let Some(rest) = url.strip_prefix("https://") {
        if host_ok(rest) {
            return Ok(());
        }
    } else if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let loopback = matches!(name, "127.0.0.1" | "localhost" | "[::1]");
        if allow_http && loopback && host_ok(rest) {
            return Ok(());
        }
        return Err(bad_request(format!("`{what}` must be https")));
    }
    Err(bad_request(format!("`{what}` must be an https URL")))
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn urls() {
        assert!(check_url("https://fcm.googleapis.com/fcm/send/x", false, "e").is_ok());
        assert!(check_url("http://127.0.0.1:9/x", false, "e").is_err());
        assert!(check_url("http://127.0.0.1:9/x", true, "e").is_ok());
        assert!(check_url("http://example.com/x", true, "e").is_err());
        assert!(check_url("https://", false, "e").is_err());
        assert!(check_url("ftp://x/y", false, "e").is_err());
        assert!(check_url(&format!("https://x/{}", "a".repeat(3000)), false, "e").is_err());
    }
}
