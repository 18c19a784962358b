//! Counting: how a stored report gets into the rollups, on both backends.
//!
//! Vocabulary (the one used by every name and doc of this crate):
//! - **uncounted**: a report durably stored but not yet counted in the rollups. SQLite
//!   keeps uncounted reports, with their facts, in the `incoming` table (its ingest log,
//!   unindexed; see `sqlite::uncounted`), and PostgreSQL keeps their keys and facts in
//!   `rollup_pending` (the rows are already in `reports`; see `postgres::uncounted`).
//!   The table names are older than this vocabulary and stay, to spare a migration.
//! - **count a chunk**: one transaction that counts up to [`CHUNK`] uncounted reports
//!   (on PostgreSQL fewer, `postgres::count::TAKE`), oldest first. One chunk touches each
//!   counter once however many of its reports count it, which is what keeps ingest fast
//!   (see BENCHMARKS.md). A chunk does not write the counters: it logs its counter
//!   deltas (`counter_deltas`), and they are **folded** into the counters many chunks at
//!   a time, once [`FOLD`] wait (`sqlite::count::fold`, `postgres::fold`); SQLite's
//!   settle folds all of them, PostgreSQL's counter folds when it is idle and as it
//!   stops.
//! - **settle**: count chunks until nothing is uncounted ([`Task::Settle`]). A read
//!   always sees every report committed before it. PostgreSQL's rollup reads settle
//!   first, then add the deltas not folded yet to the counters they read, both from one
//!   snapshot; SQLite's do not wait for the writer: in one read transaction they work out
//!   what counting the whole log would add (as a planned chunk is, see `sqlite::plan`) and
//!   add it, and the deltas not folded yet, to the counters they read
//!   (`rows::with_deltas`). Reads of distinct keys take
//!   the [`Settled`] token that [`settle`] returns, and SQLite's reads of raw reports
//!   settle too (its `reports` table only holds counted ones); PostgreSQL's do not need
//!   to. The writer also settles before every maintenance task (a `Task::Maintenance`
//!   runs only after a settle) and when it stops.
//! - **lag bound**: when nobody settles, the writer counts on its own once a chunk is
//!   full or the oldest uncounted report has waited long enough ([`MAX_LAG`] on
//!   PostgreSQL; on SQLite once ingest has paused for [`QUIET`], and under load one chunk
//!   sized to take [`STEP`] between ingest batches once that many wait, more while
//!   [`BEHIND`] steps wait). [`spawn_ticker`] wakes the writer to check.
//!
//! After a stop, whatever is left uncounted in those tables is counted at the next start.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::batch::{Job, Task};
use crate::{Facts, NewReport, StoredReport};

/// Uncounted reports counted in one transaction at most; also the reports per insert
/// transaction of a bulk load.
pub(crate) const CHUNK: usize = 4096;
/// PostgreSQL: how long a committed report may stay uncounted when nobody settles.
pub(crate) const MAX_LAG: Duration = Duration::from_secs(1);
/// SQLite, under load: how long one chunk counted between two ingest batches should take
/// (its size follows from the pace of the chunks before). The batches queued behind it
/// wait that long, so it bounds the latency counting adds to ingest.
pub(crate) const STEP: Duration = Duration::from_millis(20);
/// SQLite: the smallest chunk counted under load.
pub(crate) const MIN_STEP: usize = 256;
/// SQLite: with this many steps' worth uncounted, ingest waits while counting catches up,
/// so that what a rollup read adds up from the log, and the wait of a settle, stay
/// bounded (a few steps).
pub(crate) const BEHIND: usize = 4;
/// SQLite: uncounted reports are counted once no report has arrived for this long.
pub(crate) const QUIET: Duration = Duration::from_millis(100);
/// Counter deltas that counted chunks logged before they are folded into the counters
/// (several chunks under load; every rollup read adds those not yet folded, so this also
/// bounds what a read decodes; SQLite's writer lets up to twice that wait for a round
/// without a step, `sqlite::writer::fold_due`). On PostgreSQL each collector counts the
/// deltas its own chunks logged, and a fold takes those of every collector.
pub(crate) const FOLD: usize = 16_384;

/// Proof that every report committed before it was made is counted; only [`settle`]
/// makes one, and every rollup read takes one.
#[derive(Debug)]
pub(crate) struct Settled(());

/// Waits until every report committed before this call is counted in the rollups.
pub(crate) async fn settle(queue: &mpsc::Sender<Job>) -> Result<Settled, crate::StoreError> {
    crate::batch::run_task(queue, |reply| Task::Settle { reply }).await?;
    Ok(Settled(()))
}

/// An uncounted report as read back from its table, ready to count with the facts kept
/// beside it (never read again from its JSON).
pub(crate) fn reinserted(report: StoredReport, analytics: Facts) -> NewReport {
    NewReport {
        uuid: report.uuid,
        cluster_uuid: report.cluster_uuid,
        day: report.day,
        received_at: report.received_at,
        emqx_version: report.emqx_version,
        os_name: report.os_name,
        os_version: report.os_version,
        edition: report.edition,
        node_count: report.node_count,
        format: report.format,
        raw: report.raw,
        analytics,
    }
}

/// Wakes the writer `every` so that it can count what is due without a job arriving;
/// stops when the store is dropped.
pub(crate) fn spawn_ticker(queue: &mpsc::Sender<Job>, every: Duration) {
    let queue = queue.downgrade();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(queue) = queue.upgrade() else { break };
            if queue.send(Job::Task(Task::Tick)).await.is_err() {
                break;
            }
        }
    });
}
