//! Retention: assets deleted on their own once a rule says they have had their time — drafts
//! 30 days after they were added, an avatar 7 days after a newer one replaced it. The rules
//! (`[assets.retention]`) are applied by a `retention` job the fleet queues once per period
//! (its id names the period, so every gateway queuing it makes one job), and on demand by
//! `POST /v1/assets/gc` / `assetgate assets gc [--dry-run]`. Each expired asset is deleted as
//! `DELETE /v1/assets/{id}` deletes it: rows, then the bytes nothing references, then the
//! cached variants of a blob that went, on every gateway.

use super::fleet::Fleet;
use super::originals::OriginalStores;
use super::store::{asset, Asset, AssetStore, ASSET_COLUMNS};
use super::{StoreError, Visibility};
use std::time::Duration;

/// When a rule's assets expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// This long after the asset was added.
    Age(Duration),
    /// This long after a newer asset of the same owner and module was added.
    Superseded(Duration),
}

/// One retention rule: the assets it applies to and when they expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRule {
    /// Only assets of this module (every module when `None`).
    pub module: Option<String>,
    /// Only assets of this visibility (every visibility when `None`).
    pub visibility: Option<Visibility>,
    /// When they expire.
    pub expiry: Expiry,
}

impl RetentionRule {
    /// The rule in a few words, for reports.
    pub fn describe(&self) -> String {
        let whose = format!(
            "{} assets{}",
            self.visibility.map_or("all", Visibility::name),
            self.module
                .as_deref()
                .map(|m| format!(" of module {m}"))
                .unwrap_or_default()
        );
        match self.expiry {
            Expiry::Age(d) => format!("{whose}, {} after they were added", days(d)),
            Expiry::Superseded(d) => {
                format!("{whose}, {} after a newer one replaced them", days(d))
            }
        }
    }
}

fn days(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s => format!("{s}s"),
    }
}

/// `[assets.retention]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// How often the fleet applies the rules.
    pub every: Duration,
    /// The rules; an asset any of them matches is deleted.
    pub rules: Vec<RetentionRule>,
    /// Presigned uploads not completed this long after they were presigned are removed.
    pub unfinished_uploads: Duration,
}

impl Default for Retention {
    /// Hourly, no rules, unfinished uploads removed after a day.
    fn default() -> Retention {
        Retention {
            every: Duration::from_secs(3600),
            rules: Vec::new(),
            unfinished_uploads: Duration::from_secs(86_400),
        }
    }
}

/// Finished jobs are kept this long (for the jobs API and the last reconciliation's metrics),
/// then removed by retention.
const KEEP_FINISHED_JOBS: Duration = Duration::from_secs(7 * 86_400);

/// Most assets one rule deletes in one run (the next run goes on).
const BATCH: u32 = 1000;

/// An asset a rule found expired.
#[derive(Debug, Clone)]
pub struct Expired {
    /// The asset.
    pub asset: Asset,
    /// The index of the rule that found it.
    pub rule: usize,
}

/// What a retention run did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Nothing was deleted: the report says what would be.
    pub dry_run: bool,
    /// The expired assets, by rule.
    pub expired: Vec<Expired>,
    /// Assets deleted.
    pub deleted: usize,
    /// Objects whose bytes are left to a `delete_object` job.
    pub left_behind: usize,
    /// Presigned uploads never completed that were removed (or, dry, would be).
    pub unfinished_removed: u64,
    /// Finished jobs older than a week that were removed.
    pub jobs_pruned: u64,
    /// What went wrong on the way (an asset that could not be deleted, a fleet not told).
    pub problems: Vec<String>,
}

