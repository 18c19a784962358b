//! Rows as one array per column, the form PostgreSQL's `unnest` takes: one statement
//! writes a whole batch of reports, snapshots or counter deltas.

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::types::ToSql;

use crate::NewReport;
use crate::rollup::{ClusterWeek, Delta, Node, NodeWeek};

/// The reports as one array per column, for `unnest`.
pub(super) struct Columns<'a> {
    day: Vec<NaiveDate>,
    uuid: Vec<&'a str>,
    cluster_uuid: Vec<Option<&'a str>>,
    received_at: Vec<DateTime<Utc>>,
    emqx_version: Vec<&'a str>,
    os_name: Vec<Option<&'a str>>,
    os_version: Vec<Option<&'a str>>,
    edition: Vec<Option<&'a str>>,
    node_count: Vec<i64>,
    format: Vec<i16>,
    raw: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    pub(super) fn of(reports: &[&'a NewReport]) -> Self {
        Self {
            day: reports.iter().map(|r| r.day).collect(),
            uuid: reports.iter().map(|r| r.uuid.as_str()).collect(),
            cluster_uuid: reports.iter().map(|r| r.cluster_uuid.as_deref()).collect(),
            received_at: reports.iter().map(|r| r.received_at).collect(),
            emqx_version: reports.iter().map(|r| r.emqx_version.as_str()).collect(),
            os_name: reports.iter().map(|r| r.os_name.as_deref()).collect(),
            os_version: reports.iter().map(|r| r.os_version.as_deref()).collect(),
            edition: reports.iter().map(|r| r.edition.as_deref()).collect(),
            node_count: reports.iter().map(|r| r.node_count).collect(),
            format: reports.iter().map(|r| r.format).collect(),
            raw: reports.iter().map(|r| r.raw.as_str()).collect(),
        }
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 11] {
        [
            &self.day,
            &self.uuid,
            &self.cluster_uuid,
            &self.received_at,
            &self.emqx_version,
            &self.os_name,
            &self.os_version,
            &self.edition,
            &self.node_count,
            &self.format,
            &self.raw,
        ]
    }
}

pub(super) struct NodeColumns<'a> {
    uuid: Vec<&'a str>,
    first_day: Vec<NaiveDate>,
    first_at: Vec<DateTime<Utc>>,
    version: Vec<&'a str>,
    os: Vec<&'a str>,
    secret_sha256: Vec<Option<&'a str>>,
    secret_at: Vec<Option<DateTime<Utc>>>,
}

impl<'a> NodeColumns<'a> {
    pub(super) fn of(nodes: &'a [Node]) -> Self {
        Self {
            uuid: nodes.iter().map(|n| n.uuid.as_str()).collect(),
            first_day: nodes.iter().map(|n| n.first_day).collect(),
            first_at: nodes.iter().map(|n| n.first_at).collect(),
            version: nodes.iter().map(|n| n.dims.version.as_str()).collect(),
            os: nodes.iter().map(|n| n.dims.os.as_str()).collect(),
            secret_sha256: nodes.iter().map(|n| n.secret_sha256.as_deref()).collect(),
            secret_at: nodes.iter().map(|n| n.secret_at).collect(),
        }
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.uuid,
            &self.first_day,
            &self.first_at,
            &self.version,
            &self.os,
            &self.secret_sha256,
            &self.secret_at,
        ]
    }
}

pub(super) struct NodeWeekColumns<'a> {
    uuid: Vec<&'a str>,
    week: Vec<NaiveDate>,
    received_at: Vec<DateTime<Utc>>,
    version: Vec<&'a str>,
    os: Vec<&'a str>,
}

impl<'a> NodeWeekColumns<'a> {
    pub(super) fn of(rows: &'a [NodeWeek]) -> Self {
        Self {
            uuid: rows.iter().map(|w| w.uuid.as_str()).collect(),
            week: rows.iter().map(|w| w.week).collect(),
            received_at: rows.iter().map(|w| w.received_at).collect(),
            version: rows.iter().map(|w| w.dims.version.as_str()).collect(),
            os: rows.iter().map(|w| w.dims.os.as_str()).collect(),
        }
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 5] {
        [
            &self.uuid,
            &self.week,
            &self.received_at,
            &self.version,
            &self.os,
        ]
    }
}

pub(super) struct ClusterWeekColumns<'a> {
    key: Vec<&'a str>,
    week: Vec<NaiveDate>,
    received_at: Vec<DateTime<Utc>>,
    version: Vec<&'a str>,
    os: Vec<&'a str>,
    profile: Vec<String>,
}

impl<'a> ClusterWeekColumns<'a> {
    pub(super) fn of(rows: &'a [ClusterWeek]) -> Self {
        Self {
            key: rows.iter().map(|c| c.key.as_str()).collect(),
            week: rows.iter().map(|c| c.week).collect(),
            received_at: rows.iter().map(|c| c.received_at).collect(),
            version: rows.iter().map(|c| c.dims.version.as_str()).collect(),
            os: rows.iter().map(|c| c.dims.os.as_str()).collect(),
            profile: rows.iter().map(|c| c.profile.to_json()).collect(),
        }
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 6] {
        [
            &self.key,
            &self.week,
            &self.received_at,
            &self.version,
            &self.os,
            &self.profile,
        ]
    }
}

pub(super) struct DeltaColumns<'a> {
    version: Vec<&'a str>,
    os: Vec<&'a str>,
    kind: Vec<&'a str>,
    week: Vec<NaiveDate>,
    k1: Vec<&'a str>,
    k2: Vec<&'a str>,
    n: Vec<i64>,
}

impl<'a> DeltaColumns<'a> {
    pub(super) fn of(deltas: &'a [Delta]) -> Self {
        Self {
            version: deltas.iter().map(|d| d.version.as_str()).collect(),
            os: deltas.iter().map(|d| d.os.as_str()).collect(),
            kind: deltas.iter().map(|d| d.kind).collect(),
            week: deltas.iter().map(|d| d.week).collect(),
            k1: deltas.iter().map(|d| d.k1.as_str()).collect(),
            k2: deltas.iter().map(|d| d.k2.as_str()).collect(),
            n: deltas.iter().map(|d| d.n).collect(),
        }
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.version,
            &self.os,
            &self.kind,
            &self.week,
            &self.k1,
            &self.k2,
            &self.n,
        ]
    }
}
