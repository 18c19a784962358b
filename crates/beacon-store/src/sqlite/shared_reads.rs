//! Rollup reads that arrive together are read together: one transaction works out the
//! deltas of the uncounted ingest log once for all of them. Under load that is most of a
//! read's cost (it looks up every uncounted report's snapshots: BENCHMARKS.md, session
//! 27), and a console page makes three reads at once.
//!
//! A read that arrives while others are being read waits for them and goes into the next
//! transaction, whose snapshot is taken after it arrived, so it still counts every report
//! acknowledged before it. Whoever queues a read while none is under way runs the reads
//! (on a blocking thread), group after group, until none wait.

use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

use super::{Readers, count};
use crate::StoreError;
use crate::rollup::Delta;

/// One read: given the transaction and the uncounted log's deltas (or why they could not
/// be had), it reads and answers its caller.
pub(super) type Read = Box<dyn FnOnce(Result<(&Connection, &[Delta]), StoreError>) + Send>;

const OP: &str = "count the ingest log for a read";

#[derive(Default)]
pub(super) struct SharedReads {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// A thread is running the reads queued (and any queued meanwhile).
    running: bool,
    waiting: Vec<Read>,
}

impl SharedReads {
    /// Queues `read`; true if the caller is to [`run`](Self::run) the reads, none being
    /// under way.
    pub(super) fn queue(&self, read: Read) -> bool {
        let mut state = self.state();
        state.waiting.push(read);
        !std::mem::replace(&mut state.running, true)
    }

    /// Runs the waiting reads, one transaction per group, until none wait. If a read
    /// panics, those waiting are dropped (their callers told the store closed) and the
    /// next read queued runs again.
    pub(super) fn run(&self, readers: &Readers) {
        let _reset = ResetOnPanic(self);
        while let Some(group) = self.next_group() {
            read_group(readers, group);
        }
    }

    /// The reads waiting now, or `None` (and nobody running) when none wait.
    fn next_group(&self) -> Option<Vec<Read>> {
        let mut state = self.state();
        if state.waiting.is_empty() {
            state.running = false;
            return None;
        }
        Some(std::mem::take(&mut state.waiting))
    }

    /// The state stays valid whatever a panicking holder did, so poisoning is ignored.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct ResetOnPanic<'a>(&'a SharedReads);

impl Drop for ResetOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut state = self.0.state();
            state.waiting.clear();
            state.running = false;
        }
    }
}

/// Reads `group` in one transaction; each read is answered its own way, and all of them
/// the same error if the transaction or the log's deltas cannot be had.
fn read_group(readers: &Readers, group: Vec<Read>) {
    let mut group = Some(group);
    let done = readers.with(OP, |conn| {
        let snapshot = conn.unchecked_transaction()?;
        let uncounted = count::uncounted_deltas(&snapshot)?;
        for read in group.take().into_iter().flatten() {
            read(Ok((&snapshot, &uncounted)));
        }
        Ok(())
    });
    if let Err(error) = done {
        for read in group.into_iter().flatten() {
            read(Err(error.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};

    use super::{Read, SharedReads};
    use crate::rollup::Delta;
    use crate::sqlite::Readers;
    use crate::sqlite::count::tests::logged;

    /// What a read saw: how many nodes the uncounted log adds, and where its deltas were.
    type Seen = (i64, usize);

    fn read(seen: mpsc::Sender<Seen>) -> Read {
        Box::new(move |read| {
            let (_, deltas) = read.expect("the log's deltas");
            let _ = seen.send((new_nodes(deltas), deltas.as_ptr() as usize));
        })
    }

    fn new_nodes(deltas: &[Delta]) -> i64 {
        let all_nodes = |d: &&Delta| d.kind == "nodes" && d.version.is_empty() && d.os.is_empty();
        deltas.iter().filter(all_nodes).map(|d| d.n).sum()
    }

    fn readers(path: &std::path::Path) -> Readers {
        Readers {
            path: path.to_owned(),
            db: "test".into(),
            idle: Mutex::default(),
        }
    }

    #[test]
    fn reads_queued_together_share_one_working_out_of_the_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("shared.db");
        let _writer = logged(&path, &["a", "b"]);
        let shared = SharedReads::default();
        let (seen, saw) = mpsc::channel();
        assert!(shared.queue(read(seen.clone())), "the first read runs them");
        assert!(!shared.queue(read(seen.clone())));
        assert!(!shared.queue(read(seen)));
        shared.run(&readers(&path));
        let seen: Vec<Seen> = saw.iter().collect();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|s| *s == seen[0]), "one group: {seen:?}");
        assert_eq!(seen[0].0, 2);
        assert!(
            shared.queue(read(mpsc::channel().0)),
            "nobody runs them now"
        );
    }

    /// The read queued while a group is read goes into a later transaction, which sees
    /// the report logged before it was queued.
    #[test]
    fn a_read_queued_while_others_are_read_sees_what_was_logged_before_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("shared.db");
        let _writer = logged(&path, &["a"]);
        let shared = Arc::new(SharedReads::default());
        let (seen, saw) = mpsc::channel();
        let first: Read = {
            let (shared, path) = (Arc::clone(&shared), path.clone());
            Box::new(move |read| {
                let (_, deltas) = read.expect("the log's deltas");
                drop(logged(&path, &["b"]));
                assert!(!shared.queue(self::read(seen.clone())), "a read is running");
                let _ = seen.send((new_nodes(deltas), 0));
            })
        };
        assert!(shared.queue(first));
        shared.run(&readers(&path));
        let seen: Vec<Seen> = saw.iter().collect();
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2]);
    }

    /// A read that panics after another was queued behind it: that one is dropped (its
    /// caller told the store closed) rather than left waiting for nobody.
    #[test]
    fn a_read_that_panics_leaves_the_next_read_to_run_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("shared.db");
        let _writer = logged(&path, &["a"]);
        let shared = Arc::new(SharedReads::default());
        let (seen, saw) = mpsc::channel();
        let failing: Read = {
            let shared = Arc::clone(&shared);
            Box::new(move |_| {
                assert!(!shared.queue(read(seen)));
                panic!("a read failed");
            })
        };
        assert!(shared.queue(failing));
        let running = Arc::clone(&shared);
        let readers = readers(&path);
        assert!(
            std::thread::spawn(move || running.run(&readers))
                .join()
                .is_err()
        );
        let waited = saw.recv_timeout(std::time::Duration::from_secs(5));
        assert_eq!(waited, Err(mpsc::RecvTimeoutError::Disconnected));
        assert!(
            shared.queue(read(mpsc::channel().0)),
            "the next read runs them"
        );
    }
}
