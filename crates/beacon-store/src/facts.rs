//! The facts of a report that the rollups count, as the store keeps them: given by the
//! collector with each row, written to the log of uncounted reports (SQLite's `incoming`,
//! PostgreSQL's `rollup_pending`) in the store's own JSON form, and read back from there
//! when a chunk is counted or after a crash. The store never derives them from a report.

use serde::{Deserialize, Serialize};

/// Derives the facts of a report from its JSON text, for the reports that a build older
/// than schema version 5 left uncounted without facts beside them (see
/// [`crate::open_store_with`]). The store cannot read a report; its caller can.
pub type LegacyFacts = fn(&str) -> Option<ReportFacts>;

/// What the rollups count of one report beyond its columns, as the collector derived it
/// (with `beacon_report::facts`). The store keeps it beside the report until the report
/// is counted, so that counting never reads the report's JSON.
///
/// It mirrors `beacon_report::facts::Facts` on purpose: this is the row the store persists
/// (its serde form is the `facts` column), so the report model can change without changing
/// stored data, and the store needs no dependency on the report crate.
///
/// Lists are sorted and without duplicates. `Default` is a report that says nothing
/// beyond its columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportFacts {
    /// `nodes_uuid`: the other nodes of the cluster. A 4.x report has no `cluster_uuid`,
    /// so its cluster is named by the smallest uuid among the node and these.
    pub peer_uuids: Vec<String>,
    /// SHA-256 (hex) of the node's deletion secret, when the report carries one.
    pub deletion_secret_sha256: Option<String>,
    pub num_cpus: Option<u64>,
    /// Bytes.
    pub total_memory: Option<u64>,
    pub num_clients: Option<u64>,
    pub num_topics: Option<u64>,
    /// Messages per second.
    pub messages_sent_rate: Option<f64>,
    /// Messages per second.
    pub messages_received_rate: Option<f64>,
    pub retained: bool,
    pub delayed: bool,
    pub topic_rewrite: bool,
    pub auto_subscribe: bool,
    /// At least one rule.
    pub rule_engine: bool,
    /// At least one ExHook server.
    pub exhook: bool,
    /// Data bridge types with at least one bridge, e.g. `kafka_producer`.
    pub bridges: Vec<String>,
    /// Enabled authenticators, `mechanism:backend`.
    pub authn: Vec<String>,
    /// Enabled authorization sources.
    pub authz: Vec<String>,
    /// Enabled gateways, e.g. `mqttsn`.
    pub gateways: Vec<String>,
    /// Active plugins by name, without their version.
    pub plugins: Vec<String>,
}

impl ReportFacts {
    /// The facts as the store keeps them in its `facts` column.
    pub(crate) fn to_column(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The facts from a `facts` column; NULL is an entry logged before facts were kept
    /// and not back-filled at open (no [`LegacyFacts`] given): it counts from its columns.
    pub(crate) fn from_column(text: Option<&str>) -> Result<Self, serde_json::Error> {
        text.map_or(Ok(Self::default()), serde_json::from_str)
    }

    /// The first text field holding a NUL character, which PostgreSQL cannot store.
    pub(crate) fn field_with_nul(&self) -> Option<&'static str> {
        let lists: [(&'static str, &[String]); 6] = [
            ("analytics.peer_uuids", &self.peer_uuids),
            ("analytics.bridges", &self.bridges),
            ("analytics.authn", &self.authn),
            ("analytics.authz", &self.authz),
            ("analytics.gateways", &self.gateways),
            ("analytics.plugins", &self.plugins),
        ];
        let secret = self.deletion_secret_sha256.as_slice();
        std::iter::once(("analytics.deletion_secret_sha256", secret))
            .chain(lists)
            .find(|(_, values)| values.iter().any(|value| value.contains('\0')))
            .map(|(field, _)| field)
    }
}

/// Says what the back-fill at open did: `filled` of `missing` entries got their facts.
pub(crate) fn log_backfill(db: &str, filled: usize, missing: usize) {
    if filled > 0 {
        tracing::info!(
            db,
            reports = filled,
            "facts of uncounted reports back-filled"
        );
    }
    if missing > filled {
        tracing::warn!(
            db,
            reports = missing - filled,
            "uncounted reports without facts are counted from their columns only"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_gives_back_the_facts_it_was_given() {
        let facts = ReportFacts {
            peer_uuids: vec!["B".into()],
            num_cpus: Some(8),
            messages_sent_rate: Some(1.5),
            retained: true,
            plugins: vec!["my_plugin".into()],
            ..ReportFacts::default()
        };
        let column = facts.to_column();
        assert_eq!(ReportFacts::from_column(Some(&column)).ok(), Some(facts));
        assert_eq!(
            ReportFacts::from_column(None).ok(),
            Some(ReportFacts::default())
        );
        assert!(ReportFacts::from_column(Some("{")).is_err());
    }
}
