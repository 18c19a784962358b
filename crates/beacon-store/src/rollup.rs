//! Rollups: what counting a report changes, computed here once for both backends.
//!
//! The unit of counting is the cluster-week: per ISO week (starting Monday), each cluster
//! has one snapshot, the latest report any of its nodes sent that week, and each node has
//! one. A report that replaces an earlier one (same node and day, or a later node of the
//! same cluster in the same week) moves the counters from the old snapshot's values to the
//! new ones, so a cluster is counted once per week however many nodes report, and a
//! replaced report is never counted twice.
//!
//! Counters live in one table keyed by (version, os, kind, week, k1, k2) and are kept for
//! every version and os ([`ALL`]) too, so that a dashboard query, filtered or not, reads one
//! index range whose size depends on the number of weeks and distinct values, never on
//! the number of reports.
//!
//! This module is pure: a backend loads the snapshot rows a chunk of uncounted reports
//! touches ([`wanted`]), [`apply`] computes the changed rows and the counter deltas, and
//! the backend writes them in the transaction that counts the chunk (see `counting`),
//! after the reports themselves were committed.

use std::collections::hash_map::Entry;

use foldhash::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::NewReport;
use crate::buckets::{bucket, memory_bucket};

/// The value of the version or os dimension that stands for every value.
pub(crate) const ALL: &str = "";
/// What a missing OS, OS version or edition is counted as.
pub(crate) const UNKNOWN: &str = "unknown";

/// The counters of the rollup table; `k1`/`k2` say what each one is keyed by.
pub(crate) mod kind {
    /// Active clusters.
    pub(crate) const CLUSTERS: &str = "clusters";
    /// Active nodes, by each node's own version and os.
    pub(crate) const NODES: &str = "nodes";
    /// Nodes seen for the first time, in the week of their first report.
    pub(crate) const NEW_NODES: &str = "new_nodes";
    /// k1: EMQX version.
    pub(crate) const VERSION: &str = "version";
    /// k1: OS name, k2: OS version.
    pub(crate) const OS: &str = "os";
    /// k1: edition.
    pub(crate) const EDITION: &str = "edition";
    /// k1: CPU count.
    pub(crate) const CPUS: &str = "cpus";
    /// k1: memory as the exponent of the nearest power of two.
    pub(crate) const MEMORY: &str = "memory";
    /// k1: nodes in the cluster.
    pub(crate) const SIZE: &str = "size";
    /// k1: family, k2: feature name.
    pub(crate) const FEATURE: &str = "feature";
    /// k1: workload bucket (see `buckets`).
    pub(crate) const CLIENTS: &str = "clients";
    pub(crate) const TOPICS: &str = "topics";
    pub(crate) const SENT_RATE: &str = "sent_rate";
    pub(crate) const RECEIVED_RATE: &str = "received_rate";

    /// Every kind, for reading one back from its name.
    pub(crate) const EVERY: [&str; 14] = [
        CLUSTERS,
        NODES,
        NEW_NODES,
        VERSION,
        OS,
        EDITION,
        CPUS,
        MEMORY,
        SIZE,
        FEATURE,
        CLIENTS,
        TOPICS,
        SENT_RATE,
        RECEIVED_RATE,
    ];
}

/// Feature families: `feature` holds one flag per kind of feature ("uses any bridge"),
/// the others one entry per bridge type, mechanism, gateway or plugin.
pub(crate) mod family {
    pub(crate) const FEATURE: &str = "feature";
    pub(crate) const BRIDGE: &str = "bridge";
    pub(crate) const AUTHN: &str = "authn";
    pub(crate) const AUTHZ: &str = "authz";
    pub(crate) const GATEWAY: &str = "gateway";
    pub(crate) const PLUGIN: &str = "plugin";
}

/// Monday of `day`'s ISO week (clamped at the earliest representable date).
pub(crate) fn week_of(day: NaiveDate) -> NaiveDate {
    let back = u64::from(day.weekday().num_days_from_monday());
    day.checked_sub_days(Days::new(back))
        .unwrap_or(NaiveDate::MIN)
}

