//! WAL checkpoints off the commit path, by WAL size: a thread with its own connection copies
//! the WAL back into the database file once the WAL holds [`WalPolicy::checkpoint_at`] frames
//! not yet copied, and makes sure the WAL restarts from its beginning by
//! [`WalPolicy::restart_at`], so the WAL stays bounded in bytes and the writer never
//! checkpoints inside a COMMIT.
//!
//! Why: SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, on the
//! writer's thread. With `synchronous=FULL` that commit also writes the pages to random places
//! in the database file and fsyncs it, and every append queued behind it waits (issue 17: p99
//! send→RECEIPT grew with the store). A PASSIVE checkpoint on a timer beside the writer (the
//! first fix) copied each hot index page four times a second, and seldom let the WAL restart
//! while appends never stop: a checkpoint copies the frames that were there when it began, the
//! writer adds more meanwhile, and SQLite restarts the WAL only when a transaction begins with
//! every frame copied. So the WAL grew to the writer's backstop, which checkpointed in a
//! COMMIT after all. Here:
//!
//! - the writer's commit hook ([`WalShared::attach`]) publishes the WAL's size and wakes this
//!   thread when it passes `checkpoint_at`;
//! - this thread copies with PASSIVE checkpoints (they never block the writer) until only a few
//!   frames are left; once the WAL has reached [`WalPolicy::restart_at`], it syncs the database
//!   file itself (SQLite syncs it only in a checkpoint that copies every frame, so otherwise
//!   the hold below would wait for the whole cycle's pages: `Copier::settle`), then holds the
//!   writer between two batches ([`WalShared::hold`]) for one last PASSIVE checkpoint of that
//!   remainder, so every frame is copied and the writer's next transaction restarts the WAL
//!   (SQLite does that itself, without waiting on anyone);
//! - when the writer has been idle for a tick, it checkpoints with TRUNCATE, emptying the file.

use std::fs::File;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

use crate::error::StoreError;

/// When and how the WAL is copied back. Fixed in production ([`WalPolicy::default`]); tests
/// shrink it to see a cycle in a few hundred appends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalPolicy {
    /// Frames (pages, 4 KiB each) in the WAL not yet copied that start a checkpoint.
    pub(crate) checkpoint_at: i64,
    /// Frames in the WAL at which a cycle ends with the writer held, so the WAL restarts
    /// (at least `checkpoint_at`): each hold costs the writer one fsync of the database file.
    pub(crate) restart_at: i64,
    /// Frames at which the writer checkpoints in its own COMMIT (PASSIVE, as SQLite's automatic
    /// checkpoint would): only should this thread fall far behind or stop.
    pub(crate) backstop: i64,
    /// A WAL that restarts is cut back to this many bytes (`journal_size_limit`).
    pub(crate) file_limit_bytes: i64,
    /// A tick of the checkpointer: the writer is idle when no commit came in a whole tick.
    pub(crate) idle_tick: Duration,
    /// Syncs of the database file before the writer is held, each but the last followed by a
    /// PASSIVE round (`Copier::settle`; 0: none, the held checkpoint syncs the whole cycle).
    pub(crate) settle_rounds: usize,
}

/// PASSIVE rounds of one cycle before the writer is held for the rest: each round copies what
/// the writer added during the one before, so the rest shrinks fast; a writer faster than the
/// copying is held after this many anyway, so the WAL stays bounded.
const MAX_PASSIVE_ROUNDS: usize = 4;

/// Frames left to copy small enough to copy with the writer held: a few hundred pages are
/// milliseconds of writing and one fsync of the database file.
const HOLD_UNDER_FRAMES: i64 = 256;

/// Times the checkpointer takes the writer for the end of a cycle: a take that finds more
/// than [`HOLD_UNDER_FRAMES`] left (the writer's batch it waited for was large: seen once, 1,970
/// frames after a 351 ms commit at load 11) lets the writer go on and settles again; the last
/// take copies whatever is left, so the WAL stays bounded.
const HOLD_ATTEMPTS: usize = 2;

