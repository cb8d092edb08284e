//! `device.remove`: remove one of my push devices (any session's).

use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::{Error, Result};
use crate::protocol::DeviceRemove;
use crate::store::push::DeviceId;

pub async fn handle(app: &App, conn: &mut ConnState, r: DeviceRemove) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let not_found = || Error::NotFound("no such device".into());
    let id = r.device_id.parse::<i64>().map_err(|_| not_found())?;
    if !app.store.remove_device(me, DeviceId(id)).await? {
        return Err(not_found());
    }
    reply(&serde_json::json!({}))
}
