//! Planning count chunks off the writer thread.
//!
//! Counting a chunk is mostly reading: the chunk's reports back from the log, the
//! snapshots they change, and working out in memory what changes (`rollup`). None of that
//! needs the write lock, and while the writer did it, ingest batches waited behind it. A
//! thread of its own, with its own read-only connection, now does that part on a snapshot
//! that holds every commit the writer made before asking, and the writer only writes what
//! the plan says, between ingest batches.
//!
//! A plan is valid only if nothing it read changed before it is written: the writer asks
//! for one at most at a time, drops it once it counted or ran maintenance itself in
//! between, and writes it only if no other connection (another collector on the same
//! file) committed meanwhile (`PRAGMA data_version`); otherwise the writer counts that
//! chunk itself.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, TryRecvError};

use rusqlite::{Connection, OpenFlags};

use super::count::{Chunk, plan_chunk};
use crate::StoreError;

/// The writer's side: at most one plan asked for at a time.
pub(super) struct Planner {
    asks: mpsc::Sender<usize>,
    plans: mpsc::Receiver<rusqlite::Result<Chunk>>,
    asked: Option<Asked>,
}

/// What the writer knew when it asked for a plan.
struct Asked {
    /// Other connections' commits, as the writer saw them when it asked.
    data_version: i64,
    /// The writer counted or ran maintenance itself since: the plan is out of date.
    stale: bool,
}

/// A plan ready to write, with what the writer must check first.
pub(super) struct Planned {
    pub(super) chunk: Chunk,
    pub(super) data_version: i64,
}

impl Planner {
    pub(super) fn spawn(path: &Path, db: &str) -> Result<Self, StoreError> {
        let conn = open(path).map_err(StoreError::sqlite(db, "open the planning connection"))?;
        let (asks, asked) = mpsc::channel();
        let (planned, plans) = mpsc::channel();
        std::thread::Builder::new()
            .name("beacon-sqlite-plan".into())
            .spawn(move || run(&conn, &asked, &planned))
            .map_err(|error| StoreError::Io {
                op: "start the planning thread for",
                path: path.to_owned(),
                error: Arc::new(error),
            })?;
        Ok(Self {
            asks,
            plans,
            asked: None,
        })
    }

    /// Asks for a plan of the oldest `limit` reports of the log, unless one is on its way.
    /// `conn` is the writer's: the plan will see everything it committed so far.
    pub(super) fn ask(&mut self, conn: &Connection, limit: usize) -> rusqlite::Result<()> {
        if self.asked.is_some() {
            return Ok(());
        }
        let data_version = data_version(conn)?;
        if self.asks.send(limit).is_ok() {
            self.asked = Some(Asked {
                data_version,
                stale: false,
            });
        }
        Ok(())
    }

    /// The writer is about to change what a plan reads: the one on its way is dropped.
    pub(super) fn outdate(&mut self) {
        if let Some(asked) = &mut self.asked {
            asked.stale = true;
        }
    }

    /// Whether a plan is on its way.
    pub(super) fn asked(&self) -> bool {
        self.asked.is_some()
    }

    /// The plan asked for if it is ready (or, with `wait`, once it is), and still valid.
    pub(super) fn ready(&mut self, wait: bool) -> Option<rusqlite::Result<Planned>> {
        let received = if wait {
            self.plans.recv().map_err(|_| TryRecvError::Disconnected)
        } else {
            self.plans.try_recv()
        };
        let result = match received {
            Ok(result) => result,
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => {
                // The thread is gone: the writer counts by itself from now on.
                self.asked = None;
                return None;
            }
        };
        let asked = self.asked.take()?;
        if asked.stale {
            return None;
        }
        Some(result.map(|chunk| Planned {
            chunk,
            data_version: asked.data_version,
        }))
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Runs until the writer (holding the other ends) is gone.
fn run(
    conn: &Connection,
    asked: &mpsc::Receiver<usize>,
    planned: &mpsc::Sender<rusqlite::Result<Chunk>>,
) {
    while let Ok(limit) = asked.recv() {
        // One read transaction: the reports and the snapshots they change, as of one commit.
        let plan = conn
            .unchecked_transaction()
            .and_then(|tx| plan_chunk(&tx, limit));
        if planned.send(plan).is_err() {
            return;
        }
    }
}

/// Bumped by every commit of another connection to the database file.
pub(super) fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |row| row.get(0))
}
