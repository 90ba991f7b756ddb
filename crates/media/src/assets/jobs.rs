//! Durable jobs in the asset database: what must happen even if the gateway that asked for it
//! stops — moving an object, removing one, retention, reconciliation. A job is queued with a
//! kind and a JSON payload, claimed by one gateway at a time under a lease (PostgreSQL picks
//! with `FOR UPDATE SKIP LOCKED`, so claimers never wait on each other's rows; SQLite has one
//! writer), run, and marked done — or retried with exponential backoff until it has failed
//! `max_attempts` times. A job whose gateway died mid-run is claimed again once its lease
//! lapses, so every job must be safe to run twice.

use super::store::AssetStore;
use super::StoreError;
use sqlx::Row;
use std::time::Duration;

/// The states a job passes through.
pub const STATES: [&str; 4] = ["queued", "running", "done", "failed"];

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Its id (32 hex digits).
    pub id: String,
    /// What it does, e.g. `delete_object`.
    pub kind: String,
    /// Its arguments, JSON.
    pub payload: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// Runs begun so far.
    pub attempts: u32,
    /// The error of the last failed run (empty when none failed).
    pub last_error: String,
    /// What the job reported when it was done (JSON; empty when it reports nothing).
    pub result: String,
}

/// How jobs are retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Runs before a job is given up as `failed`.
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub first_backoff: Duration,
    /// Longest wait between runs.
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            max_attempts: 8,
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(600),
        }
    }
}

impl Retry {
    /// The wait before the run after `attempts` failed runs.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

fn now_ms() -> i64 {
    i64::try_from(kit::time::unix_millis()).unwrap_or(i64::MAX)
}

const JOB_COLUMNS: &str = "id, kind, payload, state, attempts, last_error, result";

fn job(row: &sqlx::any::AnyRow) -> Result<Job, StoreError> {
    let attempts: i64 = row.try_get("attempts")?;
    Ok(Job {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        state: row.try_get("state")?,
        attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
        last_error: row.try_get("last_error")?,
        result: row.try_get("result")?,
    })
}

impl AssetStore {
    /// Queues a job of `kind` with `payload`, to run as soon as a gateway claims it.
    pub async fn enqueue(
        &self,
        kind: &str,
        payload: &str,
        retry: &Retry,
    ) -> Result<String, StoreError> {
        let id = kit::ids::random_hex128();
        self.enqueue_once(&id, kind, payload, retry).await?;
        Ok(id)
    }

    /// Queues the job `id` unless a job with that id exists (queued, run or failed): however
    /// many gateways ask for it, there is one. Returns whether this call queued it. A
    /// scheduled job named by its period (`retention-493827`) thereby runs once per fleet.
    pub async fn enqueue_once(
        &self,
        id: &str,
        kind: &str,
        payload: &str,
        retry: &Retry,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, run_after, \
             created_at, updated_at) VALUES ($1, $2, $3, 'queued', 0, $4, $5, $5, $5) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(kind)
        .bind(payload)
        .bind(i64::from(retry.max_attempts))
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Claims the job that has waited longest among those due (queued and past their
    /// backoff, or running under a lapsed lease) for `owner`, for `lease`; `None` when none is
    /// due. The claim counts as an attempt.
    pub async fn claim(&self, owner: &str, lease: Duration) -> Result<Option<Job>, StoreError> {
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let due =
            "(state = 'queued' AND run_after <= $3) OR (state = 'running' AND lease_until < $3)";
        let pick = if self.is_postgres() {
            format!(
                "SELECT id FROM jobs WHERE {due} ORDER BY run_after LIMIT 1 FOR UPDATE SKIP LOCKED"
            )
        } else {
            format!("SELECT id FROM jobs WHERE {due} ORDER BY run_after LIMIT 1")
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1, \
             lease_until = $2, updated_at = $3 WHERE id = ({pick}) AND ({due}) \
             RETURNING {JOB_COLUMNS}"
        )))
        .bind(owner)
        .bind(until)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(job).transpose()
    }

