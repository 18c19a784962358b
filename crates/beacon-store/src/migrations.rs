//! Versioned schema migrations, one ordered list per backend.
//!
//! Each backend applies the entries newer than the highest version recorded in its
//! `schema_migrations` table, all in one transaction. A schema change is one more entry at
//! the end of a backend's list, with that list's next version number; applied entries
//! never change. Versions 1 to 3 are the same schema on both backends; version 4 tunes
//! one backend (SQLite's is its ingest log, PostgreSQL's puts the rollup counters in the
//! key index).
//!
//! Version 5 gives each backend's log of uncounted reports (SQLite's `incoming`,
//! PostgreSQL's `rollup_pending`) a `facts` column: the [`crate::Facts`] of the
//! report, in the store's JSON form, so that counting reads facts and never the report.
//! Back-fill rule: entries already in the log get NULL, and right after migrating, the
//! store opened with a [`crate::LegacyFacts`] fills them from their report's text through
//! it (`sqlite::facts`, `postgres::facts`); an entry left NULL (no such function given)
//! is counted from its columns only. Reports already counted never need their facts
//! again, so `reports` has no such column.
//!
//! Version 6 adds `node_claims`, the deletion hash each node's first report fixed (see
//! `claims`). Back-fill rule: a node already counted is claimed by the hash in `nodes`
//! (its latest); a node with only uncounted reports is claimed by its next report.
//!
//! Version 7 on SQLite keys the week snapshots by week first and drops the indexes only
//! retention and self-service deletion used; the rows are copied as they are.
//! Version 7 on PostgreSQL takes the rollup counter `n` out of every index, so that
//! counting updates counters in place (see `POSTGRES_HOT_ROLLUPS`).

use crate::StoreError;

pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "reports",
        // A rowid table with a unique index rather than `WITHOUT ROWID` keyed by
        // (day, uuid): rows of random uuids are appended at the end of the table and only
        // the small index entry lands at a random place, which doubles the writer's rate
        // (see BENCHMARKS.md, "Where the SQLite time goes").
        sql: "CREATE TABLE reports (
        id           INTEGER PRIMARY KEY,
        day          TEXT    NOT NULL,
        uuid         TEXT    NOT NULL,
        cluster_uuid TEXT,
        received_at  TEXT    NOT NULL,
        emqx_version TEXT    NOT NULL,
        os_name      TEXT,
        os_version   TEXT,
        edition      TEXT,
        node_count   INTEGER NOT NULL CHECK (node_count >= 0),
        format       INTEGER NOT NULL CHECK (format IN (4, 5)),
        raw          TEXT    NOT NULL
    );
    CREATE UNIQUE INDEX reports_by_day_uuid ON reports (day, uuid);",
    },
    Migration {
        version: 2,
        name: "analytics rollups",
        sql: SQLITE_ROLLUPS,
    },
    Migration {
        version: 3,
        name: "console users and API tokens",
        sql: "CREATE TABLE console_users (
        name          TEXT NOT NULL PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_at    TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE api_tokens (
        token_sha256 TEXT NOT NULL PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE,
        user_name    TEXT NOT NULL,
        created_at   TEXT NOT NULL
    ) WITHOUT ROWID;",
    },
    Migration {
        version: 4,
        name: "ingest log",
        sql: SQLITE_INCOMING,
    },
    Migration {
        version: 5,
        name: "facts of uncounted reports",
        sql: "ALTER TABLE incoming ADD COLUMN facts TEXT;",
    },
    Migration {
        version: 6,
        name: "deletion claims",
        sql: "CREATE TABLE node_claims (
        uuid          TEXT NOT NULL PRIMARY KEY,
        secret_sha256 TEXT
    ) WITHOUT ROWID;
    INSERT INTO node_claims (uuid, secret_sha256) SELECT uuid, secret_sha256 FROM nodes;",
    },
    Migration {
        version: 7,
        name: "snapshots keyed by week first",
        sql: SQLITE_WEEK_FIRST,
    },
    Migration {
        version: 8,
        name: "counter deltas folded in bulk",
        // Each counted chunk appends its counter deltas here (`rollup::encode`); folding
        // adds them to `rollups` many chunks at a time (`sqlite/count.rs`).
        sql: "CREATE TABLE counter_deltas (
            id     INTEGER PRIMARY KEY,
            deltas TEXT NOT NULL
        );",
    },
];