/// The filter dimensions a snapshot is counted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Dims {
    pub(crate) version: String,
    pub(crate) os: String,
}

impl Dims {
    fn of(report: &NewReport) -> Self {
        Self {
            version: report.emqx_version.clone(),
            os: known(report.os_name.as_deref()),
        }
    }
}

fn known(value: Option<&str>) -> String {
    match value {
        Some(text) if !text.is_empty() => text.to_owned(),
        _ => UNKNOWN.to_owned(),
    }
}

/// What a cluster's snapshot counts, besides its dimensions; stored as JSON.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct Profile {
    os_version: String,
    edition: String,
    node_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    num_cpus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    total_memory: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    num_clients: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    num_topics: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sent_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    received_rate: Option<f64>,
    /// (family, name) pairs.
    #[serde(default)]
    features: Vec<(String, String)>,
}

impl Profile {
    fn of(report: &NewReport) -> Self {
        let facts = &report.analytics;
        let flags = [
            ("retained", facts.retained),
            ("delayed", facts.delayed),
            ("topic_rewrite", facts.topic_rewrite),
            ("auto_subscribe", facts.auto_subscribe),
            ("rule_engine", facts.rule_engine),
            ("exhook", facts.exhook),
        ];
        let lists = [
            (family::BRIDGE, &facts.bridges),
            (family::AUTHN, &facts.authn),
            (family::AUTHZ, &facts.authz),
            (family::GATEWAY, &facts.gateways),
            (family::PLUGIN, &facts.plugins),
        ];
        let mut features: Vec<(String, String)> = flags
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| (family::FEATURE.to_owned(), (*name).to_owned()))
            .collect();
        for (family, names) in lists {
            if !names.is_empty() {
                features.push((family::FEATURE.to_owned(), family.to_owned()));
            }
            features.extend(names.iter().map(|name| (family.to_owned(), name.clone())));
        }
        Self {
            os_version: known(report.os_version.as_deref()),
            edition: known(report.edition.as_deref()),
            node_count: report.node_count,
            num_cpus: facts.num_cpus,
            total_memory: facts.total_memory,
            num_clients: facts.num_clients,
            num_topics: facts.num_topics,
            sent_rate: facts.messages_sent_rate,
            received_rate: facts.messages_received_rate,
            features,
        }
    }

    /// The JSON text stored in `cluster_weeks.profile`.
    pub(crate) fn to_json(&self) -> String {
        // Cannot fail: plain fields, string keys, and non-finite floats become `null`.
        serde_json::to_string(self).expect("a Profile always serializes to JSON")
    }

    /// Every counter this snapshot adds one to (besides the dimensions it is counted under).
    fn counters(&self, dims: &Dims) -> Vec<Counter> {
        let mut counters = vec![
            Counter::new(kind::CLUSTERS, "", ""),
            Counter::new(kind::VERSION, &dims.version, ""),
            Counter::new(kind::OS, &dims.os, &self.os_version),
            Counter::new(kind::EDITION, &self.edition, ""),
            Counter::new(kind::SIZE, &self.node_count.to_string(), ""),
        ];
        if let Some(cpus) = self.num_cpus {
            counters.push(Counter::new(kind::CPUS, &cpus.to_string(), ""));
        }
        if let Some(exponent) = self.total_memory.and_then(memory_bucket) {
            counters.push(Counter::new(kind::MEMORY, &exponent.to_string(), ""));
        }
        let workload = [
            (kind::CLIENTS, self.num_clients.map(|n| n as f64)),
            (kind::TOPICS, self.num_topics.map(|n| n as f64)),
            (kind::SENT_RATE, self.sent_rate),
            (kind::RECEIVED_RATE, self.received_rate),
        ];
        for (kind, value) in workload {
            if let Some(index) = value.and_then(bucket) {
                counters.push(Counter::new(kind, &index.to_string(), ""));
            }
        }
        counters.extend(
            self.features
                .iter()
                .map(|(family, name)| Counter::new(kind::FEATURE, family, name)),
        );
        counters.sort_unstable();
        counters
    }
}

/// One counter a snapshot contributes to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Counter {
    kind: &'static str,
    k1: String,
    k2: String,
}

