//! The node-local purge index: which entries of this gateway's memory and disk tiers answer
//! a URL, a URL prefix or a tag, so a purge removes exactly those.
//!
//! It lives in process memory: an ordered map from URL label to entry keys (prefix purges
//! walk one range of it), a map from tag to entry keys, and each entry's labels and the
//! local tiers holding it. It costs about 200 bytes per entry plus its URL and tags. Tiers
//! record an entry when they commit it and forget it when they evict or remove it; the disk
//! tier records its entries again from their files after a restart (see
//! [`PurgeIndex::begin_rebuild`]). Redis entries are indexed in Redis itself
//! ([`super::redis`]), where every gateway sharing it sees them.

use super::key::EntryKey;
use super::labels::Labels;
use super::purge::Selector;
use super::tier::TierName;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a purge is remembered for fills that were already running when it came.
pub const PURGE_MEMORY: Duration = Duration::from_secs(300);
/// Most purges remembered (older ones are forgotten first).
const MAX_REMEMBERED: usize = 4096;

/// The index (one per process, shared by the memory and disk tiers).
#[derive(Default)]
pub struct PurgeIndex(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    by_url: BTreeMap<Arc<str>, HashSet<EntryKey>>,
    by_tag: HashMap<Arc<str>, HashSet<EntryKey>>,
    held: HashMap<EntryKey, Held>,
    /// Purges made while the disk tier's entries were still being read back after a start;
    /// `None` when no rebuild runs.
    deferred: Option<Vec<Selector>>,
    /// Recent purges, oldest first, for fills that began before them.
    recent: VecDeque<(Instant, Selector)>,
}

struct Held {
    labels: Arc<Labels>,
    /// Bit per local tier ([`bit`]).
    tiers: u8,
}

/// The bit of a local tier; the shared tiers index themselves.
fn bit(tier: TierName) -> u8 {
    match tier {
        TierName::Memory => 1,
        TierName::Disk => 2,
        TierName::Redis | TierName::Object => 0,
    }
}

impl Inner {
    fn link(&mut self, key: EntryKey, labels: &Labels) {
        self.by_url
            .entry(labels.url.clone())
            .or_default()
            .insert(key);
        for tag in &labels.tags {
            self.by_tag.entry(tag.clone()).or_default().insert(key);
        }
    }

    fn unlink(&mut self, key: &EntryKey, labels: &Labels) {
        if let Some(keys) = self.by_url.get_mut(&labels.url) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_url.remove(&labels.url);
            }
        }
        for tag in &labels.tags {
            if let Some(keys) = self.by_tag.get_mut(tag) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_tag.remove(tag);
                }
            }
        }
    }

    fn keys(&self, selector: &Selector) -> Vec<EntryKey> {
        match selector {
            Selector::Url(url) => self
                .by_url
                .get(url.as_str())
                .map(|k| k.iter().copied().collect())
                .unwrap_or_default(),
            Selector::Prefix(prefix) => self
                .by_url
                .range::<str, _>((
                    std::ops::Bound::Included(prefix.as_str()),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(url, _)| url.starts_with(prefix.as_str()))
                .flat_map(|(_, keys)| keys.iter().copied())
                .collect(),
            Selector::Tag(tag) => self
                .by_tag
                .get(tag.as_str())
                .map(|k| k.iter().copied().collect())
                .unwrap_or_default(),
            Selector::All => self.held.keys().copied().collect(),
        }
    }
}