/// Fewer random B-tree inserts per counted report (see BENCHMARKS.md): the week snapshots
/// are keyed by week first, so their week indexes go, and the inserts of a week land in
/// that week's key range; `reports` loses its uuid index. Forgetting a node walks the
/// distinct days or weeks through the key instead (`sqlite::maintenance`).
const SQLITE_WEEK_FIRST: &str = "
    DROP INDEX IF EXISTS reports_by_uuid;
    CREATE TABLE node_weeks_by_week_first (
        week        TEXT NOT NULL,
        uuid        TEXT NOT NULL,
        received_at TEXT NOT NULL,
        version     TEXT NOT NULL,
        os          TEXT NOT NULL,
        PRIMARY KEY (week, uuid)
    ) WITHOUT ROWID;
    INSERT INTO node_weeks_by_week_first (week, uuid, received_at, version, os)
        SELECT week, uuid, received_at, version, os FROM node_weeks;
    DROP TABLE node_weeks;
    ALTER TABLE node_weeks_by_week_first RENAME TO node_weeks;
    CREATE TABLE cluster_weeks_by_week_first (
        week        TEXT NOT NULL,
        cluster_key TEXT NOT NULL,
        received_at TEXT NOT NULL,
        version     TEXT NOT NULL,
        os          TEXT NOT NULL,
        profile     TEXT NOT NULL,
        PRIMARY KEY (week, cluster_key)
    ) WITHOUT ROWID;
    INSERT INTO cluster_weeks_by_week_first (week, cluster_key, received_at, version, os, profile)
        SELECT week, cluster_key, received_at, version, os, profile FROM cluster_weeks;
    DROP TABLE cluster_weeks;
    ALTER TABLE cluster_weeks_by_week_first RENAME TO cluster_weeks;";

/// Ingest appends to `incoming`, a rowid table without secondary indexes, and the writer
/// moves chunks of it into `reports` and the rollups (see `sqlite::writer`). Reports still
/// uncounted (named by `rollup_pending`) move back to the log, so that the next start
/// counts them.
const SQLITE_INCOMING: &str = "
    CREATE TABLE incoming (
        id           INTEGER PRIMARY KEY,
        day          TEXT    NOT NULL,
        uuid         TEXT    NOT NULL,
        cluster_uuid TEXT,
        received_at  TEXT    NOT NULL,
        emqx_version TEXT    NOT NULL,
        os_name      TEXT,
        os_version   TEXT,
        edition      TEXT,
        node_count   INTEGER NOT NULL CHECK (node_count >= 0),
        format       INTEGER NOT NULL CHECK (format IN (4, 5)),
        raw          TEXT    NOT NULL
    );
    INSERT INTO incoming (day, uuid, cluster_uuid, received_at, emqx_version, os_name,
            os_version, edition, node_count, format, raw)
        SELECT day, uuid, cluster_uuid, received_at, emqx_version, os_name, os_version,
            edition, node_count, format, raw
        FROM reports WHERE (day, uuid) IN (SELECT day, uuid FROM rollup_pending)
        ORDER BY received_at;
    DROP TABLE rollup_pending;";

