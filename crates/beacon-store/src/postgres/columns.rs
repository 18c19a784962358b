//! Rows as one array per column, the form PostgreSQL's `unnest` takes: one statement
//! writes a whole batch of reports, snapshots or counter deltas.

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::types::ToSql;

use crate::NewReport;
use crate::rollup::{ClusterWeek, Delta, Node, NodeWeek};

/// A struct of one array per column of `$row`, built by `of`, whose `params` are the
/// arrays in statement order.
macro_rules! columns {
    ($name:ident of $row:ty { $($column:ident: $type:ty = |$r:ident| $value:expr,)* }) => {
        pub(super) struct $name<'a> {
            $($column: Vec<$type>,)*
        }

        impl<'a> $name<'a> {
            pub(super) fn of(rows: &'a [$row]) -> Self {
                Self {
                    $($column: rows.iter().map(|$r| $value).collect(),)*
                }
            }

            pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
                vec![$(&self.$column,)*]
            }
        }
    };
}

columns!(Columns of &'a NewReport {
    day: NaiveDate = |r| r.day,
    uuid: &'a str = |r| r.uuid.as_str(),
    cluster_uuid: Option<&'a str> = |r| r.cluster_uuid.as_deref(),
    received_at: DateTime<Utc> = |r| r.received_at,
    emqx_version: &'a str = |r| r.emqx_version.as_str(),
    os_name: Option<&'a str> = |r| r.os_name.as_deref(),
    os_version: Option<&'a str> = |r| r.os_version.as_deref(),
    edition: Option<&'a str> = |r| r.edition.as_deref(),
    node_count: i64 = |r| r.node_count,
    format: i16 = |r| r.format,
    raw: &'a str = |r| r.raw.as_str(),
});

columns!(NodeColumns of Node {
    uuid: &'a str = |n| n.uuid.as_str(),
    first_day: NaiveDate = |n| n.first_day,
    first_at: DateTime<Utc> = |n| n.first_at,
    version: &'a str = |n| n.dims.version.as_str(),
    os: &'a str = |n| n.dims.os.as_str(),
});

columns!(NodeWeekColumns of NodeWeek {
    uuid: &'a str = |w| w.uuid.as_str(),
    week: NaiveDate = |w| w.week,
    received_at: DateTime<Utc> = |w| w.received_at,
    version: &'a str = |w| w.dims.version.as_str(),
    os: &'a str = |w| w.dims.os.as_str(),
});

columns!(ClusterWeekColumns of ClusterWeek {
    key: &'a str = |c| c.key.as_str(),
    week: NaiveDate = |c| c.week,
    received_at: DateTime<Utc> = |c| c.received_at,
    version: &'a str = |c| c.dims.version.as_str(),
    os: &'a str = |c| c.dims.os.as_str(),
    profile: String = |c| c.profile.to_json(),
});

columns!(DeltaColumns of Delta {
    version: &'a str = |d| d.version.as_str(),
    os: &'a str = |d| d.os.as_str(),
    kind: &'a str = |d| d.kind,
    week: NaiveDate = |d| d.week,
    k1: &'a str = |d| d.k1.as_str(),
    k2: &'a str = |d| d.k2.as_str(),
    n: i64 = |d| d.n,
});
