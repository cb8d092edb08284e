//! Wire types of push notifications (issue 16): devices and the push
//! configuration. `protocol.md` ("Push notifications") documents each.

use serde::{Deserialize, Serialize};

/// A Web Push subscription's keys, as `PushSubscription.toJSON().keys`.
#[derive(Debug, Deserialize)]
pub struct WebPushKeys {
    pub p256dh: String,
    pub auth: String,
}

/// `device.register`: `platform` `webpush` (with `endpoint` and `keys`, as
/// a browser's `PushSubscription.toJSON()` gives them; other members such
/// as `expirationTime` are ignored) or `gateway` (with `pushkey`,
/// `app_id` and an optional `data` object).
#[derive(Debug, Deserialize)]
pub struct DeviceRegister {
    pub platform: String,
    pub endpoint: Option<String>,
    pub keys: Option<WebPushKeys>,
    pub pushkey: Option<String>,
    pub app_id: Option<String>,
    pub data: Option<serde_json::Value>,
}

/// `device.remove`.
#[derive(Debug, Deserialize)]
pub struct DeviceRemove {
    pub device_id: String,
}

/// One device on the wire (keys are never sent back).
#[derive(Debug, Serialize, Deserialize)]
pub struct DeviceView {
    pub device_id: String,
    pub platform: String,
    /// The endpoint (`webpush`) or the pushkey (`gateway`).
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// True when this socket's session registered it (its logout removes it).
    pub this_session: bool,
    pub created_at: String,
}

/// Reply data of `device.register`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeviceRegistered {
    pub device: DeviceView,
    /// False when an existing device with the same address was updated.
    pub created: bool,
}

/// Reply data of `device.list`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeviceList {
    pub devices: Vec<DeviceView>,
}

/// Reply data of `push.config`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PushConfigReply {
    /// The VAPID public key (base64url): the `applicationServerKey` for
    /// `PushManager.subscribe`.
    pub vapid_public_key: String,
    /// Whether `gateway` devices can be registered (a gateway is configured).
    pub gateway: bool,
    /// Devices a user may register.
    pub max_devices: usize,
}