/// `rollup_pending` named the stored reports not yet counted (replaced by the ingest log in
/// version 4). Snapshots keyed by node or cluster first (a node's rows are found for
/// deletion), with a week index for retention; counters keyed so that one query reads one
/// index range.
const SQLITE_ROLLUPS: &str = "
    CREATE INDEX reports_by_uuid ON reports (uuid);
    CREATE TABLE rollup_pending (
        day  TEXT NOT NULL,
        uuid TEXT NOT NULL,
        PRIMARY KEY (day, uuid)
    ) WITHOUT ROWID;
    CREATE TABLE nodes (
        uuid          TEXT NOT NULL PRIMARY KEY,
        first_day     TEXT NOT NULL,
        first_at      TEXT NOT NULL,
        version       TEXT NOT NULL,
        os            TEXT NOT NULL,
        secret_sha256 TEXT,
        secret_at     TEXT
    ) WITHOUT ROWID;
    CREATE TABLE node_weeks (
        uuid        TEXT NOT NULL,
        week        TEXT NOT NULL,
        received_at TEXT NOT NULL,
        version     TEXT NOT NULL,
        os          TEXT NOT NULL,
        PRIMARY KEY (uuid, week)
    ) WITHOUT ROWID;
    CREATE INDEX node_weeks_by_week ON node_weeks (week);
    CREATE TABLE cluster_weeks (
        cluster_key TEXT NOT NULL,
        week        TEXT NOT NULL,
        received_at TEXT NOT NULL,
        version     TEXT NOT NULL,
        os          TEXT NOT NULL,
        profile     TEXT NOT NULL,
        PRIMARY KEY (cluster_key, week)
    ) WITHOUT ROWID;
    CREATE INDEX cluster_weeks_by_week ON cluster_weeks (week);
    CREATE TABLE rollups (
        version TEXT    NOT NULL,
        os      TEXT    NOT NULL,
        kind    TEXT    NOT NULL,
        week    TEXT    NOT NULL,
        k1      TEXT    NOT NULL,
        k2      TEXT    NOT NULL,
        n       INTEGER NOT NULL,
        PRIMARY KEY (version, os, kind, week, k1, k2)
    ) WITHOUT ROWID;
    CREATE INDEX rollups_empty ON rollups (kind) WHERE n = 0;";

pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "reports",
        // COLLATE "C": byte order for uuid, the same order SQLite gives.
        sql: r#"CREATE TABLE reports (
        day          DATE        NOT NULL,
        uuid         TEXT        COLLATE "C" NOT NULL,
        cluster_uuid TEXT,
        received_at  TIMESTAMPTZ NOT NULL,
        emqx_version TEXT        NOT NULL,
        os_name      TEXT,
        os_version   TEXT,
        edition      TEXT,
        node_count   BIGINT      NOT NULL CHECK (node_count >= 0),
        format       SMALLINT    NOT NULL CHECK (format IN (4, 5)),
        raw          TEXT        NOT NULL,
        PRIMARY KEY (day, uuid)
    );"#,
    },
    Migration {
        version: 2,
        name: "analytics rollups",
        sql: POSTGRES_ROLLUPS,
    },
    Migration {
        version: 3,
        name: "console users and API tokens",
        sql: r#"CREATE TABLE console_users (
        name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        password_hash TEXT        NOT NULL,
        created_at    TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE api_tokens (
        token_sha256 TEXT        NOT NULL PRIMARY KEY,
        name         TEXT COLLATE "C" NOT NULL UNIQUE,
        user_name    TEXT COLLATE "C" NOT NULL,
        created_at   TIMESTAMPTZ NOT NULL
    );"#,
    },
    Migration {
        version: 4,
        name: "rollup counters in the key index",
        sql: POSTGRES_COVERING_ROLLUPS,
    },
    Migration {
        version: 5,
        name: "facts of uncounted reports",
        sql: "ALTER TABLE rollup_pending ADD COLUMN facts TEXT;",
    },
    Migration {
        version: 6,
        name: "deletion claims",
        sql: r#"CREATE TABLE node_claims (
        uuid          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        secret_sha256 TEXT
    );
    INSERT INTO node_claims (uuid, secret_sha256) SELECT uuid, secret_sha256 FROM nodes;"#,
    },
    Migration {
        version: 7,
        name: "rollup counters updated in place",
        sql: POSTGRES_HOT_ROLLUPS,
    },
    Migration {
        version: 8,
        name: "counter deltas folded in bulk",
        sql: POSTGRES_COUNTER_DELTAS,
    },
    Migration {
        version: 9,
        name: "week snapshots keyed by week first",
        sql: POSTGRES_WEEK_FIRST,
    },
    Migration {
        version: 10,
        name: "marks numbered in order",
        // A settle counts the marks numbered up to the last number handed out when it
        // starts, not the ones committed while it counts (`postgres::count`).
        sql: "CREATE SEQUENCE rollup_pending_seq;
    ALTER TABLE rollup_pending
        ADD COLUMN seq BIGINT NOT NULL DEFAULT nextval('rollup_pending_seq');
    ALTER SEQUENCE rollup_pending_seq OWNED BY rollup_pending.seq;",
    },
];

