//! Synthetic history for demos and benchmarks: a year of weekly reports from a growing
//! population of clusters, as real EMQX 5.x (and some 4.x) report documents turned into
//! store rows the way ingest turns them (facts through `beacon_report::facts`).
//!
//! Used by `beacon collector seed-demo-data`, `beacon demo`, tests and benchmarks; it is
//! kept out of the store so that the collector's production build does not carry it.
//!
//! The population: clusters of 1 to 5 nodes arrive at a growing rate over the year (plus
//! installations already running when it starts), each lives for a while (many trials
//! last a week or two) and every node reports once a week on its own weekday. Clusters
//! pick a recent release when installed and upgrade to the newest one now and then, so
//! versions come in adoption waves. OS, edition, hardware, features and workload vary by
//! cluster; workload also varies by report. The same arguments give the same reports.

use chrono::{DateTime, Days, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use beacon_report::facts::Facts;
use beacon_store::NewReport;

/// Days of history generated, ending on `end_day`.
const WINDOW_DAYS: u32 = 365;
/// Share of clusters already installed when the window starts.
const EXISTING_SHARE: f64 = 0.12;

/// Releases and the day they came out, relative to the window's first day.
const RELEASES_5: &[(&str, i32)] = &[
    ("5.0.26", -330),
    ("5.1.6", -250),
    ("5.2.1", -180),
    ("5.3.2", -120),
    ("5.4.1", -60),
    ("5.5.1", -10),
    ("5.6.1", 40),
    ("5.7.2", 100),
    ("5.8.0", 160),
    ("5.8.1", 200),
    ("5.8.3", 250),
    ("5.8.5", 300),
    ("5.8.6", 340),
];
const RELEASES_4: &[&str] = &["4.3.22", "4.4.16", "4.4.18", "4.4.19"];

/// (OS name, versions, weight).
const OSES: &[(&str, &[&str], u32)] = &[
    ("Ubuntu", &["20.04", "22.04", "24.04"], 35),
    ("Debian GNU/Linux", &["11 (bullseye)", "12 (bookworm)"], 20),
    ("CentOS Linux", &["7 (Core)"], 10),
    ("Rocky Linux", &["8.9", "9.3"], 8),
    ("Red Hat Enterprise Linux", &["8.8", "9.2"], 7),
    ("Amazon Linux", &["2", "2023"], 8),
    ("Alpine Linux", &["3.18", "3.19"], 7),
    ("macOS", &["13.6", "14.2"], 5),
];
const NODE_COUNTS: &[(usize, u32)] = &[(1, 55), (2, 15), (3, 18), (4, 5), (5, 7)];
const CPUS: &[(u64, u32)] = &[
    (1, 5),
    (2, 20),
    (4, 30),
    (8, 25),
    (16, 12),
    (32, 6),
    (64, 2),
];
const BRIDGES: &[(&str, f64)] = &[
    ("http", 0.2),
    ("kafka_producer", 0.08),
    ("mqtt", 0.1),
    ("mysql", 0.05),
    ("pgsql", 0.04),
    ("redis", 0.04),
    ("mongodb", 0.03),
    ("influxdb_api_v2", 0.03),
];
const AUTHN: &[(&str, f64)] = &[
    ("password_based:built_in_database", 0.35),
    ("password_based:http", 0.08),
    ("password_based:mysql", 0.05),
    ("password_based:postgresql", 0.03),
    ("jwt", 0.1),
    ("scram:built_in_database", 0.02),
];
const AUTHZ: &[(&str, f64)] = &[
    ("file", 0.7),
    ("built_in_database", 0.2),
    ("http", 0.05),
    ("mysql", 0.03),
    ("redis", 0.02),
];
const GATEWAYS: &[(&str, f64)] = &[
    ("mqttsn", 0.04),
    ("coap", 0.02),
    ("lwm2m", 0.02),
    ("stomp", 0.01),
    ("exproto", 0.01),
];
const PLUGINS: &[(&str, f64)] = &[
    ("emqx_plugin_template-5.0.0", 0.03),
    ("emqx_auth_custom-1.2.0", 0.02),
];
const MODULES_4: &[(&str, f64)] = &[
    ("retainer", 0.6),
    ("delayed", 0.1),
    ("rewrite", 0.08),
    ("subscription", 0.1),
    ("presence", 0.5),
];

/// `n_reports` reports from the year ending on `end_day`, in order of arrival.
pub fn generate(
    n_reports: usize,
    end_day: NaiveDate,
    rng_seed: u64,
) -> impl Iterator<Item = NewReport> + Send + 'static {
    let mut rng = StdRng::seed_from_u64(rng_seed);
    let mut clusters = Vec::new();
    let mut planned = 0;
    while planned < n_reports {
        let cluster = Cluster::new(&mut rng, clusters.len());
        planned += cluster.report_count();
        clusters.push(cluster);
    }
    let mut events: Vec<Event> = clusters.iter().flat_map(Cluster::events).collect();
    events.sort_unstable();
    events.truncate(n_reports);
    let first_day = end_day
        .checked_sub_days(Days::new(u64::from(WINDOW_DAYS - 1)))
        .unwrap_or(NaiveDate::MIN);
    events
        .into_iter()
        .map(move |event| clusters[event.cluster].report(&event, first_day, rng_seed))
}

