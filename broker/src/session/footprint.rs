//! What an idle session costs in its task: the sizes of the session's futures and state,
//! printed (`cargo test -p stompbox footprint -- --nocapture`) and held to a budget, because
//! every byte here is paid once per connection for as long as it is open (issue 17 item 1;
//! docs/benchmarks.md, idle section, has the release figures and where the rest goes).
//!
//! The budgets are the debug build's sizes (release futures are smaller) with a little room;
//! they fail when a change makes the idle wait or the session state grow, which is the point
//! at which someone should box the new state or say why not.

use std::future::Future;
use std::mem::size_of;

use super::Resident;
use super::park::Parked;
use super::state::Session;
use super::wire::Wire;

/// Size of the future `f` returns, without calling it.
fn output_size<A, B, C, F: Future>(_: impl FnOnce(A, B, C) -> F) -> usize {
    size_of::<F>()
}

/// The same for a method taking two `&mut`.
fn output_size_2<'a, A: 'a, B: 'a, F: Future>(_: impl FnOnce(&'a mut A, &'a mut B) -> F) -> usize {
    size_of::<F>()
}

/// The same for a method taking a `Box<Self>`.
fn output_size_boxed<A, F: Future>(_: impl FnOnce(Box<A>) -> F) -> usize {
    size_of::<F>()
}

struct Sizes {
    task: usize,
    resumed: usize,
    serve_loop: usize,
    resident: usize,
    parked: usize,
    session: usize,
    wire: usize,
    permit: usize,
    ws: usize,
    handle: usize,
    subscription: usize,
}

fn sizes() -> Sizes {
    Sizes {
        task: output_size(super::serve),
        resumed: output_size_boxed(Resident::run),
        serve_loop: output_size_2(Session::serve),
        resident: size_of::<Resident>(),
        parked: size_of::<Parked<Resident>>(),
        session: size_of::<Session>(),
        wire: size_of::<Wire>(),
        permit: size_of::<crate::admission::ConnectedPermit>(),
        ws: size_of::<crate::transport::ws::WsTransport>(),
        handle: size_of::<crate::handle::SessionHandle>(),
        subscription: size_of::<super::subscription::Subscription>(),
    }
}

#[test]
fn an_idle_session_stays_within_its_budget() {
    let s = sizes();
    println!(
        "parked: Resident {} B (Session {} B, Wire {} B, permit {} B) + Parked {} B; active: \
         first task's future {} B, a resumed task's {} B (loop {} B); a WebSocket's boxed \
         transport {} B; the session handle {} B; a subscription {} B",
        s.resident,
        s.session,
        s.wire,
        s.permit,
        s.parked,
        s.task,
        s.resumed,
        s.serve_loop,
        s.ws,
        s.handle,
        s.subscription
    );
    // The allocator's size classes: one byte over a class boundary costs the whole next step.
    assert!(
        s.resident <= RESIDENT_CLASS,
        "Resident is {} B, past the {RESIDENT_CLASS} B size class",
        s.resident
    );
    assert!(
        s.handle + ARC_COUNTS <= HANDLE_CLASS,
        "the session handle's allocation is {} B, past the {HANDLE_CLASS} B size class",
        s.handle + ARC_COUNTS
    );
    assert!(
        s.ws <= WS_CLASS,
        "WsTransport is {} B, past the {WS_CLASS} B size class",
        s.ws
    );
    assert!(
        s.resident + s.parked <= PARKED_BUDGET,
        "a parked session is {} B, over its {PARKED_BUDGET} B budget",
        s.resident + s.parked
    );
    assert!(
        s.subscription <= SUBSCRIPTION_CLASS,
        "a subscription is {} B, past the {SUBSCRIPTION_CLASS} B size class",
        s.subscription
    );
    assert!(
        s.permit <= PERMIT_BUDGET,
        "the connected permit is {} B, over its {PERMIT_BUDGET} B budget",
        s.permit
    );
    assert!(
        s.session <= SESSION_BUDGET,
        "Session is {} B, over its {SESSION_BUDGET} B budget",
        s.session
    );
    assert!(
        s.task <= TASK_BUDGET && s.resumed <= TASK_BUDGET,
        "a session task's future is {} / {} B, over its {TASK_BUDGET} B budget",
        s.task,
        s.resumed
    );
}

