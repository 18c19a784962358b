//! Facts of uncounted reports marked before schema version 5 kept them (see
//! `migrations`): filled once at open, before the writer counts anything.

use chrono::NaiveDate;
use deadpool_postgres::{Client, Pool};
use tokio_postgres::Row;

use crate::{LegacyFacts, StoreError};

const MISSING: &str = "SELECT day, uuid, r.raw
    FROM rollup_pending p JOIN reports r USING (day, uuid) WHERE p.facts IS NULL";
const KEY_LOOKUPS: &str = concat!("SELECT ", super::key_lookups!());
const FILL: &str = "UPDATE rollup_pending SET facts = $3 WHERE day = $1 AND uuid = $2";

/// Fills the `facts` of the `rollup_pending` entries that have none, through `legacy`.
/// Each entry is filled on its own: another collector counting meanwhile only makes an
/// update find nothing.
pub(super) async fn backfill(
    pool: &Pool,
    db: &str,
    legacy: Option<LegacyFacts>,
) -> Result<(), StoreError> {
    const OP: &str = "back-fill the facts of uncounted reports";
    let mut client = pool.get().await.map_err(StoreError::pool(db, OP))?;
    let rows = missing(&mut client)
        .await
        .map_err(StoreError::postgres(db, OP))?;
    let mut filled = 0;
    for row in &rows {
        let (day, uuid, raw) = entry(row).map_err(StoreError::postgres(db, OP))?;
        if let Some(facts) = legacy.and_then(|derive| derive(raw)) {
            client
                .execute(FILL, &[&day, &uuid, &crate::facts::to_column(&facts)])
                .await
                .map_err(StoreError::postgres(db, OP))?;
            filled += 1;
        }
    }
    crate::facts::log_backfill(db, filled, rows.len());
    Ok(())
}

/// The uncounted reports without facts, found from the queue by key (see `key_lookups`):
/// at every start, and `reports` may be the largest table of all.
async fn missing(client: &mut Client) -> Result<Vec<Row>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute(KEY_LOOKUPS, &[]).await?;
    let rows = tx.query(MISSING, &[]).await?;
    tx.commit().await?;
    Ok(rows)
}

fn entry(row: &Row) -> Result<(NaiveDate, &str, &str), tokio_postgres::Error> {
    Ok((
        row.try_get("day")?,
        row.try_get("uuid")?,
        row.try_get("raw")?,
    ))
}
