//! Who may delete a node's reports: trust on first use.
//!
//! The first report stored for a uuid fixes its deletion hash in `node_claims`, or fixes
//! that it has none, in the same transaction that stores the report. A later report of
//! that uuid carrying another hash is refused and stores nothing, so whoever learns a
//! uuid can neither take its deletion over nor replace its owner's hash. A node whose
//! first report had no hash (an EMQX node) keeps none: a later report with a hash is
//! stored, but its hash claims nothing, and the node's reports cannot be deleted by self
//! service. A report without a hash is always stored and changes no claim. Deleting a
//! node's reports removes its claim with them.

use crate::NewReport;
use crate::maintenance::secret_matches;

/// Records `$2` as the hash of node `$1` unless the node has a claim already.
pub(crate) const CLAIM: &str = "INSERT INTO node_claims (uuid, secret_sha256) VALUES ($1, $2)
    ON CONFLICT (uuid) DO NOTHING";
/// [`CLAIM`] for many nodes at once (PostgreSQL); the first of a uuid in the arrays wins.
pub(crate) const CLAIM_MANY: &str = "INSERT INTO node_claims (uuid, secret_sha256)
    SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (uuid) DO NOTHING";
/// The claimed hash of node `$1` (NULL: the node has none); no row: the node is unknown.
pub(crate) const CLAIMED: &str = "SELECT secret_sha256 FROM node_claims WHERE uuid = $1";
/// The claims of the nodes named in `$1` (PostgreSQL).
pub(crate) const CLAIMED_MANY: &str =
    "SELECT uuid, secret_sha256 FROM node_claims WHERE uuid = ANY($1)";

/// The deletion hash `report` presents, if any.
pub(crate) fn presented(report: &NewReport) -> Option<&str> {
    report.analytics.deletion_secret_sha256.as_deref()
}

/// Whether a report presenting `presented` may be stored for a node whose claim (made
/// before, or by this very report) is `claimed`.
pub(crate) fn accepts(claimed: Option<&str>, presented: Option<&str>) -> bool {
    match (claimed, presented) {
        (Some(claimed), Some(presented)) => secret_matches(Some(claimed), presented),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::accepts;

    #[test]
    fn only_a_different_hash_than_the_claimed_one_is_refused() {
        let (a, b) = ("aa".repeat(32), "bb".repeat(32));
        assert!(accepts(Some(&a), Some(&a.to_uppercase())));
        assert!(!accepts(Some(&a), Some(&b)));
        assert!(
            accepts(Some(&a), None),
            "a report without a hash claims nothing"
        );
        assert!(
            accepts(None, Some(&b)),
            "stored, but the hash claims nothing"
        );
        assert!(accepts(None, None));
    }
}