/// What an idle (parked) session holds in memory of its own besides the handle, the socket's
/// reactor slot and its subscriptions: the boxed `Resident` and the parked record. Set from
/// the debug build (idle: 600 + 40 B; fifth cuts: 512 + 40 B; sixth: 512 + 24 B, the
/// record's runtime handle gone: an `Arc` allocation of 40 B, class 48, rather than 56, class 64;
/// seventh: 312 + 24 B, the session's times as 8-B moments, the buffers, the early read and the
/// ack tags boxed, the connected permit 24 B, the timer key 8 B).
const PARKED_BUDGET: usize = 336;

/// The broker's allocator (jemalloc, `main.rs`) rounds each allocation up to a size class:
/// between 256 and 512 B the classes are 320, 384, 448, 512, then 640, 768. Each of these
/// per-connection allocations is kept at or under a class boundary (fifth cuts: `Resident`
/// 592 → 512 B, the handle's 264 → 256 B, `WsTransport` 192 → 144 B, i.e. classes 640 → 512,
/// 320 → 256, 192 → 160); growing past one costs every connection the whole next step.
/// Seventh cuts: `Resident` 512 → 312 B, class 512 → 320 (the session's times as moments, its
/// buffers and its ack tags boxed while unused, the connected permit 24 B, no copy of the
/// version, the timer key a moment alone).
const RESIDENT_CLASS: usize = 320;
/// `Arc<SessionHandle>`'s allocation: the handle and the counts. Seventh cuts: 256 → 224
/// (the record's transport as one byte, the disconnect reason `Box<str>`, the outbox's byte
/// count `u32`).
const HANDLE_CLASS: usize = 224;
/// `Box<WsTransport>`, WebSocket connections only. Sixth cuts: 144 → 128 B (class 160 → 128),
/// the `TcpStream` inline instead of hyper's `Upgraded`, the TLS peer boxed with the rare
/// `wss://` wrapper.
const WS_CLASS: usize = 128;
/// A session's subscriptions vector holds exactly one for most sessions (their `/user`
/// queue): one element, one allocation. Seventh cuts: 128 → 80 B (class 128 → 80), what it
/// holds back for ACKs and its prefetch window boxed on first use.
const SUBSCRIPTION_CLASS: usize = 80;
/// An `Arc`'s two counts, allocated with the handle.
const ARC_COUNTS: usize = 16;

/// Set from the debug build (task 1,656 B, `Session` 296 B when the test came; idle2k: 1,360
/// B once the handshake's result no longer outlived its block, 1,168 B once `serve` stopped
/// being an `async fn` holding its arguments twice), plus a little room. Release futures are
/// no larger, so the same budget holds there. Since sessions park (idle), an active session's
/// task pays this, an idle one's does not.
/// Fifth cuts: 784 B.
const TASK_BUDGET: usize = 850;
/// 296 B when the test came; idle: 336 B with the deadline's registration and the quiet
/// period's end (which replace the `Sleep` a task held), 296 B again with the heart-beat
/// intervals in milliseconds and the transactions boxed on the first BEGIN; fifth cuts: 272 B
/// (throttle pause in µs, reply token `Box<str>`, Acks' counters `u32`); seventh cuts: 216 B
/// (its six times as `Moment`s, 8 B each: `crate::moment`), then 192 B (the ack tags' map
/// boxed on the first tag, the version kept by the codec only), then 184 B (the timer key a
/// moment alone: `crate::wakeup`).
const SESSION_BUDGET: usize = 184;
/// `ConnectedPermit`, in every session: the admission and the address counted (seventh cuts:
/// 48 → 24 B, the semaphore's own permit and the address slot's copy of the admission gone).
const PERMIT_BUDGET: usize = 24;