/// SQLite's version 7 on PostgreSQL: three random index inserts fewer per new node (its
/// report's uuid entry, its node-week's and its cluster-week's week entries), of the nine
/// a first report made. Retention prunes the snapshots through the new keys, and
/// forgetting a node walks the distinct days and weeks through them (`sql::FORGET_REPORTS`).
const POSTGRES_WEEK_FIRST: &str = "
    DROP INDEX IF EXISTS reports_by_uuid;
    DROP INDEX IF EXISTS node_weeks_by_week;
    DROP INDEX IF EXISTS cluster_weeks_by_week;
    ALTER TABLE node_weeks DROP CONSTRAINT node_weeks_pkey,
        ADD CONSTRAINT node_weeks_pkey PRIMARY KEY (week, uuid);
    ALTER TABLE cluster_weeks DROP CONSTRAINT cluster_weeks_pkey,
        ADD CONSTRAINT cluster_weeks_pkey PRIMARY KEY (week, cluster_key);";

/// Each counted chunk appends its counter deltas here (`rollup::encode`), and folding adds
/// them to `rollups` many chunks at a time (`postgres/count.rs`), as on SQLite. A chunk's
/// text is some 100 KiB, read back once: kept out of line as it is, not compressed.
const POSTGRES_COUNTER_DELTAS: &str = "
    CREATE TABLE counter_deltas (
        id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        deltas TEXT NOT NULL
    );
    ALTER TABLE counter_deltas ALTER COLUMN deltas SET STORAGE EXTERNAL;";

/// Counting adds to thousands of counters per chunk, the same ones chunk after chunk.
/// With `n` in an index (the covering key of version 4, and the partial index of empty
/// counters) every such update wrote a new row version and new index entries, so each
/// counter gathered a dead version per chunk and every later update of it walked them
/// all: a chunk's counter upsert took 45-85 ms after a few hundred chunks and kept growing
/// under load. With no index on `n` and room left on every page, PostgreSQL updates a
/// counter on its own page without touching the index (a HOT update) and prunes the old
/// versions as it goes: 21-43 ms, and the table stays its size (BENCHMARKS.md, "Ingest").
/// Emptied counters are found by their keys instead (`postgres::count`). Reads now fetch
/// each counter's row from the table, which the analytics figures bear.
const POSTGRES_HOT_ROLLUPS: &str = "
    DROP INDEX IF EXISTS rollups_empty;
    ALTER TABLE rollups DROP CONSTRAINT rollups_pkey,
        ADD CONSTRAINT rollups_pkey PRIMARY KEY (version, os, kind, week, k1, k2);
    ALTER TABLE rollups SET (fillfactor = 50);";

/// A dashboard query reads one key range of `rollups`, but the rows of that range were
/// inserted week after week among all the others, so on PostgreSQL (a heap table, unlike
/// SQLite's `WITHOUT ROWID`) each row was a separate heap page: at 1M reports a 26-week
/// workload query read ~1,000 pages for 1,800 rows. With `n` in the key index the same
/// query is an index-only scan of ~15 pages. Index-only scans need pages marked
/// all-visible by vacuum, so autovacuum visits this table more often than the default.
const POSTGRES_COVERING_ROLLUPS: &str = "
    ALTER TABLE rollups DROP CONSTRAINT rollups_pkey,
        ADD CONSTRAINT rollups_pkey PRIMARY KEY (version, os, kind, week, k1, k2) INCLUDE (n);
    ALTER TABLE rollups SET (autovacuum_vacuum_scale_factor = 0.02,
        autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);";

