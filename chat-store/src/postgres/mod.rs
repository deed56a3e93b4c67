//! [`PostgresStore`]: the chat store on PostgreSQL. Connects through a pool, applies the
//! migrations and the partition maintenance at connect, then keeps the partitions ahead with a
//! background task. Each operation is one transaction.
//!
//! [`tls`]: libpq's `sslmode` and certificate keys, honoured on rustls.
//!
//! With the `kafka` feature, [`apply`] writes the Kafka records into the same schema (the
//! sink's database half), so every statement on the schema stays in this module.

#[cfg(feature = "kafka")]
pub mod apply;
mod device;
pub(crate) mod error;
#[cfg(feature = "kafka")]
pub mod message_copy;
pub(crate) mod mutation;
pub(crate) mod partition;
mod preview;
pub(crate) mod progress;
mod query;
pub(crate) mod row;
mod schema;
pub mod tls;

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use crate::{
    Appended, ChatStore, Conversation, Cursor, NewConversation, PushDevice, ReadMark,
    ReceiptStatus, Registered, Sequenced, StatusChange, StoreError, StoredMessage, Unready, UserId,
};

pub use error::is_transient;
pub use partition::{PartitionReport, Step as PartitionStep};
pub use progress::Position;
pub use tls::{PostgresTls, SslMode, TlsOptions};

use self::error::{is_missing_partition, pool_error, store_error};

/// Connection pool size: the chat layer's writes come from one sequencer, reads from many
/// sessions; 16 connections keep a 2-core server busy without crowding PostgreSQL's
/// `max_connections` when several brokers share it.
const DEFAULT_POOL_SIZE: usize = 16;
/// How long an operation waits for a pooled connection before `Unavailable`: PostgreSQL down
/// or saturated should surface to the caller, not hang it.
const POOL_WAIT: Duration = Duration::from_secs(5);
/// Months of partitions kept ahead of now: a missed maintenance run (broker down for weeks)
/// still finds this month's and next month's partitions in place.
const DEFAULT_PARTITIONS_AHEAD: u32 = 2;
/// The design's retention: five years of messages stay attached.
const DEFAULT_RETENTION_MONTHS: u32 = 60;
/// How often partitions are checked: far more often than they are needed (monthly), so a new
/// month is always prepared days ahead.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(3_600);
/// How soon a run that could not finish (a step deferred behind a long transaction, or an
/// error) is tried again: each try holds readers of `messages` up for at most the steps' lock
/// timeout (1 s), so once a minute costs little, and a transaction open for minutes does not
/// push a month's partition an hour further.
const MAINTENANCE_RETRY: Duration = Duration::from_secs(60);

/// Where and how to connect; [`PostgresConfig::from_str`] takes a `postgres://` URL or a
/// `key=value` connection string, with libpq's TLS keys (`sslmode` up to `verify-full`,
/// `sslrootcert`, `sslcert`, `sslkey`: [`tls`]).
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// Everything but TLS (its `ssl_mode` is set from `tls`: tokio-postgres only knows
    /// whether to ask for TLS, not what to check).
    pub connection: tokio_postgres::Config,
    pub tls: PostgresTls,
    pub pool_size: usize,
    /// Partitions created ahead of the current month.
    pub partitions_ahead: u32,
    /// Partitions wholly older than this many months before the current month are detached.
    pub retention_months: u32,
    /// Run partition maintenance periodically in the background (off for tests that drive it
    /// with a chosen clock).
    pub background_maintenance: bool,
}

impl FromStr for PostgresConfig {
    type Err = StoreError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let bad =
            |e: &dyn std::fmt::Display| StoreError::Invalid(format!("bad PostgreSQL URL: {e}"));
        let (rest, tls) = tls::split(url).map_err(|e| bad(&e))?;
        let mut connection = tokio_postgres::Config::from_str(&rest).map_err(|e| bad(&e))?;
        connection.ssl_mode(tls.mode.into());
        Ok(PostgresConfig {
            connection,
            tls: PostgresTls::try_from(tls).map_err(|e| bad(&e))?,
            pool_size: DEFAULT_POOL_SIZE,
            partitions_ahead: DEFAULT_PARTITIONS_AHEAD,
            retention_months: DEFAULT_RETENTION_MONTHS,
            background_maintenance: true,
        })
    }
}

