//! The sync state on both backends: the mark only moves forward, failures are kept beside
//! successes, filters select, and onboarding keeps the first times.

use super::*;
use crate::crypto::{KeyRing, StoreKey};
use crate::testing::pg_config;
use std::time::Duration;

async fn stores() -> (tempfile::TempDir, Vec<Store>) {
    let ring = KeyRing::new(
        StoreKey::from_base64(&StoreKey::generate_base64()).unwrap(),
        vec![],
    );
    let dir = tempfile::tempdir().unwrap();
    let sqlite = StoreConfig {
        data_dir: dir.path().to_owned(),
        ..StoreConfig::default()
    };
    let mut stores = Vec::new();
    for config in [sqlite, pg_config()] {
        let store = Store::open(&config, ring.clone(), Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("store must open (is PostgreSQL up?): {e}"));
        stores.push(store);
    }
    (dir, stores)
}

fn walk<'a>(
    caller: &'a str,
    high_water: Option<&'a str>,
    records: i64,
    at_ms: i64,
) -> WalkCompleted<'a> {
    WalkCompleted {
        caller,
        connection: "hs",
        model: "crm.contacts",
        high_water,
        records_seen: records,
        sync_token: None,
        at_ms,
    }
}

#[tokio::test]
async fn the_high_water_mark_only_moves_forward() {
    let (_dir, stores) = stores().await;
    for store in &stores {
        let first = store
            .sync_walk_completed(walk(
                "crm-sync",
                Some("2026-03-01T00:00:00.000Z"),
                40,
                1_000,
            ))
            .await
            .unwrap();
        assert_eq!(
            first.high_water.as_deref(),
            Some("2026-03-01T00:00:00.000Z")
        );
        assert_eq!((first.records_seen, first.walks_completed), (40, 1));
        // An older walk finishing late (another process) does not move the mark back.
        let late = store
            .sync_walk_completed(walk("crm-sync", Some("2026-02-01T00:00:00.000Z"), 5, 2_000))
            .await
            .unwrap();
        assert_eq!(late.high_water.as_deref(), Some("2026-03-01T00:00:00.000Z"));
        assert_eq!((late.records_seen, late.walks_completed), (5, 2));
        // An incremental walk that saw nothing keeps the mark.
        let empty = store
            .sync_walk_completed(walk("crm-sync", None, 0, 3_000))
            .await
            .unwrap();
        assert_eq!(
            empty.high_water.as_deref(),
            Some("2026-03-01T00:00:00.000Z")
        );
        assert_eq!(empty.last_success_at_ms, Some(3_000));
        let newer = store
            .sync_walk_completed(walk("crm-sync", Some("2026-03-01T00:00:00.001Z"), 1, 4_000))
            .await
            .unwrap();
        assert_eq!(
            newer.high_water.as_deref(),
            Some("2026-03-01T00:00:00.001Z")
        );
    }
}

#[tokio::test]
async fn failures_are_kept_beside_successes_and_tokens_persist() {
    let (_dir, stores) = stores().await;
    for store in &stores {
        store
            .sync_walk_failed(
                "ats-sync",
                "ashby",
                "ats.candidates",
                "provider_throttled",
                500,
            )
            .await
            .unwrap();
        let failed = store
            .sync_state("ats-sync", "ashby", "ats.candidates")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            failed.last_failure_category.as_deref(),
            Some("provider_throttled")
        );
        assert_eq!(
            (failed.walks_completed, failed.last_success_at_ms),
            (0, None)
        );
        let done = store
            .sync_walk_completed(WalkCompleted {
                caller: "ats-sync",
                connection: "ashby",
                model: "ats.candidates",
                high_water: Some("2026-01-01T00:00:00.000Z"),
                records_seen: 3,
                sync_token: Some("sync-1"),
                at_ms: 900,
            })
            .await
            .unwrap();
        assert_eq!(done.last_failure_at_ms, Some(500));
        assert_eq!(done.last_success_at_ms, Some(900));
        assert_eq!(done.sync_token.as_deref(), Some("sync-1"));
        // A walk that brought no token keeps the last one.
        let again = store
            .sync_walk_completed(WalkCompleted {
                caller: "ats-sync",
                connection: "ashby",
                model: "ats.candidates",
                high_water: None,
                records_seen: 0,
                sync_token: None,
                at_ms: 950,
            })
            .await
            .unwrap();
        assert_eq!(again.sync_token.as_deref(), Some("sync-1"));
        // The token is never served.
        let served = serde_json::to_string(&again).unwrap();
        assert!(!served.contains("sync-1"), "{served}");
    }
}

#[tokio::test]
async fn filters_select_and_order() {
    let (_dir, stores) = stores().await;
    for store in &stores {
        for (caller, at) in [("b-svc", 1), ("a-svc", 2)] {
            store
                .sync_walk_completed(walk(caller, None, 1, at))
                .await
                .unwrap();
        }
        store
            .sync_walk_failed("a-svc", "sf", "crm.accounts", "provider_unavailable", 3)
            .await
            .unwrap();
        let all = store.sync_states(SyncFilter::default(), 100).await.unwrap();
        let keys: Vec<_> = all
            .iter()
            .map(|r| (r.connection.as_str(), r.caller.as_str()))
            .collect();
        assert_eq!(keys, [("hs", "a-svc"), ("hs", "b-svc"), ("sf", "a-svc")]);
        let only = SyncFilter {
            caller: Some("a-svc".into()),
            connection: Some("hs".into()),
            model: None,
        };
        assert_eq!(store.sync_states(only, 100).await.unwrap().len(), 1);
        assert_eq!(
            store
                .sync_states(SyncFilter::default(), 2)
                .await
                .unwrap()
                .len(),
            2
        );
    }
}

#[tokio::test]
async fn onboarding_keeps_the_first_sighting_and_the_first_walk() {
    let (_dir, stores) = stores().await;
    for store in &stores {
        let seen = store.sync_connection_seen("gh", 1_000).await.unwrap();
        assert_eq!((seen.first_seen_at_ms, seen.seconds()), (1_000, None));
        // A restart sees it again later: the first time stays.
        store.sync_connection_seen("gh", 5_000).await.unwrap();
        let walked = store.sync_connection_walked("gh", 61_000).await.unwrap();
        assert_eq!(walked.seconds(), Some(60.0));
        let later = store.sync_connection_walked("gh", 99_000).await.unwrap();
        assert_eq!(later.seconds(), Some(60.0));
        // A connection walked before it was ever "seen" (no start-up call) counts from then.
        let direct = store.sync_connection_walked("lever", 7_000).await.unwrap();
        assert_eq!(direct.seconds(), Some(0.0));
    }
}
