//! Statements both backends run as written, and the parts of the others they share.
//!
//! SQLite and PostgreSQL both take `$n` placeholders. SQLite numbers them by first
//! appearance, not by `n`, so every statement here names them in increasing order (a
//! repeated one keeps its first number); the test below holds SQLite to that.

/// Report columns read back as a [`crate::StoredReport`] (see `rows::report`).
macro_rules! select_reports {
    ($tail:literal) => {
        concat!(
            "SELECT uuid, cluster_uuid, day, received_at, emqx_version, os_name, os_version,
                edition, node_count, format, raw FROM reports ",
            $tail
        )
    };
}

pub(crate) const GET_REPORT: &str = select_reports!("WHERE day = $1 AND uuid = $2");
pub(crate) const LIST_REPORTS: &str =
    select_reports!("WHERE day BETWEEN $1 AND $2 ORDER BY day, uuid");
pub(crate) const EXPORT_REPORTS: &str = select_reports!(
    "WHERE day BETWEEN $1 AND $2 AND (day, uuid) > ($3, $4) ORDER BY day, uuid LIMIT $5"
);
pub(crate) const COUNT_REPORTS: &str = "SELECT count(*) FROM reports";

/// Every rollup read takes one range of the rollups' primary key: version, os, kind,
/// then weeks (`$1` to `$5`, see `rows::week_row` and `rows::key_row`).
pub(crate) const ROLLUPS_BY_WEEK: &str = "SELECT week, k1, CAST(sum(n) AS BIGINT) AS n
    FROM rollups WHERE version = $1 AND os = $2 AND kind = $3 AND week BETWEEN $4 AND $5
    GROUP BY week, k1";
pub(crate) const ROLLUPS_BY_KEY: &str = "SELECT k1, k2, CAST(sum(n) AS BIGINT) AS n
    FROM rollups WHERE version = $1 AND os = $2 AND kind = $3 AND week BETWEEN $4 AND $5
    GROUP BY k1, k2";
pub(crate) const ROLLUP_KEYS: &str =
    "SELECT DISTINCT k1 FROM rollups WHERE version = $1 AND os = $1 AND kind = $2";

/// Snapshot and counter writes, `upsert!(table, rows)`: `rows` are the rows to write, one
/// `VALUES` row on SQLite (statement run once per row), `unnest` of one array per column
/// on PostgreSQL.
macro_rules! upsert {
    (reports, $rows:literal) => {
        concat!(
            "INSERT INTO reports (day, uuid, cluster_uuid, received_at, emqx_version, os_name,
                os_version, edition, node_count, format, raw) ",
            $rows,
            " ON CONFLICT (day, uuid) DO UPDATE SET
            cluster_uuid = excluded.cluster_uuid, received_at = excluded.received_at,
            emqx_version = excluded.emqx_version, os_name = excluded.os_name,
            os_version = excluded.os_version, edition = excluded.edition,
            node_count = excluded.node_count, format = excluded.format, raw = excluded.raw"
        )
    };
    (nodes, $rows:literal) => {
        concat!(
            "INSERT INTO nodes (uuid, first_day, first_at, version, os) ",
            $rows,
            " ON CONFLICT (uuid) DO UPDATE SET first_day = excluded.first_day,
            first_at = excluded.first_at, version = excluded.version, os = excluded.os"
        )
    };
    (node_weeks, $rows:literal) => {
        concat!(
            "INSERT INTO node_weeks (uuid, week, received_at, version, os) ",
            $rows,
            " ON CONFLICT (uuid, week) DO UPDATE SET received_at = excluded.received_at,
            version = excluded.version, os = excluded.os"
        )
    };
    (cluster_weeks, $rows:literal) => {
        concat!(
            "INSERT INTO cluster_weeks (cluster_key, week, received_at, version, os, profile) ",
            $rows,
            " ON CONFLICT (cluster_key, week) DO UPDATE SET
            received_at = excluded.received_at, version = excluded.version, os = excluded.os,
            profile = excluded.profile"
        )
    };
    (rollups, $rows:literal) => {
        concat!(
            "INSERT INTO rollups (version, os, kind, week, k1, k2, n) ",
            $rows,
            " ON CONFLICT (version, os, kind, week, k1, k2) DO UPDATE
            SET n = rollups.n + excluded.n"
        )
    };
}
pub(crate) use upsert;

/// Retention: the oldest stored day, then its reports.
pub(crate) const OLDEST_DAY: &str = "SELECT min(day) FROM reports";
pub(crate) const DELETE_DAY: &str = "DELETE FROM reports WHERE day = $1";
/// Snapshots of weeks before `$1`.
pub(crate) const PRUNE_SNAPSHOTS: [&str; 2] = [
    "DELETE FROM node_weeks WHERE week < $1",
    "DELETE FROM cluster_weeks WHERE week < $1",
];

/// `DELETE FROM $table WHERE $key = $1`, for a table keyed by `$first` (a day or week) and
/// then `$key`, without an index on `$key`: the distinct `$first` values are walked through
/// the key, one seek each (a few hundred days at most), then one row looked up per value.
macro_rules! forget_walking {
    ($table:literal, $first:literal, $key:literal) => {
        concat!(
            "WITH RECURSIVE walk (v) AS (SELECT min(",
            $first,
            ") FROM ",
            $table,
            " UNION ALL SELECT (SELECT min(",
            $first,
            ") FROM ",
            $table,
            " WHERE ",
            $first,
            " > walk.v) FROM walk WHERE walk.v IS NOT NULL) DELETE FROM ",
            $table,
            " WHERE ",
            $key,
            " = $1 AND ",
            $first,
            " IN (SELECT v FROM walk)"
        )
    };
}

/// Self-service deletion of node `$1`: its claimed hash (see `claims`), then its
/// reports, then the rest, its claim too. A 4.x cluster is keyed by a node uuid, so its
/// snapshots go with that node. Reports and week snapshots are keyed by day or week
/// first, with no index on the node (each would be one more random index insert per
/// report), so a node's rows are found day by day and week by week.
pub(crate) const FORGET_REPORTS: &str = forget_walking!("reports", "day", "uuid");
pub(crate) const FORGET_WEEKS: [&str; 2] = [
    forget_walking!("node_weeks", "week", "uuid"),
    forget_walking!("cluster_weeks", "week", "cluster_key"),
];
pub(crate) const FORGET_NODE: [&str; 2] = [
    "DELETE FROM nodes WHERE uuid = $1",
    "DELETE FROM node_claims WHERE uuid = $1",
];

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, params};

    #[test]
    fn sqlite_binds_dollar_placeholders_in_order_and_reuses_a_repeated_one() {
        let conn = Connection::open_in_memory().expect("open");
        let row: (i64, i64, i64) = conn
            .query_row("SELECT $1, $2, $1 + $3", params![1, 2, 40], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .expect("query");
        assert_eq!(row, (1, 2, 41));
    }
}