impl Default for WalPolicy {
    /// 16,384 frames are 64 MiB of WAL, ≈ 2 s of appends at 2,000 msgs/s on a 10 M-message
    /// store (≈ 4 pages each): a hot index page is copied once per cycle, not once per tick
    /// (the 250 ms timer wrote 6 KB into the database file per message at 10 M, a 10 s interval
    /// 1.6 KB). The writer is held only every eighth cycle (512 MiB): each hold waited one
    /// fsync of the database file, 100–250 ms on the shared benchmark machine, so holding it
    /// every cycle put that into the p99 (docs/benchmarks.md); between holds the WAL restarts
    /// whenever a PASSIVE round happens to catch up. (That fsync was the whole cycle's pages;
    /// with the syncs before the hold it is a few ms, and holding more often may now pay: not
    /// measured yet.) The file is cut back to 640 MiB after a
    /// restart; the backstop is four times the restart point. Before the writer is held the
    /// database file is synced twice, a PASSIVE round between: the first sync writes the
    /// cycle's pages (100–250 ms on the 10 M store), the round copies what the writer added
    /// meanwhile (a few hundred frames), the second sync writes those (a few ms). More rounds
    /// would add little and let the WAL grow by what the writer adds during each.
    fn default() -> Self {
        const RESTART_AT: i64 = 131_072;
        Self {
            checkpoint_at: 16_384,
            restart_at: RESTART_AT,
            backstop: 4 * RESTART_AT,
            file_limit_bytes: RESTART_AT * 4096 * 5 / 4,
            idle_tick: Duration::from_millis(250),
            settle_rounds: 2,
        }
    }
}

/// What the writer and the checkpointer share: the WAL's size as the last commit left it, a
/// commit counter (to tell an idle writer), and the lock the writer holds around each batch.
#[derive(Debug)]
pub(crate) struct WalShared {
    policy: WalPolicy,
    /// Frames in the WAL after the last commit (SQLite's `mxFrame`), or 0 once this thread
    /// copied them all with the writer held.
    frames: AtomicI64,
    /// Of those, the frames the last checkpoint had copied (0 again when the WAL restarts).
    copied: AtomicI64,
    /// Times the WAL restarted, as the commits saw it (its size fell).
    restarts: AtomicU64,
    /// The most frames a held checkpoint had to write and sync (copied before the hold and
    /// not yet synced, plus those it copied): what the writer waited for, in pages. Tests read
    /// it.
    unsynced_at_hold: AtomicI64,
    commits: AtomicU64,
    /// Held by the writer for each batch, and by the checkpointer for its last step.
    gate: Mutex<()>,
    /// The checkpointer waits for the gate: the writer lets it in before its next batch (a
    /// mutex alone would let a busy writer take it again first, batch after batch).
    waiting: AtomicBool,
    wake_tx: mpsc::SyncSender<()>,
    stop: AtomicBool,
}

thread_local! {
    /// The writer thread's [`WalShared`], for the commit hook (a plain `fn`, no captures).
    static ATTACHED: std::cell::RefCell<Option<Arc<WalShared>>> =
        const { std::cell::RefCell::new(None) };
}

impl WalShared {
    /// Sets the writer's connection up: called on the writer's thread, before its first batch.
    /// The hook replaces SQLite's automatic checkpoint (both are `sqlite3_wal_hook`).
    pub(crate) fn attach(self: &Arc<Self>, conn: &Connection) -> Result<(), StoreError> {
        ATTACHED.with(|a| *a.borrow_mut() = Some(Arc::clone(self)));
        conn.wal_hook(Some(on_commit));
        conn.pragma_update(None, "journal_size_limit", self.policy.file_limit_bytes)?;
        Ok(())
    }

    /// The writer holds this while it runs and commits a batch.
    pub(crate) fn hold(&self) -> MutexGuard<'_, ()> {
        while self.waiting.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        self.lock_gate()
    }

    /// The checkpointer holds the writer between two batches.
    fn hold_writer(&self) -> MutexGuard<'_, ()> {
        self.waiting.store(true, Ordering::Release);
        let held = self.lock_gate();
        self.waiting.store(false, Ordering::Release);
        held
    }

    /// Whether a cycle is due: enough frames not yet copied, or a WAL to restart.
    fn due(&self) -> bool {
        let frames = self.frames.load(Ordering::Relaxed);
        frames - self.copied.load(Ordering::Relaxed) >= self.policy.checkpoint_at
            || frames >= self.policy.restart_at
    }

    /// The gate if the writer is between batches (idle), without waiting for it.
    fn try_hold_writer(&self) -> Option<MutexGuard<'_, ()>> {
        match self.gate.try_lock() {
            Ok(held) => Some(held),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    fn lock_gate(&self) -> MutexGuard<'_, ()> {
        self.gate
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn committed(&self, frames: i64) {
        if self.frames.swap(frames, Ordering::Relaxed) > frames {
            // The WAL restarted: nothing of this one is copied yet.
            self.copied.store(0, Ordering::Relaxed);
            self.restarts.fetch_add(1, Ordering::Relaxed);
        }
        self.commits.fetch_add(1, Ordering::Relaxed);
        if self.due() {
            // Full means a wake-up is already pending.
            let _ = self.wake_tx.try_send(());
        }
    }
}

