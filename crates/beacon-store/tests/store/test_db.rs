//! The test databases themselves: what a failing test leaves behind.

use beacon_store::testing::{TestDb, sample_report};

async fn schema_exists(name: &str) -> bool {
    let base = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&name],
        )
        .await
        .expect("look the schema up");
    row.get::<_, i64>(0) == 1
}

#[tokio::test]
async fn a_panicking_test_leaves_no_postgres_schema_behind() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let (_, schema) = db.url().rsplit_once("schema=").expect("a schema parameter");
    let schema = schema.to_owned();
    let in_use = schema.clone();
    let test = tokio::spawn(async move {
        let store = beacon_store::open_store(db.url()).await.expect("open");
        store
            .insert(sample_report("A", chrono::Utc::now().date_naive()))
            .await
            .expect("insert");
        assert!(schema_exists(&in_use).await, "the store created {in_use}");
        panic!("the test fails while it holds the database and an open store");
    });
    let failure = test.await.expect_err("the test panicked");
    assert!(failure.is_panic());
    assert!(!schema_exists(&schema).await, "{schema} is left behind");
}
