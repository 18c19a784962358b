//! [`Users`] on SQLite. Account changes are rare (CLI, console forms), so each opens its
//! own short-lived read-write connection instead of queueing behind report batches; WAL
//! and the busy timeout serialise it with the writer thread.

use std::sync::Arc;

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{BUSY_TIMEOUT, SqliteStore};
use crate::StoreError;
use crate::users::{ApiToken, Users, sql};

impl SqliteStore {
    async fn write<T, F>(&self, op: &'static str, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let db = readers.db.as_str();
            let mut conn = Connection::open(&readers.path)
                .map_err(StoreError::sqlite(db, "open for write"))?;
            conn.busy_timeout(BUSY_TIMEOUT)
                .map_err(StoreError::sqlite(db, "set busy timeout"))?;
            write(&mut conn).map_err(StoreError::sqlite(db, op))
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// The first column of the row `statement` finds by `key`, if any.
    async fn read_value(
        &self,
        op: &'static str,
        statement: &'static str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.read(op, move |conn| {
            conn.prepare_cached(statement)?
                .query_row(params![key], |row| row.get(0))
                .optional()
        })
        .await
    }
}

#[async_trait::async_trait]
impl Users for SqliteStore {
    async fn add_user(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let (name, hash) = (name.to_owned(), password_hash.to_owned());
        self.write("add console user", move |conn| {
            conn.execute(sql::ADD_USER, params![name, hash, Utc::now()])
                .map(|n| n == 1)
        })
        .await
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let (name, hash) = (name.to_owned(), password_hash.to_owned());
        self.write("change console password", move |conn| {
            conn.execute(sql::SET_PASSWORD, params![hash, name])
                .map(|n| n == 1)
        })
        .await
    }

    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.write("remove console user", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(sql::REMOVE_TOKENS_OF, params![name])?;
            let removed = tx.execute(sql::REMOVE_USER, params![name])? == 1;
            tx.commit()?;
            Ok(removed)
        })
        .await
    }

    async fn password_hash(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.read_value("read console user", sql::PASSWORD_HASH, name)
            .await
    }

    async fn user_names(&self) -> Result<Vec<String>, StoreError> {
        self.read("list console users", |conn| {
            conn.prepare_cached(sql::USER_NAMES)?
                .query_map([], |row| row.get(0))?
                .collect()
        })
        .await
    }

    async fn add_api_token(
        &self,
        name: &str,
        user: &str,
        token_sha256: &str,
    ) -> Result<bool, StoreError> {
        let (name, user, hash) = (name.to_owned(), user.to_owned(), token_sha256.to_owned());
        self.write("add API token", move |conn| {
            conn.execute(sql::ADD_TOKEN, params![hash, name, user, Utc::now()])
                .map(|n| n == 1)
        })
        .await
    }

    async fn remove_api_token(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.write("remove API token", move |conn| {
            conn.execute(sql::REMOVE_TOKEN, params![name])
                .map(|n| n == 1)
        })
        .await
    }

    async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.read("list API tokens", |conn| {
            conn.prepare_cached(sql::TOKENS)?
                .query_map([], |row| {
                    Ok(ApiToken {
                        name: row.get(0)?,
                        user: row.get(1)?,
                        created_at: row.get(2)?,
                    })
                })?
                .collect()
        })
        .await
    }

    async fn api_token_user(&self, token_sha256: &str) -> Result<Option<String>, StoreError> {
        self.read_value("look up API token", sql::TOKEN_USER, token_sha256)
            .await
    }
}
