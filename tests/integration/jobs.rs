//! Durable jobs on PostgreSQL: claimers racing for the same queue each get distinct jobs
//! (`FOR UPDATE SKIP LOCKED`), none twice and none lost.

use crate::harness::*;
use media::assets::jobs::Retry;
use media::assets::store::AssetStore;
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test]
async fn racing_claimers_on_postgres_get_each_job_exactly_once() {
    let pg = postgres();
    let url = pg.database(&format!("jobs_{}", std::process::id()));
    let store = AssetStore::connect(&url).await.unwrap();
    let mut queued = BTreeSet::new();
    for i in 0..60 {
        let id = store
            .enqueue(
                "delete_object",
                &format!("{{\"n\":{i}}}"),
                &Retry::default(),
            )
            .await
            .unwrap();
        queued.insert(id);
    }
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let owner = format!("worker-{w}");
                let mut got = Vec::new();
                while let Some(job) = store.claim(&owner, Duration::from_secs(60)).await.unwrap() {
                    store.job_done(&job.id, &owner, "").await.unwrap();
                    got.push(job.id);
                }
                got
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for w in workers {
        claimed.extend(w.await.unwrap());
    }
    let distinct: BTreeSet<_> = claimed.iter().cloned().collect();
    assert_eq!(claimed.len(), 60, "a job was claimed twice");
    assert_eq!(distinct, queued);
    let counts = store.job_counts().await.unwrap();
    assert!(counts.contains(&("done".to_string(), 60)), "{counts:?}");
}
