//! [`Users`] on PostgreSQL, through the read pool (account changes are rare and small).

use chrono::Utc;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use crate::StoreError;
use crate::users::{ApiToken, Users, sql};

impl PostgresStore {
    async fn execute(
        &self,
        op: &'static str,
        statement: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.reader(op).await?;
        let prepared = client
            .prepare_cached(statement)
            .await
            .map_err(StoreError::postgres(&self.db, op))?;
        client
            .execute(&prepared, params)
            .await
            .map_err(StoreError::postgres(&self.db, op))
    }

    /// The first column of the first row of `statement`, if any.
    async fn query_value(
        &self,
        op: &'static str,
        statement: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<String>, StoreError> {
        let values = self.query_rows(op, statement, params, |row| row.try_get(0));
        Ok(values.await?.into_iter().next())
    }

    fn decode<T>(
        &self,
        op: &'static str,
        value: Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        value.map_err(StoreError::postgres(&self.db, op))
    }
}

#[async_trait::async_trait]
impl Users for PostgresStore {
    async fn add_user(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let now = Utc::now();
        let added = self
            .execute(
                "add console user",
                sql::ADD_USER,
                &[&name, &password_hash, &now],
            )
            .await?;
        Ok(added == 1)
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "change console password",
                sql::SET_PASSWORD,
                &[&password_hash, &name],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let op = "remove console user";
        let mut client = self.reader(op).await?;
        let tx = self.decode(op, client.transaction().await)?;
        self.decode(op, tx.execute(sql::REMOVE_TOKENS_OF, &[&name]).await)?;
        let removed = self.decode(op, tx.execute(sql::REMOVE_USER, &[&name]).await)?;
        self.decode(op, tx.commit().await)?;
        Ok(removed == 1)
    }

    async fn password_hash(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.query_value("read console user", sql::PASSWORD_HASH, &[&name])
            .await
    }

    async fn user_names(&self) -> Result<Vec<String>, StoreError> {
        self.query_rows("list console users", sql::USER_NAMES, &[], |row| {
            row.try_get(0)
        })
        .await
    }

    async fn add_api_token(
        &self,
        name: &str,
        user: &str,
        token_sha256: &str,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let added = self
            .execute(
                "add API token",
                sql::ADD_TOKEN,
                &[&token_sha256, &name, &user, &now],
            )
            .await?;
        Ok(added == 1)
    }

    async fn remove_api_token(&self, name: &str) -> Result<bool, StoreError> {
        let removed = self
            .execute("remove API token", sql::REMOVE_TOKEN, &[&name])
            .await?;
        Ok(removed == 1)
    }

    async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.query_rows("list API tokens", sql::TOKENS, &[], |row| {
            Ok(ApiToken {
                name: row.try_get(0)?,
                user: row.try_get(1)?,
                created_at: row.try_get(2)?,
            })
        })
        .await
    }

    async fn api_token_user(&self, token_sha256: &str) -> Result<Option<String>, StoreError> {
        self.query_value("look up API token", sql::TOKEN_USER, &[&token_sha256])
            .await
    }
}