impl PurgeIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `tier` now holds `key`, stored with `labels`.
    pub fn record(&self, key: EntryKey, tier: TierName, labels: &Arc<Labels>) {
        let mut inner = self.lock();
        let old = inner.held.remove(&key);
        let tiers = match old {
            Some(held) if held.labels == *labels => {
                inner.held.insert(
                    key,
                    Held {
                        labels: held.labels,
                        tiers: held.tiers | bit(tier),
                    },
                );
                return;
            }
            Some(held) => {
                inner.unlink(&key, &held.labels);
                held.tiers
            }
            None => 0,
        };
        inner.link(key, labels);
        inner.held.insert(
            key,
            Held {
                labels: labels.clone(),
                tiers: tiers | bit(tier),
            },
        );
    }

    /// `tier` no longer holds `key`.
    pub fn forget(&self, key: &EntryKey, tier: TierName) {
        let mut inner = self.lock();
        let Some(held) = inner.held.get_mut(key) else {
            return;
        };
        held.tiers &= !bit(tier);
        if held.tiers == 0 {
            if let Some(held) = inner.held.remove(key) {
                inner.unlink(key, &held.labels);
            }
        }
    }

    /// The keys `selector` names that `tier` holds. While the disk tier's rebuild runs, a
    /// selection from it is also kept, to be applied again to the entries read back
    /// ([`PurgeIndex::finish_rebuild`]).
    pub fn select(&self, selector: &Selector, tier: TierName) -> Vec<EntryKey> {
        let mut inner = self.lock();
        if let (Some(deferred), TierName::Disk) = (inner.deferred.as_mut(), tier) {
            deferred.push(selector.clone());
        }
        let mut keys = inner.keys(selector);
        keys.retain(|k| inner.held.get(k).is_some_and(|h| h.tiers & bit(tier) != 0));
        keys
    }

    /// Remembers that `selector` was purged now (for [`PurgeIndex::purged_since`]).
    pub fn note_purge(&self, selector: &Selector) {
        let mut inner = self.lock();
        let now = Instant::now();
        while inner.recent.len() >= MAX_REMEMBERED
            || inner
                .recent
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > PURGE_MEMORY)
        {
            inner.recent.pop_front();
        }
        inner.recent.push_back((now, selector.clone()));
    }

    /// Whether a purge since `since` named an entry with `labels` (a fill that began then
    /// may hold what the purge removed). Purges are remembered for [`PURGE_MEMORY`] (at most
    /// the last 4096).
    pub fn purged_since(&self, labels: &Labels, since: Instant) -> bool {
        let inner = self.lock();
        inner
            .recent
            .iter()
            .rev()
            .take_while(|(at, _)| *at >= since)
            .any(|(_, selector)| selector.names(labels))
    }

    /// Starts a rebuild: purges are remembered until [`PurgeIndex::finish_rebuild`].
    pub fn begin_rebuild(&self) {
        self.lock().deferred.get_or_insert_with(Vec::new);
    }

    /// Ends a rebuild: the purges made meanwhile, to be applied to what was read back.
    pub fn finish_rebuild(&self) -> Vec<Selector> {
        self.lock().deferred.take().unwrap_or_default()
    }

    /// Entries indexed.
    pub fn len(&self) -> usize {
        self.lock().held.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> EntryKey {
        EntryKey([n; 32])
    }

    fn labels(url: &str, tags: &[&str]) -> Arc<Labels> {
        Arc::new(Labels {
            url: url.into(),
            tags: tags.iter().map(|t| (*t).into()).collect(),
        })
    }

    fn sorted(mut keys: Vec<EntryKey>) -> Vec<EntryKey> {
        keys.sort();
        keys
    }

    #[test]
    fn selects_by_url_prefix_tag_and_all_per_tier() {
        let index = PurgeIndex::default();
        index.record(key(1), TierName::Memory, &labels("h/a/1.jpg", &["x"]));
        index.record(key(2), TierName::Disk, &labels("h/a/2.jpg", &["x", "y"]));
        index.record(key(3), TierName::Memory, &labels("h/b/3.jpg", &[]));
        index.record(key(3), TierName::Disk, &labels("h/b/3.jpg", &[]));
        index.record(key(4), TierName::Memory, &labels("h/a", &[]));
        let m = TierName::Memory;
        let d = TierName::Disk;
        assert_eq!(
            index.select(&Selector::Url("h/a/1.jpg".into()), m),
            [key(1)]
        );
        assert!(index
            .select(&Selector::Url("h/a/1.jpg".into()), d)
            .is_empty());
        assert_eq!(
            sorted(index.select(&Selector::Prefix("h/a/".into()), m)),
            [key(1)]
        );
        assert_eq!(
            sorted(index.select(&Selector::Prefix("h/a".into()), m)),
            [key(1), key(4)]
        );
        assert_eq!(
            sorted(index.select(&Selector::Tag("x".into()), d)),
            [key(2)]
        );
        assert_eq!(
            sorted(index.select(&Selector::All, m)),
            [key(1), key(3), key(4)]
        );
        assert_eq!(index.len(), 4);
    }

    #[test]
    fn forgetting_the_last_tier_drops_the_entry_and_its_labels() {
        let index = PurgeIndex::default();
        index.record(key(1), TierName::Memory, &labels("h/a", &["t"]));
        index.record(key(1), TierName::Disk, &labels("h/a", &["t"]));
        index.forget(&key(1), TierName::Memory);
        assert_eq!(
            index.select(&Selector::Tag("t".into()), TierName::Disk),
            [key(1)]
        );
        index.forget(&key(1), TierName::Disk);
        assert!(index.is_empty());
        assert!(index.lock().by_url.is_empty() && index.lock().by_tag.is_empty());
    }

    #[test]
    fn an_entry_stored_again_with_new_labels_loses_the_old_ones() {
        let index = PurgeIndex::default();
        index.record(key(1), TierName::Memory, &labels("h/a", &["old"]));
        index.record(key(1), TierName::Memory, &labels("h/a", &["new"]));
        assert!(index
            .select(&Selector::Tag("old".into()), TierName::Memory)
            .is_empty());
        assert_eq!(
            index.select(&Selector::Tag("new".into()), TierName::Memory),
            [key(1)]
        );
    }

    #[test]
    fn fills_that_began_before_a_purge_of_them_are_told() {
        let index = PurgeIndex::default();
        let before = Instant::now();
        index.note_purge(&Selector::Prefix("h/a/".into()));
        let after = Instant::now();
        assert!(index.purged_since(&labels("h/a/1", &[]), before));
        assert!(!index.purged_since(&labels("h/b/1", &[]), before));
        assert!(!index.purged_since(&labels("h/a/1", &[]), after));
        index.note_purge(&Selector::Tag("t".into()));
        assert!(index.purged_since(&labels("h/z", &["t"]), after));
    }

    #[test]
    fn purges_during_a_rebuild_are_handed_back() {
        let index = PurgeIndex::default();
        index.begin_rebuild();
        let _ = index.select(&Selector::Tag("t".into()), TierName::Disk);
        assert_eq!(index.finish_rebuild(), [Selector::Tag("t".into())]);
        let _ = index.select(&Selector::Tag("u".into()), TierName::Disk);
        assert!(index.finish_rebuild().is_empty());
    }
}