    /// Marks the job `id`, claimed by `owner`, done, with what it reports (`result`, JSON or
    /// empty).
    pub async fn job_done(&self, id: &str, owner: &str, result: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET state = 'done', last_error = '', result = $4, updated_at = $1 \
             WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
        )
        .bind(now_ms())
        .bind(id)
        .bind(owner)
        .bind(result)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records that a run of `job` (claimed by `owner`) failed with `error`: it is queued
    /// again after its backoff, or `failed` once it has used its attempts. Returns the new
    /// state.
    pub async fn job_failed(
        &self,
        job: &Job,
        owner: &str,
        error: &str,
        retry: &Retry,
    ) -> Result<&'static str, StoreError> {
        let now = now_ms();
        let wait = i64::try_from(retry.backoff(job.attempts).as_millis()).unwrap_or(i64::MAX);
        let row = sqlx::query(
            "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, \
             run_after = $1, last_error = $2, updated_at = $3 \
             WHERE id = $4 AND lease_owner = $5 AND state = 'running' RETURNING state",
        )
        .bind(now.saturating_add(wait))
        .bind(error)
        .bind(now)
        .bind(&job.id)
        .bind(owner)
        .fetch_optional(self.pool())
        .await?;
        let state: String = match row {
            Some(r) => r.try_get("state")?,
            None => return Ok("running"),
        };
        Ok(if state == "failed" {
            "failed"
        } else {
            "queued"
        })
    }

    /// Records a job of `kind` that ran outside the queue (an on-demand run through the API)
    /// as done with `result`, so it is listed and counted like the scheduled ones. Returns its
    /// id.
    pub async fn record_done(&self, kind: &str, result: &str) -> Result<String, StoreError> {
        let id = kit::ids::random_hex128();
        sqlx::query(
            "INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, run_after, \
             result, created_at, updated_at) VALUES ($1, $2, '{}', 'done', 1, 1, $3, $4, $3, $3)",
        )
        .bind(&id)
        .bind(kind)
        .bind(now_ms())
        .bind(result)
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// Removes finished (done or failed) jobs last changed before `before_ms`, keeping the
    /// newest finished job of each kind (the last reconciliation stays in the metrics).
    /// Returns how many went.
    pub async fn prune_jobs(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM jobs WHERE state IN ('done', 'failed') AND updated_at < $1 \
             AND id NOT IN (SELECT (SELECT j.id FROM jobs j WHERE j.kind = k.kind \
             AND j.state = 'done' ORDER BY j.updated_at DESC, j.id LIMIT 1) \
             FROM (SELECT DISTINCT kind FROM jobs) k WHERE EXISTS \
             (SELECT 1 FROM jobs d WHERE d.kind = k.kind AND d.state = 'done'))",
        )
        .bind(before_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// What the newest finished job of `kind` reported, if any job of it finished.
    pub async fn last_result(&self, kind: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT result FROM jobs WHERE kind = $1 AND state = 'done' \
             ORDER BY updated_at DESC, id LIMIT 1",
        )
        .bind(kind)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| r.try_get("result"))
            .transpose()
            .map_err(Into::into)
    }

    /// The job `id`.
    pub async fn job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(job).transpose()
    }

    /// Jobs in `state` (every state when `None`), newest first, at most `limit`.
    pub async fn jobs(&self, state: Option<&str>, limit: u32) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1 = '' OR state = $1) \
             ORDER BY created_at DESC, id LIMIT $2"
        )))
        .bind(state.unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(job).collect()
    }

    /// How many jobs are in each of [`STATES`].
    pub async fn job_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            .fetch_all(self.pool())
            .await?;
        let mut out: Vec<(String, u64)> = STATES.iter().map(|s| (s.to_string(), 0)).collect();
        for row in rows {
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            if let Some(slot) = out.iter_mut().find(|(s, _)| *s == state) {
                slot.1 = n.max(0) as u64;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_queued_once_by_id_exists_once_however_often_it_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/assets.db", dir.path().display());
        let store = AssetStore::connect(&url).await.unwrap();
        let r = Retry::default();
        assert!(store
            .enqueue_once("retention-7", "retention", "{}", &r)
            .await
            .unwrap());
        assert!(!store
            .enqueue_once("retention-7", "retention", "{}", &r)
            .await
            .unwrap());
        let job = store
            .claim("a", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        store.job_done(&job.id, "a", "").await.unwrap();
        // Done, it is still the period's job: asking again queues nothing.
        assert!(!store
            .enqueue_once("retention-7", "retention", "{}", &r)
            .await
            .unwrap());
        assert_eq!(store.jobs(None, 10).await.unwrap().len(), 1);
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let r = Retry::default();
        assert_eq!(r.backoff(1), Duration::from_secs(2));
        assert_eq!(r.backoff(2), Duration::from_secs(4));
        assert_eq!(r.backoff(4), Duration::from_secs(16));
        assert_eq!(r.backoff(40), Duration::from_secs(600));
    }

    #[tokio::test]
    async fn jobs_are_claimed_once_retried_with_backoff_and_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/assets.db", dir.path().display());
        let store = AssetStore::connect(&url).await.unwrap();
        let retry = Retry {
            max_attempts: 2,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        };
        let id = store
            .enqueue("delete_object", "{\"k\":1}", &retry)
            .await
            .unwrap();
        let lease = Duration::from_secs(30);
        let job = store.claim("a", lease).await.unwrap().unwrap();
        assert_eq!((job.id.as_str(), job.attempts), (id.as_str(), 1));
        // Claimed: nobody else gets it while the lease runs.
        assert_eq!(store.claim("b", lease).await.unwrap(), None);
        assert_eq!(
            store.job_failed(&job, "a", "boom", &retry).await.unwrap(),
            "queued"
        );
        // Not before its backoff.
        assert_eq!(store.claim("b", lease).await.unwrap(), None);
        tokio::time::sleep(Duration::from_millis(80)).await;
        let again = store.claim("b", lease).await.unwrap().unwrap();
        assert_eq!(again.attempts, 2);
        assert_eq!(again.last_error, "boom");
        // Only the claimer may settle it.
        store.job_done(&again.id, "a", "").await.unwrap();
        assert_eq!(store.job(&id).await.unwrap().unwrap().state, "running");
        assert_eq!(
            store
                .job_failed(&again, "b", "boom again", &retry)
                .await
                .unwrap(),
            "failed"
        );
        let counts = store.job_counts().await.unwrap();
        assert!(counts.contains(&("failed".to_string(), 1)), "{counts:?}");
        assert_eq!(store.jobs(Some("failed"), 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_job_whose_gateway_died_is_claimed_again_after_its_lease() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/assets.db", dir.path().display());
        let store = AssetStore::connect(&url).await.unwrap();
        let id = store
            .enqueue("move", "{}", &Retry::default())
            .await
            .unwrap();
        store
            .claim("dead", Duration::from_millis(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store.claim("live", Duration::from_secs(30)).await.unwrap(),
            None
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        let job = store
            .claim("live", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((job.id, job.attempts), (id.clone(), 2));
        store.job_done(&id, "live", "{\"ok\":1}").await.unwrap();
        let done = store.job(&id).await.unwrap().unwrap();
        assert_eq!(
            (done.state.as_str(), done.result.as_str()),
            ("done", "{\"ok\":1}")
        );
        assert_eq!(
            store.claim("live", Duration::from_secs(30)).await.unwrap(),
            None
        );
    }
}