/// Runs `$body` (an async call using the transaction `$tx`) in one transaction and commits it,
/// or rolls it back when `$body` fails. The second form says how to begin it (isolation,
/// read-only) from the pooled client `$client`.
macro_rules! in_transaction {
    ($store:expr, $tx:ident => $body:expr) => {
        in_transaction!($store, |client| client.build_transaction(), $tx => $body)
    };
    ($store:expr, |$client:ident| $begin:expr, $tx:ident => $body:expr) => {{
        let mut pooled = $store.pool.get().await.map_err(pool_error)?;
        let $client: &mut tokio_postgres::Client = &mut pooled;
        let $tx = $begin.start().await.map_err(store_error)?;
        // Roll back explicitly on error: the connection goes back to the pool clean, and no
        // lock outlives the call waiting for a background ROLLBACK.
        match $body.await {
            Ok(value) => {
                $tx.commit().await.map_err(store_error)?;
                Ok(value)
            }
            Err(e) => {
                let _ = $tx.rollback().await;
                Err(e)
            }
        }
    }};
}

/// `in_transaction!` for a multi-statement read: one read-only REPEATABLE READ snapshot.
macro_rules! in_snapshot {
    ($store:expr, $tx:ident => $body:expr) => {
        in_transaction!(
            $store,
            |client| client
                .build_transaction()
                .read_only(true)
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead),
            $tx => $body
        )
    };
}

/// One statement on a pooled connection.
macro_rules! on_connection {
    ($store:expr, $client:ident => $body:expr) => {{
        let pooled = $store.pool.get().await.map_err(pool_error)?;
        let $client: &tokio_postgres::Client = &pooled;
        $body.await
    }};
}

#[derive(Debug)]
pub struct PostgresStore {
    pool: Pool,
    config: PostgresConfig,
    maintenance: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(task) = self.maintenance.take() {
            task.abort();
        }
    }
}

impl PostgresStore {
    /// Connects, migrates, prepares the partitions; `Unavailable` when PostgreSQL cannot be
    /// reached (the caller decides whether to retry).
    pub async fn connect(config: PostgresConfig) -> Result<Self, StoreError> {
        let manager = Manager::from_config(
            config.connection.clone(),
            config.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Internal(format!("connection pool: {e}")))?;
        {
            let mut client = pool.get().await.map_err(pool_error)?;
            schema::migrate(&mut client).await?;
        }
        let mut store = PostgresStore {
            pool,
            config,
            maintenance: None,
        };
        // A step deferred at connect (a long transaction on `messages`) does not stop the
        // store: the month's partition is made on demand, the background task retries soon.
        let report = store.maintain_partitions(SystemTime::now()).await?;
        let first = next_maintenance(&Ok(report));
        if store.config.background_maintenance {
            store.maintenance = Some(tokio::spawn(maintain_forever(
                store.pool.clone(),
                store.config.clone(),
                first,
            )));
        }
        Ok(store)
    }

    /// Creates the partitions of `now`'s month and the configured months ahead, detaches those
    /// past the retention. Runs at connect and hourly; public so tests and operators can drive
    /// it with a chosen clock.
    pub async fn maintain_partitions(
        &self,
        now: SystemTime,
    ) -> Result<PartitionReport, StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        partition::maintain(
            &mut client,
            now,
            self.config.partitions_ahead,
            self.config.retention_months,
        )
        .await
    }

    /// A pooled connection, for the sink and for tests that look at rows.
    pub async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }
}

async fn maintain_forever(pool: Pool, config: PostgresConfig, first: Duration) {
    let mut wait = first;
    loop {
        tokio::time::sleep(wait).await;
        let result = match pool.get().await {
            Ok(mut client) => {
                partition::maintain(
                    &mut client,
                    SystemTime::now(),
                    config.partitions_ahead,
                    config.retention_months,
                )
                .await
            }
            Err(e) => Err(pool_error(e)),
        };
        wait = next_maintenance(&result);
    }
}

/// Logs what a maintenance run did and says when the next one runs: in an hour, or in
/// [`MAINTENANCE_RETRY`] when it left something undone (a warning names what and why).
fn next_maintenance(result: &Result<PartitionReport, StoreError>) -> Duration {
    match result {
        Ok(report) => {
            if !report.created.is_empty() || !report.detached.is_empty() {
                tracing::info!(created = ?report.created, detached = ?report.detached, "message partitions maintained");
            }
            if report.deferred.is_empty() {
                return MAINTENANCE_INTERVAL;
            }
            tracing::warn!(
                deferred = ?report.deferred,
                retry_in_s = MAINTENANCE_RETRY.as_secs(),
                "message partition maintenance deferred: a transaction held messages past the lock timeout"
            );
        }
        Err(e) => tracing::warn!(
            error = %e,
            retry_in_s = MAINTENANCE_RETRY.as_secs(),
            "message partition maintenance failed"
        ),
    }
    MAINTENANCE_RETRY
}

