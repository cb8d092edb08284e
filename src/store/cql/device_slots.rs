//! Exact per-user device limits on CQL (`push_device_slots`,
//! `cql/012_push_load.cql`): a new device first takes a free slot
//! `0..max` with `INSERT ... IF NOT EXISTS`, so of two racing
//! registrations for the last slot exactly one wins. Devices stored before
//! slots existed hold none; they shrink the usable range instead. A slot
//! whose device row never appeared (a crash between the claim and the
//! write) is taken back once the device id is a minute old.

use std::collections::HashSet;

use super::ScyllaStore;
use super::exec::Lwt;
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{UserId, now_ms};
use crate::store::push::{Device, DeviceId};

/// How old a slot's device id must be before a slot without a device row
/// counts as abandoned.
const ABANDONED_MS: i64 = 60_000;

impl ScyllaStore {
    /// Takes a free slot for `device` given the user's `existing` devices;
    /// false when all `max` are held.
    pub(super) async fn claim_device_slot(
        &self,
        device: &Device,
        existing: &[Device],
        max: usize,
    ) -> Result<bool, StoreError> {
        let user = device.user;
        let slots: Vec<(i32, i64)> = self.db.rows(Q::PushSlots, (user.0,)).await?;
        let slotted: HashSet<i64> = slots.iter().map(|(_, d)| *d).collect();
        let present: HashSet<i64> = existing.iter().map(|d| d.id.0).collect();
        let legacy = existing.iter().filter(|d| !slotted.contains(&d.id.0)).count();
        let mut held: HashSet<i32> = HashSet::new();
        for (slot, dev) in &slots {
            let abandoned = !present.contains(dev) && now_ms() - crate::snowflake::unix_ms(*dev) > ABANDONED_MS;
            if abandoned && self.release_slot(user, *slot, DeviceId(*dev)).await? {
                continue;
            }
            held.insert(*slot);
        }
        let usable = max.saturating_sub(legacy) as i32;
        for slot in (0..usable).filter(|s| !held.contains(s)) {
            match self.db.lwt(Q::PushSlotClaim, (user.0, slot, device.id.0)).await? {
                Lwt::Applied => return Ok(true),
                Lwt::NotApplied => continue,
                Lwt::Unknown => {
                    let owner: Option<(i64,)> = self.db.one_serial(Q::PushSlotGet, (user.0, slot)).await?;
                    if owner == Some((device.id.0,)) {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Frees the slot `device` holds, if any (after its row was deleted).
    pub(super) async fn free_device_slot(&self, user: UserId, device: DeviceId) -> Result<(), StoreError> {
        let slots: Vec<(i32, i64)> = self.db.rows(Q::PushSlots, (user.0,)).await?;
        for (slot, _) in slots.into_iter().filter(|(_, d)| *d == device.0) {
            self.release_slot(user, slot, device).await?;
        }
        Ok(())
    }

    /// Frees every slot of `user` (account deletion, all devices removed).
    pub(super) async fn free_all_device_slots(&self, user: UserId) -> Result<(), StoreError> {
        let slots: Vec<(i32, i64)> = self.db.rows(Q::PushSlots, (user.0,)).await?;
        for (slot, dev) in slots {
            self.release_slot(user, slot, DeviceId(dev)).await?;
        }
        Ok(())
    }

    /// Deletes `slot` if `device` still holds it; true when it did.
    async fn release_slot(&self, user: UserId, slot: i32, device: DeviceId) -> Result<bool, StoreError> {
        match self.db.lwt(Q::PushSlotRelease, (user.0, slot, device.0)).await? {
            Lwt::Applied => Ok(true),
            Lwt::NotApplied => Ok(false),
            Lwt::Unknown => Err(StoreError::Unavailable("device slot release timed out".into())),
        }
    }
}
