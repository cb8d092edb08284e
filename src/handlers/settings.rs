//! `settings.get` and `settings.update`: my chat settings (read receipts).

use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::Result;
use crate::protocol::{SettingsReply, SettingsUpdate};

/// `settings.get`.
pub async fn get(app: &App, conn: &mut ConnState) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let read_receipts = app.store.read_receipts(&[me]).await?.first().copied().unwrap_or(true);
    reply(&SettingsReply { read_receipts })
}

/// `settings.update`: fields left out keep their value.
pub async fn update(app: &App, conn: &mut ConnState, r: SettingsUpdate) -> Result<Reply> {
    let me = conn.user()?.user.id;
    if let Some(on) = r.read_receipts {
        app.store.set_read_receipts(me, on).await?;
    }
    get(app, conn).await
}