#[async_trait::async_trait]
impl ChatStore for PostgresStore {
    /// A pooled connection answers, and the server is a primary (a standby in recovery is
    /// read-only).
    async fn probe(&self) -> Vec<Unready> {
        let in_recovery: Result<bool, StoreError> = async {
            on_connection!(self, client => async {
                let row = client
                    .query_one("SELECT pg_is_in_recovery()", &[])
                    .await
                    .map_err(store_error)?;
                Ok(row.get::<_, bool>(0))
            })
        }
        .await;
        let reason = match in_recovery {
            Ok(false) => return Vec::new(),
            Ok(true) => "the server is in recovery (a read-only standby)".to_owned(),
            Err(e) => e.to_string(),
        };
        vec![Unready {
            part: "postgres",
            reason,
        }]
    }

    async fn create_conversation(&self, new: NewConversation) -> Result<Conversation, StoreError> {
        in_transaction!(self, tx => mutation::create_conversation(&tx, new))
    }

    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        in_snapshot!(self, tx => query::conversation(&tx, id))
    }

    async fn conversations_of(&self, user: &str) -> Result<Vec<Conversation>, StoreError> {
        in_snapshot!(self, tx => query::conversations_of(&tx, user))
    }

    async fn update_members(
        &self,
        id: &str,
        add: &[UserId],
        remove: &[UserId],
        at_ms: u64,
    ) -> Result<Conversation, StoreError> {
        in_transaction!(self, tx => mutation::update_members(&tx, id, add, remove, at_ms))
    }

    async fn append(&self, message: StoredMessage) -> Result<Appended, StoreError> {
        let first: Result<Appended, StoreError> =
            async { in_transaction!(self, tx => mutation::append(&tx, &message)) }.await;
        match first {
            Err(e) if is_missing_partition(&e) => {
                let mut pooled = self.client().await?;
                partition::ensure_month(&mut pooled, row::time(message.timestamp_ms)).await?;
                drop(pooled);
                in_transaction!(self, tx => mutation::append(&tx, &message))
            }
            other => other,
        }
    }

    async fn messages_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        on_connection!(self, client => query::messages_after(client, user, after, limit))
    }

    fn places_concurrent_appends(&self) -> bool {
        true
    }

    async fn messages_since(
        &self,
        user: &str,
        cursor: &Cursor,
        limit: usize,
    ) -> Result<(Vec<Sequenced>, bool), StoreError> {
        on_connection!(self, client => query::messages_since(client, user, cursor, limit))
    }

    async fn history(
        &self,
        conversation: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        in_snapshot!(self, tx => query::history(&tx, conversation, before, limit))
    }

    async fn mark_delivered(
        &self,
        user: &str,
        message_ids: &[u64],
        at_ms: u64,
    ) -> Result<Vec<StatusChange>, StoreError> {
        in_transaction!(self, tx => mutation::mark_delivered(&tx, user, message_ids, at_ms))
    }

    async fn mark_read(
        &self,
        user: &str,
        conversation: &str,
        up_to: u64,
        at_ms: u64,
    ) -> Result<Option<ReadMark>, StoreError> {
        in_transaction!(self, tx => mutation::mark_read(&tx, user, conversation, up_to, at_ms))
    }

    async fn register_device(
        &self,
        device: PushDevice,
        limit: usize,
    ) -> Result<Registered, StoreError> {
        in_transaction!(self, tx => device::register(&tx, &device, limit))
    }

    async fn unregister_device(&self, user: &str, address: &str) -> Result<bool, StoreError> {
        on_connection!(self, client => device::unregister(client, user, address))
    }

    async fn devices_of(&self, user: &str) -> Result<Vec<PushDevice>, StoreError> {
        on_connection!(self, client => device::devices_of(client, user))
    }

    async fn forget_device(&self, address: &str) -> Result<(), StoreError> {
        on_connection!(self, client => device::forget(client, address))
    }

    async fn contacts_of(&self, user: &str) -> Result<Vec<UserId>, StoreError> {
        on_connection!(self, client => query::contacts_of(client, user))
    }

    async fn receipts(
        &self,
        message_id: u64,
    ) -> Result<Vec<(UserId, ReceiptStatus, u64)>, StoreError> {
        on_connection!(self, client => query::receipts(client, message_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run that left a step undone, or failed, is retried within minutes, not next hour.
    #[test]
    fn an_unfinished_maintenance_runs_again_soon() {
        let done = PartitionReport {
            created: vec!["messages_p204003".into()],
            ..PartitionReport::default()
        };
        assert_eq!(next_maintenance(&Ok(done.clone())), MAINTENANCE_INTERVAL);
        let deferred = PartitionReport {
            deferred: vec![partition::Step::Detach {
                name: "messages_p203412".into(),
            }],
            ..done
        };
        assert_eq!(next_maintenance(&Ok(deferred)), MAINTENANCE_RETRY);
        let failed = Err(StoreError::Unavailable("down".into()));
        assert_eq!(next_maintenance(&failed), MAINTENANCE_RETRY);
    }
}
