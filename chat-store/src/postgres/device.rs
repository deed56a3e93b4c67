//! Push device rows: registration with the per-user limit, removal, the user's list.

use tokio_postgres::{GenericClient, Transaction};

use crate::StoreError;
use crate::device::{PushDevice, Registered};
use crate::postgres::error::store_error;

pub(crate) async fn register(
    tx: &Transaction<'_>,
    device: &PushDevice,
    limit: usize,
) -> Result<Registered, StoreError> {
    // One registration per user at a time: the count and the insert must agree.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
        &[&device.user_id],
    )
    .await
    .map_err(store_error)?;
    let holder: Option<String> = tx
        .query_opt(
            "SELECT user_id FROM push_devices WHERE address = $1",
            &[&device.address],
        )
        .await
        .map_err(store_error)?
        .map(|r| r.get(0));
    let mine = holder.as_deref() == Some(device.user_id.as_str());
    if !mine {
        let count: i64 = tx
            .query_one(
                "SELECT count(*) FROM push_devices WHERE user_id = $1",
                &[&device.user_id],
            )
            .await
            .map_err(store_error)?
            .get(0);
        if count as usize >= limit {
            return Ok(Registered::LimitReached);
        }
    }
    tx.execute(
        "INSERT INTO push_devices (address, user_id, platform, registration, registered_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (address) DO UPDATE SET user_id = excluded.user_id, \
         platform = excluded.platform, registration = excluded.registration, \
         registered_at = excluded.registered_at",
        &[
            &device.address,
            &device.user_id,
            &device.platform,
            &device.registration,
            &(device.registered_at_ms as i64),
        ],
    )
    .await
    .map_err(store_error)?;
    Ok(if mine {
        Registered::Refreshed
    } else {
        Registered::Added
    })
}

pub(crate) async fn unregister(
    client: &impl GenericClient,
    user: &str,
    address: &str,
) -> Result<bool, StoreError> {
    let n = client
        .execute(
            "DELETE FROM push_devices WHERE user_id = $1 AND address = $2",
            &[&user, &address],
        )
        .await
        .map_err(store_error)?;
    Ok(n > 0)
}

pub(crate) async fn forget(client: &impl GenericClient, address: &str) -> Result<(), StoreError> {
    client
        .execute("DELETE FROM push_devices WHERE address = $1", &[&address])
        .await
        .map_err(store_error)?;
    Ok(())
}

pub(crate) async fn devices_of(
    client: &impl GenericClient,
    user: &str,
) -> Result<Vec<PushDevice>, StoreError> {
    let rows = client
        .query(
            "SELECT platform, address, registration, registered_at FROM push_devices \
             WHERE user_id = $1 ORDER BY registered_at, address",
            &[&user],
        )
        .await
        .map_err(store_error)?;
    Ok(rows
        .into_iter()
        .map(|r| PushDevice {
            user_id: user.to_owned(),
            platform: r.get(0),
            address: r.get(1),
            registration: r.get(2),
            registered_at_ms: r.get::<_, i64>(3) as u64,
        })
        .collect())
}
