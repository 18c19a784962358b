//! WAL checkpoints off the writer thread.
//!
//! A checkpoint copies the pages committed to the WAL back into the database file and
//! syncs it. Left to SQLite's automatic checkpoint, that copy runs inside the commit that
//! crosses the threshold, on the writer thread: every report waiting for the next commit
//! waits for it too, and the copy takes writer time from ingest and counting. Here a thread
//! of its own, with its own connection, runs a `PASSIVE` checkpoint (which never blocks
//! the writer or readers) whenever enough has been committed. The writer keeps its
//! automatic checkpoint as the bound on the WAL's size: when it triggers, this thread has
//! copied nearly everything already, so it copies only the rest, and the WAL starts over
//! from its beginning. That rest is kept small on purpose ([`CATCH_UP`]): the writer copies
//! and syncs it inside a commit, while every report waits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// How often the thread looks at the WAL.
const EVERY: Duration = Duration::from_millis(50);
/// WAL pages not yet copied before a checkpoint is worth its sync of the database file
/// (32 MiB). Fewer, larger checkpoints copy a page that several chunks rewrote only once,
/// and their writes compete less with the WAL syncs every acknowledgement waits for: 1,000
/// pages wrote 56 KiB per report and acknowledged 3,400 reports/s, 8,000 pages 4,650/s
/// (BENCHMARKS.md, "Ingest").
const MIN_PAGES: i64 = 8_000;
/// Pages in the WAL from which every look copies whatever waits, however little, and looks
/// come [`CATCH_UP_EVERY`] while the WAL grows: the writer's automatic checkpoint (at
/// [`super::WAL_AUTOCHECKPOINT_PAGES`]) then finds next to nothing left to copy. Left to
/// [`MIN_PAGES`], it copied up to 32 MiB and synced it on the writer, a 40-100 ms stall of
/// ingest about once a second under load, which made the p99 latency (BENCHMARKS.md,
/// session 18).
const CATCH_UP: i64 = super::WAL_AUTOCHECKPOINT_PAGES * 3 / 4;
const CATCH_UP_EVERY: Duration = Duration::from_millis(10);

/// Stops the thread when dropped (with the store).
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

pub(super) fn spawn(path: &Path, db: &str) -> Result<Checkpointer, StoreError> {
    let conn = open(path).map_err(StoreError::sqlite(db, "open the checkpoint connection"))?;
    let (stop, stopped) = mpsc::channel();
    let db = db.to_owned();
    std::thread::Builder::new()
        .name("beacon-sqlite-ckpt".into())
        .spawn(move || run(&conn, &db, &stopped))
        .map_err(|error| StoreError::Io {
            op: "start the checkpoint thread for",
            path: PathBuf::from(path),
            error: Arc::new(error),
        })?;
    Ok(Checkpointer { _stop: stop })
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    // A checkpoint is as durable as a commit: the WAL is synced before its pages are
    // copied, the database file after.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // This connection never writes, so it must never run the automatic checkpoint of a
    // writer either.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

fn run(conn: &Connection, db: &str, stopped: &mpsc::Receiver<()>) {
    let (mut next_look, mut last_pages) = (EVERY, 0);
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(next_look) {
        match checkpoint(conn) {
            Ok(wal) => {
                next_look = wal.next_look(last_pages);
                last_pages = wal.pages;
            }
            // Busy: the writer's own checkpoint holds the lock; the next look retries.
            Err(error) => tracing::debug!(db, %error, "background checkpoint skipped"),
        }
    }
}

/// Copies the WAL's pages into the database file once at least [`MIN_PAGES`] wait, or any
/// that wait once the WAL is near the writer's bound ([`CATCH_UP`]).
fn checkpoint(conn: &Connection) -> rusqlite::Result<Wal> {
    let wal = look(conn, "NOOP")?;
    if wal.waiting() >= MIN_PAGES || (wal.pages >= CATCH_UP && wal.waiting() > 0) {
        return look(conn, "PASSIVE");
    }
    Ok(wal)
}

/// The WAL's pages, as a checkpoint answers.
struct Wal {
    pages: i64,
    copied: i64,
}

impl Wal {
    /// Pages left to copy into the database file.
    fn waiting(&self) -> i64 {
        self.pages - self.copied
    }

    /// When to look again, given the WAL's pages at the last look: soon while the writer
    /// appends near its bound; an idle WAL, however large, is left alone.
    fn next_look(&self, last_pages: i64) -> Duration {
        if self.pages >= CATCH_UP && self.pages != last_pages {
            CATCH_UP_EVERY
        } else {
            EVERY
        }
    }
}

/// Runs a checkpoint in `mode` (`NOOP` only looks) and answers the WAL's pages after it.
fn look(conn: &Connection, mode: &str) -> rusqlite::Result<Wal> {
    // Answers (busy, pages in the WAL, pages copied so far).
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    conn.query_row(&sql, [], |row| {
        Ok(Wal {
            pages: row.get(1)?,
            copied: row.get(2)?,
        })
    })
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{CATCH_UP, CATCH_UP_EVERY, EVERY, MIN_PAGES, checkpoint, open};

    /// Commits `pages` rows of a page each.
    fn write_pages(conn: &Connection, pages: i64) {
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO t SELECT zeroblob(4000) FROM n",
            [pages],
        )
        .expect("write pages");
    }

    /// Near the writer's bound, the few pages committed since the last copy are copied at
    /// the next look, so that the writer's own checkpoint finds nothing left to copy.
    #[test]
    fn near_the_writers_bound_the_few_pages_waiting_are_copied_too() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("checkpoint.db");
        let writer = Connection::open(&path).expect("open writer");
        writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .expect("WAL");
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .expect("no automatic checkpoint");
        writer
            .execute_batch("CREATE TABLE t (b BLOB)")
            .expect("create");
        write_pages(&writer, CATCH_UP);
        let background = open(&path).expect("checkpoint connection");
        // A read in progress keeps the WAL from starting over once it is all copied.
        let reader = Connection::open(&path).expect("open reader");
        reader.execute_batch("BEGIN").expect("begin");
        let _: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .expect("read");
        let copied = checkpoint(&background).expect("checkpoint");
        assert_eq!(copied.waiting(), 0);
        write_pages(&writer, 10);
        drop(reader);
        let wal = checkpoint(&background).expect("checkpoint");
        assert!(wal.pages > CATCH_UP && wal.pages < CATCH_UP + MIN_PAGES);
        assert_eq!(wal.waiting(), 0, "the last pages are left to the writer");
        assert_eq!(wal.next_look(copied.pages), CATCH_UP_EVERY, "the WAL grows");
        assert_eq!(wal.next_look(wal.pages), EVERY, "the WAL is idle");
    }
}
