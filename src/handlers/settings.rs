//! `settings.get` and `settings.update`: my chat settings (read receipts)
//! and what my push notifications carry (`push_preview`).

use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::{Result, bad_request};
use crate::protocol::{SettingsReply, SettingsUpdate};
use crate::store::push::Preview;

/// `settings.get`.
pub async fn get(app: &App, conn: &mut ConnState) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let read_receipts = app.store.read_receipts(&[me]).await?.first().copied().unwrap_or(true);
    let push_preview = app.store.push_preview(me).await?.as_str().to_owned();
    reply(&SettingsReply { read_receipts, push_preview })
}

/// `settings.update`: fields left out keep their value.
pub async fn update(app: &App, conn: &mut ConnState, r: SettingsUpdate) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let preview = match r.push_preview.as_deref() {
        Some(p) => Some(Preview::parse(p).ok_or_else(|| bad_request("`push_preview`: full, sender or none"))?),
        None => None,
    };
    if let Some(on) = r.read_receipts {
        app.store.set_read_receipts(me, on).await?;
    }
    if let Some(p) = preview {
        app.store.set_push_preview(me, p).await?;
    }
    get(app, conn).await
}
