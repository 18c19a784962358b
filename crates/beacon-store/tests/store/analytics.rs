//! Analytics, retention and deletion tests on both backends, on a small hand-built history
//! whose every expected number is worked out by hand below, and on seeded history.
//!
//! The hand-built history, weeks starting Monday 2024-03-04 (W1), 03-11 (W2), 03-18 (W3):
//!
//! | report | node | cluster | day | version | OS | clients |
//! |---|---|---|---|---|---|---|
//! | 1-3 | N1A, N1B, N1C | C1 (3 nodes) | W1 Mon, Tue, Wed | 5.0.9 | Ubuntu 22.04 | 100 |
//! | 4 | N2 | C2 (1 node) | W1 Thu | 5.0.8 | Debian 12 | 10 |
//! | 5 | N3 | none, 4.x | W1 Fri | 4.4.19 | CentOS 7 | 40 |
//! | 6 | N2 | C2 | W1 Sat | 5.0.9 (upgrade: N2 twice in W1) | Debian 12 | 3000 |
//! | 7-8 | N1B, N1C | C1 | W2 Mon, Tue | 5.0.9 | Ubuntu 22.04 | 100 |
//! | 9 | N1A | C1 | W2 Wed 09:00 | 5.0.9 | Ubuntu 22.04 | 300 |
//! | 10 | N1A | C1 | W2 Wed 18:00, replaces 9 | 5.0.9 | Ubuntu 22.04 | 200 |
//! | 11-12 | N4A, N4B | none, 4.x, each lists the other | W2 Thu, Fri | 4.4.19 | CentOS 7 | 50 |
//! | 13 | N2 | C2 | W3 Mon | 5.0.9 | Debian 12 | 10 |
//!
//! A cluster's numbers in a week are those of its latest report that week.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use beacon_seed as seed;
use beacon_store::testing::TestDb;
use beacon_store::{
    AnalyticsQuery, CountBar, FeatureAdoption, FilterChoices, ForgetOutcome, Hardware,
    InsertOutcome, NewReport, Overview, Platforms, Store, VersionAdoption, Workload,
    export_reports,
};
use chrono::{Days, NaiveDate};
use futures::TryStreamExt;
use serde_json::{Value, json};

use support::{Backend, admin_i64, each_backend};

const GIB: u64 = 1 << 30;

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, n).expect("a valid day")
}

fn week(n: u32) -> NaiveDate {
    day(4 + 7 * (n - 1))
}

fn query(from: NaiveDate, to: NaiveDate) -> AnalyticsQuery {
    AnalyticsQuery {
        from,
        to,
        version: None,
        os: None,
    }
}

fn all_weeks() -> AnalyticsQuery {
    query(day(4), day(24))
}

/// A 5.x report of cluster C1 or C2, or a 4.x one, as the collector would build it.
struct Sent {
    uuid: &'static str,
    cluster: Option<&'static str>,
    day: u32,
    hour: u32,
    version: &'static str,
    clients: u64,
}

fn c1(uuid: &'static str, day: u32, hour: u32, clients: u64) -> Sent {
    Sent {
        uuid,
        cluster: Some("C1"),
        day,
        hour,
        version: "5.0.9",
        clients,
    }
}

fn c2(day: u32, version: &'static str, clients: u64) -> Sent {
    Sent {
        uuid: "N2",
        cluster: Some("C2"),
        day,
        hour: 12,
        version,
        clients,
    }
}

fn v4(uuid: &'static str, day: u32) -> Sent {
    Sent {
        uuid,
        cluster: None,
        day,
        hour: 12,
        version: "4.4.19",
        clients: if uuid == "N3" { 40 } else { 50 },
    }
}

/// The deletion hash every report of N2-N4 announces: a node keeps the one its first
/// report fixed (another one would be refused, see `claims.rs`).
fn secret() -> String {
    "bb".repeat(32)
}