/// The same tables as [`SQLITE_ROLLUPS`]; text keys in byte order, like SQLite's.
const POSTGRES_ROLLUPS: &str = r#"
    CREATE INDEX reports_by_uuid ON reports (uuid);
    CREATE TABLE rollup_pending (
        day  DATE NOT NULL,
        uuid TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (day, uuid)
    );
    CREATE TABLE nodes (
        uuid          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        first_day     DATE        NOT NULL,
        first_at      TIMESTAMPTZ NOT NULL,
        version       TEXT        NOT NULL,
        os            TEXT        NOT NULL,
        secret_sha256 TEXT,
        secret_at     TIMESTAMPTZ
    );
    CREATE TABLE node_weeks (
        uuid        TEXT COLLATE "C" NOT NULL,
        week        DATE        NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        version     TEXT        NOT NULL,
        os          TEXT        NOT NULL,
        PRIMARY KEY (uuid, week)
    );
    CREATE INDEX node_weeks_by_week ON node_weeks (week);
    CREATE TABLE cluster_weeks (
        cluster_key TEXT COLLATE "C" NOT NULL,
        week        DATE        NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        version     TEXT        NOT NULL,
        os          TEXT        NOT NULL,
        profile     TEXT        NOT NULL,
        PRIMARY KEY (cluster_key, week)
    );
    CREATE INDEX cluster_weeks_by_week ON cluster_weeks (week);
    CREATE TABLE rollups (
        version TEXT COLLATE "C" NOT NULL,
        os      TEXT COLLATE "C" NOT NULL,
        kind    TEXT COLLATE "C" NOT NULL,
        week    DATE   NOT NULL,
        k1      TEXT COLLATE "C" NOT NULL,
        k2      TEXT COLLATE "C" NOT NULL,
        n       BIGINT NOT NULL,
        PRIMARY KEY (version, os, kind, week, k1, k2)
    );
    CREATE INDEX rollups_empty ON rollups (kind) WHERE n = 0;"#;

/// The migrations to apply to a database whose highest applied version is `current`.
///
/// A database migrated by a newer build is refused rather than used with a schema this
/// build does not know.
pub(crate) fn unapplied(
    list: &'static [Migration],
    current: i64,
) -> Result<&'static [Migration], StoreError> {
    let known = list.last().map_or(0, |last| last.version);
    if current > known {
        return Err(StoreError::Migration {
            version: current,
            reason: format!(
                "the database is at schema version {current}, newer than this build knows \
                 ({known}); use a newer Beacon"
            ),
        });
    }
    let start = list.partition_point(|migration| migration.version <= current);
    Ok(&list[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_numbered_from_one_without_gaps_and_share_their_first_versions() {
        for list in [SQLITE, POSTGRES] {
            for (index, migration) in list.iter().enumerate() {
                assert_eq!(migration.version, index as i64 + 1, "{}", migration.name);
            }
        }
        // Versions 1 to 3 are the same schema on both; later ones are backend tuning.
        let names = |list: &[Migration]| list[..3].iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(SQLITE), names(POSTGRES));
    }

    #[test]
    fn sqlite_week_snapshots_keep_their_rows_when_keyed_by_week_first() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        let (before, week_first) = SQLITE.split_at(6);
        for migration in before {
            conn.execute_batch(migration.sql).expect(migration.name);
        }
        conn.execute_batch(
            "INSERT INTO node_weeks VALUES ('n1', '2026-11-23', 't', '5.0.9', 'linux');
             INSERT INTO cluster_weeks VALUES ('c1', '2026-11-23', 't', '5.0.9', 'linux', '{}');",
        )
        .expect("rows of version 6");
        conn.execute_batch(week_first[0].sql).expect("version 7");
        let kept: (String, String) = conn
            .query_row(
                "SELECT n.uuid, c.profile FROM node_weeks n, cluster_weeks c
                 WHERE n.week = '2026-11-23' AND c.week = n.week",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .expect("rows kept");
        assert_eq!(kept, ("n1".to_owned(), "{}".to_owned()));
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index'
                 AND name IN ('reports_by_uuid', 'node_weeks_by_week', 'cluster_weeks_by_week')",
                [],
                |row| row.get(0),
            )
            .expect("indexes");
        assert_eq!(
            indexes, 0,
            "the indexes only retention and forgetting used are gone"
        );
    }

    #[test]
    fn applied_versions_are_skipped() {
        assert_eq!(
            unapplied(SQLITE, 0).map(<[_]>::len).ok(),
            Some(SQLITE.len())
        );
        assert_eq!(
            unapplied(SQLITE, SQLITE.len() as i64).map(<[_]>::len).ok(),
            Some(0)
        );
    }

    #[test]
    fn a_newer_database_is_refused() {
        let newer = POSTGRES.len() as i64 + 1;
        match unapplied(POSTGRES, newer) {
            Err(StoreError::Migration { version, reason }) => {
                assert_eq!(version, newer);
                assert!(reason.contains("newer"), "{reason}");
            }
            other => panic!(
                "expected a migration error, got {:?}",
                other.map(<[_]>::len)
            ),
        }
    }
}
