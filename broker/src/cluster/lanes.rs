//! The publisher's commands in flight, one lane per hash slot on a Redis Cluster (one lane on a
//! single server), each lane independent of the others.
//!
//! Why: a pipeline that waits for every slot's reply waits for the slowest shard. While one
//! primary fails over, the cluster client retries its slots for seconds, and a publisher that
//! sent one batch at a time held every other shard's copies behind it (and failed them with
//! it). Here a lane has at most one pipeline in flight (so a channel's messages stay in
//! order), the other lanes go on, and a failure costs only its own lane's commands.
//!
//! Marks ([`super::publisher::Outgoing::Mark`]) keep their promise across lanes: answered once
//! every command queued before the mark was sent, dropped unanswered when one of those failed.
//! A lane that failed rests for a back-off before its next send, so a dead server is not
//! hammered; the commands queued for it meanwhile are bounded with everything else held here.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use redis::cluster_routing::Slot;
use redis::{Cmd, Value};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::backoff::Backoff;
use super::health::Health;
use super::redis_link::Conn;

/// Which lane a command takes: its hash slot on a cluster, the only lane on one server.
type Lane = Option<Slot>;

/// One queued command ([`super::publisher::Outgoing`]): its place in the queue's order and the
/// Redis commands it became (all on one key, so on one lane).
pub(super) struct Unit {
    pub seq: u64,
    pub cmds: Vec<Cmd>,
    pub weight: usize,
}

/// A lane's pipeline came back, or its rest after a failure is over.
enum Done {
    Sent {
        lane: Lane,
        seqs: Vec<u64>,
        weight: usize,
        result: redis::RedisResult<()>,
    },
    Rested(Lane),
}

/// The lanes, their waiting commands and pipelines in flight, and the marks not yet answered.
pub(super) struct Lanes {
    conn: Conn,
    batch: usize,
    waiting: HashMap<Lane, VecDeque<Unit>>,
    /// Lanes with a pipeline in flight or resting after a failure.
    busy: HashSet<Lane>,
    /// Lanes whose last send failed, with their back-off.
    failing: HashMap<Lane, Backoff>,
    in_flight: FuturesUnordered<BoxFuture<'static, Done>>,
    marks: Marks,
    /// Commands and bytes held here (waiting or in flight).
    held: (usize, usize),
}

impl Lanes {
    /// Lanes over `conn`, sending at most `batch` commands per pipeline.
    pub(super) fn new(conn: Conn, batch: usize) -> Self {
        Self {
            conn,
            batch,
            waiting: HashMap::new(),
            busy: HashSet::new(),
            failing: HashMap::new(),
            in_flight: FuturesUnordered::new(),
            marks: Marks::default(),
            held: (0, 0),
        }
    }

    pub(super) fn conn(&self) -> &Conn {
        &self.conn
    }

    /// Commands and bytes held (waiting or in flight), to bound what is taken from the queue.
    pub(super) fn held(&self) -> (usize, usize) {
        self.held
    }

    /// Whether a pipeline or a rest is in flight (then [`Lanes::settle_one`] has work).
    pub(super) fn in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Queues `unit` on the lane of `key`; [`Lanes::dispatch`] sends it.
    pub(super) fn push(&mut self, key: &[u8], unit: Unit) {
        let lane = self.conn.is_cluster().then(|| Slot::for_key(key));
        self.held.0 += 1;
        self.held.1 += unit.weight;
        self.marks.queued(unit.seq);
        self.waiting.entry(lane).or_default().push_back(unit);
    }

    /// A mark behind every command queued before `seq`.
    pub(super) fn mark(&mut self, seq: u64, mark: oneshot::Sender<()>) {
        self.marks.wait(seq, mark);
    }

    /// Starts a pipeline on every lane that has commands waiting and is not busy.
    pub(super) fn dispatch(&mut self) {
        let ready: Vec<Lane> = (self.waiting.keys())
            .filter(|lane| !self.busy.contains(*lane))
            .copied()
            .collect();
        for lane in ready {
            self.start(lane);
        }
    }

    fn start(&mut self, lane: Lane) {
        let Some(queue) = self.waiting.get_mut(&lane) else {
            return;
        };
        let units: Vec<Unit> = queue.drain(..queue.len().min(self.batch)).collect();
        if queue.is_empty() {
            self.waiting.remove(&lane);
        }
        if units.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        let mut seqs = Vec::with_capacity(units.len());
        let mut weight = 0;
        for unit in units {
            seqs.push(unit.seq);
            weight += unit.weight;
            for cmd in unit.cmds {
                pipe.add_command(cmd);
            }
        }
        let mut conn = self.conn.clone();
        self.busy.insert(lane);
        self.in_flight.push(Box::pin(async move {
            // A command Redis refused (say, XADD on a key of another type) fails the pipeline.
            let result = pipe
                .query_async::<Vec<Value>>(&mut conn)
                .await
                .and_then(|replies| {
                    (replies.into_iter())
                        .find_map(|reply| reply.extract_error().err())
                        .map_or(Ok(()), Err)
                });
            Done::Sent {
                lane,
                seqs,
                weight,
                result,
            }
        }));
    }