impl Report {
    /// The report as JSON: `{"dry_run", "expired": [{"id", "owner", "module", "visibility",
    /// "rule"}], "deleted", "left_behind", "problems"}`.
    pub fn to_json(&self, rules: &[RetentionRule]) -> serde_json::Value {
        let expired: Vec<serde_json::Value> = self
            .expired
            .iter()
            .map(|e| {
                serde_json::json!({
                    "id": e.asset.id,
                    "hash": e.asset.blob_hash,
                    "owner": e.asset.owner,
                    "module": e.asset.module,
                    "visibility": e.asset.visibility.name(),
                    "rule": rules.get(e.rule).map(RetentionRule::describe),
                })
            })
            .collect();
        serde_json::json!({
            "dry_run": self.dry_run,
            "expired": expired,
            "deleted": self.deleted,
            "left_behind": self.left_behind,
            "unfinished_removed": self.unfinished_removed,
            "jobs_pruned": self.jobs_pruned,
            "problems": self.problems,
        })
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl AssetStore {
    /// Active assets `rule` finds expired at `now_ms`, oldest first, at most `limit`.
    pub async fn expired(
        &self,
        rule: &RetentionRule,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Asset>, StoreError> {
        let (when, cutoff) = match rule.expiry {
            Expiry::Age(d) => ("a.created_at <= $3", now_ms.saturating_sub(millis(d))),
            // Superseded: a newer asset of the same owner and module, itself added before the
            // cutoff (the tie of one instant is broken by id, so exactly one stays newest).
            Expiry::Superseded(d) => (
                "EXISTS (SELECT 1 FROM assets b WHERE b.owner = a.owner AND b.module = a.module \
                 AND b.state = 'active' AND b.created_at <= $3 AND (b.created_at > a.created_at \
                 OR (b.created_at = a.created_at AND b.id > a.id)))",
                now_ms.saturating_sub(millis(d)),
            ),
        };
        let columns = ASSET_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM assets a WHERE a.state = 'active' \
             AND ($1 = '' OR a.module = $1) AND ($2 = '' OR a.visibility = $2) AND {when} \
             ORDER BY a.created_at, a.id LIMIT $4"
        )))
        .bind(rule.module.as_deref().unwrap_or_default())
        .bind(rule.visibility.map_or("", Visibility::name))
        .bind(cutoff)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(asset).collect()
    }
}

