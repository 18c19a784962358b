//! Report batches on PostgreSQL: the nodes' deletion claims checked (see `claims`), one
//! multi-row upsert of the reports that pass, and their keys marked uncounted in
//! `rollup_pending`, in one transaction.
//!
//! Several batches (of this collector or of others on the same database) may write the
//! same rows at once, so every statement takes its row locks in one order: claims by
//! uuid, then reports and `rollup_pending` by (day, uuid), the order counting locks
//! `rollup_pending` in too. Transactions that lock in one order can wait for each other
//! but never deadlock.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use deadpool_postgres::Object;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::columns::Columns;
use super::uncounted::MARK_UNCOUNTED;
use super::writer::{Context, PgWriter};
use crate::{InsertOutcome, NewReport, StoreError, claims, sql};

/// `xmax = 0` holds only for a row this statement inserted; an `ON CONFLICT` update leaves
/// the updating transaction's id there.
const UPSERT: &str = concat!(
    sql::upsert!(
        reports,
        "SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::timestamptz[],
            $5::text[], $6::text[], $7::text[], $8::text[], $9::int8[], $10::int2[], $11::text[])"
    ),
    " RETURNING day, uuid, (xmax = 0) AS inserted"
);

impl PgWriter {
    /// Stores the reports their nodes' claims accept and marks them uncounted, in one
    /// transaction of two round trips: `BEGIN` goes with the claims, `COMMIT` with the
    /// upsert and the marks (a transaction that failed answers `COMMIT` with a rollback).
    pub(super) async fn write_batch(
        &self,
        all: &[&NewReport],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        const OP: &str = "write report batch";
        let db = self.db.as_str();
        let client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let written = write(&client, all).await.context(db, OP);
        if written.is_err() {
            // Its transaction may be open still: not for the pool's next user.
            drop(Object::take(client));
        }
        written
    }
}

/// [`PgWriter::write_batch`] on one connection; an error may leave its transaction open.
async fn write(
    client: &Object,
    all: &[&NewReport],
) -> Result<Vec<InsertOutcome>, tokio_postgres::Error> {
    let upsert = client.prepare_cached(UPSERT).await?;
    let mark = client.prepare_cached(MARK_UNCOUNTED).await?;
    let claimed = claim(client, all).await?;
    let accepted = |r: &&NewReport| {
        let held = claimed.get(r.uuid.as_str()).and_then(Option::as_deref);
        claims::accepts(held, claims::presented(r))
    };
    let reports: Vec<&NewReport> = all.iter().copied().filter(accepted).collect();
    let mut latest = latest_per_key(&reports);
    latest.sort_unstable_by(|a, b| (a.day, &a.uuid).cmp(&(b.day, &b.uuid)));
    let (days, uuids) = keys(&latest);
    let facts: Vec<String> = latest
        .iter()
        .map(|r| crate::facts::to_column(&r.analytics))
        .collect();
    let columns = Columns::of(&latest);
    let params = (columns.params(), [&days as _, &uuids as _, &facts as _]);
    // Sent in this order, executed in this order; the first error is the cause, the next
    // ones only say the transaction was aborted.
    let (rows, marked, committed) = tokio::join!(
        client.query(&upsert, &params.0),
        client.execute(&mark, &params.1),
        client.batch_execute("COMMIT"),
    );
    let rows = rows?;
    marked?;
    committed?;
    let fresh = inserted_keys(&rows)?;
    let mut stored = outcomes(&reports, &fresh).into_iter();
    let every = all.iter().map(|r| {
        if accepted(r) {
            stored.next().unwrap_or(InsertOutcome::Replaced)
        } else {
            InsertOutcome::HashMismatch
        }
    });
    Ok(every.collect())
}

/// Opens the batch's transaction, claims the nodes of `reports` that have no claim yet
/// (the first report of a uuid in the batch wins), then reads every claim they have, in
/// one round trip.
async fn claim(
    client: &Object,
    reports: &[&NewReport],
) -> Result<HashMap<String, Option<String>>, tokio_postgres::Error> {
    let mut by_uuid = reports.to_vec();
    // Stable: the first report of a uuid stays first among its reports.
    by_uuid.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    let (uuids, hashes): (Vec<&str>, Vec<Option<&str>>) = by_uuid
        .iter()
        .map(|r| (r.uuid.as_str(), claims::presented(r)))
        .unzip();
    let insert = client.prepare_cached(claims::CLAIM_MANY).await?;
    let read = client.prepare_cached(claims::CLAIMED_MANY).await?;
    let params: [&(dyn ToSql + Sync); 2] = [&uuids, &hashes];
    let (begun, claimed, rows) = tokio::join!(
        client.batch_execute("BEGIN"),
        client.execute(&insert, &params),
        client.query(&read, &params[..1])
    );
    begun?;
    claimed?;
    let rows = rows?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// The (day, uuid) keys of `reports`, as the two arrays `unnest` takes.
pub(super) fn keys<'a>(reports: &[&'a NewReport]) -> (Vec<NaiveDate>, Vec<&'a str>) {
    reports.iter().map(|r| (r.day, r.uuid.as_str())).unzip()
}

fn inserted_keys(rows: &[Row]) -> Result<HashSet<(NaiveDate, String)>, tokio_postgres::Error> {
    let mut fresh = HashSet::new();
    for row in rows {
        if row.try_get::<_, bool>("inserted")? {
            fresh.insert((row.try_get("day")?, row.try_get("uuid")?));
        }
    }
    Ok(fresh)
}

/// One statement cannot update the same row twice, so only the last report of each
/// (day, uuid) in the batch is sent: the same end state as applying them in order.
fn latest_per_key<'a>(reports: &[&'a NewReport]) -> Vec<&'a NewReport> {
    let mut slots: HashMap<(NaiveDate, &str), usize> = HashMap::new();
    let mut latest: Vec<&NewReport> = Vec::with_capacity(reports.len());
    for report in reports {
        let key = (report.day, report.uuid.as_str());
        match slots.get(&key) {
            Some(&slot) => latest[slot] = report,
            None => {
                slots.insert(key, latest.len());
                latest.push(report);
            }
        }
    }
    latest
}

/// The outcome each report would have had if the batch had been applied one at a time:
/// the first report of a key inserted it if the database did, every later one replaced it.
fn outcomes(reports: &[&NewReport], fresh: &HashSet<(NaiveDate, String)>) -> Vec<InsertOutcome> {
    let mut seen = HashSet::new();
    reports
        .iter()
        .map(|report| {
            let first = seen.insert((report.day, report.uuid.as_str()));
            if first && fresh.contains(&(report.day, report.uuid.clone())) {
                InsertOutcome::Inserted
            } else {
                InsertOutcome::Replaced
            }
        })
        .collect()
}
