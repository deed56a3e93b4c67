//! Read connections: a small pool used from `spawn_blocking`, so reads never wait on the writer
//! (WAL readers see the last commit) and never block the async runtime.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::error::StoreError;

/// Read connections, and so reads running at once. Reads are short and the machines have few
/// cores; letting a burst (a reconnect storm's logins) open a connection and a blocking thread
/// per read instead costs a page cache and a thread stack each, for no extra throughput.
const READERS: usize = 4;

type Open = dyn Fn() -> Result<Connection, StoreError> + Send + Sync;

pub(crate) struct ReadPool {
    idle: Mutex<Vec<Connection>>,
    permits: tokio::sync::Semaphore,
    open: Box<Open>,
}

impl std::fmt::Debug for ReadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadPool").finish_non_exhaustive()
    }
}

impl ReadPool {
    pub(crate) fn new(open: Box<Open>) -> Arc<Self> {
        Arc::new(Self {
            idle: Mutex::new(Vec::with_capacity(READERS)),
            permits: tokio::sync::Semaphore::new(READERS),
            open,
        })
    }

    /// Runs `query` on a pooled connection inside one read transaction (one snapshot).
    pub(crate) async fn read<T, F>(self: &Arc<Self>, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Internal("read pool closed".into()))?;
        let pool = Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || {
            let mut conn = pool.take()?;
            let result = conn
                .transaction()
                .map_err(StoreError::from)
                .and_then(|tx| query(&tx));
            pool.give_back(conn);
            result
        })
        .await
        .map_err(|e| {
            if e.is_cancelled() {
                // The runtime is shutting down: the read never ran.
                StoreError::Closed
            } else {
                StoreError::Internal(format!("read task failed: {e}"))
            }
        })?;
        drop(permit);
        result
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => (self.open)(),
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < READERS
        {
            idle.push(conn);
        }
    }
}