/// Applies `retention` at `now_ms`: finds the expired assets and, unless `dry_run`, deletes
/// each everywhere (an asset two rules find is deleted once); removes presigned uploads never
/// completed, and finished jobs older than a week.
pub async fn sweep(
    store: &AssetStore,
    stores: &OriginalStores,
    fleet: &dyn Fleet,
    retention: &Retention,
    now_ms: i64,
    dry_run: bool,
) -> Result<Report, StoreError> {
    let rules = &retention.rules;
    let mut report = Report {
        dry_run,
        ..Report::default()
    };
    let unfinished = retention.unfinished_uploads;
    let before = now_ms.saturating_sub(millis(unfinished));
    if dry_run {
        report.unfinished_removed = store.stale_uploads(before, 1000).await?.len() as u64;
    } else {
        report.unfinished_removed =
            super::presigned::sweep_unfinished(store, stores, unfinished, now_ms).await?;
        report.jobs_pruned = store
            .prune_jobs(now_ms.saturating_sub(millis(KEEP_FINISHED_JOBS)))
            .await?;
    }
    for (i, rule) in rules.iter().enumerate() {
        for asset in store.expired(rule, now_ms, BATCH).await? {
            if report.expired.iter().any(|e| e.asset.id == asset.id) {
                continue;
            }
            report.expired.push(Expired { asset, rule: i });
        }
    }
    if dry_run {
        return Ok(report);
    }
    for e in &report.expired {
        match super::remove::delete_everywhere(store, stores, fleet, &e.asset.id).await {
            Ok(Some(gone)) => {
                report.deleted += 1;
                report.left_behind += gone.removed.left_behind.len();
                report.problems.extend(gone.unforgotten);
                if let Some(error) = gone.purged.as_ref().and_then(|p| p["error"].as_str()) {
                    report.problems.push(error.to_string());
                }
            }
            Ok(None) => {} // deleted meanwhile
            Err(err) => report.problems.push(format!("asset {}: {err}", e.asset.id)),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::store::NewAsset;

    /// A fleet that is told nothing (the store's side is what is tested here).
    struct Alone;

    #[async_trait::async_trait]
    impl Fleet for Alone {
        async fn forget(&self, _: &str) -> Option<String> {
            None
        }
        async fn purge_tag(&self, _: &str) -> serde_json::Value {
            serde_json::json!({})
        }
    }

    async fn store() -> (tempfile::TempDir, AssetStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/assets.db", dir.path().display());
        (dir, AssetStore::connect(&url).await.unwrap())
    }

    /// Records an asset of `owner`/`module` on fresh bytes `n`, added at `at_ms`.
    async fn add(store: &AssetStore, n: u8, owner: &str, module: &str, at_ms: i64) -> Asset {
        let hash = format!("{n:02x}").repeat(32);
        store
            .put_blob(&crate::assets::store::Blob {
                content_hash: hash.clone(),
                backend: String::new(),
                storage_key: hash.clone(),
                size_bytes: 1,
                mime_type: "image/png".into(),
                width: None,
                height: None,
            })
            .await
            .unwrap();
        store.put_object("", &hash, &hash).await.unwrap();
        let a = store
            .put_asset(&NewAsset {
                hash: &hash,
                owner,
                module,
                visibility: Visibility::Private,
                backend: "",
                storage_key: &hash,
                name: "",
            })
            .await
            .unwrap();
        sqlx::query("UPDATE assets SET created_at = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(&a.id)
            .execute(store.pool())
            .await
            .unwrap();
        a
    }

    const DAY: i64 = 86_400_000;

    /// Retention with `rule` alone.
    fn of(rule: &RetentionRule) -> Retention {
        Retention {
            rules: vec![rule.clone()],
            ..Retention::default()
        }
    }

    #[tokio::test]
    async fn age_rules_expire_only_their_module_after_their_time() {
        let (_dir, store) = store().await;
        let now = 100 * DAY;
        let old_draft = add(&store, 1, "u", "drafts", now - 31 * DAY).await;
        add(&store, 2, "u", "drafts", now - 29 * DAY).await;
        add(&store, 3, "u", "posts", now - 90 * DAY).await;
        let rule = RetentionRule {
            module: Some("drafts".into()),
            visibility: None,
            expiry: Expiry::Age(Duration::from_secs(30 * 86_400)),
        };
        let found = store.expired(&rule, now, 10).await.unwrap();
        assert_eq!(
            found.iter().map(|a| &a.id).collect::<Vec<_>>(),
            [&old_draft.id]
        );
        let public = RetentionRule {
            visibility: Some(Visibility::Public),
            ..rule.clone()
        };
        assert!(store.expired(&public, now, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn superseded_versions_expire_after_the_newer_one_is_old_enough() {
        let (_dir, store) = store().await;
        let now = 100 * DAY;
        let v1 = add(&store, 1, "alice", "avatars", now - 20 * DAY).await;
        let v2 = add(&store, 2, "alice", "avatars", now - 8 * DAY).await;
        let v3 = add(&store, 3, "alice", "avatars", now - DAY).await;
        // Bob's only avatar is never superseded, however old.
        add(&store, 4, "bob", "avatars", now - 90 * DAY).await;
        let rule = RetentionRule {
            module: Some("avatars".into()),
            visibility: None,
            expiry: Expiry::Superseded(Duration::from_secs(7 * 86_400)),
        };
        // v1 was replaced by v2 8 days ago; v2 by v3 only a day ago; v3 is the newest.
        let found = store.expired(&rule, now, 10).await.unwrap();
        assert_eq!(found.iter().map(|a| &a.id).collect::<Vec<_>>(), [&v1.id]);
        let report = sweep(
            &store,
            &OriginalStores::empty(),
            &Alone,
            &of(&rule),
            now,
            true,
        )
        .await
        .unwrap();
        assert_eq!((report.expired.len(), report.deleted), (1, 0));
        assert!(
            store.asset(&v1.id).await.unwrap().is_some(),
            "dry run deleted"
        );
        // A week later v2 goes too; v3 stays.
        let later = now + 7 * DAY;
        let report = sweep(
            &store,
            &OriginalStores::empty(),
            &Alone,
            &of(&rule),
            later,
            false,
        )
        .await
        .unwrap();
        assert_eq!(report.deleted, 2, "{:?}", report.problems);
        assert!(store.asset(&v1.id).await.unwrap().is_none());
        assert!(store.asset(&v2.id).await.unwrap().is_none());
        assert!(store.asset(&v3.id).await.unwrap().is_some());
    }
}
