//! The one place where what a report says for analytics (`beacon_report::facts`) becomes
//! the facts the store keeps with its row ([`ReportFacts`]); the store never reads a
//! report itself, so the collector also gives it the way to derive facts it lacks.

use std::sync::Arc;

use beacon_report::facts::Facts;
use beacon_store::{ReportFacts, Store, StoreError};
use serde_json::Value;

/// Opens the collector's store at `url` (see [`beacon_store::open_store`]); the facts of
/// reports that an older build left uncounted without them are derived from their text.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    beacon_store::open_store_with(url, Some(stored_report_facts)).await
}

/// The facts the rollups count of a report document (EMQX 4.x or 5.x shape).
///
/// Field by field and exhaustive on both sides, so that a fact added to either struct
/// does not compile until it is carried across here.
pub fn report_facts(doc: &Value) -> ReportFacts {
    let Facts {
        peer_uuids,
        deletion_secret_sha256,
        num_cpus,
        total_memory,
        num_clients,
        num_topics,
        messages_sent_rate,
        messages_received_rate,
        retained,
        delayed,
        topic_rewrite,
        auto_subscribe,
        rule_engine,
        exhook,
        bridges,
        authn,
        authz,
        gateways,
        plugins,
    } = Facts::of(doc);
    ReportFacts {
        peer_uuids,
        deletion_secret_sha256,
        num_cpus,
        total_memory,
        num_clients,
        num_topics,
        messages_sent_rate,
        messages_received_rate,
        retained,
        delayed,
        topic_rewrite,
        auto_subscribe,
        rule_engine,
        exhook,
        bridges,
        authn,
        authz,
        gateways,
        plugins,
    }
}

/// The facts of a stored report's JSON text, for the reports an older store left
/// uncounted without them (a [`beacon_store::LegacyFacts`]); text that is not JSON has
/// none.
pub fn stored_report_facts(raw: &str) -> Option<ReportFacts> {
    let doc: Value = serde_json::from_str(raw).ok()?;
    Some(report_facts(&doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_report_gives_the_facts_of_its_document_and_bad_text_gives_none() {
        let raw = beacon_report::fixtures::EMQX_4_4;
        let doc: Value = serde_json::from_str(raw).expect("fixture is JSON");
        let facts = stored_report_facts(raw).expect("facts");
        assert_eq!(facts, report_facts(&doc));
        assert!(facts.retained, "4.x `retainer` module counts as retained");
        assert_eq!(stored_report_facts("{"), None);
    }
}
