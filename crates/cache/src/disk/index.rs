//! The disk tier's accounting: bytes and entries held, and the order of last use that
//! eviction follows (least recently used first).

use crate::key::EntryKey;
use std::collections::HashMap;

/// Every entry the tier holds, its size and when it was last used.
#[derive(Default)]
pub struct Index {
    /// Entries by key.
    pub entries: HashMap<EntryKey, Slot>,
    /// Bytes held.
    pub bytes: u64,
    /// Increases with every use; a slot's `used` orders eviction.
    clock: u64,
}

/// One entry's size and last use.
#[derive(Clone, Copy)]
pub struct Slot {
    /// File bytes.
    pub bytes: u64,
    /// The index clock at its last use.
    pub used: u64,
}

impl Index {
    /// Records a use of `key`, and its new size when given (a new or replaced entry); the
    /// size it had before, if it was held.
    pub fn touch(&mut self, key: EntryKey, bytes: Option<u64>) -> Option<u64> {
        self.clock += 1;
        let used = self.clock;
        match (self.entries.get_mut(&key), bytes) {
            (Some(slot), Some(b)) => {
                let old = slot.bytes;
                self.bytes = self.bytes - old + b;
                *slot = Slot { bytes: b, used };
                Some(old)
            }
            (Some(slot), None) => {
                slot.used = used;
                Some(slot.bytes)
            }
            (None, Some(b)) => {
                self.entries.insert(key, Slot { bytes: b, used });
                self.bytes += b;
                None
            }
            (None, None) => None,
        }
    }

    /// Drops `key`; its size, if it was held.
    pub fn forget(&mut self, key: &EntryKey) -> Option<u64> {
        let slot = self.entries.remove(key)?;
        self.bytes -= slot.bytes;
        Some(slot.bytes)
    }

    /// The least recently used keys whose removal brings the index to `target` bytes.
    pub fn victims(&self, target: u64) -> Vec<EntryKey> {
        if self.bytes <= target {
            return Vec::new();
        }
        let mut by_use: Vec<(u64, EntryKey, u64)> = self
            .entries
            .iter()
            .map(|(k, s)| (s.used, *k, s.bytes))
            .collect();
        by_use.sort_unstable_by_key(|(used, _, _)| *used);
        let mut excess = self.bytes - target;
        let mut out = Vec::new();
        for (_, key, bytes) in by_use {
            if excess == 0 {
                break;
            }
            out.push(key);
            excess = excess.saturating_sub(bytes);
        }
        out
    }
}
