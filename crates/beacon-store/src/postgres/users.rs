//! [`Users`] on PostgreSQL, through the read pool (account changes are rare and small).

use chrono::Utc;
use tokio_postgres::types::ToSql;

use super::{PostgresStore, query_cached};
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

    async fn query(
        &self,
        op: &'static str,
        statement: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.reader(op).await?;
        query_cached(&client, statement, params)
            .await
            .map_err(StoreError::postgres(&self.db, op))
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
        let op = "read console user";
        let rows = self.query(op, sql::PASSWORD_HASH, &[&name]).await?;
        rows.first()
            .map(|row| self.decode(op, row.try_get(0)))
            .transpose()
    }

    async fn user_names(&self) -> Result<Vec<String>, StoreError> {
        let op = "list console users";
        let rows = self.query(op, sql::USER_NAMES, &[]).await?;
        rows.iter()
            .map(|row| self.decode(op, row.try_get(0)))
            .collect()
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
        let op = "list API tokens";
        let rows = self.query(op, sql::TOKENS, &[]).await?;
        rows.iter()
            .map(|row| {
                Ok(ApiToken {
                    name: self.decode(op, row.try_get(0))?,
                    user: self.decode(op, row.try_get(1))?,
                    created_at: self.decode(op, row.try_get(2))?,
                })
            })
            .collect()
    }

    async fn api_token_user(&self, token_sha256: &str) -> Result<Option<String>, StoreError> {
        let op = "look up API token";
        let rows = self.query(op, sql::TOKEN_USER, &[&token_sha256]).await?;
        rows.first()
            .map(|row| self.decode(op, row.try_get(0)))
            .transpose()
    }
}
