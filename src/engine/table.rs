//! The connection table: a hash table whose entries (key and hot connection
//! state together) are aligned to a cache line, so that looking up and
//! updating a connection touches exactly the three lines of its entry and
//! one of control bytes.

use std::hash::BuildHasher;

use hashbrown::hash_table::HashTable;

use super::Conn;
use crate::flow::FlowKey;

/// One connection, as the table stores it: 192 bytes, starting on a line.
#[repr(align(64))]
#[derive(Debug)]
struct Slot {
    key: FlowKey,
    conn: Conn,
}

#[derive(Default)]
pub(super) struct Table {
    slots: HashTable<Slot>,
    state: foldhash::fast::RandomState,
}

impl Table {
    #[inline]
    fn hash(&self, key: &FlowKey) -> u64 {
        self.state.hash_one(key)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    pub fn get(&self, key: &FlowKey) -> Option<&Conn> {
        let hash = self.hash(key);
        self.slots.find(hash, |s| s.key == *key).map(|s| &s.conn)
    }

    #[inline]
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Conn> {
        let hash = self.hash(key);
        self.slots
            .find_mut(hash, |s| s.key == *key)
            .map(|s| &mut s.conn)
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<Conn> {
        let hash = self.hash(key);
        let found = self.slots.find_entry(hash, |s| s.key == *key).ok()?;
        Some(found.remove().0.conn)
    }

    /// The connection under `key`, made by `new` if there is none.
    ///
    /// A plain find first: `entry` would also look for a free slot on the
    /// way, for the one segment in hundreds that opens a connection.
    #[inline]
    pub fn get_or_insert_with(&mut self, key: FlowKey, new: impl FnOnce() -> Conn) -> &mut Conn {
        let hash = self.hash(&key);
        match self.slots.find_entry(hash, |s| s.key == key) {
            Ok(found) => &mut found.into_mut().conn,
            Err(absent) => {
                let state = &self.state;
                let slot = Slot { key, conn: new() };
                let rehash = |s: &Slot| state.hash_one(s.key);
                &mut absent
                    .into_table()
                    .insert_unique(hash, slot, rehash)
                    .into_mut()
                    .conn
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey, &Conn)> {
        self.slots.iter().map(|s| (&s.key, &s.conn))
    }

    pub fn drain(&mut self) -> impl Iterator<Item = (FlowKey, Conn)> + '_ {
        self.slots.drain().map(|s| (s.key, s.conn))
    }

    pub fn shrink_to(&mut self, min: usize) {
        let state = &self.state;
        self.slots.shrink_to(min, |s| state.hash_one(s.key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What every segment touches: keep it at three cache lines
    /// (docs/PERFORMANCE.md, the analyze section).
    #[test]
    fn a_slot_is_three_cache_lines() {
        assert_eq!(std::mem::size_of::<crate::flow::Half>(), 64);
        assert_eq!(std::mem::size_of::<Slot>(), 192);
    }
}
