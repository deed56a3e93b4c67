//! The push device checks of the store conformance suite.

use crate::{ChatStore, PushDevice, Registered, StoreError};

fn device(user: &str, address: &str, at_ms: u64) -> PushDevice {
    PushDevice {
        user_id: user.into(),
        platform: "fcm".into(),
        address: address.into(),
        registration: format!(r#"{{"platform":"fcm","token":"{address}"}}"#),
        registered_at_ms: at_ms,
    }
}

fn addresses(devices: &[PushDevice]) -> Vec<&str> {
    devices.iter().map(|d| d.address.as_str()).collect()
}

pub async fn devices_are_kept_per_user_oldest_first_and_refreshed_by_address(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    assert_eq!(
        store.register_device(device("ann", "t2", 2_000), 5).await?,
        Registered::Added
    );
    assert_eq!(
        store.register_device(device("ann", "t1", 1_000), 5).await?,
        Registered::Added
    );
    store.register_device(device("bob", "t3", 1_500), 5).await?;
    let ann = store.devices_of("ann").await?;
    assert_eq!(addresses(&ann), ["t1", "t2"]);
    assert_eq!(ann[0].platform, "fcm");
    assert_eq!(ann[0].registration, r#"{"platform":"fcm","token":"t1"}"#);
    assert_eq!(ann[0].user_id, "ann");
    let mut again = device("ann", "t2", 3_000);
    again.registration = r#"{"platform":"fcm","token":"t2","v":2}"#.into();
    assert_eq!(
        store.register_device(again, 5).await?,
        Registered::Refreshed
    );
    let ann = store.devices_of("ann").await?;
    assert_eq!(addresses(&ann), ["t1", "t2"]);
    assert!(ann[1].registration.contains("\"v\":2"));
    assert_eq!(addresses(&store.devices_of("bob").await?), ["t3"]);
    assert!(store.devices_of("nobody").await?.is_empty());
    Ok(())
}

pub async fn a_device_registered_by_another_user_moves_to_them(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    store
        .register_device(device("ann", "phone", 1_000), 5)
        .await?;
    assert_eq!(
        store
            .register_device(device("bob", "phone", 2_000), 5)
            .await?,
        Registered::Added
    );
    assert!(store.devices_of("ann").await?.is_empty());
    assert_eq!(addresses(&store.devices_of("bob").await?), ["phone"]);
    Ok(())
}

pub async fn the_device_limit_refuses_new_devices_but_not_refreshes(
    store: &dyn ChatStore,
) -> Result<(), StoreError> {
    store.register_device(device("ann", "a", 1_000), 2).await?;
    store.register_device(device("ann", "b", 1_001), 2).await?;
    assert_eq!(
        store.register_device(device("ann", "c", 1_002), 2).await?,
        Registered::LimitReached
    );
    assert_eq!(
        store.register_device(device("ann", "a", 1_003), 2).await?,
        Registered::Refreshed
    );
    assert_eq!(addresses(&store.devices_of("ann").await?), ["b", "a"]);
    Ok(())
}

pub async fn unregister_and_forget_remove_devices(store: &dyn ChatStore) -> Result<(), StoreError> {
    store.register_device(device("ann", "a", 1_000), 5).await?;
    store.register_device(device("ann", "b", 1_001), 5).await?;
    store.register_device(device("bob", "c", 1_002), 5).await?;
    // Only the holder may unregister a device.
    assert!(!store.unregister_device("bob", "a").await?);
    assert!(store.unregister_device("ann", "a").await?);
    assert!(!store.unregister_device("ann", "a").await?);
    store.forget_device("c").await?;
    store.forget_device("never-registered").await?;
    assert_eq!(addresses(&store.devices_of("ann").await?), ["b"]);
    assert!(store.devices_of("bob").await?.is_empty());
    Ok(())
}
