//! Reconciliation: the database compared with what the backends hold. For every backend an
//! object row names, the rows are read first and the backend listed after, so an object
//! recorded meanwhile is never taken for missing:
//!
//! - a row whose object is not listed becomes missing (`objects.missing_since`): its blob is
//!   no longer served as if present, every gateway forgets its lookup, and an upload of the
//!   same bytes writes the object again;
//! - a missing row whose object is listed again is present again;
//! - an object listed with another size than its blob's is a `size` mismatch (reported only);
//! - an object without a row is an orphan: reported, and removed only when
//!   `[assets.reconcile] remove_orphans_after` is set and the object is older than that.
//!
//! It runs as the `reconcile` job the fleet queues once per `[assets.reconcile] every`, and on
//! demand (`POST /v1/assets/reconcile`, `assetgate assets reconcile`); both record the report
//! as a finished job, from which every gateway's drift metrics are set.

use super::fleet::Fleet;
use super::originals::OriginalStores;
use super::store::AssetStore;
use super::StoreError;
use sqlx::Row;
use std::collections::HashMap;
use std::time::Duration;

/// `[assets.reconcile]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// How often the fleet reconciles (`None`: only on demand).
    pub every: Option<Duration>,
    /// Orphan objects older than this are removed (`None`: they are only reported).
    pub remove_orphans_after: Option<Duration>,
}

/// One mismatch between the database and a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// `missing` (a row without its object), `orphan` (an object without a row) or `size`.
    pub kind: &'static str,
    /// The backend.
    pub backend: String,
    /// The object's key.
    pub key: String,
    /// The blob the row names (`""` for an orphan).
    pub hash: String,
    /// What happened to it: `marked missing`, `removed`, `kept` (an orphan), `reported`.
    pub action: &'static str,
    /// The size the row says and the size stored (for `size`).
    pub sizes: Option<(u64, u64)>,
}

/// What a reconciliation found and did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Object rows compared.
    pub rows_checked: u64,
    /// Stored objects listed.
    pub objects_checked: u64,
    /// Every mismatch.
    pub mismatches: Vec<Mismatch>,
    /// Rows found missing before whose objects are back.
    pub restored: u64,
    /// What could not be checked (a backend that could not be listed, …).
    pub problems: Vec<String>,
    /// When it ran, Unix seconds.
    pub at: u64,
}

impl Report {
    /// How many mismatches are of `kind`.
    pub fn count(&self, kind: &str) -> u64 {
        self.mismatches.iter().filter(|m| m.kind == kind).count() as u64
    }

    /// Mismatches ÷ (rows + orphans): the share of all things checked that disagree.
    pub fn drift_ratio(&self) -> f64 {
        let total = self.rows_checked + self.count("orphan");
        match total {
            0 => 0.0,
            n => self.mismatches.len() as f64 / n as f64,
        }
    }

    /// The report as JSON: `{"at", "rows_checked", "objects_checked", "missing", "orphans",
    /// "size_mismatches", "restored", "drift_ratio", "mismatches": [{"kind", "backend", "key",
    /// "hash", "action", "sizes"?}], "problems"}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mismatches: Vec<serde_json::Value> = self
            .mismatches
            .iter()
            .map(|m| {
                let mut v = serde_json::json!({
                    "kind": m.kind, "backend": m.backend, "key": m.key, "hash": m.hash,
                    "action": m.action,
                });
                if let Some((row, stored)) = m.sizes {
                    v["sizes"] = serde_json::json!({ "row": row, "stored": stored });
                }
                v
            })
            .collect();
        serde_json::json!({
            "at": self.at,
            "rows_checked": self.rows_checked,
            "objects_checked": self.objects_checked,
            "missing": self.count("missing"),
            "orphans": self.count("orphan"),
            "size_mismatches": self.count("size"),
            "restored": self.restored,
            "drift_ratio": self.drift_ratio(),
            "mismatches": mismatches,
            "problems": self.problems,
        })
    }
}

/// An object row as reconciliation reads it.
struct ObjectRow {
    hash: String,
    size: u64,
    missing_since: i64,
}

