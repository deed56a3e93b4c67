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

use super::state::Session;
use super::wire::Wire;
use crate::transport::Transport;

/// Size of the future `f` returns, without calling it.
fn output_size<A, B, C, F: Future>(_: impl FnOnce(A, B, C) -> F) -> usize {
    size_of::<F>()
}

/// The same for a method taking two `&mut`.
fn output_size_2<'a, A: 'a, B: 'a, F: Future>(_: impl FnOnce(&'a mut A, &'a mut B) -> F) -> usize {
    size_of::<F>()
}

/// The same for a method taking one `&mut`.
fn output_size_1<'a, A: 'a, F: Future>(_: impl FnOnce(&'a mut A) -> F) -> usize {
    size_of::<F>()
}

struct Sizes {
    task: usize,
    run: usize,
    serve_loop: usize,
    session: usize,
    wire: usize,
    read: usize,
    transport_read: usize,
}

fn sizes() -> Sizes {
    Sizes {
        task: output_size(super::serve),
        run: output_size_2(Session::run),
        serve_loop: output_size_2(Session::serve),
        session: size_of::<Session>(),
        wire: size_of::<Wire>(),
        read: output_size_1(Wire::read),
        transport_read: output_size_2(Transport::read),
    }
}

#[test]
fn an_idle_sessions_task_stays_within_its_budget() {
    let s = sizes();
    println!(
        "session task future {} B (loop {} B inside run {} B); Session {} B, Wire {} B; \
         Wire::read {} B, Transport::read {} B",
        s.task, s.serve_loop, s.run, s.session, s.wire, s.read, s.transport_read
    );
    assert!(
        s.session <= SESSION_BUDGET,
        "Session is {} B, over its {SESSION_BUDGET} B budget",
        s.session
    );
    assert!(
        s.task <= TASK_BUDGET,
        "the session task's future is {} B, over its {TASK_BUDGET} B budget",
        s.task
    );
}

/// Set from the debug build (task 1,656 B, `Session` 296 B when the test came; idle2k: 1,360
/// B once the handshake's result no longer outlived its block, 1,168 B once `serve` stopped
/// being an `async fn` holding its arguments twice), plus a little room. Release futures are
/// no larger, so the same budget holds there.
const TASK_BUDGET: usize = 1_250;
const SESSION_BUDGET: usize = 320;
