//! Appends to one conversation in the order this node took them, for a store that runs
//! appends concurrently and places each message (its position, `chat_store::Cursor`) in the
//! order they reach it: PostgreSQL, where each append is its own transaction and the one that
//! takes the conversation's row lock first gets the next position. Without turns, three
//! messages one client pipelines could be placed 3, 1, 2 though delivered 1, 2, 3.
//!
//! A turn is taken when the sequencer takes the request (arrival order, like the message id)
//! and waited for just before the store is called; dropping it, once the store answered, lets
//! the next one go. The row lock serializes a conversation's appends anyway, so waiting costs
//! only the statements before it.
//!
//! The same lines order a Kafka-mode message's copies for other nodes, sent once Kafka
//! acknowledged it (`ChatCore::crossings`, `sequencer::finish`): acks come in partition
//! order, but the tasks awaiting them may wake in any order.
//!
//! The lines themselves are `chat_store::turn` (the streamed store orders its Kafka sends
//! with them too).

pub use chat_store::turn::{Turn, Turns};
