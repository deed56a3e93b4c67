//! `push.register` / `push.unregister`: a user's devices for push notifications. The body is
//! the device as the push crate types it (`{"platform":"fcm","token":…}`, `apns`, or
//! `webpush` with the browser's PushSubscription); the RECEIPT follows the store's write.

use std::sync::Arc;

use chat_store::{PushDevice, Registered};
use serde_json::json;
use stompbox_push::Device;

use crate::chat::error::AppError;
use crate::chat::sequencer::Outcome;
use crate::chat::state::ChatCore;
use crate::clock::now_ms;

pub(super) async fn register(
    core: Arc<ChatCore>,
    user: String,
    device: Device,
) -> Result<Outcome, AppError> {
    core.devices
        .providers
        .accepts(&device)
        .map_err(|e| AppError::InvalidDevice(e.to_string()))?;
    let stored = PushDevice {
        user_id: user,
        platform: device.platform().name().to_owned(),
        address: device.address().to_owned(),
        registration: serde_json::to_string(&device)?,
        registered_at_ms: now_ms(),
    };
    let limit = core.devices.limit;
    match core.store.register_device(stored, limit).await? {
        Registered::LimitReached => Err(AppError::TooManyDevices(limit)),
        Registered::Added | Registered::Refreshed => Ok(Outcome {
            reply: Some(json!({"registered": true, "platform": device.platform().name()})),
            ..Outcome::default()
        }),
    }
}

pub(super) async fn unregister(
    core: Arc<ChatCore>,
    user: String,
    device: Device,
) -> Result<Outcome, AppError> {
    device
        .check()
        .map_err(|e| AppError::InvalidDevice(e.to_string()))?;
    let removed = core
        .store
        .unregister_device(&user, device.address())
        .await?;
    Ok(Outcome {
        reply: Some(json!({"unregistered": removed})),
        ..Outcome::default()
    })
}
