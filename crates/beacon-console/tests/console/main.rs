//! The console over real HTTP on a seeded SQLite store: access control, the data API and
//! exports, hardening.

mod access;
mod data;
mod hardening;
mod support;
