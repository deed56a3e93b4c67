//! Push device rows: registration with the per-user limit, removal, the user's list.

use rusqlite::{Connection, OptionalExtension, params};

use crate::device::{PushDevice, Registered};
use crate::error::StoreError;

pub(crate) fn register(
    conn: &Connection,
    device: &PushDevice,
    limit: usize,
) -> Result<Registered, StoreError> {
    let holder: Option<String> = conn
        .prepare_cached("SELECT user_id FROM push_devices WHERE address = ?1")?
        .query_row([&device.address], |r| r.get(0))
        .optional()?;
    let mine = holder.as_deref() == Some(device.user_id.as_str());
    if !mine {
        let count: i64 = conn
            .prepare_cached("SELECT count(*) FROM push_devices WHERE user_id = ?1")?
            .query_row([&device.user_id], |r| r.get(0))?;
        if count as usize >= limit {
            return Ok(Registered::LimitReached);
        }
    }
    conn.prepare_cached(
        "INSERT INTO push_devices (address, user_id, platform, registration, registered_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (address) DO UPDATE SET user_id = excluded.user_id, \
         platform = excluded.platform, registration = excluded.registration, \
         registered_at = excluded.registered_at",
    )?
    .execute(params![
        device.address,
        device.user_id,
        device.platform,
        device.registration,
        device.registered_at_ms as i64
    ])?;
    Ok(if mine {
        Registered::Refreshed
    } else {
        Registered::Added
    })
}

pub(crate) fn unregister(conn: &Connection, user: &str, address: &str) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("DELETE FROM push_devices WHERE user_id = ?1 AND address = ?2")?
        .execute([user, address])?;
    Ok(n > 0)
}

pub(crate) fn forget(conn: &Connection, address: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM push_devices WHERE address = ?1")?
        .execute([address])?;
    Ok(())
}

pub(crate) fn devices_of(conn: &Connection, user: &str) -> Result<Vec<PushDevice>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT platform, address, registration, registered_at FROM push_devices \
             WHERE user_id = ?1 ORDER BY registered_at, address",
        )?
        .query_map([user], |r| {
            Ok(PushDevice {
                user_id: user.to_owned(),
                platform: r.get(0)?,
                address: r.get(1)?,
                registration: r.get(2)?,
                registered_at_ms: r.get::<_, i64>(3)? as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