impl AssetStore {
    /// Every object row of `backend` (and, for the default backend, the rows written before
    /// placements, whose backend is `""`), by key.
    async fn object_rows(
        &self,
        backend: &str,
        is_default: bool,
    ) -> Result<HashMap<String, ObjectRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.storage_key, o.blob_hash, o.missing_since, b.size_bytes \
             FROM objects o JOIN blobs b ON b.content_hash = o.blob_hash \
             WHERE o.backend = $1 OR ($2 = 1 AND o.backend = '')",
        )
        .bind(backend)
        .bind(i64::from(is_default))
        .fetch_all(self.pool())
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let size: i64 = row.try_get("size_bytes")?;
            out.insert(
                row.try_get("storage_key")?,
                ObjectRow {
                    hash: row.try_get("blob_hash")?,
                    size: u64::try_from(size).unwrap_or(0),
                    missing_since: row.try_get("missing_since")?,
                },
            );
        }
        Ok(out)
    }

    /// Marks the object at `key` of `backend` missing since `now_ms` (present: `0`), unless
    /// it was re-recorded meanwhile for other bytes.
    async fn mark_object(
        &self,
        backend: &str,
        is_default: bool,
        key: &str,
        hash: &str,
        missing_since: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE objects SET missing_since = $1 WHERE storage_key = $2 AND blob_hash = $3 \
             AND (backend = $4 OR ($5 = 1 AND backend = ''))",
        )
        .bind(missing_since)
        .bind(key)
        .bind(hash)
        .bind(backend)
        .bind(i64::from(is_default))
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// Compares every backend of `stores` with the database at `now_ms` and acts on what differs
/// as the module's doc says; `settings` say whether old orphans are removed.
pub async fn reconcile(
    store: &AssetStore,
    stores: &OriginalStores,
    fleet: &dyn Fleet,
    settings: &ReconcileSettings,
    now_ms: i64,
) -> Result<Report, StoreError> {
    let mut report = Report {
        at: u64::try_from(now_ms / 1000).unwrap_or(0),
        ..Report::default()
    };
    for backend in stores.names() {
        let is_default = backend == stores.default_name();
        let mut rows = store.object_rows(backend, is_default).await?;
        report.rows_checked += rows.len() as u64;
        let target = stores.get(backend).expect("a listed name");
        let mut after: Option<String> = None;
        let mut listed_all = true;
        loop {
            let page = match target.list_originals(after.as_deref()).await {
                Ok(page) => page,
                Err(e) => {
                    report.problems.push(format!("backend {backend}: {e}"));
                    listed_all = false;
                    break;
                }
            };
            for object in &page.objects {
                report.objects_checked += 1;
                match rows.remove(&object.key) {
                    Some(row) => {
                        if row.missing_since > 0 {
                            store
                                .mark_object(backend, is_default, &object.key, &row.hash, 0)
                                .await?;
                            fleet.forget(&row.hash).await;
                            report.restored += 1;
                        }
                        if row.size != object.size {
                            report.mismatches.push(Mismatch {
                                kind: "size",
                                backend: backend.to_string(),
                                key: object.key.clone(),
                                hash: row.hash,
                                action: "reported",
                                sizes: Some((row.size, object.size)),
                            });
                        }
                    }
                    None => {
                        let action = orphan_action(
                            target.as_ref(),
                            settings,
                            &object.key,
                            object.modified_ms,
                            now_ms,
                        )
                        .await;
                        report.mismatches.push(Mismatch {
                            kind: "orphan",
                            backend: backend.to_string(),
                            key: object.key.clone(),
                            hash: String::new(),
                            action,
                            sizes: None,
                        });
                    }
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        if !listed_all {
            continue; // a backend not listed whole proves nothing missing
        }
        let mut missing: Vec<(String, ObjectRow)> = rows.into_iter().collect();
        missing.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, row) in missing {
            if row.missing_since == 0 {
                store
                    .mark_object(backend, is_default, &key, &row.hash, now_ms.max(1))
                    .await?;
                if let Some(problem) = fleet.forget(&row.hash).await {
                    report.problems.push(problem);
                }
            }
            report.mismatches.push(Mismatch {
                kind: "missing",
                backend: backend.to_string(),
                key,
                hash: row.hash,
                action: "marked missing",
                sizes: None,
            });
        }
    }
    Ok(report)
}

/// What is done with an orphan object: removed when configured and old enough, else kept.
async fn orphan_action(
    target: &dyn origins::OriginalStore,
    settings: &ReconcileSettings,
    key: &str,
    modified_ms: u64,
    now_ms: i64,
) -> &'static str {
    let Some(grace) = settings.remove_orphans_after else {
        return "kept";
    };
    let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    let now = u64::try_from(now_ms).unwrap_or(0);
    if modified_ms == 0 || modified_ms.saturating_add(grace_ms) > now {
        return "kept";
    }
    match target.delete_original(key).await {
        Ok(()) => "removed",
        Err(e) => {
            tracing::warn!(%key, error = %e, "cannot remove an orphan object");
            "kept"
        }
    }
}
