//! `device.list`: my push devices, oldest first.

use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::Result;
use crate::model::{SessionId, rfc3339};
use crate::protocol::{DeviceList, DeviceView};
use crate::store::push::{Device, DeviceTarget};

/// The wire view of a device, seen from a socket of `session`.
pub fn view(d: &Device, session: &SessionId) -> DeviceView {
    DeviceView {
        device_id: d.id.to_string(),
        platform: d.target.platform().to_owned(),
        address: d.target.address().to_owned(),
        app_id: match &d.target {
            DeviceTarget::Gateway { app_id, .. } => Some(app_id.clone()),
            DeviceTarget::WebPush { .. } => None,
        },
        this_session: &d.session == session,
        created_at: rfc3339(d.created_ms),
    }
}

pub async fn handle(app: &App, conn: &mut ConnState) -> Result<Reply> {
    let me = conn.user()?;
    let devices = app.store.devices(me.user.id).await?;
    reply(&DeviceList { devices: devices.iter().map(|d| view(d, &me.session)).collect() })
}