impl Counter {
    fn new(kind: &'static str, k1: &str, k2: &str) -> Self {
        Self {
            kind,
            k1: k1.to_owned(),
            k2: k2.to_owned(),
        }
    }
}

/// A node's latest report of a week.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeWeek {
    pub(crate) uuid: String,
    pub(crate) week: NaiveDate,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) dims: Dims,
}

/// A cluster's latest report of a week.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClusterWeek {
    pub(crate) key: String,
    pub(crate) week: NaiveDate,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) dims: Dims,
    pub(crate) profile: Profile,
}

/// A node ever seen: its first report. (Who may delete its reports is its claim, kept at
/// ingest: `claims.rs`.)
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) uuid: String,
    pub(crate) first_day: NaiveDate,
    pub(crate) first_at: DateTime<Utc>,
    pub(crate) dims: Dims,
}

/// A change to one counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Delta {
    pub(crate) version: String,
    pub(crate) os: String,
    pub(crate) kind: &'static str,
    pub(crate) week: NaiveDate,
    pub(crate) k1: String,
    pub(crate) k2: String,
    pub(crate) n: i64,
}

/// The key naming a report's cluster: its `cluster_uuid`, or for a 4.x report (which has
/// none) the smallest uuid among the node and the peers it lists, which every node of
/// that cluster computes alike.
pub(crate) fn cluster_key(report: &NewReport) -> String {
    match &report.cluster_uuid {
        Some(cluster) => cluster.clone(),
        None => report
            .analytics
            .peer_uuids
            .iter()
            .chain(std::iter::once(&report.uuid))
            .min()
            .unwrap_or(&report.uuid)
            .clone(),
    }
}

/// The snapshot rows a batch of reports reads, without duplicates.
#[derive(Debug, Default)]
pub(crate) struct Wanted {
    pub(crate) nodes: Vec<String>,
    pub(crate) node_weeks: Vec<(String, NaiveDate)>,
    pub(crate) cluster_weeks: Vec<(String, NaiveDate)>,
}

pub(crate) fn wanted<'a>(reports: impl IntoIterator<Item = &'a NewReport>) -> Wanted {
    let mut wanted = Wanted::default();
    let mut seen = (HashSet::default(), HashSet::default(), HashSet::default());
    for report in reports {
        let week = week_of(report.day);
        if seen.0.insert(report.uuid.as_str()) {
            wanted.nodes.push(report.uuid.clone());
        }
        if seen.1.insert((report.uuid.as_str(), week)) {
            wanted.node_weeks.push((report.uuid.clone(), week));
        }
        let key = cluster_key(report);
        if seen.2.insert((key.clone(), week)) {
            wanted.cluster_weeks.push((key, week));
        }
    }
    wanted
}

/// The snapshot rows found for [`Wanted`].
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) nodes: Vec<Node>,
    pub(crate) node_weeks: Vec<NodeWeek>,
    pub(crate) cluster_weeks: Vec<ClusterWeek>,
}

/// Rows to upsert and counter deltas to add, all for one transaction.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub(crate) nodes: Vec<Node>,
    pub(crate) node_weeks: Vec<NodeWeek>,
    pub(crate) cluster_weeks: Vec<ClusterWeek>,
    pub(crate) deltas: Vec<Delta>,
}

/// Applies `reports`, in order, to the loaded snapshots.
pub(crate) fn apply<'a>(
    loaded: Loaded,
    reports: impl IntoIterator<Item = &'a NewReport>,
) -> Changes {
    let mut state = State::new(loaded);
    for report in reports {
        state.apply(report);
    }
    state.into_changes()
}

/// A loaded or changed row; only changed rows are written back.
struct Slot<T> {
    row: T,
    changed: bool,
}

fn slots<K: std::hash::Hash + Eq, T>(rows: Vec<T>, key: impl Fn(&T) -> K) -> HashMap<K, Slot<T>> {
    rows.into_iter()
        .map(|row| {
            let slot = Slot {
                row,
                changed: false,
            };
            (key(&slot.row), slot)
        })
        .collect()
}

