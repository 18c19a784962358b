//! Both stores, tested the same way: a real SQLite file and the real PostgreSQL at
//! `TEST_DATABASE_URL`.

mod analytics;
mod claims;
mod shared_postgres;
mod store;
mod support;
mod test_db;
mod users;