/// One report to write: sorted by day, then time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    day: u32,
    second: u32,
    cluster: usize,
    node: usize,
}

struct SeedNode {
    uuid: String,
    /// Days after the cluster's first day of this node's first report (its weekday).
    offset: u32,
    /// Second of the day its reports arrive.
    second: u32,
    secret_sha256: Option<String>,
}

/// What stays the same for a cluster's whole life.
struct Cluster {
    index: usize,
    uuid: String,
    nodes: Vec<SeedNode>,
    /// First and last day (inclusive) it reports, as window day numbers.
    first_day: u32,
    last_day: u32,
    /// (from window day, version) in order; the first entry applies from `first_day`.
    versions: Vec<(u32, &'static str)>,
    v4: bool,
    os: (&'static str, &'static str),
    edition: &'static str,
    cpus: u64,
    memory: u64,
    clients_per_node: f64,
    topics_per_client: f64,
    rate_per_client: f64,
    features: Features,
}

#[derive(Default)]
struct Features {
    retained: u64,
    delayed: u64,
    topic_rewrite: u64,
    auto_subscribe: u64,
    rules: u64,
    exhook: u64,
    bridges: Vec<&'static str>,
    authn: Vec<&'static str>,
    authz: Vec<&'static str>,
    gateways: Vec<&'static str>,
    plugins: Vec<&'static str>,
    modules_4: Vec<&'static str>,
}

impl Cluster {
    fn new(rng: &mut StdRng, index: usize) -> Self {
        let (first_day, last_day) = lifetime(rng);
        let node_count = weighted(rng, NODE_COUNTS);
        let v4 = rng.random_bool(0.1);
        let nodes = (0..node_count).map(|_| seed_node(rng, v4)).collect();
        let (os_name, os_versions, _) = OSES[weighted_index(rng, OSES.iter().map(|o| o.2))];
        let os_version = os_versions[rng.random_range(0..os_versions.len())];
        let cpus = weighted(rng, CPUS);
        let gib_per_cpu = [2u64, 4, 8][rng.random_range(0..3)];
        // Machines report a little less than their nominal memory.
        let memory = cpus * gib_per_cpu * (1 << 30) / 100 * 96;
        Self {
            index,
            uuid: uuid(rng),
            nodes,
            first_day,
            last_day,
            versions: versions(rng, first_day, last_day, v4),
            v4,
            os: (os_name, os_version),
            edition: match (v4, rng.random_bool(0.15)) {
                (_, true) => "enterprise",
                (true, false) => "community",
                (false, false) => "opensource",
            },
            cpus,
            memory,
            clients_per_node: log_normal(rng, 5.0, 1.8),
            topics_per_client: rng.random_range(0.2..3.0),
            rate_per_client: log_normal(rng, -2.0, 1.2),
            features: Features::new(rng, v4),
        }
    }

    fn report_days(&self, node: &SeedNode) -> impl Iterator<Item = u32> + use<> {
        let first = self.first_day + node.offset;
        (first..=self.last_day.min(WINDOW_DAYS - 1)).step_by(7)
    }

    fn report_count(&self) -> usize {
        self.nodes
            .iter()
            .map(|node| self.report_days(node).count())
            .sum()
    }