fn changed<K, T>(slots: HashMap<K, Slot<T>>) -> Vec<T> {
    slots
        .into_values()
        .filter(|slot| slot.changed)
        .map(|slot| slot.row)
        .collect()
}

struct State {
    nodes: HashMap<String, Slot<Node>>,
    node_weeks: HashMap<(String, NaiveDate), Slot<NodeWeek>>,
    cluster_weeks: HashMap<(String, NaiveDate), Slot<ClusterWeek>>,
    deltas: Deltas,
}

impl State {
    fn new(loaded: Loaded) -> Self {
        Self {
            nodes: slots(loaded.nodes, |node| node.uuid.clone()),
            node_weeks: slots(loaded.node_weeks, |row| (row.uuid.clone(), row.week)),
            cluster_weeks: slots(loaded.cluster_weeks, |row| (row.key.clone(), row.week)),
            deltas: Deltas::default(),
        }
    }

    fn into_changes(self) -> Changes {
        Changes {
            nodes: changed(self.nodes),
            node_weeks: changed(self.node_weeks),
            cluster_weeks: changed(self.cluster_weeks),
            deltas: self.deltas.into_nonzero(),
        }
    }

    fn apply(&mut self, report: &NewReport) {
        let week = week_of(report.day);
        let dims = Dims::of(report);
        self.node_week(report, week, &dims);
        self.cluster_week(report, week, &dims);
        self.node(report, dims);
    }

    /// A report older than the week's snapshot leaves it alone: the snapshot is the latest.
    fn node_week(&mut self, report: &NewReport, week: NaiveDate, dims: &Dims) {
        let fresh = NodeWeek {
            uuid: report.uuid.clone(),
            week,
            received_at: report.received_at,
            dims: dims.clone(),
        };
        match self.node_weeks.entry((report.uuid.clone(), week)) {
            Entry::Vacant(vacant) => {
                self.deltas.add(kind::NODES, week, dims, "", "", 1);
                vacant.insert(Slot {
                    row: fresh,
                    changed: true,
                });
            }
            Entry::Occupied(mut occupied) => {
                let slot = occupied.get_mut();
                if report.received_at < slot.row.received_at {
                    return;
                }
                if slot.row.dims != *dims {
                    self.deltas
                        .add(kind::NODES, week, &slot.row.dims, "", "", -1);
                    self.deltas.add(kind::NODES, week, dims, "", "", 1);
                }
                slot.row = fresh;
                slot.changed = true;
            }
        }
    }

    fn cluster_week(&mut self, report: &NewReport, week: NaiveDate, dims: &Dims) {
        let fresh = ClusterWeek {
            key: cluster_key(report),
            week,
            received_at: report.received_at,
            dims: dims.clone(),
            profile: Profile::of(report),
        };
        match self.cluster_weeks.entry((fresh.key.clone(), week)) {
            Entry::Vacant(vacant) => {
                self.deltas.replace(week, None, (dims, &fresh.profile));
                vacant.insert(Slot {
                    row: fresh,
                    changed: true,
                });
            }
            Entry::Occupied(mut occupied) => {
                let slot = occupied.get_mut();
                if report.received_at < slot.row.received_at {
                    return;
                }
                let old = (&slot.row.dims, &slot.row.profile);
                self.deltas
                    .replace(week, Some(old), (&fresh.dims, &fresh.profile));
                slot.row = fresh;
                slot.changed = true;
            }
        }
    }

    /// First seen is the earliest report by (day, received_at).
    fn node(&mut self, report: &NewReport, dims: Dims) {
        let slot = match self.nodes.entry(report.uuid.clone()) {
            Entry::Vacant(vacant) => {
                self.deltas
                    .add(kind::NEW_NODES, week_of(report.day), &dims, "", "", 1);
                vacant.insert(Slot {
                    row: Node {
                        uuid: report.uuid.clone(),
                        first_day: report.day,
                        first_at: report.received_at,
                        dims,
                    },
                    changed: true,
                });
                return;
            }
            Entry::Occupied(occupied) => occupied.into_mut(),
        };
        let node = &mut slot.row;
        if (report.day, report.received_at) < (node.first_day, node.first_at) {
            let old_week = week_of(node.first_day);
            self.deltas
                .add(kind::NEW_NODES, old_week, &node.dims, "", "", -1);
            self.deltas
                .add(kind::NEW_NODES, week_of(report.day), &dims, "", "", 1);
            (node.first_day, node.first_at, node.dims) = (report.day, report.received_at, dims);
            slot.changed = true;
        }
    }
}

