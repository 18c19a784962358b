//! The collector's side of the store's facts: the store never reads a report itself, so
//! the collector opens it with the way to derive the facts ([`Facts`], from
//! `beacon_report::facts`) of reports an older build left uncounted without them.

use std::sync::Arc;

use beacon_report::facts::Facts;
use beacon_store::{Store, StoreError};
use serde_json::Value;

/// Opens the collector's store at `url` (see [`beacon_store::open_store`]); the facts of
/// reports that an older build left uncounted without them are derived from their text.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    beacon_store::open_store_with(url, Some(stored_report_facts)).await
}

/// The facts of a stored report's JSON text, for the reports an older store left
/// uncounted without them (a [`beacon_store::LegacyFacts`]); text that is not JSON has
/// none.
pub fn stored_report_facts(raw: &str) -> Option<Facts> {
    let doc: Value = serde_json::from_str(raw).ok()?;
    Some(Facts::of(&doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_report_gives_the_facts_of_its_document_and_bad_text_gives_none() {
        let raw = beacon_report::fixtures::EMQX_4_4;
        let doc: Value = serde_json::from_str(raw).expect("fixture is JSON");
        let facts = stored_report_facts(raw).expect("facts");
        assert_eq!(facts, Facts::of(&doc));
        assert!(facts.retained, "4.x `retainer` module counts as retained");
        assert_eq!(stored_report_facts("{"), None);
    }
}