    fn events(&self) -> Vec<Event> {
        let mut events = Vec::new();
        for (n, node) in self.nodes.iter().enumerate() {
            events.extend(self.report_days(node).map(|day| Event {
                day,
                second: node.second,
                cluster: self.index,
                node: n,
            }));
        }
        events
    }

    fn version_on(&self, day: u32) -> &'static str {
        self.versions
            .iter()
            .take_while(|(from, _)| *from <= day)
            .last()
            .map_or(self.versions[0].1, |(_, version)| version)
    }

    fn report(&self, event: &Event, first_day: NaiveDate, rng_seed: u64) -> NewReport {
        let mut rng = StdRng::seed_from_u64(mix(&[
            rng_seed,
            self.index as u64,
            event.node as u64,
            u64::from(event.day),
        ]));
        let day = first_day
            .checked_add_days(Days::new(u64::from(event.day)))
            .unwrap_or(first_day);
        let received_at = at_second(day, event.second);
        let node = &self.nodes[event.node];
        let version = self.version_on(event.day);
        let doc = self.document(&mut rng, event, version);
        let raw = doc.to_string();
        NewReport {
            uuid: node.uuid.clone(),
            cluster_uuid: (!self.v4).then(|| self.uuid.clone()),
            day,
            received_at,
            emqx_version: version.to_owned(),
            os_name: Some(self.os.0.to_owned()),
            os_version: Some(self.os.1.to_owned()),
            edition: Some(self.edition.to_owned()),
            node_count: self.nodes.len() as i64,
            format: if self.v4 { 4 } else { 5 },
            analytics: Facts::of(&doc),
            raw,
        }
    }

    fn document(&self, rng: &mut StdRng, event: &Event, version: &str) -> Value {
        let node = &self.nodes[event.node];
        // Usage grows over a cluster's life, with noise from one report to the next.
        let age_weeks = f64::from(event.day.saturating_sub(self.first_day)) / 7.0;
        let growth = 1.0 + age_weeks * 0.02;
        let noise = rng.random_range(0.8..1.25);
        let clients = (self.clients_per_node * growth * noise).round() as u64;
        let received_rate = round2(clients as f64 * self.rate_per_client * noise);
        let sent_rate = round2(received_rate * rng.random_range(0.5..3.0));
        let up_time = rng.random_range(3_600_000u64..30 * 86_400_000);
        let received = (received_rate * up_time as f64 / 1000.0) as u64;
        let sent = (sent_rate * up_time as f64 / 1000.0) as u64;
        let peers: Vec<&str> = self
            .nodes
            .iter()
            .filter(|other| other.uuid != node.uuid)
            .map(|other| other.uuid.as_str())
            .collect();
        let mut doc = json!({
            "emqx_version": version,
            "license": {"edition": self.edition},
            "os_name": self.os.0,
            "os_version": self.os.1,
            "otp_version": if self.v4 { "24" } else { "26" },
            "up_time": up_time,
            "uuid": node.uuid,
            "nodes_uuid": peers,
            "active_plugins": self.features.plugins,
            "num_clients": clients,
            "messages_received": received,
            "messages_sent": sent,
        });
        if self.v4 {
            doc["active_modules"] = json!(self.features.modules_4);
            return doc;
        }
        let topics = (clients as f64 * self.topics_per_client).round() as u64;
        self.add_5x_parts(&mut doc, topics, (sent_rate, received_rate));
        if let Some(secret) = &node.secret_sha256 {
            doc["deletion_secret_sha256"] = json!(secret);
        }
        doc
    }

