//! PostgreSQL's uncounted reports (see `counting`): the ingest transaction stores the
//! report row and marks its key, with its facts, in `rollup_pending`; a count takes the
//! marked keys from that table, whichever collector committed them, so any number of
//! collectors on one database share the counting, and after a crash the keys left there
//! are simply counted by the next pass.
//!
//! A count locks the keys it takes (`FOR UPDATE`, in (day, uuid) order like ingest) before
//! it reads their reports, so a report that replaces one of them while it counts waits
//! and is marked again after it, and the count reads each report and its facts as one
//! committed pair. Counts of several collectors take different keys at once: each skips
//! the keys another holds ([`Take::SkipLocked`]), and a count somebody waits for then
//! waits for those ([`Take::WaitLocked`]).

use tokio_postgres::Row;

use super::writer::Context;
use crate::{NewReport, StoreError, counting, rows};

/// A report that replaces an uncounted one of its node and day brings its own facts.
pub(super) const MARK_UNCOUNTED: &str = "INSERT INTO rollup_pending (day, uuid, facts)
    SELECT * FROM unnest($1::date[], $2::text[], $3::text[])
    ON CONFLICT (day, uuid) DO UPDATE SET facts = excluded.facts";

/// How a count takes marked keys: each is locked by the count that takes it, until that
/// count commits (and the key is gone) or fails (and the key is left for another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Take {
    /// Keys another transaction holds are left to it: counts of several collectors take
    /// different keys side by side.
    SkipLocked,
    /// Only the keys a transaction holds or held (their row's `xmax` is set: another
    /// count that may yet fail, or a batch replacing the report), waited for: so that
    /// after a [`Take::SkipLocked`] sweep nothing committed before is left uncounted. A
    /// key another count held is gone once it commits; a key a batch re-marked is taken
    /// in its new version (an `ON CONFLICT` update leaves `xmax` set, see `ingest`); keys
    /// marked since by a plain insert are left to the next pass.
    WaitLocked,
}

impl Take {
    /// The first `$1` keys in key order numbered up to `$2`, or with `after` the `$3` keys
    /// after (`$1`, `$2`) numbered up to `$4` (see [`LAST_MARK`]).
    pub(super) fn sql(self, after: bool) -> &'static str {
        match (self, after) {
            (Take::SkipLocked, false) => {
                "SELECT day, uuid FROM rollup_pending WHERE seq <= $2
                ORDER BY day, uuid LIMIT $1 FOR UPDATE SKIP LOCKED"
            }
            (Take::SkipLocked, true) => {
                "SELECT day, uuid FROM rollup_pending WHERE (day, uuid) > ($1, $2) AND seq <= $4
                ORDER BY day, uuid LIMIT $3 FOR UPDATE SKIP LOCKED"
            }
            (Take::WaitLocked, false) => {
                "SELECT day, uuid FROM rollup_pending WHERE xmax <> 0 AND seq <= $2
                ORDER BY day, uuid LIMIT $1 FOR UPDATE"
            }
            (Take::WaitLocked, true) => {
                "SELECT day, uuid FROM rollup_pending
                WHERE xmax <> 0 AND (day, uuid) > ($1, $2) AND seq <= $4
                ORDER BY day, uuid LIMIT $3 FOR UPDATE"
            }
        }
    }
}

/// The number of the last mark made, whether committed yet or not: every mark committed
/// before it is read has a number up to it, so a count that takes only those leaves
/// nothing committed before uncounted, and does not chase the marks committed while it
/// counts. (A key marked again keeps its number, and is counted in its latest version.)
pub(super) const LAST_MARK: &str = "SELECT last_value FROM rollup_pending_seq";

/// The reports of the taken keys that are still stored (retention or a deletion may have
/// removed some), with their facts; `raw` is not needed to count.
///
/// The queue and `reports` are looked up key by key, in subqueries the planner may not
/// merge into the join (`OFFSET 0`): a queue vacuumed while it was (nearly) empty keeps
/// statistics that say so, and the planner then scanned the whole queue for each of a
/// chunk's keys (a two-collector run at 512 connections: chunks of minutes, the queue
/// growing without end).
pub(super) const READ_TAKEN: &str = "SELECT r.uuid, r.cluster_uuid, r.day, r.received_at,
        r.emqx_version, r.os_name, r.os_version, r.edition, r.node_count, r.format,
        '' AS raw, p.facts
    FROM unnest($1::date[], $2::text[]) AS k (day, uuid),
    LATERAL (SELECT facts FROM rollup_pending
        WHERE day = k.day AND uuid = k.uuid OFFSET 0) AS p,
    LATERAL (SELECT * FROM reports WHERE day = k.day AND uuid = k.uuid OFFSET 0) AS r";

/// The taken keys' rows, found key by key (see [`READ_TAKEN`]) and deleted by row id.
pub(super) const MARK_COUNTED: &str = "DELETE FROM rollup_pending WHERE ctid = ANY (ARRAY(
    SELECT (SELECT ctid FROM rollup_pending p WHERE p.day = k.day AND p.uuid = k.uuid)
    FROM unnest($1::date[], $2::text[]) AS k (day, uuid)))";

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
