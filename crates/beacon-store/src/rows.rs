//! One decoder per row shape, for both backends: [`Row`] is what a `rusqlite::Row` and a
//! `tokio_postgres::Row` have in common, reading a column by name.

use std::error::Error;

use rusqlite::types::{FromSqlError, FromSqlResult, ValueRef};
use tokio_postgres::types::Type;

use crate::analytics::{KeyRow, WeekRow};
use crate::rollup::{ClusterWeek, Dims, Node, NodeWeek, Profile};
use crate::{StoredReport, sql};

/// A column value both drivers can decode.
pub(crate) trait Value:
    rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>
{
}

impl<T> Value for T where T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a> {}

/// A result row of either backend.
pub(crate) trait Row {
    type Error;
    fn get<T: Value>(&self, column: &str) -> Result<T, Self::Error>;
}

impl Row for rusqlite::Row<'_> {
    type Error = rusqlite::Error;

    fn get<T: Value>(&self, column: &str) -> Result<T, Self::Error> {
        rusqlite::Row::get(self, column)
    }
}

impl Row for tokio_postgres::Row {
    type Error = tokio_postgres::Error;

    fn get<T: Value>(&self, column: &str) -> Result<T, Self::Error> {
        self.try_get(column)
    }
}

/// A row of `sql::select_reports!`.
pub(crate) fn report<R: Row>(row: &R) -> Result<StoredReport, R::Error> {
    Ok(StoredReport {
        uuid: row.get("uuid")?,
        cluster_uuid: row.get("cluster_uuid")?,
        day: row.get("day")?,
        received_at: row.get("received_at")?,
        emqx_version: row.get("emqx_version")?,
        os_name: row.get("os_name")?,
        os_version: row.get("os_version")?,
        edition: row.get("edition")?,
        node_count: row.get("node_count")?,
        format: row.get("format")?,
        raw: row.get("raw")?,
    })
}

/// A rollup read: its statement (one key range per counter kind, see `sql`), what it is
/// called in errors, and its row decoder.
pub(crate) trait RollupRow: Sized + Send + 'static {
    const SQL: &'static str;
    const OP: &'static str;
    fn decode<R: Row>(kind: &'static str, row: &R) -> Result<Self, R::Error>;
}

impl RollupRow for WeekRow {
    const SQL: &'static str = sql::ROLLUPS_BY_WEEK;
    const OP: &'static str = "read weekly rollups";

    fn decode<R: Row>(kind: &'static str, row: &R) -> Result<Self, R::Error> {
        let (week, k1, n) = (row.get("week")?, row.get("k1")?, row.get("n")?);
        Ok(WeekRow { kind, week, k1, n })
    }
}

impl RollupRow for KeyRow {
    const SQL: &'static str = sql::ROLLUPS_BY_KEY;
    const OP: &'static str = "read rollups";

    fn decode<R: Row>(kind: &'static str, row: &R) -> Result<Self, R::Error> {
        let (k1, k2, n) = (row.get("k1")?, row.get("k2")?, row.get("n")?);
        Ok(KeyRow { kind, k1, k2, n })
    }
}

pub(crate) fn node<R: Row>(row: &R) -> Result<Node, R::Error> {
    Ok(Node {
        uuid: row.get("uuid")?,
        first_day: row.get("first_day")?,
        first_at: row.get("first_at")?,
        dims: dims(row)?,
    })
}

pub(crate) fn node_week<R: Row>(row: &R) -> Result<NodeWeek, R::Error> {
    Ok(NodeWeek {
        uuid: row.get("uuid")?,
        week: row.get("week")?,
        received_at: row.get("received_at")?,
        dims: dims(row)?,
    })
}

pub(crate) fn cluster_week<R: Row>(row: &R) -> Result<ClusterWeek, R::Error> {
    Ok(ClusterWeek {
        key: row.get("cluster_key")?,
        week: row.get("week")?,
        received_at: row.get("received_at")?,
        dims: dims(row)?,
        profile: row.get("profile")?,
    })
}

fn dims<R: Row>(row: &R) -> Result<Dims, R::Error> {
    Ok(Dims {
        version: row.get("version")?,
        os: row.get("os")?,
    })
}

/// A cluster profile is stored as JSON text.
impl rusqlite::types::FromSql for Profile {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        serde_json::from_str(value.as_str()?).map_err(|error| FromSqlError::Other(Box::new(error)))
    }
}

impl<'a> tokio_postgres::types::FromSql<'a> for Profile {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let text = <&str as tokio_postgres::types::FromSql>::from_sql(ty, raw)?;
        Ok(serde_json::from_str(text)?)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as tokio_postgres::types::FromSql>::accepts(ty)
    }
}
