//! A run pushed at once must leave the outbox as the same messages pushed one by one would: the
//! same ones queued (the bound is hit on the same message, under either policy), in order, and
//! one wake-up for the whole run.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::noop_waker_ref;
use stomp_codec::Headers;

use super::{Outbound, Outbox, Pressure, PushError};
use crate::config::SlowConsumerPolicy;
use crate::message::{Delivery, Message, Run};
use crate::subscription_id::SubscriptionId;

fn message(id: u64, body: usize) -> Arc<Message> {
    Arc::new(Message::new(
        id,
        Arc::from("/topic/t"),
        &Headers::default(),
        Bytes::from(vec![b'x'; body]),
    ))
}

fn run(messages: &[Arc<Message>]) -> Arc<Run> {
    Arc::new(Run::new(messages.to_vec()))
}

/// The ids of the messages queued, in order, runs unrolled; and how many frames the outbox
/// said it held.
fn drained_ids(outbox: &Outbox) -> (Vec<u64>, usize) {
    let drained = outbox.drain();
    let mut ids = Vec::new();
    for item in drained.items {
        match item {
            Outbound::Deliver(d) => ids.push(d.message.id),
            Outbound::Run(_, run) => ids.extend(run.messages.iter().map(|m| m.id)),
            Outbound::Frame(_) => panic!("no frames pushed here"),
        }
    }
    (ids, drained.frames)
}

/// Pushes `first` alone, then `messages` one by one and, into a second outbox alike, as one
/// run; returns what each queued.
fn alone_and_as_run(
    frames: usize,
    bytes: usize,
    policy: SlowConsumerPolicy,
    first: &Arc<Message>,
    messages: &[Arc<Message>],
) -> (Outbox, Outbox, usize) {
    let id = SubscriptionId::from("s");
    let alone = Outbox::new(frames, bytes, policy);
    let together = Outbox::new(frames, bytes, policy);
    for outbox in [&alone, &together] {
        let item = Outbound::Deliver(Delivery::to_subscription(&id, first));
        assert!(outbox.try_push(item).is_ok());
    }
    for m in messages {
        let _ = alone.try_push(Outbound::Deliver(Delivery::to_subscription(&id, m)));
    }
    let (queued, _) = together.try_push_run(&id, &run(messages));
    (alone, together, queued)
}

#[test]
fn a_run_that_fits_is_one_item_with_its_frames_and_bytes() {
    let outbox = Outbox::new(16, 1 << 20, SlowConsumerPolicy::Disconnect);
    let messages: Vec<_> = (1..=5).map(|id| message(id, 128)).collect();
    let run = run(&messages);
    let (queued, pressure) = outbox.try_push_run(&SubscriptionId::from("s"), &run);
    assert_eq!((queued, pressure), (5, Pressure::Normal));
    // 5 frames of 16 plus 4 more pass half the frame bound: the pressure a publisher slows for.
    let (queued, pressure) = outbox.try_push_run(&SubscriptionId::from("s"), &run);
    assert_eq!((queued, pressure), (5, Pressure::High));
    let drained = outbox.drain();
    assert_eq!(drained.items.len(), 2, "one item per run");
    assert_eq!(drained.frames, 10);
    assert_eq!(drained.bytes, 2 * run.weight);
    assert!(!drained.overflowed);
}

#[test]
fn a_run_wakes_the_session_once_and_only_into_an_empty_queue() {
    let outbox = Outbox::new(16, 1 << 20, SlowConsumerPolicy::Disconnect);
    let mut cx = Context::from_waker(noop_waker_ref());
    assert_eq!(outbox.poll_ready(&mut cx), Poll::Pending);
    let run = run(&[message(1, 8), message(2, 8)]);
    outbox.try_push_run(&SubscriptionId::from("s"), &run);
    assert_eq!(outbox.poll_ready(&mut cx), Poll::Ready(()));
    outbox.try_push_run(&SubscriptionId::from("s"), &run);
    assert_eq!(
        outbox.poll_ready(&mut cx),
        Poll::Pending,
        "the first push's wake-up covers the second until the session drains"
    );
}

#[test]
fn the_frame_bound_hit_mid_run_drops_the_same_messages_as_alone() {
    let messages: Vec<_> = (1..=5).map(|id| message(id, 16)).collect();
    let (alone, together, queued) = alone_and_as_run(
        4,
        1 << 20,
        SlowConsumerPolicy::Drop,
        &message(0, 16),
        &messages,
    );
    assert_eq!(queued, 3);
    let (ids, frames) = drained_ids(&together);
    assert_eq!(ids, vec![0, 1, 2, 3]);
    assert_eq!(frames, 4);
    assert_eq!(drained_ids(&alone).0, ids);
    // Dropping is not closing: the next message that fits goes in.
    let id = SubscriptionId::from("s");
    assert_eq!(together.try_push_run(&id, &run(&messages[..1])).0, 1);
}

#[test]
fn the_frame_bound_hit_mid_run_overflows_on_the_same_message_as_alone() {
    let messages: Vec<_> = (1..=5).map(|id| message(id, 16)).collect();
    let policy = SlowConsumerPolicy::Disconnect;
    let (alone, together, queued) =
        alone_and_as_run(4, 1 << 20, policy, &message(0, 16), &messages);
    assert_eq!(queued, 3);
    let drained = together.drain();
    assert!(drained.overflowed, "the session is told to close as slow");
    assert!(alone.drain().overflowed);
    let id = SubscriptionId::from("s");
    let item = Outbound::Deliver(Delivery::to_subscription(&id, &messages[0]));
    assert!(matches!(
        together.try_push(item),
        Err((PushError::Closed, _))
    ));
    assert_eq!(together.try_push_run(&id, &run(&messages)).0, 0);
}

#[test]
fn the_byte_bound_hit_mid_run_still_takes_a_later_message_that_fits() {
    let (small, big) = (message(1, 16), message(2, 4096));
    let messages = vec![Arc::clone(&small), big, message(3, 16)];
    // Room for the first message and two small ones, not for the big one.
    let bytes = 3 * small.weight() + 8;
    let (alone, together, queued) = alone_and_as_run(
        64,
        bytes,
        SlowConsumerPolicy::Drop,
        &message(0, 16),
        &messages,
    );
    assert_eq!(queued, 2);
    let (ids, _) = drained_ids(&together);
    assert_eq!(ids, vec![0, 1, 3]);
    assert_eq!(drained_ids(&alone).0, ids);
}

#[test]
fn a_closed_outbox_takes_no_run() {
    let outbox = Outbox::new(16, 1 << 20, SlowConsumerPolicy::Disconnect);
    outbox.close();
    let run = run(&[message(1, 8)]);
    assert_eq!(outbox.try_push_run(&SubscriptionId::from("s"), &run).0, 0);
    assert!(outbox.drain().items.is_empty());
}
