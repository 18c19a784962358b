//! Acknowledging ingest commits once they are on disk, off the writer thread.
//!
//! With `synchronous=FULL` every commit syncs the WAL before it returns, so the writer sat
//! idle for the disk's sync (milliseconds) once per batch, and no report could be written
//! meanwhile: with N connections, ingest could not go faster than N reports per sync. The
//! writer now commits with `synchronous=NORMAL` (the WAL is written, not synced) and hands
//! the batch's answers to this thread, which syncs the WAL file and only then answers:
//! one sync covers every batch committed before it started, and the writer commits the
//! next batch while the disk syncs. A 2xx still means the report is on disk (a commit
//! frame in a synced WAL survives a power cut; SQLite syncs the WAL before a checkpoint
//! copies it and the database file after, so older commits stay safe too).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use crate::batch::{self, Counters, Insert};
use crate::{InsertOutcome, StoreError};

/// Committed batches and their outcomes, answered once the WAL is synced.
pub(super) type Committed = (Vec<Insert>, Vec<InsertOutcome>);

/// Where the writer hands committed batches; the thread ends when this is dropped (with
/// the writer), after answering what it holds.
pub(super) struct Syncer {
    committed: mpsc::Sender<Committed>,
    wal: PathBuf,
}

impl Syncer {
    pub(super) fn spawn(db_path: &Path, counters: Arc<Counters>) -> Result<Self, StoreError> {
        let mut wal = db_path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let (committed, batches) = mpsc::channel();
        let path = wal.clone();
        std::thread::Builder::new()
            .name("beacon-sqlite-sync".into())
            .spawn(move || run(&path, &batches, &counters))
            .map_err(|error| StoreError::Io {
                op: "start the sync thread for",
                path: db_path.to_owned(),
                error: Arc::new(error),
            })?;
        Ok(Self { committed, wal })
    }

    /// Answers `batch` once the WAL holding its commit is synced.
    pub(super) fn acknowledge(&self, batch: Committed, counters: &Counters) {
        if let Err(mpsc::SendError((inserts, _))) = self.committed.send(batch) {
            // The thread is gone (it cannot be while the writer runs): never answer 2xx
            // without the sync.
            let error = sync_error(&self.wal, std::io::Error::other("sync thread stopped"));
            batch::answer(inserts, Err(error), counters);
        }
    }

    /// Syncs the WAL on the caller's thread (maintenance answers, which are rare).
    pub(super) fn sync_now(&self) -> Result<(), StoreError> {
        sync(&self.wal).map_err(|error| sync_error(&self.wal, error))
    }
}

fn run(wal: &Path, batches: &mpsc::Receiver<Committed>, counters: &Counters) {
    while let Ok(first) = batches.recv() {
        // Everything queued now was committed before this sync starts.
        let waiting: Vec<Committed> = std::iter::once(first).chain(batches.try_iter()).collect();
        let synced = sync(wal).map_err(|error| sync_error(wal, error));
        for (inserts, outcomes) in waiting {
            batch::answer(inserts, synced.clone().map(|()| outcomes), counters);
        }
    }
}

/// Syncs the WAL file's data (by path: whichever descriptor wrote it).
fn sync(wal: &Path) -> std::io::Result<()> {
    std::fs::File::open(wal)?.sync_data()
}

fn sync_error(wal: &Path, error: std::io::Error) -> StoreError {
    StoreError::Io {
        op: "sync the write-ahead log",
        path: wal.to_owned(),
        error: Arc::new(error),
    }
}
