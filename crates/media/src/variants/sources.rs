//! Originals shared between the variants of them made at the same time: one fetch of the
//! bytes per original, one decode per original and shrink factor, for every variant asked
//! while it is under way or within a moment after. A variant that needs no more pixels than
//! a decode already made (or making) has takes that one: after a 1024×768 variant, a 640×480
//! one of the same original decodes nothing. Entries are kept briefly after their last use
//! and bounded in number and bytes, so a burst shares and nothing accumulates.

use super::decode::Decoded;
use super::metrics::VariantMetrics;
use super::VariantError;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a fetched or decoded original stays shareable after its last use.
pub const KEEP: Duration = Duration::from_secs(2);
/// Most originals kept at once (bytes, and decodes, each).
pub const MAX_KEPT: usize = 16;
/// Most bytes kept at once (fetched originals, and decoded pixels, each). What a job in
/// flight holds stays alive through its own reference; this bounds what waits for sharing.
pub const KEEP_BYTES: usize = 256 << 20;

type Fetched = Arc<tokio::sync::OnceCell<Result<Arc<Vec<u8>>, VariantError>>>;
type DecodeSlot = Arc<OnceLock<Result<Arc<Decoded>, VariantError>>>;

/// The shared fetches and decodes.
pub struct Sources {
    fetches: Mutex<HashMap<String, (Instant, Fetched)>>,
    decodes: Mutex<Vec<(String, u32, Instant, DecodeSlot)>>,
    keep: Duration,
    keep_bytes: usize,
    metrics: VariantMetrics,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sources {
    /// Shared fetches and decodes, each kept `keep` after its last use and at most
    /// `keep_bytes` of each for sharing, counted in `metrics`.
    pub fn new(keep: Duration, keep_bytes: usize, metrics: VariantMetrics) -> Sources {
        Sources {
            fetches: Mutex::new(HashMap::new()),
            decodes: Mutex::new(Vec::new()),
            keep,
            keep_bytes,
            metrics,
        }
    }

    /// The bytes of original `hash`, fetched by `fetch` unless a fetch of it is under way
    /// or just finished.
    pub async fn bytes<F, Fut>(&self, hash: &str, fetch: F) -> Result<Arc<Vec<u8>>, VariantError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, VariantError>>,
    {
        let now = Instant::now();
        let cell = {
            let mut fetches = lock(&self.fetches);
            fetches.retain(|_, (at, _)| now.duration_since(*at) < self.keep);
            let kept: usize = fetches
                .values()
                .filter_map(|(_, cell)| cell.get())
                .map(|r| r.as_ref().map_or(0, |b| b.len()))
                .sum();
            if (fetches.len() >= MAX_KEPT || kept > self.keep_bytes) && !fetches.contains_key(hash)
            {
                fetches.clear();
            }
            let entry = fetches
                .entry(hash.to_string())
                .or_insert_with(|| (now, Fetched::default()));
            // A failed fetch is tried again by the next request; a good one is shareable for
            // `keep` after its last use.
            if entry.1.get().is_some_and(|r| r.is_err()) {
                entry.1 = Fetched::default();
            }
            entry.0 = now;
            entry.1.clone()
        };
        let mut fetched_here = false;
        let result = cell
            .get_or_init(|| {
                fetched_here = true;
                async move { fetch().await.map(Arc::new) }
            })
            .await
            .clone();
        let outcome = if fetched_here { "done" } else { "shared" };
        self.metrics
            .shared
            .with_label_values(&["fetch", outcome])
            .inc();
        result
    }

    /// Original `hash` decoded with a shrink of at most `shrink` (blocking: call on a
    /// worker). `decode` runs only when no decode of it at `shrink` or finer is at hand.
    pub fn decoded(
        &self,
        hash: &str,
        shrink: u32,
        decode: impl FnOnce(u32) -> Result<Decoded, VariantError>,
    ) -> Result<Arc<Decoded>, VariantError> {
        let now = Instant::now();
        let (slot, at_shrink) = {
            let mut decodes = lock(&self.decodes);
            decodes.retain(|(_, _, at, _)| now.duration_since(*at) < self.keep);
            // A decode in use stays shareable for `keep` after its last use, so a burst longer
            // than that (jobs waiting for a worker) still shares it.
            let usable = decodes
                .iter_mut()
                .filter(|(h, s, _, _)| h == hash && *s <= shrink)
                .max_by_key(|(_, s, _, _)| *s)
                .map(|(_, s, at, slot)| {
                    *at = now;
                    (slot.clone(), *s)
                });
            match usable {
                Some(found) => found,
                None => {
                    let size = |slot: &DecodeSlot| {
                        slot.get()
                            .and_then(|r| r.as_ref().ok())
                            .map_or(0, |d| d.pixels.data.len())
                    };
                    let mut kept: usize = decodes.iter().map(|(_, _, _, slot)| size(slot)).sum();
                    while !decodes.is_empty()
                        && (decodes.len() >= MAX_KEPT || kept > self.keep_bytes)
                    {
                        kept -= size(&decodes.remove(0).3);
                    }
                    let slot = DecodeSlot::default();
                    decodes.push((hash.to_string(), shrink, now, slot.clone()));
                    (slot, shrink)
                }
            }
        };
        let mut decoded_here = false;
        let result = slot
            .get_or_init(|| {
                decoded_here = true;
                decode(at_shrink).map(Arc::new)
            })
            .clone();
        let outcome = if decoded_here { "done" } else { "shared" };
        self.metrics
            .shared
            .with_label_values(&["decode", outcome])
            .inc();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variants::pixels::Pixels;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn decoded() -> Decoded {
        sized(1)
    }

    /// A decode of `pixels` RGB pixels.
    fn sized(pixels: usize) -> Decoded {
        Decoded {
            pixels: Pixels {
                width: pixels as u32,
                height: 1,
                channels: 3,
                data: vec![0; pixels * 3],
            },
            orientation: 1,
            icc: None,
        }
    }

    #[tokio::test]
    async fn concurrent_fetches_share_one() {
        let sources = Arc::new(Sources::new(
            KEEP,
            KEEP_BYTES,
            VariantMetrics::unregistered(),
        ));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (sources, calls) = (sources.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                sources
                    .bytes("h", || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(vec![1, 2, 3])
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(*t.await.unwrap().unwrap(), vec![1, 2, 3]);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_fetch_is_tried_again() {
        let sources = Sources::new(KEEP, KEEP_BYTES, VariantMetrics::unregistered());
        let failed = sources
            .bytes("h", || async { Err(VariantError::SourceUnavailable) })
            .await;
        assert_eq!(failed, Err(VariantError::SourceUnavailable));
        let again = sources.bytes("h", || async { Ok(vec![7]) }).await;
        assert_eq!(again.unwrap().as_slice(), [7]);
    }

    #[test]
    fn a_finer_decode_serves_a_coarser_variant() {
        let sources = Sources::new(KEEP, KEEP_BYTES, VariantMetrics::unregistered());
        let calls = AtomicUsize::new(0);
        let decode = |s: u32| {
            calls.fetch_add(1, Ordering::SeqCst);
            assert!(s == 2 || s == 8);
            Ok(decoded())
        };
        sources.decoded("h", 2, decode).unwrap();
        // Shrink 4 may use the shrink-2 decode; shrink 1 may not.
        sources.decoded("h", 4, decode).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        sources.decoded("other", 8, decode).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_decode_in_use_stays_shareable() {
        let sources = Sources::new(
            Duration::from_millis(300),
            KEEP_BYTES,
            VariantMetrics::unregistered(),
        );
        let calls = AtomicUsize::new(0);
        let decode = |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(decoded())
        };
        sources.decoded("a", 1, decode).unwrap();
        for _ in 0..3 {
            // Each use is within the keep time of the last, though not of the first.
            std::thread::sleep(Duration::from_millis(200));
            sources.decoded("a", 1, decode).unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        std::thread::sleep(Duration::from_millis(400));
        sources.decoded("a", 1, decode).unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "unused for longer than keep: decoded again"
        );
    }

    #[test]
    fn what_is_kept_for_sharing_is_bounded_by_bytes() {
        // Room for one 1000-pixel decode (3000 bytes) at a time.
        let sources = Sources::new(KEEP, 3_500, VariantMetrics::unregistered());
        let calls = AtomicUsize::new(0);
        let decode = |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(sized(1000))
        };
        sources.decoded("a", 1, decode).unwrap();
        sources.decoded("b", 1, decode).unwrap();
        // "a" is still kept (one over the budget is dropped only when the next is added).
        sources.decoded("a", 1, decode).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        sources.decoded("c", 1, decode).unwrap();
        // Adding "c" dropped the oldest until the rest fit: "a" is gone, decoded again.
        sources.decoded("a", 1, decode).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert!(lock(&sources.decodes).len() <= 2);
    }
}
