//! The facts of a report that the rollups count ([`Facts`], defined with the report model
//! in `beacon_report::facts`), as the store keeps them: given by the collector with each
//! row, written to the log of uncounted reports (SQLite's `incoming`, PostgreSQL's
//! `rollup_pending`) as JSON, and read back from there when a chunk is counted or after a
//! crash. The store never derives them from a report.

use beacon_report::facts::Facts;

/// Derives the facts of a report from its JSON text, for the reports that a build older
/// than schema version 5 left uncounted without facts beside them (see
/// [`crate::open_store_with`]). The store cannot read a report; its caller can.
pub type LegacyFacts = fn(&str) -> Option<Facts>;

/// The facts as the store keeps them in its `facts` column (their serde form).
pub(crate) fn to_column(facts: &Facts) -> String {
    serde_json::to_string(facts).unwrap_or_default()
}

/// The facts from a `facts` column; NULL is an entry logged before facts were kept and
/// not back-filled at open (no [`LegacyFacts`] given): it counts from its columns.
pub(crate) fn from_column(text: Option<&str>) -> Result<Facts, serde_json::Error> {
    text.map_or(Ok(Facts::default()), serde_json::from_str)
}

/// The first text field of `facts` holding a NUL character, which PostgreSQL cannot store.
pub(crate) fn field_with_nul(facts: &Facts) -> Option<&'static str> {
    let lists: [(&'static str, &[String]); 6] = [
        ("analytics.peer_uuids", &facts.peer_uuids),
        ("analytics.bridges", &facts.bridges),
        ("analytics.authn", &facts.authn),
        ("analytics.authz", &facts.authz),
        ("analytics.gateways", &facts.gateways),
        ("analytics.plugins", &facts.plugins),
    ];
    let secret = facts.deletion_secret_sha256.as_slice();
    std::iter::once(("analytics.deletion_secret_sha256", secret))
        .chain(lists)
        .find(|(_, values)| values.iter().any(|value| value.contains('\0')))
        .map(|(field, _)| field)
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
        let facts = Facts {
            peer_uuids: vec!["B".into()],
            num_cpus: Some(8),
            messages_sent_rate: Some(1.5),
            retained: true,
            plugins: vec!["my_plugin".into()],
            ..Facts::default()
        };
        let column = to_column(&facts);
        assert_eq!(from_column(Some(&column)).ok(), Some(facts));
        assert_eq!(from_column(None).ok(), Some(Facts::default()));
        assert!(from_column(Some("{")).is_err());
    }
}