/// Counter deltas of a batch, merged per counter and dimension level.
#[derive(Default)]
struct Deltas {
    /// By (week, kind), then by the other key parts packed into one string (see
    /// [`pack`]): one probe and no allocation for a counter already in the batch, which
    /// matters because a chunk adds tens of counters per report at four levels each.
    merged: HashMap<(NaiveDate, &'static str), HashMap<String, i64>>,
    scratch: String,
}

impl Deltas {
    /// Adds `n` to a counter under its dimensions, under each of them alone, and under
    /// neither: the four levels a query can filter on.
    fn add(
        &mut self,
        kind: &'static str,
        week: NaiveDate,
        dims: &Dims,
        k1: &str,
        k2: &str,
        n: i64,
    ) {
        let levels = [
            (dims.version.as_str(), dims.os.as_str()),
            (dims.version.as_str(), ALL),
            (ALL, dims.os.as_str()),
            (ALL, ALL),
        ];
        let counters = self.merged.entry((week, kind)).or_default();
        for (version, os) in levels {
            pack(&mut self.scratch, [version, os, k1, k2]);
            add_to(counters, &self.scratch, n);
        }
    }

    /// Adds `n` to one counter, its key parts packed (see [`pack`]).
    fn add_packed(&mut self, week: NaiveDate, kind: &'static str, packed: &str, n: i64) {
        add_to(self.merged.entry((week, kind)).or_default(), packed, n);
    }

    /// Moves a cluster-week from its old snapshot's counters to the new one's. With the
    /// same dimensions, only the counters that differ are touched.
    fn replace(&mut self, week: NaiveDate, old: Option<(&Dims, &Profile)>, new: (&Dims, &Profile)) {
        let (new_dims, new_profile) = new;
        let added = new_profile.counters(new_dims);
        let Some((old_dims, old_profile)) = old else {
            self.add_all(week, new_dims, &added, 1);
            return;
        };
        let removed = old_profile.counters(old_dims);
        let (removed, added) = if old_dims == new_dims {
            sorted_difference(&removed, &added)
        } else {
            (removed, added)
        };
        self.add_all(week, old_dims, &removed, -1);
        self.add_all(week, new_dims, &added, 1);
    }

    fn add_all(&mut self, week: NaiveDate, dims: &Dims, counters: &[Counter], n: i64) {
        for counter in counters {
            self.add(counter.kind, week, dims, &counter.k1, &counter.k2, n);
        }
    }

    fn into_nonzero(self) -> Vec<Delta> {
        let mut deltas = Vec::new();
        for ((week, kind), counters) in self.merged {
            for (packed, n) in counters {
                if n == 0 {
                    continue;
                }
                let [version, os, k1, k2] = unpack(&packed);
                deltas.push(Delta {
                    version,
                    os,
                    kind,
                    week,
                    k1,
                    k2,
                    n,
                });
            }
        }
        deltas
    }
}

fn add_to(counters: &mut HashMap<String, i64>, packed: &str, n: i64) {
    match counters.get_mut(packed) {
        Some(total) => *total += n,
        None => {
            counters.insert(packed.to_owned(), n);
        }
    }
}

/// Writes each part as `<byte length>:<text>`, so that any text, separators included,
/// packs and unpacks unambiguously.
fn pack(into: &mut String, parts: [&str; 4]) {
    into.clear();
    push_parts(into, &parts);
}

fn push_parts(into: &mut String, parts: &[&str]) {
    for part in parts {
        push_decimal(into, part.len());
        into.push(':');
        into.push_str(part);
    }
}

/// `n` in decimal, without the formatting machinery, which took a sixth of the writer's
/// time when it ran for every counter of every report counted.
fn push_decimal(into: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    into.extend(digits[at..].iter().map(|&digit| char::from(digit)));
}

fn unpack(packed: &str) -> [String; 4] {
    let mut rest = packed;
    std::array::from_fn(|_| next_part(&mut rest).unwrap_or_default().to_owned())
}

/// The next part [`push_parts`] wrote, moving `rest` past it; `None` if `rest` holds none.
fn next_part<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let (len, tail) = rest.split_once(':')?;
    let len = len.parse::<usize>().ok()?;
    let part = tail.get(..len)?;
    *rest = &tail[len..];
    Some(part)
}