impl Sent {
    fn document(&self) -> Value {
        let peers: Vec<&str> = match self.cluster {
            Some("C1") => ["N1A", "N1B", "N1C"].to_vec(),
            Some(_) => Vec::new(),
            None if self.uuid == "N3" => Vec::new(),
            None => vec!["N4A", "N4B"],
        };
        let peers: Vec<&str> = peers.into_iter().filter(|p| *p != self.uuid).collect();
        match self.cluster {
            Some("C1") => json!({
                "emqx_version": self.version, "uuid": self.uuid, "cluster_uuid": "C1",
                "license": {"edition": "opensource"},
                "os_name": "Ubuntu", "os_version": "22.04",
                "nodes_uuid": peers,
                "num_clients": self.clients,
                "vm_specs": {"num_cpus": 8, "total_memory": 8 * GIB},
                "mqtt_runtime_insights": {"num_topics": 20, "messages_sent_rate": 1.5,
                    "messages_received_rate": 2},
                "advanced_mqtt_features": {"retained": 3, "delayed": 0, "topic_rewrite": 0,
                    "auto_subscribe": 0},
                "rule_engine": {"num_rules": 1},
                "bridge": {"num_data_bridges": 1, "data_bridge": {"http": {"num": 1}}},
                "authn_authz": {"authn": ["jwt"], "authz": ["file"]},
                "gateway": {}, "exhook": {"num_servers": 0}
            }),
            Some(_) => json!({
                "emqx_version": self.version, "uuid": self.uuid, "cluster_uuid": "C2",
                "license": {"edition": "enterprise"},
                "os_name": "Debian GNU/Linux", "os_version": "12 (bookworm)",
                "nodes_uuid": peers, "num_clients": self.clients,
                "deletion_secret_sha256": secret(),
                "vm_specs": {"num_cpus": 4, "total_memory": 4 * GIB},
                "mqtt_runtime_insights": {"num_topics": 5, "messages_sent_rate": 0.5,
                    "messages_received_rate": 0},
                "advanced_mqtt_features": {"retained": 0, "delayed": 2},
                "authn_authz": {"authn": [], "authz": ["built_in_database"]},
                "gateway": {"mqttsn": {}}
            }),
            None => json!({
                "emqx_version": self.version, "uuid": self.uuid,
                "license": {"edition": "community"},
                "os_name": "CentOS Linux", "os_version": "7 (Core)",
                "nodes_uuid": peers,
                "deletion_secret_sha256": secret(),
                "num_clients": self.clients, "active_modules": ["retainer"]
            }),
        }
    }

    fn report(&self) -> NewReport {
        let doc = self.document();
        let day = day(self.day);
        let node_count = match self.cluster {
            Some("C1") => 3,
            None if self.uuid != "N3" => 2,
            _ => 1,
        };
        NewReport {
            uuid: self.uuid.into(),
            cluster_uuid: self.cluster.map(str::to_owned),
            day,
            received_at: day.and_hms_opt(self.hour, 0, 0).expect("time").and_utc(),
            emqx_version: self.version.into(),
            os_name: doc["os_name"].as_str().map(str::to_owned),
            os_version: doc["os_version"].as_str().map(str::to_owned),
            edition: doc["license"]["edition"].as_str().map(str::to_owned),
            node_count,
            format: if self.cluster.is_some() { 5 } else { 4 },
            raw: doc.to_string(),
            analytics: beacon_report::facts::Facts::of(&doc),
        }
    }
}

fn history() -> Vec<NewReport> {
    [
        c1("N1A", 4, 10, 100),
        c1("N1B", 5, 10, 100),
        c1("N1C", 6, 10, 100),
        c2(7, "5.0.8", 10),
        v4("N3", 8),
        c2(9, "5.0.9", 3000),
        c1("N1B", 11, 10, 100),
        c1("N1C", 12, 10, 100),
        c1("N1A", 13, 9, 300),
        c1("N1A", 13, 18, 200),
        v4("N4A", 14),
        v4("N4B", 15),
        c2(18, "5.0.9", 10),
    ]
    .iter()
    .map(Sent::report)
    .collect()
}

async fn seeded(backend: &Backend) -> Arc<dyn Store> {
    let store = support::open(backend).await;
    let mut outcomes = Vec::new();
    for report in history() {
        outcomes.push(store.insert(report).await.expect("insert"));
    }
    let replaced = outcomes
        .iter()
        .filter(|outcome| **outcome == InsertOutcome::Replaced)
        .count();
    assert_eq!(replaced, 1, "{}: only report 10 replaces one", backend.name);
    // Counted now, so that a test that changes the tables next does not race the count a
    // store makes when it stops (SQLite's rollup reads do not count).
    store.settle().await.expect("settle");
    store
}