/// SQLite calls this after every commit of the writer's connection, on the writer's thread,
/// with the frames now in the WAL. Never an error: the commit has happened, and an error here
/// would make the COMMIT report one.
fn on_commit(wal: &Wal, frames: c_int) -> rusqlite::Result<()> {
    let frames = i64::from(frames);
    let backstop = ATTACHED.with(|a| {
        a.borrow().as_ref().map(|shared| {
            shared.committed(frames);
            shared.policy.backstop
        })
    });
    if backstop.is_some_and(|b| frames >= b) {
        let _ = wal.checkpoint();
    }
    Ok(())
}

/// The checkpointing thread; dropping it stops the thread (joined, so the file is closed).
#[derive(Debug)]
pub(crate) struct Checkpointer {
    shared: Arc<WalShared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing through `conn`, a connection of its own to the database file, and
    /// `db`, the file itself (to sync it before holding the writer: `Copier::settle`); the
    /// writer's connection is to be [attached](WalShared::attach) to [`Self::shared`].
    pub(crate) fn spawn(conn: Connection, db: File, policy: WalPolicy) -> Result<Self, StoreError> {
        // TRUNCATE waits for readers through the busy handler while the writer is held: it
        // rather gives up and tries again at the next idle tick.
        conn.busy_timeout(Duration::ZERO)?;
        let (wake_tx, wake_rx) = mpsc::sync_channel(1);
        let shared = Arc::new(WalShared {
            policy,
            frames: AtomicI64::new(0),
            copied: AtomicI64::new(0),
            restarts: AtomicU64::new(0),
            unsynced_at_hold: AtomicI64::new(0),
            commits: AtomicU64::new(0),
            gate: Mutex::new(()),
            waiting: AtomicBool::new(false),
            wake_tx,
            stop: AtomicBool::new(false),
        });
        let thread = std::thread::Builder::new()
            .name("chat-store-checkpoint".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || run(&conn, &db, &shared, &wake_rx)
            })
            .map_err(|e| StoreError::Internal(format!("cannot start the checkpointer: {e}")))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    pub(crate) fn shared(&self) -> Arc<WalShared> {
        Arc::clone(&self.shared)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.shared.wake_tx.try_send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, db: &File, shared: &WalShared, wake_rx: &mpsc::Receiver<()>) {
    let mut copier = Copier {
        conn,
        db,
        shared,
        synced: 0,
        synced_in: 0,
    };
    let commits = || shared.commits.load(Ordering::Relaxed);
    let mut seen = commits();
    let mut truncated_at = seen;
    loop {
        // Woken by a commit past `checkpoint_at`, by the drop, or at the tick.
        let ticked = matches!(
            wake_rx.recv_timeout(shared.policy.idle_tick),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        // Failures (the file busy, a full disk) are left to the next round and, should they
        // last, to the writer's backstop; the writer reports its own errors.
        if shared.due() {
            copier.cycle();
        } else if ticked {
            // No commit in a whole tick: the writer is idle.
            let now = commits();
            if now == seen && now != truncated_at && copier.truncate_while_idle() {
                truncated_at = now;
            }
        }
        seen = commits();
    }
}

/// The checkpointer thread's side: its connection, the database file (to sync it), and what it
/// shares with the writer.
struct Copier<'a> {
    conn: &'a Connection,
    db: &'a File,
    shared: &'a WalShared,
    /// `copied` when the database file was last synced: the frames copied since are pages the
    /// next sync of the database file (SQLite's own, in the held checkpoint) has to write.
    synced: i64,
    /// `WalShared::restarts` then: a WAL restarted since started after a synced checkpoint.
    synced_in: u64,
}

impl Copier<'_> {
    fn frames(&self) -> i64 {
        self.shared.frames.load(Ordering::Relaxed)
    }

    fn copied(&self) -> i64 {
        self.shared.copied.load(Ordering::Relaxed)
    }

    /// Frames in the WAL not yet copied into the database file.
    fn left(&self) -> i64 {
        self.frames() - self.copied()
    }

    /// One cycle: PASSIVE rounds while the writer goes on; then, if the WAL has reached
    /// `restart_at`, the rest with the writer held.
    fn cycle(&mut self) {
        if !self.passive_rounds() || self.frames() < self.shared.policy.restart_at {
            return;
        }
        for attempt in 1..=HOLD_ATTEMPTS {
            if !self.settle() {
                return;
            }
            let held = self.shared.hold_writer();
            // Waiting for the gate waited for the writer's batch in progress: a slow commit
            // of a large batch can leave more than a settled remainder. Then the writer goes
            // on while that is copied and synced too, but the last time.
            if self.left() > HOLD_UNDER_FRAMES && attempt < HOLD_ATTEMPTS {
                drop(held);
                continue;
            }
            self.shared
                .unsynced_at_hold
                .fetch_max(self.unsynced() + self.left(), Ordering::Relaxed);
            // With the writer held nothing is added: this copies every frame (unless a reader
            // still reads an older snapshot; then the next cycle tries again).
            if self.checkpoint("PASSIVE").is_ok() && self.left() <= 0 {
                self.restarted();
            }
            return;
        }
    }