/// Counter deltas as text (SQLite keeps those of counted chunks until it folds them into
/// the counters, see `sqlite::count`): per delta its week, its kind, its packed key (see
/// [`pack`]) and its value, each a packed part.
pub(crate) fn encode(deltas: &[Delta]) -> String {
    let mut text = String::new();
    for d in deltas {
        let (week, n) = (d.week.num_days_from_ce().to_string(), d.n.to_string());
        push_parts(
            &mut text,
            &[&week, d.kind, &d.version, &d.os, &d.k1, &d.k2, &n],
        );
    }
    text
}

/// The deltas of several [`encode`]d texts whose (kind, version, os) `keep` accepts,
/// summed per counter, the counters they leave unchanged dropped; `None` if a text is not
/// such a list. Allocates per counter kept, not per delta: the key of each delta is read
/// where it lies, already packed.
pub(crate) fn merge_encoded<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    keep: impl Fn(&str, &str, &str) -> bool,
) -> Option<Vec<Delta>> {
    let mut deltas = Deltas::default();
    for text in texts {
        let mut rest = text;
        while !rest.is_empty() {
            let week = NaiveDate::from_num_days_from_ce_opt(next_part(&mut rest)?.parse().ok()?)?;
            let kind = next_part(&mut rest)?;
            let kind = *kind::EVERY.iter().find(|every| **every == kind)?;
            let key_at = rest;
            let (version, os) = (next_part(&mut rest)?, next_part(&mut rest)?);
            let (_k1, _k2) = (next_part(&mut rest)?, next_part(&mut rest)?);
            let packed = &key_at[..key_at.len() - rest.len()];
            let n = next_part(&mut rest)?.parse().ok()?;
            if keep(kind, version, os) {
                deltas.add_packed(week, kind, packed, n);
            }
        }
    }
    Some(deltas.into_nonzero())
}

