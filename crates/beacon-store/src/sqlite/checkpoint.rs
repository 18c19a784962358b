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
//! from its beginning.

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
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
        if let Err(error) = checkpoint(conn) {
            // Busy: the writer's own checkpoint holds the lock; the next look retries.
            tracing::debug!(db, %error, "background checkpoint skipped");
        }
    }
}

/// Copies the WAL's pages into the database file once at least [`MIN_PAGES`] wait.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    if waiting(conn, "NOOP")? >= MIN_PAGES {
        waiting(conn, "PASSIVE")?;
    }
    Ok(())
}

/// Runs a checkpoint in `mode` (`NOOP` only looks) and answers how many pages of the WAL
/// are left to copy.
fn waiting(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    // Answers (busy, pages in the WAL, pages copied so far).
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    let (in_wal, copied): (i64, i64) =
        conn.query_row(&sql, [], |row| Ok((row.get(1)?, row.get(2)?)))?;
    Ok(in_wal - copied)
}