/// (clusters, nodes, new nodes) of each week.
async fn activity(store: &dyn Store, query: &AnalyticsQuery) -> Vec<(u64, u64, u64)> {
    let weeks = store.activity(query).await.expect("activity");
    weeks
        .iter()
        .map(|w| (w.clusters, w.nodes, w.new_nodes))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_activity_counts_each_cluster_once() {
    each_backend(|backend| async move {
        let store = seeded(&backend).await;
        let name = backend.name;
        let weeks = store.activity(&all_weeks()).await.expect("activity");
        let mondays: Vec<NaiveDate> = weeks.iter().map(|w| w.week).collect();
        assert_eq!(mondays, [week(1), week(2), week(3)], "{name}");
        // W1: C1 (3 nodes), C2 (N2 twice), N3; W2: C1, the N4 pair; W3: C2.
        let expected = vec![(3, 5, 5), (2, 5, 2), (1, 1, 0)];
        assert_eq!(activity(&*store, &all_weeks()).await, expected, "{name}");

        let only = |version: Option<&str>, os: Option<&str>| AnalyticsQuery {
            version: version.map(str::to_owned),
            os: os.map(str::to_owned),
            ..all_weeks()
        };
        // N2 was first seen on 5.0.8 and left it within W1.
        let expected = vec![(2, 4, 3), (1, 3, 0), (1, 1, 0)];
        let on_509 = activity(&*store, &only(Some("5.0.9"), None)).await;
        assert_eq!(on_509, expected, "{name}");
        let on_508 = activity(&*store, &only(Some("5.0.8"), None)).await;
        assert_eq!(on_508, vec![(0, 0, 1), (0, 0, 0), (0, 0, 0)], "{name}");
        let centos = activity(&*store, &only(None, Some("CentOS Linux"))).await;
        assert_eq!(centos, vec![(1, 1, 1), (1, 2, 2), (0, 0, 0)], "{name}");
        let both = activity(&*store, &only(Some("5.0.9"), Some("Debian GNU/Linux"))).await;
        assert_eq!(both, vec![(1, 1, 0), (0, 0, 0), (1, 1, 0)], "{name}");
        // A range inside a week still covers that whole week.
        let one_day = activity(&*store, &query(day(13), day(13))).await;
        assert_eq!(one_day, vec![(2, 5, 2)], "{name}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_platforms_and_hardware_count_cluster_weeks() {
    each_backend(|backend| async move {
        let store = seeded(&backend).await;
        let name = backend.name;
        let adoption = store
            .version_adoption(&all_weeks())
            .await
            .expect("versions");
        let series: Vec<(&str, &[u64])> = adoption
            .versions
            .iter()
            .map(|s| (s.version.as_str(), s.clusters.as_slice()))
            .collect();
        // C2's latest W1 report says 5.0.9, so 5.0.8 is not left anywhere.
        let expected: Vec<(&str, &[u64])> = vec![("5.0.9", &[2, 1, 1]), ("4.4.19", &[1, 1, 0])];
        assert_eq!(series, expected, "{name}");
        assert_eq!(adoption.period.weeks, 3, "{name}");

        // Six cluster-weeks: C1 twice, C2 twice, N3 once, the N4 pair once.
        let platforms = store.platforms(&all_weeks()).await.expect("platforms");
        assert_eq!(platforms.cluster_weeks, 6, "{name}");
        let shares = |items: &[beacon_store::Share]| -> Vec<(String, u64)> {
            items
                .iter()
                .map(|s| (s.value.clone(), s.cluster_weeks))
                .collect()
        };
        let os = [("CentOS Linux", 2), ("Debian GNU/Linux", 2), ("Ubuntu", 2)];
        let os: Vec<(String, u64)> = os.iter().map(|(v, n)| (v.to_string(), *n)).collect();
        assert_eq!(shares(&platforms.os), os, "{name}");
        assert!((platforms.os[0].share - 1.0 / 3.0).abs() < 1e-9, "{name}");
        let editions = [("community", 2), ("enterprise", 2), ("opensource", 2)];
        let editions: Vec<(String, u64)> =
            editions.iter().map(|(v, n)| (v.to_string(), *n)).collect();
        assert_eq!(shares(&platforms.editions), editions, "{name}");
        let versions: Vec<(&str, &str, u64)> = platforms
            .os_versions
            .iter()
            .map(|v| (v.os.as_str(), v.os_version.as_str(), v.cluster_weeks))
            .collect();
        let expected = [
            ("CentOS Linux", "7 (Core)", 2),
            ("Debian GNU/Linux", "12 (bookworm)", 2),
            ("Ubuntu", "22.04", 2),
        ];
        assert_eq!(versions, expected, "{name}");

        let hardware = store.hardware(&all_weeks()).await.expect("hardware");
        let bars = |bars: &[CountBar]| -> Vec<(u64, u64)> {
            bars.iter().map(|b| (b.value, b.cluster_weeks)).collect()
        };
        // 4.x reports send no VM specs, so only C1 and C2 have CPUs and memory.
        assert_eq!(hardware.cluster_weeks, 6, "{name}");
        assert_eq!(bars(&hardware.cpus), [(4, 2), (8, 2)], "{name}");
        assert_eq!(
            bars(&hardware.memory),
            [(4 * GIB, 2), (8 * GIB, 2)],
            "{name}"
        );
        assert_eq!(
            bars(&hardware.cluster_sizes),
            [(1, 3), (2, 1), (3, 2)],
            "{name}"
        );
        assert!(
            (hardware.cluster_sizes[0].share - 0.5).abs() < 1e-9,
            "{name}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn features_are_shares_of_active_clusters() {
    each_backend(|backend| async move {
        let store = seeded(&backend).await;
        let adoption = store.features(&all_weeks()).await.expect("features");
        assert_eq!(adoption.cluster_weeks, 6, "{}", backend.name);
        let found: Vec<(String, String, u64)> = adoption
            .features
            .iter()
            .map(|f| (f.family.clone(), f.name.clone(), f.cluster_weeks))
            .collect();
        // C1 (2 weeks): retained, rules, an http bridge, jwt, file. C2 (2 weeks): delayed,
        // built_in_database authz, mqttsn. N3 and the N4 pair: the 4.x retainer module.
        let expected = [
            ("feature", "authz", 4),
            ("feature", "retained", 4),
            ("feature", "authn", 2),
            ("feature", "bridge", 2),
            ("feature", "delayed", 2),
            ("feature", "gateway", 2),
            ("feature", "rule_engine", 2),
            ("bridge", "http", 2),
            ("authn", "jwt", 2),
            ("authz", "built_in_database", 2),
            ("authz", "file", 2),
            ("gateway", "mqttsn", 2),
        ];
        let expected: Vec<(String, String, u64)> = expected
            .iter()
            .map(|(f, n, c)| (f.to_string(), n.to_string(), *c))
            .collect();
        assert_eq!(found, expected, "{}", backend.name);
        assert!((adoption.features[0].share - 4.0 / 6.0).abs() < 1e-9);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_percentiles_use_each_clusters_latest_report() {
    each_backend(|backend| async move {
        let store = seeded(&backend).await;
        let name = backend.name;
        let workload = store.workload(&all_weeks()).await.expect("workload");
        // Clients per cluster-week: C1 100 then 200 (report 10 replaced report 9's 300),
        // C2 3000 then 10, N3 40, the N4 pair 50: sorted 10 40 50 100 200 3000.
        let clients = &workload.clients;
        assert_eq!(clients.cluster_weeks, 6, "{name}");
        assert_eq!(
            (clients.p50, clients.p90, clients.p99),
            (Some(50.0), Some(3000.0), Some(3000.0)),
            "{name}"
        );
        let lows: Vec<f64> = clients.histogram.iter().map(|b| b.lower).collect();
        assert_eq!(lows, [10.0, 40.0, 50.0, 100.0, 200.0, 3000.0], "{name}");
        assert!(
            clients.histogram.iter().all(|b| b.cluster_weeks == 1),
            "{name}"
        );
        assert_eq!(clients.histogram[0].upper, Some(12.0), "{name}");
        // Only 5.x reports have topics and rates: C1 20 and 1.5/s, C2 5 and 0.5/s.
        let topics = &workload.topics;
        assert_eq!(topics.cluster_weeks, 4, "{name}");
        assert_eq!((topics.p50, topics.p90), (Some(5.0), Some(20.0)), "{name}");
        let sent = &workload.messages_sent_rate;
        assert_eq!((sent.p50, sent.p99), (Some(0.5), Some(1.5)), "{name}");
        let received = &workload.messages_received_rate;
        assert_eq!(
            (received.p50, received.p90),
            (Some(0.0), Some(2.0)),
            "{name}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_compares_with_the_previous_period() {
    each_backend(|backend| async move {
        let store = seeded(&backend).await;
        let name = backend.name;
        // W2-W3 against the two weeks before: an empty week and W1.
        let overview = store
            .overview(&query(day(11), day(24)))
            .await
            .expect("overview");
        let (now, before) = (&overview.current, &overview.previous);
        assert_eq!(
            (now.period.first_week, now.period.weeks),
            (week(2), 2),
            "{name}"
        );
        assert_eq!(before.period.first_week, week(1) - Days::new(7), "{name}");
        assert_eq!(before.period.last_week, week(1), "{name}");
        assert_eq!(
            (now.avg_weekly_clusters, now.avg_weekly_nodes),
            (1.5, 3.0),
            "{name}"
        );
        assert_eq!(
            (before.avg_weekly_clusters, before.avg_weekly_nodes),
            (1.5, 2.5)
        );
        assert_eq!((now.new_nodes, before.new_nodes), (2, 5), "{name}");
        assert_eq!(overview.clusters_change, Some(0.0), "{name}");
        let nodes = overview.nodes_change.expect("a change");
        assert!((nodes - 0.2).abs() < 1e-9, "{name}: {nodes}");
        let new = overview.new_nodes_change.expect("a change");
        assert!((new + 0.6).abs() < 1e-9, "{name}: {new}");

        let versions = store.distinct_versions().await.expect("versions");
        assert_eq!(versions, ["5.0.9", "4.4.19"], "{name}");
        let os = store.distinct_os().await.expect("os");
        assert_eq!(os, ["CentOS Linux", "Debian GNU/Linux", "Ubuntu"], "{name}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_pages_through_raw_reports_in_order() {
    each_backend(|backend| async move {
        let store = seeded(&backend).await;
        let name = backend.name;
        let mut expected: Vec<(NaiveDate, String)> = store
            .list(day(1), day(31))
            .await
            .expect("list")
            .into_iter()
            .map(|r| (r.day, r.uuid))
            .collect();
        assert_eq!(expected.len(), 12, "{name}: 13 reports, one replaced");
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .export_page(day(1), day(31), after, 5)
                .await
                .expect("page");
            after = page.last().map(beacon_store::ExportCursor::from);
            paged.extend(page.iter().map(|r| (r.day, r.uuid.clone())));
            if page.len() < 5 {
                break;
            }
        }
        assert_eq!(paged, expected, "{name}");
        let streamed: Vec<_> = export_reports(store.clone(), day(5), day(13))
            .try_collect()
            .await
            .expect("stream");
        expected.retain(|(d, _)| (day(5)..=day(13)).contains(d));
        let streamed: Vec<_> = streamed.into_iter().map(|r| (r.day, r.uuid)).collect();
        assert_eq!(streamed, expected, "{name}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_only_older_reports_and_keeps_rollups() {
    each_backend(|backend| async move {
        let store = seeded(&backend).await;
        let name = backend.name;
        let before = activity(&*store, &all_weeks()).await;
        let features = store.features(&all_weeks()).await.expect("features");
        // Days 4-9 hold reports 1-6: six rows.
        let deleted = store
            .delete_reports_before(day(11))
            .await
            .expect("retention");
        assert_eq!(deleted, 6, "{name}");
        assert_eq!(store.count().await.expect("count"), 6, "{name}");
        let kept = store.list(day(1), day(31)).await.expect("list");
        assert!(kept.iter().all(|r| r.day >= day(11)), "{name}");
        assert_eq!(activity(&*store, &all_weeks()).await, before, "{name}");
        let after = store.features(&all_weeks()).await.expect("features");
        assert_eq!(after, features, "{name}");
        // W1's snapshots went with its reports: 6 of 11 node-weeks remain.
        let node_weeks = admin_i64(&backend, "SELECT count(*) FROM node_weeks").await;
        assert_eq!(node_weeks, 6, "{name}");
        let again = store
            .delete_reports_before(day(11))
            .await
            .expect("retention");
        assert_eq!(again, 0, "{name}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_needs_the_nodes_secret_and_leaves_only_aggregates() {
    each_backend(|backend| async move {
        let store = seeded(&backend).await;
        let name = backend.name;
        let before = activity(&*store, &all_weeks()).await;
        let unknown = store.forget_node("N9", &"bb".repeat(32)).await;
        assert_eq!(
            unknown.expect("forget"),
            ForgetOutcome::UnknownNode,
            "{name}"
        );
        // N2 announced "bb...": another hash, a shorter one or none is wrong.
        for wrong in ["aa".repeat(32), "bb".repeat(31), String::new()] {
            let outcome = store.forget_node("N2", &wrong).await.expect("forget");
            assert_eq!(outcome, ForgetOutcome::WrongSecret, "{name}: {wrong}");
        }
        assert_eq!(store.count().await.expect("count"), 12, "{name}");
        let outcome = store.forget_node("N2", &"BB".repeat(32)).await;
        let expected = ForgetOutcome::Deleted { reports: 3 };
        assert_eq!(outcome.expect("forget"), expected, "{name}");
        assert_eq!(store.count().await.expect("count"), 9, "{name}");
        assert_eq!(store.get("N2", day(9)).await.expect("get"), None, "{name}");
        // N3 is a 4.x node: its cluster snapshot was keyed by its uuid.
        let outcome = store.forget_node("N3", &"bb".repeat(32)).await;
        let expected = ForgetOutcome::Deleted { reports: 1 };
        assert_eq!(outcome.expect("forget"), expected, "{name}");
        for sql in [
            "SELECT count(*) FROM nodes WHERE uuid IN ('N2', 'N3')",
            "SELECT count(*) FROM node_weeks WHERE uuid IN ('N2', 'N3')",
            "SELECT count(*) FROM cluster_weeks WHERE cluster_key = 'N3'",
            "SELECT count(*) FROM reports WHERE raw LIKE '%\"N2\"%' OR raw LIKE '%\"N3\"%'",
        ] {
            assert_eq!(admin_i64(&backend, sql).await, 0, "{name}: {sql}");
        }
        assert_eq!(activity(&*store, &all_weeks()).await, before, "{name}");
        let again = store.forget_node("N2", &"bb".repeat(32)).await;
        assert_eq!(again.expect("forget"), ForgetOutcome::UnknownNode, "{name}");
    })
    .await;
}

/// A second, empty database on the same backend.
fn sibling(backend: &Backend) -> Backend {
    let db = if backend.name == "sqlite" {
        TestDb::sqlite()
    } else {
        TestDb::postgres().expect("a postgres test database")
    };
    Backend::from(db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_bulk_load_equals_ingest_one_by_one() {
    each_backend(|backend| async move {
        let name = backend.name;
        let end = day(24);
        let ingest = support::open(&backend).await;
        let reports: Vec<NewReport> = seed::generate(600, end, 11).collect();
        // In groups of 40 concurrent inserts, so group commit batches vary in size.
        for group in reports.chunks(40) {
            let inserts = group.iter().cloned().map(|report| {
                let ingest = Arc::clone(&ingest);
                tokio::spawn(async move { ingest.insert(report).await })
            });
            for insert in futures::future::join_all(inserts).await {
                insert.expect("task").expect("insert");
            }
        }
        let other = sibling(&backend);
        let bulk = support::open(&other).await;
        let outcome = bulk
            .bulk_insert(Box::new(seed::generate(600, end, 11)))
            .await
            .expect("bulk insert");
        assert_eq!((outcome.inserted, outcome.replaced), (600, 0), "{name}");
        assert_eq!(bulk.count().await.expect("count"), 600, "{name}");

        let year = query(end - Days::new(364), end);
        let busiest = ingest.distinct_versions().await.expect("versions");
        let filtered = AnalyticsQuery {
            version: busiest.first().cloned(),
            os: Some("Ubuntu".into()),
            ..year.clone()
        };
        for q in [&year, &filtered] {
            let (a, b) = (&*ingest, &*bulk);
            let weeks = a.activity(q).await.expect("activity");
            assert_eq!(weeks, b.activity(q).await.expect("activity"), "{name}");
            assert!(weeks.iter().all(|w| w.clusters <= w.nodes), "{name}");
            let versions = a.version_adoption(q).await.expect("versions");
            assert_eq!(versions, b.version_adoption(q).await.expect("versions"));
            let platforms = a.platforms(q).await.expect("platforms");
            assert_eq!(platforms, b.platforms(q).await.expect("platforms"));
            let hardware = a.hardware(q).await.expect("hardware");
            assert_eq!(hardware, b.hardware(q).await.expect("hardware"));
            let features = a.features(q).await.expect("features");
            assert_eq!(features, b.features(q).await.expect("features"));
            let workload = a.workload(q).await.expect("workload");
            assert_eq!(workload, b.workload(q).await.expect("workload"));
            let overview = a.overview(q).await.expect("overview");
            assert_eq!(overview, b.overview(q).await.expect("overview"));
        }
        let year_total: u64 = ingest
            .activity(&year)
            .await
            .expect("activity")
            .iter()
            .map(|w| w.new_nodes)
            .sum();
        let nodes = admin_i64(&backend, "SELECT count(*) FROM nodes").await;
        assert_eq!(year_total, nodes as u64, "{name}: every node is new once");
        // Stopped, each store has folded every counter delta into its counters.
        drop((ingest, bulk));
        support::wait_closed(&backend).await;
        support::wait_closed(&other).await;
        let rollups = "SELECT CAST(count(*) + sum(n) AS BIGINT) FROM rollups";
        let same = admin_i64(&other, rollups).await == admin_i64(&backend, rollups).await;
        assert!(same, "{name}: the rollup tables differ");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_left_pending_by_a_crash_are_applied_at_the_next_start() {
    each_backend(|backend| async move {
        let counted = Counted::by(&*seeded(&backend).await).await;
        leave_uncounted(&backend, "raw", true).await;
        let store = support::open(&backend).await;
        assert_eq!(Counted::by(&*store).await, counted, "{}", backend.name);
        assert_log_is_empty(&backend).await;
    })
    .await;
}

/// What the analytics say and how many reports are stored, to compare across a restart.
#[derive(Debug, PartialEq)]
struct Counted {
    activity: Vec<(u64, u64, u64)>,
    features: FeatureAdoption,
    hardware: Hardware,
    stored: u64,
}

impl Counted {
    async fn by(store: &dyn Store) -> Self {
        Self {
            activity: activity(store, &all_weeks()).await,
            features: store.features(&all_weeks()).await.expect("features"),
            hardware: store.hardware(&all_weeks()).await.expect("hardware"),
            stored: store.count().await.expect("count"),
        }
    }
}

/// SQLite's rollup reads do not wait for its writer: they add what the reports in the
/// ingest log would count to the counters they read. Here the writer cannot count at all
/// (every count fails), and the answers still hold every report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rollup_reads_count_the_ingest_log_while_the_writer_cannot_count() {
    each_backend(|backend| async move {
        if backend.name != "sqlite" {
            return;
        }
        let store = seeded(&backend).await;
        let expected = Rollups::by(&*store).await;
        assert_eq!(expected.activity, [(3, 5, 5), (2, 5, 2), (1, 1, 0)]);
        drop(store);
        leave_uncounted(&backend, "raw", true).await;
        support::admin_execute(
            &backend,
            "CREATE TRIGGER fail_counts BEFORE INSERT ON reports
             BEGIN SELECT RAISE(ABORT, 'simulated count failure'); END;",
        )
        .await;
        let store = support::open(&backend).await;
        assert_eq!(Rollups::by(&*store).await, expected);
        let left = support::admin_i64(&backend, "SELECT count(*) FROM incoming").await;
        assert_eq!(left as usize, history().len() - 1, "nothing was counted");
    })
    .await;
}

/// A count logs its chunk's counter deltas, and a fold adds many chunks' deltas to the
/// counters later: a rollup read adds the deltas not folded yet. Here every fold fails
/// (the counters refuse writes), and the answers still hold every counted report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_reads_add_the_counter_deltas_of_chunks_not_yet_folded() {
    each_backend(|backend| async move {
        let name = backend.name;
        drop(seeded(&backend).await);
        support::wait_closed(&backend).await;
        // A store that stopped folded every delta: these answers are the counters alone.
        let folded = support::open(&backend).await;
        let (expected, expected_keys) = (Rollups::by(&*folded).await, keys(&*folded).await);
        drop(folded);
        assert_eq!(
            expected.activity,
            [(3, 5, 5), (2, 5, 2), (1, 1, 0)],
            "{name}"
        );
        leave_uncounted(&backend, "raw", true).await;
        let refuse_counters = if name == "sqlite" {
            "CREATE TRIGGER fail_new_counters BEFORE INSERT ON rollups
             BEGIN SELECT RAISE(ABORT, 'simulated fold failure'); END;
             CREATE TRIGGER fail_counter_updates BEFORE UPDATE ON rollups
             BEGIN SELECT RAISE(ABORT, 'simulated fold failure'); END;"
        } else {
            "CREATE FUNCTION fail_fold() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN RAISE EXCEPTION 'simulated fold failure'; END $$;
             CREATE TRIGGER fail_counters BEFORE INSERT OR UPDATE ON rollups
                 FOR EACH ROW EXECUTE FUNCTION fail_fold();"
        };
        support::admin_execute(&backend, refuse_counters).await;
        let store = support::open(&backend).await;
        let log = format!("SELECT count(*) FROM {}", uncounted_log(&backend));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while admin_i64(&backend, &log).await > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name}: the log is counted"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let logged = "SELECT count(*) FROM counter_deltas";
        assert!(
            admin_i64(&backend, logged).await > 0,
            "{name}: nothing was folded"
        );
        assert_eq!(Rollups::by(&*store).await, expected, "{name}");
        // SQLite's reads of distinct keys fold first (and fail here); PostgreSQL's add the
        // deltas too.
        if name != "sqlite" {
            assert_eq!(keys(&*store).await, expected_keys, "{name}");
        }
    })
    .await;
}

/// The distinct versions and operating systems the rollups know.
async fn keys(store: &dyn Store) -> (Vec<String>, Vec<String>) {
    let versions = store.distinct_versions().await.expect("versions");
    (versions, store.distinct_os().await.expect("os"))
}

/// Every answer made from the rollups alone.
#[derive(Debug, PartialEq)]
struct Rollups {
    overview: Overview,
    activity: Vec<(u64, u64, u64)>,
    versions: VersionAdoption,
    platforms: Platforms,
    features: FeatureAdoption,
    hardware: Hardware,
    workload: Workload,
    choices: FilterChoices,
}

impl Rollups {
    async fn by(store: &dyn Store) -> Self {
        let q = all_weeks();
        Self {
            overview: store.overview(&q).await.expect("overview"),
            activity: activity(store, &q).await,
            versions: store.version_adoption(&q).await.expect("versions"),
            platforms: store.platforms(&q).await.expect("platforms"),
            features: store.features(&q).await.expect("features"),
            hardware: store.hardware(&q).await.expect("hardware"),
            workload: store.workload(&q).await.expect("workload"),
            choices: store.filter_choices(&q, 1, 10).await.expect("choices"),
        }
    }
}

/// The table of uncounted reports: SQLite's ingest log, PostgreSQL's pending keys.
fn uncounted_log(backend: &Backend) -> &'static str {
    if backend.name == "sqlite" {
        "incoming"
    } else {
        "rollup_pending"
    }
}

async fn assert_log_is_empty(backend: &Backend) {
    let log = uncounted_log(backend);
    let left = support::admin_i64(backend, &format!("SELECT count(*) FROM {log}")).await;
    assert_eq!(
        left, 0,
        "{}: counted reports leave the {log} table",
        backend.name
    );
}

/// What a crash between a report's commit and its count leaves behind: no counts, and the
/// reports uncounted (in SQLite's ingest log or, on PostgreSQL, stored with their keys in
/// rollup_pending), with their text set to the SQL expression `raw`, and with the facts
/// the store kept beside them when `with_facts`.
async fn leave_uncounted(backend: &Backend, raw: &str, with_facts: bool) {
    support::wait_closed(backend).await;
    let forget_counts = "DELETE FROM rollups; DELETE FROM counter_deltas; DELETE FROM nodes;
         DELETE FROM node_weeks; DELETE FROM cluster_weeks;";
    let log = uncounted_log(backend);
    let left_behind = if backend.name == "sqlite" {
        format!(
            "INSERT INTO incoming (day, uuid, cluster_uuid, received_at, emqx_version,
                 os_name, os_version, edition, node_count, format, raw)
             SELECT day, uuid, cluster_uuid, received_at, emqx_version, os_name,
                 os_version, edition, node_count, format, {raw}
             FROM reports ORDER BY received_at;
             DELETE FROM reports;"
        )
    } else {
        format!(
            "INSERT INTO rollup_pending (day, uuid) SELECT day, uuid FROM reports;
             UPDATE reports SET raw = {raw};"
        )
    };
    // In arrival order, so the facts of the report that replaced another are the last set.
    let facts: String = history()
        .iter()
        .filter(|_| with_facts)
        .map(|r| {
            let json = serde_json::to_string(&r.analytics).expect("facts as JSON");
            let json = json.replace('\'', "''");
            let (day, uuid) = (r.day, &r.uuid);
            format!("UPDATE {log} SET facts = '{json}' WHERE day = '{day}' AND uuid = '{uuid}';")
        })
        .collect();
    support::admin_execute(backend, &format!("{forget_counts}{left_behind}{facts}")).await;
}

/// Counting after a crash reads the facts kept beside each uncounted report, never its
/// JSON: reports whose text says nothing count as what they said when they arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncounted_reports_count_with_their_kept_facts_not_their_json() {
    each_backend(|backend| async move {
        let counted = Counted::by(&*seeded(&backend).await).await;
        leave_uncounted(&backend, "'{}'", true).await;
        let store = support::open(&backend).await;
        assert_eq!(Counted::by(&*store).await, counted, "{}", backend.name);
    })
    .await;
}

/// Reports that a build before schema version 5 left uncounted have no facts kept: the
/// migration adds the column, and opening through the collector fills it from their text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_of_reports_left_uncounted_before_they_were_kept_are_back_filled_at_open() {
    each_backend(|backend| async move {
        let counted = Counted::by(&*seeded(&backend).await).await;
        leave_uncounted(&backend, "raw", false).await;
        // Version 10 numbers PostgreSQL's marks; SQLite has nothing to undo.
        let unnumbered = if backend.name == "sqlite" {
            ""
        } else {
            "ALTER TABLE rollup_pending DROP COLUMN seq;"
        };
        let version_4 = format!(
            "{unnumbered} ALTER TABLE {} DROP COLUMN facts; DROP TABLE node_claims;
             DROP TABLE IF EXISTS counter_deltas;
             DELETE FROM schema_migrations WHERE version >= 5;",
            uncounted_log(&backend)
        );
        support::admin_execute(&backend, &version_4).await;
        let store = beacon_collector::open_store(&backend.url)
            .await
            .expect("open");
        assert_eq!(Counted::by(&*store).await, counted, "{}", backend.name);
        assert_log_is_empty(&backend).await;
    })
    .await;
}

/// A database written before SQLite's ingest log (schema version 3) may hold reports whose
/// rollups were pending; migration 4 moves them into the log and they are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rollups_pending_before_the_ingest_log_are_counted_after_migrating() {
    each_backend(|backend| async move {
        if backend.name != "sqlite" {
            return;
        }
        let store = seeded(&backend).await;
        let expected = activity(&*store, &all_weeks()).await;
        let count = store.count().await.expect("count");
        drop(store);
        support::admin_execute(
            &backend,
            "DELETE FROM rollups; DELETE FROM nodes; DELETE FROM node_weeks;
             DELETE FROM cluster_weeks; DROP TABLE incoming;
             CREATE TABLE rollup_pending (day TEXT NOT NULL, uuid TEXT NOT NULL,
                 PRIMARY KEY (day, uuid)) WITHOUT ROWID;
             INSERT INTO rollup_pending (day, uuid) SELECT day, uuid FROM reports;
             DROP TABLE node_claims; DROP TABLE counter_deltas;
             DELETE FROM schema_migrations WHERE version >= 4;",
        )
        .await;
        let store = beacon_collector::open_store(&backend.url)
            .await
            .expect("open");
        assert_eq!(activity(&*store, &all_weeks()).await, expected);
        assert_eq!(store.count().await.expect("count"), count);
        let left = "SELECT count(*) FROM sqlite_master WHERE name = 'rollup_pending'";
        assert_eq!(support::admin_i64(&backend, left).await, 0);
        assert_eq!(
            support::admin_i64(&backend, "SELECT count(*) FROM incoming").await,
            0
        );
    })
    .await;
}

/// A replacement lowers the counters of what it replaces; one back at zero is dropped, so
/// the version the node no longer runs is no longer offered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_a_replacement_empties_is_dropped() {
    each_backend(|backend| async move {
        let store = support::open(&backend).await;
        let mut report = beacon_store::testing::sample_report("emptied", day(1));
        report.emqx_version = "5.0.0".into();
        store.insert(report.clone()).await.expect("insert");
        let versions = store.distinct_versions().await.expect("versions");
        assert_eq!(versions, ["5.0.0"], "{}", backend.name);
        report.emqx_version = "5.1.0".into();
        let outcome = store.insert(report).await.expect("replace");
        assert_eq!(outcome, InsertOutcome::Replaced, "{}", backend.name);
        let versions = store.distinct_versions().await.expect("versions");
        assert_eq!(versions, ["5.1.0"], "{}", backend.name);
    })
    .await;
}