/// (only in `old`, only in `new`) of two sorted lists.
fn sorted_difference(old: &[Counter], new: &[Counter]) -> (Vec<Counter>, Vec<Counter>) {
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => (i, j) = (i + 1, j + 1),
            (Some(a), Some(b)) if a < b => {
                removed.push(a.clone());
                i += 1;
            }
            (Some(a), None) => {
                removed.push(a.clone());
                i += 1;
            }
            (_, Some(b)) => {
                added.push(b.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    (removed, added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Facts;

    fn report(uuid: &str, cluster: &str, day: u32, hour: u32, version: &str) -> NewReport {
        let day = NaiveDate::from_ymd_opt(2024, 3, day).expect("day");
        NewReport {
            uuid: uuid.into(),
            cluster_uuid: Some(cluster.into()),
            day,
            received_at: day.and_hms_opt(hour, 0, 0).expect("time").and_utc(),
            emqx_version: version.into(),
            os_name: Some("Ubuntu".into()),
            os_version: Some("22.04".into()),
            edition: None,
            node_count: 2,
            format: 5,
            raw: "{}".into(),
            analytics: Facts {
                num_clients: Some(10),
                retained: true,
                ..Facts::default()
            },
        }
    }

    fn total(changes: &Changes, kind: &str, version: &str, k1: &str) -> i64 {
        changes
            .deltas
            .iter()
            .filter(|d| d.kind == kind && d.version == version && d.os == ALL && d.k1 == k1)
            .map(|d| d.n)
            .sum()
    }

    #[test]
    fn packed_keys_unpack_to_their_parts() {
        let mut packed = String::new();
        let parts = ["5.0.9", "", "a:1:b", "\u{1f}é"];
        pack(&mut packed, parts);
        assert_eq!(unpack(&packed), parts.map(str::to_owned));
    }

    #[test]
    fn encoded_deltas_merge_back_per_counter_without_the_unchanged() {
        let week = NaiveDate::from_ymd_opt(2024, 3, 4).expect("day");
        let delta = |kind, k1: &str, n| Delta {
            version: "5.0.9".into(),
            os: ALL.into(),
            kind,
            week,
            k1: k1.into(),
            k2: "a:1:b\u{1f}é".into(),
            n,
        };
        let first = encode(&[delta(kind::FEATURE, "", -3), delta(kind::CPUS, "4", 1)]);
        let second = encode(&[delta(kind::CPUS, "4", -1), delta(kind::FEATURE, "", 5)]);
        let all = |_: &str, _: &str, _: &str| true;
        let merged = merge_encoded([first.as_str(), "", second.as_str()], all);
        assert_eq!(merged, Some(vec![delta(kind::FEATURE, "", 2)]));
        let features = |kind: &str, _: &str, _: &str| kind == kind::FEATURE;
        assert_eq!(
            merge_encoded([first.as_str()], features),
            Some(vec![delta(kind::FEATURE, "", -3)])
        );
        let unknown = first.replace("cpus", "gpus");
        assert_eq!(merge_encoded([unknown.as_str()], all), None, "unknown kind");
        assert_eq!(
            merge_encoded([&first[..first.len() - 1]], all),
            None,
            "cut short"
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        let sunday = NaiveDate::from_ymd_opt(2024, 3, 10).expect("day");
        let monday = NaiveDate::from_ymd_opt(2024, 3, 4).expect("day");
        assert_eq!(week_of(sunday), monday);
        assert_eq!(week_of(monday), monday);
        assert_eq!(week_of(NaiveDate::MIN), NaiveDate::MIN);
    }

    #[test]
    fn a_cluster_is_counted_once_and_an_upgrade_moves_its_count() {
        let reports = [
            report("A", "C", 4, 1, "5.0.8"),
            report("B", "C", 5, 1, "5.0.8"),
            report("B", "C", 5, 2, "5.0.9"),
        ];
        let changes = apply(Loaded::default(), &reports);
        assert_eq!(total(&changes, kind::CLUSTERS, ALL, ""), 1);
        assert_eq!(total(&changes, kind::NODES, ALL, ""), 2);
        assert_eq!(total(&changes, kind::NEW_NODES, ALL, ""), 2);
        assert_eq!(total(&changes, kind::VERSION, ALL, "5.0.9"), 1);
        assert_eq!(total(&changes, kind::VERSION, ALL, "5.0.8"), 0);
        assert_eq!(total(&changes, kind::CLUSTERS, "5.0.8", ""), 0);
        assert_eq!(total(&changes, kind::NODES, "5.0.8", ""), 1);
        assert_eq!(changes.cluster_weeks.len(), 1);
        assert_eq!(changes.cluster_weeks[0].dims.version, "5.0.9");
    }

    #[test]
    fn an_older_report_changes_nothing_but_first_seen() {
        let newer = report("A", "C", 6, 1, "5.0.9");
        let first = apply(Loaded::default(), [&newer]);
        let loaded = Loaded {
            nodes: first.nodes,
            node_weeks: first.node_weeks,
            cluster_weeks: first.cluster_weeks,
        };
        let older = report("A", "C", 5, 1, "5.0.8");
        let changes = apply(loaded, [&older]);
        assert_eq!(total(&changes, kind::CLUSTERS, ALL, ""), 0);
        assert_eq!(total(&changes, kind::NEW_NODES, "5.0.8", ""), 1);
        assert_eq!(total(&changes, kind::NEW_NODES, "5.0.9", ""), -1);
        assert!(changes.cluster_weeks.is_empty() && changes.node_weeks.is_empty());
    }

    #[test]
    fn a_4x_cluster_is_named_by_its_smallest_uuid() {
        let mut node = report("B", "", 4, 1, "4.4.19");
        node.cluster_uuid = None;
        node.analytics.peer_uuids = vec!["C".into(), "A".into()];
        assert_eq!(cluster_key(&node), "A");
    }
}