    fn add_5x_parts(&self, doc: &mut Value, topics: u64, (sent_rate, received_rate): (f64, f64)) {
        let f = &self.features;
        let bridges: serde_json::Map<String, Value> = f
            .bridges
            .iter()
            .map(|name| {
                let linked = u64::from(f.rules > 0);
                (
                    name.to_string(),
                    json!({"num_linked_by_rules": linked, "num": 1}),
                )
            })
            .collect();
        let gateways: serde_json::Map<String, Value> = f
            .gateways
            .iter()
            .map(|name| (name.to_string(), json!({"num_clients": 3})))
            .collect();
        let parts = json!({
            "cluster_uuid": self.uuid,
            "build_info": {
                "wordsize": 64, "relform": "tgz", "os": "ubuntu22.04",
                "erlang": "26.2.5-2", "elixir": "none", "arch": "x86_64-pc-linux-gnu"
            },
            "vm_specs": {"num_cpus": self.cpus, "total_memory": self.memory},
            "mqtt_runtime_insights": {
                "num_topics": topics,
                "messages_sent_rate": sent_rate,
                "messages_received_rate": received_rate
            },
            "advanced_mqtt_features": {
                "topic_rewrite": f.topic_rewrite, "retained": f.retained,
                "delayed": f.delayed, "auto_subscribe": f.auto_subscribe
            },
            "authn_authz": {"authz": f.authz, "authn_listener": {}, "authn": f.authn},
            "gateway": gateways,
            "rule_engine": {"num_rules": f.rules},
            "bridge": {"num_data_bridges": f.bridges.len(), "data_bridge": bridges},
            "exhook": {"servers": [], "num_servers": f.exhook}
        });
        if let (Some(doc), Value::Object(parts)) = (doc.as_object_mut(), parts) {
            doc.extend(parts);
        }
    }
}

impl Features {
    fn new(rng: &mut StdRng, v4: bool) -> Self {
        if v4 {
            return Self {
                modules_4: pick(rng, MODULES_4),
                ..Self::default()
            };
        }
        let mut count = |p: f64, max: u64| {
            if rng.random_bool(p) {
                rng.random_range(1..=max)
            } else {
                0
            }
        };
        let (retained, delayed) = (count(0.55, 10_000), count(0.1, 500));
        let (topic_rewrite, auto_subscribe) = (count(0.08, 5), count(0.12, 5));
        let (rules, exhook) = (count(0.35, 30), count(0.03, 2));
        Self {
            retained,
            delayed,
            topic_rewrite,
            auto_subscribe,
            rules,
            exhook,
            bridges: pick(rng, BRIDGES),
            authn: pick(rng, AUTHN),
            authz: pick(rng, AUTHZ),
            gateways: pick(rng, GATEWAYS),
            plugins: pick(rng, PLUGINS),
            modules_4: Vec::new(),
        }
    }
}

/// First and last window day of a cluster: some were installed before the window
/// and long-lived; new ones arrive at a rate growing through the year, and a third of
/// those are trials of a week or two.
fn lifetime(rng: &mut StdRng) -> (u32, u32) {
    let (first, mean_weeks) = if rng.random_bool(EXISTING_SHARE) {
        (0, 40.0)
    } else {
        let arrival = f64::from(WINDOW_DAYS) * rng.random::<f64>().sqrt();
        let mean = if rng.random_bool(0.33) { 1.0 } else { 30.0 };
        ((arrival as u32).min(WINDOW_DAYS - 1), mean)
    };
    let weeks = 1.0 + mean_weeks * -(1.0 - rng.random::<f64>()).ln();
    (first, first + (weeks * 7.0) as u32)
}

/// The version installed first, then upgrades to the newest release now and then.
fn versions(rng: &mut StdRng, first: u32, last: u32, v4: bool) -> Vec<(u32, &'static str)> {
    if v4 {
        return vec![(first, RELEASES_4[rng.random_range(0..RELEASES_4.len())])];
    }
    let released = |day: u32| {
        let day = i64::from(day);
        RELEASES_5.partition_point(|(_, out)| i64::from(*out) <= day)
    };
    let newest = released(first).max(1);
    // Most install the newest release; some stay a few releases behind.
    let behind = if rng.random_bool(0.6) {
        0
    } else {
        rng.random_range(1..=4.min(newest - 1).max(1))
    };
    let mut current = newest.saturating_sub(1 + behind);
    let mut versions = vec![(first, RELEASES_5[current].0)];
    let mut day = first + 7;
    while day <= last.min(WINDOW_DAYS - 1) {
        let latest = released(day).max(1) - 1;
        if latest > current && rng.random_bool(0.04) {
            current = latest;
            versions.push((day, RELEASES_5[current].0));
        }
        day += 7;
    }
    versions
}

fn seed_node(rng: &mut StdRng, v4: bool) -> SeedNode {
    let secret = !v4 && rng.random_bool(0.25);
    SeedNode {
        uuid: uuid(rng),
        offset: rng.random_range(0..7),
        second: rng.random_range(0..86_400),
        secret_sha256: secret.then(|| {
            (0..4)
                .map(|_| format!("{:016x}", rng.random::<u64>()))
                .collect()
        }),
    }
}