    /// Waits for the next pipeline (or rest) to finish and accounts for it: counted in
    /// `health`, marks answered or dropped, the lane's next pipeline started. With `rest`
    /// false (shutdown) a failed lane's waiting commands are given up instead of retried.
    /// Returns at once when nothing is in flight.
    pub(super) async fn settle_one(&mut self, health: &Health, rest: bool) {
        let Some(done) = self.in_flight.next().await else {
            return;
        };
        let (lane, seqs, weight, result) = match done {
            Done::Rested(lane) => {
                self.busy.remove(&lane);
                self.start(lane);
                return;
            }
            Done::Sent {
                lane,
                seqs,
                weight,
                result,
            } => (lane, seqs, weight, result),
        };
        self.held.0 -= seqs.len();
        self.held.1 -= weight;
        match result {
            Ok(()) => {
                health.published(seqs.len() as u64);
                self.marks.sent(&seqs);
                self.busy.remove(&lane);
                if self.failing.remove(&lane).is_some() && self.failing.is_empty() {
                    info!("publishing to redis again");
                }
                self.start(lane);
            }
            Err(e) => {
                health.publish_failed(seqs.len() as u64);
                self.marks.failed(&seqs);
                if self.failing.is_empty() {
                    warn!(error = %e, "publishing to redis failed: cross-node deliveries through the failing server are being lost until it is back");
                }
                let backoff = self.failing.entry(lane).or_insert_with(Backoff::new);
                if rest {
                    let delay = backoff.next_delay();
                    self.in_flight.push(Box::pin(async move {
                        tokio::time::sleep(delay).await;
                        Done::Rested(lane)
                    }));
                } else {
                    self.busy.remove(&lane);
                    self.give_up(lane, health);
                }
            }
        }
    }

    /// Shutdown after a failure: the lane's waiting commands are lost, not retried.
    fn give_up(&mut self, lane: Lane, health: &Health) {
        let Some(units) = self.waiting.remove(&lane) else {
            return;
        };
        let seqs: Vec<u64> = units.iter().map(|u| u.seq).collect();
        self.held.0 -= units.len();
        self.held.1 -= units.iter().map(|u| u.weight).sum::<usize>();
        health.publish_failed(seqs.len() as u64);
        self.marks.failed(&seqs);
    }

    /// Until nothing is waiting or in flight (shutdown: failures are not retried).
    pub(super) async fn drain(&mut self, health: &Health) {
        loop {
            self.dispatch();
            if self.in_flight.is_empty() {
                return;
            }
            self.settle_one(health, false).await;
        }
    }
}

/// Marks waiting for the commands queued before them, by queue order (`seq`).
#[derive(Default)]
struct Marks {
    /// Commands queued and not yet sent or failed.
    outstanding: BTreeSet<u64>,
    /// Marks by the `seq` they were queued at (non-decreasing).
    waiting: VecDeque<(u64, oneshot::Sender<()>)>,
}

impl Marks {
    fn queued(&mut self, seq: u64) {
        self.outstanding.insert(seq);
    }

    fn wait(&mut self, seq: u64, mark: oneshot::Sender<()>) {
        self.waiting.push_back((seq, mark));
        self.answer();
    }

    fn sent(&mut self, seqs: &[u64]) {
        for seq in seqs {
            self.outstanding.remove(seq);
        }
        self.answer();
    }

    /// Marks queued after the first of `seqs` are dropped unanswered (something before them
    /// failed); earlier ones may still be answered.
    fn failed(&mut self, seqs: &[u64]) {
        if let Some(&first) = seqs.iter().min() {
            self.waiting.retain(|(at, _)| *at <= first);
        }
        self.sent(seqs);
    }

    /// Answers the marks with nothing outstanding queued before them.
    fn answer(&mut self) {
        let oldest = self.outstanding.first().copied().unwrap_or(u64::MAX);
        while self.waiting.front().is_some_and(|(at, _)| *at <= oldest) {
            if let Some((_, mark)) = self.waiting.pop_front() {
                let _ = mark.send(()); // a waiter that gave up is no error
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(marks: &mut Marks, seq: u64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        marks.wait(seq, tx);
        rx
    }

    #[test]
    fn a_mark_waits_for_what_was_queued_before_it_on_every_lane() {
        let mut marks = Marks::default();
        marks.queued(0);
        marks.queued(1);
        let mut first = mark(&mut marks, 2);
        marks.queued(2);
        let mut second = mark(&mut marks, 3);
        marks.sent(&[1]);
        assert!(first.try_recv().is_err(), "0 is still out");
        marks.sent(&[2]);
        assert!(second.try_recv().is_err(), "0 is still out");
        marks.sent(&[0]);
        assert_eq!(first.try_recv(), Ok(()));
        assert_eq!(second.try_recv(), Ok(()));
    }

    #[test]
    fn a_mark_with_nothing_before_it_is_answered_at_once() {
        let mut marks = Marks::default();
        let mut rx = mark(&mut marks, 0);
        assert_eq!(rx.try_recv(), Ok(()));
        marks.queued(0);
        let mut later = mark(&mut marks, 1);
        assert!(later.try_recv().is_err());
    }

    #[test]
    fn a_failure_drops_only_the_marks_queued_after_it() {
        let mut marks = Marks::default();
        marks.queued(0);
        let mut before = mark(&mut marks, 1);
        marks.queued(1);
        let mut after = mark(&mut marks, 2);
        marks.failed(&[1]);
        assert!(
            after
                .try_recv()
                .is_err_and(|e| e == oneshot::error::TryRecvError::Closed),
            "dropped: 1 failed before it"
        );
        assert!(
            before
                .try_recv()
                .is_err_and(|e| e == oneshot::error::TryRecvError::Empty),
            "0 is still out"
        );
        marks.sent(&[0]);
        assert_eq!(before.try_recv(), Ok(()));
    }
}
