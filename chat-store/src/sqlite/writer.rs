//! The group commit: one thread owns the only writing connection and commits whatever is queued
//! as one transaction, so N concurrent appends cost one fsync, not N.
//!
//! Each queued [`Job`] runs inside its own SAVEPOINT: a job that fails is rolled back alone and
//! the rest of the batch still commits. Nobody is answered before the COMMIT returns, so an `Ok`
//! means durable. Jobs run in the order they were queued (the channel is FIFO and there is one
//! consumer), so appends sent in id order are committed in id order.

use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::sqlite::checkpoint::WalShared;

/// Most jobs in one transaction: bounds how long the first job of a batch waits for the last
/// and how much a failed COMMIT fails at once; 512 appends are well under a millisecond of work
/// next to the fsync they share.
const MAX_BATCH: usize = 512;

/// Jobs queued before `write` waits (the backpressure point): a few full batches, so the writer
/// always has the next batch ready while it fsyncs the current one.
const QUEUE_CAPACITY: usize = 4 * MAX_BATCH;

/// What a job hands back after running: whether it succeeded (to release or roll back its
/// savepoint), and how to answer its caller once the batch's fate is known.
type Done = (bool, Box<dyn FnOnce(Result<(), StoreError>) + Send>);
/// Given the connection (or why the batch cannot run it), runs and reports.
type Job = Box<dyn FnOnce(Result<&Connection, StoreError>) -> Done + Send>;

/// The queue into the writer thread, and the thread (joined on drop, so a store that was
/// dropped has closed its file before the same path is opened again).
pub(crate) struct Writer {
    job_tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer on `conn`; with `wal` (a file database), its commits report the WAL's
    /// size to the checkpointer, and each batch runs under the checkpointer's gate.
    pub(crate) fn spawn(conn: Connection, wal: Option<Arc<WalShared>>) -> Result<Self, StoreError> {
        let (job_tx, job_rx) = mpsc::channel(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("chat-store-writer".into())
            .spawn(move || run(conn, wal, job_rx))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            job_tx: Some(job_tx),
            thread: Some(thread),
        })
    }

    /// Runs `op` in the next batch and returns its result once the batch is committed. Waits
    /// while the queue is full. If the caller stops waiting, the op still runs and commits.
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: Result<&Connection, StoreError>| {
            let result = conn.and_then(op);
            let ok = result.is_ok();
            let answer = Box::new(move |commit: Result<(), StoreError>| {
                // A caller that gave up waiting is not an error of the batch.
                let _ = reply_tx.send(commit.and(result));
            });
            (ok, answer)
        });
        let job_tx = self.job_tx.as_ref().ok_or_else(writer_gone)?;
        job_tx.send(job).await.map_err(|_| writer_gone())?;
        reply_rx.await.map_err(|_| writer_gone())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue lets the thread finish what is queued and exit.
        self.job_tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable("the store's writer has stopped".into())
}

fn run(conn: Connection, wal: Option<Arc<WalShared>>, mut job_rx: mpsc::Receiver<Job>) {
    // Without the hook SQLite's own automatic checkpoint stays (the backstop's threshold), so
    // a failure here costs latency, not the WAL's bound.
    if let Some(wal) = &wal {
        let _ = wal.attach(&conn);
    }
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = job_rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match job_rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let _held = wal.as_ref().map(|wal| wal.hold());
        commit_batch(&conn, &mut batch);
    }
}

fn commit_batch(conn: &Connection, batch: &mut Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let e = StoreError::from(e);
        for job in batch.drain(..) {
            let (_, answer) = job(Err(e.clone()));
            answer(Ok(()));
        }
        return;
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut broken: Option<StoreError> = None;
    for job in batch.drain(..) {
        if let Some(e) = &broken {
            answers.push(job(Err(e.clone())).1);
            continue;
        }
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            broken = Some(e.into());
            answers.push(job(Err(broken.clone().unwrap_or_else(writer_gone))).1);
            continue;
        }
        let (ok, answer) = job(Ok(conn));
        let end = if ok {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = conn.execute_batch(end) {
            broken = Some(e.into());
        }
        answers.push(answer);
    }
    let outcome = match broken {
        Some(e) => Err(e),
        None => conn.execute_batch("COMMIT").map_err(StoreError::from),
    };
    if outcome.is_err() {
        // A failed COMMIT or savepoint: nothing of the batch is kept, and every job says so.
        let _ = conn.execute_batch("ROLLBACK");
    }
    for answer in answers {
        answer(outcome.clone());
    }
}
