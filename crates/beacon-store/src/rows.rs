//! One decoder per row shape, for both backends: [`Row`] is what a `rusqlite::Row` and a
//! `tokio_postgres::Row` have in common, reading a column by name.

use std::collections::BTreeMap;
use std::error::Error;

use rusqlite::types::{FromSqlError, FromSqlResult, ValueRef};
use tokio_postgres::types::Type;

use crate::analytics::{KeyRow, Scope, WeekRow};
use crate::rollup::{ClusterWeek, Delta, Dims, Node, NodeWeek, Profile};
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
/// called in errors, its row decoder, and what the statement groups by, so that counter
/// changes not yet written can be added to its rows (see [`with_deltas`]).
pub(crate) trait RollupRow: Sized + Send + 'static {
    const SQL: &'static str;
    const OP: &'static str;
    type Group: Ord;
    fn decode<R: Row>(kind: &'static str, row: &R) -> Result<Self, R::Error>;
    fn group(&self) -> Self::Group;
    /// The row `delta`'s counter is summed into, with nothing summed yet.
    fn empty(delta: &Delta) -> Self;
    fn count(&mut self) -> &mut i64;
}

/// The rows `T`'s statement would read for `kind` in `scope` once `deltas` were written
/// to the counters: each delta in the statement's range added to its group, groups back
/// at zero dropped (as counters at zero are), in group order.
pub(crate) fn with_deltas<T: RollupRow>(
    rows: Vec<T>,
    deltas: &[Delta],
    scope: &Scope,
    kind: &str,
) -> Vec<T> {
    let in_range = |delta: &&Delta| {
        delta.kind == kind
            && delta.version == scope.version
            && delta.os == scope.os
            && (scope.first_week..=scope.last_week).contains(&delta.week)
    };
    let mut groups: BTreeMap<T::Group, T> = rows.into_iter().map(|r| (r.group(), r)).collect();
    for delta in deltas.iter().filter(in_range) {
        let row = T::empty(delta);
        *groups.entry(row.group()).or_insert(row).count() += delta.n;
    }
    groups
        .into_values()
        .filter_map(|mut row| (*row.count() != 0).then_some(row))
        .collect()
}

impl RollupRow for WeekRow {
    const SQL: &'static str = sql::ROLLUPS_BY_WEEK;
    const OP: &'static str = "read weekly rollups";
    type Group = (chrono::NaiveDate, String);

    fn decode<R: Row>(kind: &'static str, row: &R) -> Result<Self, R::Error> {
        let (week, k1, n) = (row.get("week")?, row.get("k1")?, row.get("n")?);
        Ok(WeekRow { kind, week, k1, n })
    }

    fn group(&self) -> Self::Group {
        (self.week, self.k1.clone())
    }

    fn empty(delta: &Delta) -> Self {
        let (kind, week, k1) = (delta.kind, delta.week, delta.k1.clone());
        WeekRow {
            kind,
            week,
            k1,
            n: 0,
        }
    }

    fn count(&mut self) -> &mut i64 {
        &mut self.n
    }
}

impl RollupRow for KeyRow {
    const SQL: &'static str = sql::ROLLUPS_BY_KEY;
    const OP: &'static str = "read rollups";
    type Group = (String, String);

    fn decode<R: Row>(kind: &'static str, row: &R) -> Result<Self, R::Error> {
        let (k1, k2, n) = (row.get("k1")?, row.get("k2")?, row.get("n")?);
        Ok(KeyRow { kind, k1, k2, n })
    }

    fn group(&self) -> Self::Group {
        (self.k1.clone(), self.k2.clone())
    }

    fn empty(delta: &Delta) -> Self {
        let (kind, k1, k2) = (delta.kind, delta.k1.clone(), delta.k2.clone());
        KeyRow { kind, k1, k2, n: 0 }
    }

    fn count(&mut self) -> &mut i64 {
        &mut self.n
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

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::rollup::{ALL, kind};

    fn monday(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, day).expect("a valid day")
    }

    fn delta(version: &str, week: NaiveDate, k1: &str, k2: &str, n: i64) -> Delta {
        Delta {
            version: version.to_owned(),
            os: ALL.to_owned(),
            kind: kind::VERSION,
            week,
            k1: k1.to_owned(),
            k2: k2.to_owned(),
            n,
        }
    }

    fn key_row(k1: &str, k2: &str, n: i64) -> KeyRow {
        let (k1, k2) = (k1.to_owned(), k2.to_owned());
        KeyRow {
            kind: kind::VERSION,
            k1,
            k2,
            n,
        }
    }

    #[test]
    fn deltas_in_range_are_added_to_their_groups_and_emptied_groups_go() {
        let scope = Scope {
            version: ALL.to_owned(),
            os: ALL.to_owned(),
            first_week: monday(4),
            last_week: monday(11),
        };
        let counted = vec![key_row("5.0.9", "", 3), key_row("5.0.8", "", 1)];
        let deltas = [
            delta(ALL, monday(4), "5.0.9", "", 2),
            delta(ALL, monday(11), "5.0.8", "", -1),
            delta(ALL, monday(11), "5.1.0", "", 1),
            // Outside the statement's range: another week, dimension level or kind.
            delta(ALL, monday(18), "5.0.9", "", 5),
            delta("5.0.9", monday(4), "5.0.9", "", 5),
            Delta {
                kind: kind::OS,
                ..delta(ALL, monday(4), "5.0.9", "", 5)
            },
        ];
        let rows = with_deltas(counted, &deltas, &scope, kind::VERSION);
        assert_eq!(rows, [key_row("5.0.9", "", 5), key_row("5.1.0", "", 1)]);
    }
}
