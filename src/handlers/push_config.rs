//! `push.config`: what a client needs to register for push (the VAPID
//! public key, whether a gateway is configured, the device limit).

use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::Result;
use crate::protocol::PushConfigReply;

pub async fn handle(app: &App, conn: &mut ConnState) -> Result<Reply> {
    conn.user()?;
    reply(&PushConfigReply {
        vapid_public_key: app.push.vapid_public_key().to_owned(),
        gateway: app.config.push.push_gateway_url.is_some(),
        max_devices: app.config.push.push_max_devices,
    })
}
