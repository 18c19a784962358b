//! PostgreSQL's uncounted reports (see `counting`): the ingest transaction stores the
//! report row and marks its key, with its facts, in `rollup_pending`; a count takes the
//! marked keys from that table, whichever collector committed them, so any number of
//! collectors on one database share the counting, and after a crash the keys left there
//! are simply counted by the next pass.
//!
//! A count locks the keys it takes (`FOR UPDATE`, in (day, uuid) order like ingest) before
//! it reads their reports, so a report that replaces one of them while it counts waits
//! and is marked again after it, and the count reads each report and its facts as one
//! committed pair.

use tokio_postgres::Row;

use super::writer::Context;
use crate::{NewReport, StoreError, counting, rows};

/// A report that replaces an uncounted one of its node and day brings its own facts.
pub(super) const MARK_UNCOUNTED: &str = "INSERT INTO rollup_pending (day, uuid, facts)
    SELECT * FROM unnest($1::date[], $2::text[], $3::text[])
    ON CONFLICT (day, uuid) DO UPDATE SET facts = excluded.facts";

/// The first `$1` marked keys in key order, locked.
pub(super) const TAKE_FIRST: &str = "SELECT day, uuid FROM rollup_pending
    ORDER BY day, uuid LIMIT $1 FOR UPDATE";
/// The `$3` marked keys after (`$1`, `$2`) in key order, locked.
pub(super) const TAKE_NEXT: &str = "SELECT day, uuid FROM rollup_pending
    WHERE (day, uuid) > ($1, $2) ORDER BY day, uuid LIMIT $3 FOR UPDATE";

/// The reports of the taken keys that are still stored (retention or a deletion may have
/// removed some), with their facts; `raw` is not needed to count.
pub(super) const READ_TAKEN: &str = "SELECT r.uuid, r.cluster_uuid, r.day, r.received_at,
        r.emqx_version, r.os_name, r.os_version, r.edition, r.node_count, r.format,
        '' AS raw, p.facts
    FROM unnest($1::date[], $2::text[]) AS k (day, uuid)
    JOIN rollup_pending p ON p.day = k.day AND p.uuid = k.uuid
    JOIN reports r ON r.day = k.day AND r.uuid = k.uuid";

pub(super) const MARK_COUNTED: &str = "DELETE FROM rollup_pending p
    USING unnest($1::date[], $2::text[]) AS k (day, uuid)
    WHERE p.day = k.day AND p.uuid = k.uuid";

/// A row of [`READ_TAKEN`], to count with the facts kept beside it.
pub(super) fn report(row: &Row, db: &str) -> Result<NewReport, StoreError> {
    const OP: &str = "read uncounted reports";
    let report = rows::report(row).context(db, OP)?;
    let facts: Option<&str> = row.try_get("facts").context(db, OP)?;
    let facts = crate::facts::from_column(facts).map_err(|error| StoreError::Decode {
        db: db.to_owned(),
        column: "facts",
        reason: error.to_string(),
    })?;
    Ok(counting::reinserted(report, facts))
}
