//! The per-address state behind the per-address limits: open connections (and how many of them
//! have not completed CONNECT) and a token bucket for each address, with a bounded number of
//! addresses.
//!
//! An entry lives while its address has connections or its bucket is refilling; after that it
//! says nothing a new entry would not, so it goes. When the table is full, entries with no
//! connection and a full bucket are dropped first, then (a flood from many addresses) every
//! entry with no connection: those addresses lose their rate history and start with a full
//! burst, which loosens the rate for them but keeps memory bounded. Each sweep is O(entries),
//! but leaves at most the connected addresses behind, so sweeps are rare when the bound is
//! well above the connection limit.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::time::{Duration, Instant};

use super::bucket::{Refill, TokenBucket};
use super::client_key::ClientKey;

/// Why the table did not admit a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Denied {
    /// The address holds its maximum of connections.
    Concurrent,
    /// The address holds its maximum of connections that have not completed CONNECT.
    Unauthenticated,
    /// The address's bucket is empty; a token comes after this long.
    Rate(Duration),
    /// Every tracked address has a connection and the table is at its bound.
    Full,
}

#[derive(Debug)]
struct Entry {
    connections: usize,
    /// Of `connections`, those that have not completed CONNECT.
    unauthenticated: usize,
    bucket: TokenBucket,
}

#[derive(Debug)]
pub(super) struct AddressTable {
    entries: HashMap<ClientKey, Entry>,
    max_per_address: usize,
    max_unauthenticated: usize,
    refill: Refill,
    max_entries: usize,
}

impl AddressTable {
    pub(super) fn new(
        max_per_address: usize,
        max_unauthenticated: usize,
        refill: Refill,
        max_entries: usize,
    ) -> Self {
        Self {
            entries: HashMap::new(),
            max_per_address,
            max_unauthenticated,
            refill,
            max_entries,
        }
    }

    /// Counts a new (unauthenticated) connection from `key`, or says why not.
    pub(super) fn admit(&mut self, key: ClientKey, now: Instant) -> Result<(), Denied> {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_entries {
            self.sweep(now);
        }
        let refill = self.refill;
        let full = self.entries.len() >= self.max_entries;
        let entry = match self.entries.entry(key) {
            Slot::Occupied(entry) => entry.into_mut(),
            Slot::Vacant(_) if full => return Err(Denied::Full),
            Slot::Vacant(entry) => entry.insert(Entry {
                connections: 0,
                unauthenticated: 0,
                bucket: TokenBucket::full(refill, now),
            }),
        };
        if entry.connections >= self.max_per_address {
            return Err(Denied::Concurrent);
        }
        if entry.unauthenticated >= self.max_unauthenticated {
            return Err(Denied::Unauthenticated);
        }
        entry.bucket.take(refill, now).map_err(Denied::Rate)?;
        entry.connections += 1;
        entry.unauthenticated += 1;
        Ok(())
    }

    /// A connection from `key` completed CONNECT (or is past it).
    pub(super) fn authenticated(&mut self, key: ClientKey) {
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.unauthenticated = entry.unauthenticated.saturating_sub(1);
        }
    }

    /// A connection from `key` ended; `unauthenticated` if it never completed CONNECT.
    pub(super) fn release(&mut self, key: ClientKey, unauthenticated: bool, now: Instant) {
        let refill = self.refill;
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.connections = entry.connections.saturating_sub(1);
            if unauthenticated {
                entry.unauthenticated = entry.unauthenticated.saturating_sub(1);
            }
            if entry.connections == 0 && entry.bucket.is_full(refill, now) {
                self.entries.remove(&key);
            }
        }
    }

    /// Makes room: forgets idle addresses whose buckets have refilled, and if that freed
    /// nothing, every address without a connection.
    fn sweep(&mut self, now: Instant) {
        let refill = self.refill;
        self.entries
            .retain(|_, e| e.connections > 0 || !e.bucket.is_full(refill, now));
        if self.entries.len() >= self.max_entries {
            tracing::warn!(
                tracked = self.entries.len(),
                "admission: address table full; forgetting the rate history of idle addresses"
            );
            self.entries.retain(|_, e| e.connections > 0);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn key(n: u32) -> ClientKey {
        ClientKey::from(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)))
    }

    const REFILL: Refill = Refill {
        rate: 1.0,
        burst: 2.0,
    };

    #[test]
    fn concurrent_cap_then_release_frees_a_slot() {
        let now = Instant::now();
        let mut table = AddressTable::new(2, 100, REFILL, 100);
        table.admit(key(1), now).expect("first");
        table.admit(key(1), now).expect("second");
        assert_eq!(table.admit(key(1), now), Err(Denied::Concurrent));
        // Another address is unaffected.
        table.admit(key(2), now).expect("other address");
        table.release(key(1), false, now);
        let later = now + Duration::from_secs(1);
        table
            .admit(key(1), later)
            .expect("slot freed, token refilled");
    }

    #[test]
    fn unauthenticated_cap_per_address() {
        let now = Instant::now();
        let mut table = AddressTable::new(10, 1, REFILL, 100);
        table.admit(key(1), now).expect("first");
        assert_eq!(table.admit(key(1), now), Err(Denied::Unauthenticated));
        table.authenticated(key(1));
        table
            .admit(key(1), now)
            .expect("the first has completed CONNECT");
        table.release(key(1), true, now);
        table
            .admit(key(1), now + Duration::from_secs(1))
            .expect("the unauthenticated one left");
    }

    #[test]
    fn rate_limits_new_connections() {
        let now = Instant::now();
        let mut table = AddressTable::new(100, 100, REFILL, 100);
        table.admit(key(1), now).expect("burst 1");
        table.admit(key(1), now).expect("burst 2");
        assert_eq!(
            table.admit(key(1), now),
            Err(Denied::Rate(Duration::from_secs(1)))
        );
    }

    #[test]
    fn idle_refilled_entries_are_forgotten() {
        let now = Instant::now();
        let mut table = AddressTable::new(10, 100, REFILL, 100);
        table.admit(key(1), now).expect("admitted");
        table.release(key(1), false, now);
        assert_eq!(table.len(), 1, "bucket still refilling: remembered");
        table
            .admit(key(1), now + Duration::from_secs(1))
            .expect("again");
        table.release(key(1), false, now + Duration::from_secs(3));
        assert_eq!(table.len(), 0, "no connection, full bucket: forgotten");
    }

    #[test]
    fn the_table_stays_within_its_bound() {
        let now = Instant::now();
        let mut table = AddressTable::new(10, 100, REFILL, 4);
        // Four connected addresses fill it: a fifth cannot be tracked.
        for n in 0..4 {
            table.admit(key(n), now).expect("admitted");
        }
        assert_eq!(table.admit(key(9), now), Err(Denied::Full));
        // Once they disconnect (buckets still refilling), a flood of new addresses evicts them.
        for n in 0..4 {
            table.release(key(n), false, now);
        }
        for n in 100..1000 {
            table.admit(key(n), now).expect("room made");
            table.release(key(n), false, now);
            assert!(table.len() <= 4);
        }
    }
}