/// A random id in EMQX's uppercase 8-4-4-4-12 form.
fn uuid(rng: &mut StdRng) -> String {
    let n: u128 = rng.random();
    format!(
        "{:08X}-{:04X}-{:04X}-{:04X}-{:012X}",
        n >> 96,
        (n >> 80) & 0xFFFF,
        (n >> 64) & 0xFFFF,
        (n >> 48) & 0xFFFF,
        n & 0xFFFF_FFFF_FFFF
    )
}

fn pick(rng: &mut StdRng, choices: &[(&'static str, f64)]) -> Vec<&'static str> {
    let mut picked: Vec<&'static str> = choices
        .iter()
        .filter(|(_, p)| rng.random_bool(*p))
        .map(|(name, _)| *name)
        .collect();
    picked.sort_unstable();
    picked
}

fn weighted<T: Copy>(rng: &mut StdRng, choices: &[(T, u32)]) -> T {
    choices[weighted_index(rng, choices.iter().map(|c| c.1))].0
}

fn weighted_index(rng: &mut StdRng, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = weights.clone().sum();
    let mut ticket = rng.random_range(0..total.max(1));
    for (index, weight) in weights.enumerate() {
        if ticket < weight {
            return index;
        }
        ticket -= weight;
    }
    0
}

/// exp(N(mu, sigma)) by the Box-Muller transform.
fn log_normal(rng: &mut StdRng, mu: f64, sigma: f64) -> f64 {
    let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (mu + sigma * normal).exp()
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn at_second(day: NaiveDate, second: u32) -> DateTime<Utc> {
    let midnight = day.and_time(chrono::NaiveTime::MIN).and_utc();
    midnight + chrono::Duration::seconds(i64::from(second))
}

/// A seed for one report's own randomness (SplitMix64 over the parts), so a report does
/// not depend on which reports were generated before it.
fn mix(parts: &[u64]) -> u64 {
    parts.iter().fold(0x9E37_79B9_7F4A_7C15, |state, part| {
        let mut z = state ^ part.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 30).expect("day")
    }

    #[test]
    fn gives_exactly_n_ordered_reports_within_the_year() {
        let reports: Vec<NewReport> = generate(3000, end(), 7).collect();
        assert_eq!(reports.len(), 3000);
        let first = end() - Days::new(364);
        assert!(reports.iter().all(|r| (first..=end()).contains(&r.day)));
        assert!(
            reports
                .windows(2)
                .all(|w| w[0].received_at <= w[1].received_at)
        );
        let mut keys: Vec<_> = reports.iter().map(|r| (r.day, r.uuid.clone())).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 3000, "one report per node and day");
    }

    #[test]
    fn is_deterministic_and_varied() {
        let a: Vec<NewReport> = generate(2000, end(), 42).collect();
        let b: Vec<NewReport> = generate(2000, end(), 42).collect();
        assert_eq!(a, b);
        let distinct = |f: fn(&NewReport) -> String| {
            let mut values: Vec<String> = a.iter().map(f).collect();
            values.sort();
            values.dedup();
            values.len()
        };
        assert!(distinct(|r| r.emqx_version.clone()) >= 8);
        assert!(distinct(|r| r.os_name.clone().unwrap_or_default()) >= 6);
        assert!(distinct(|r| r.node_count.to_string()) == 5);
        assert!(a.iter().any(|r| r.format == 4) && a.iter().any(|r| r.format == 5));
        let late = a.iter().filter(|r| r.day > end() - Days::new(30)).count();
        let early = a.iter().filter(|r| r.day < end() - Days::new(335)).count();
        assert!(late > early * 2, "grows over the year: {early} then {late}");
    }

    #[test]
    fn reports_parse_back_to_their_facts() {
        for report in generate(300, end(), 3) {
            let doc: Value = serde_json::from_str(&report.raw).expect("JSON");
            assert_eq!(Facts::of(&doc), report.analytics);
            assert_eq!(doc["uuid"], json!(report.uuid));
            assert_eq!(doc["emqx_version"], json!(report.emqx_version));
        }
    }
}