    /// PASSIVE checkpoints, the writer going on, until fewer than [`HOLD_UNDER_FRAMES`] are
    /// left or [`MAX_PASSIVE_ROUNDS`] ran; false if one failed.
    fn passive_rounds(&mut self) -> bool {
        for _ in 0..MAX_PASSIVE_ROUNDS {
            if self.checkpoint("PASSIVE").is_err() {
                return false;
            }
            if self.left() <= HOLD_UNDER_FRAMES {
                break;
            }
        }
        true
    }

    /// Puts on disk what the PASSIVE rounds copied into the database file, the writer going
    /// on, then copies what it added meanwhile and syncs again, until no more than
    /// [`HOLD_UNDER_FRAMES`] are left after a sync (or [`WalPolicy::settle_rounds`] ran). A
    /// hold after this writes and syncs only those frames. False if a sync or a round failed.
    ///
    /// Why: SQLite syncs the database file only in a checkpoint that copies every frame (only
    /// then may the WAL restart; until then the WAL still has every page), so the PASSIVE
    /// rounds of a cycle leave their pages to the kernel's writeback, and the checkpoint with
    /// the writer held waited, in its one `fdatasync()`, for every page of the cycle the kernel
    /// had not yet written: 82–189 ms with 66–193 frames left to copy on the 10 M store
    /// (docs/benchmarks.md). The first sync here is that long, the next ones short, and the
    /// writer goes on during all of them.
    fn settle(&mut self) -> bool {
        for round in 1..=self.shared.policy.settle_rounds {
            if self.db.sync_data().is_err() {
                return false;
            }
            self.mark_synced();
            if self.left() <= HOLD_UNDER_FRAMES || round == self.shared.policy.settle_rounds {
                break;
            }
            if self.checkpoint("PASSIVE").is_err() {
                return false;
            }
        }
        true
    }

    /// Frames copied into the database file and not yet synced.
    fn unsynced(&self) -> i64 {
        if self.shared.restarts.load(Ordering::Relaxed) == self.synced_in {
            self.copied() - self.synced
        } else {
            // The WAL restarted since, which SQLite does only after a checkpoint that copied
            // every frame and synced the database file.
            self.copied()
        }
    }

    /// The database file holds, on disk, every frame copied so far.
    fn mark_synced(&mut self) {
        self.synced = self.copied();
        self.synced_in = self.shared.restarts.load(Ordering::Relaxed);
    }

    /// Every frame copied and synced, with the writer held: its next transaction restarts
    /// the WAL.
    fn restarted(&mut self) {
        self.shared.frames.store(0, Ordering::Relaxed);
        self.shared.copied.store(0, Ordering::Relaxed);
        self.mark_synced();
    }

    /// Copies what is left and empties the WAL file. The bulk is copied (and synced) first
    /// without holding the writer; the rest only if the writer is between batches: no commit
    /// in a tick can also mean a commit stuck in a slow fsync, and a TRUNCATE of a large WAL
    /// behind it held the writer for seconds (seen once on the loaded benchmark machine: an
    /// 11 s stall). Whether it did (the writer busy, or readers, keep it from truncating).
    fn truncate_while_idle(&mut self) -> bool {
        if !self.passive_rounds() || !self.settle() {
            return false;
        }
        let Some(_held) = self.shared.try_hold_writer() else {
            return false;
        };
        let done = self.checkpoint("TRUNCATE").is_ok();
        if done {
            self.restarted();
        }
        done
    }

    /// Runs one checkpoint and publishes the frames it has copied so far (SQLite's third
    /// column). A checkpoint that could not get its locks is an error here.
    fn checkpoint(&mut self, mode: &str) -> Result<(), StoreError> {
        let (busy, _log, copied): (i64, i64, i64) =
            self.conn
                .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        if busy != 0 {
            return Err(StoreError::Unavailable(format!(
                "the {mode} checkpoint was kept from finishing"
            )));
        }
        self.shared.copied.store(copied, Ordering::Relaxed);
        if self.left() <= 0 {
            // SQLite syncs the database file in a checkpoint that finds, once it has copied,
            // no frame added since it began (its `log` is the WAL as it began: no help here).
            self.mark_synced();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
