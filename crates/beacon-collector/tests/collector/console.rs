//! The private console mounted on a collector: beside ingest on one listener, or on a
//! listener of its own; ingest stays open either way, the console stays closed.

use crate::support;

use std::sync::Arc;

use beacon_collector::{Collector, CollectorConfig, RateLimit};
use beacon_console::ConsoleOptions;
use support::{JSON, local, seed_with};
use tokio::sync::oneshot;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Status of GET `url`.
async fn status(client: &reqwest::Client, url: &str) -> u16 {
    client.get(url).send().await.expect("get").status().as_u16()
}

/// Status of posting a valid report to the ingest endpoint at `base`.
async fn ingest(client: &reqwest::Client, base: &str, uuid: &str) -> u16 {
    client
        .post(format!("{base}/api/telemetry"))
        .header("content-type", JSON)
        .body(seed_with(uuid, 1))
        .send()
        .await
        .expect("post report")
        .status()
        .as_u16()
}

async fn check(separate_listener: bool) {
    let backend = support::sqlite().await;
    let mut config = CollectorConfig::new(local());
    config.rate_limit = RateLimit::disabled();
    let console = beacon_console::router(Arc::clone(&backend.store), ConsoleOptions::default());
    let bound = Collector::bind_store(config, Arc::clone(&backend.store))
        .await
        .expect("bind")
        .with_console(console, separate_listener.then(local))
        .expect("bind console");
    let (ingest_base, console_base) = (bound.url(), bound.console_url().expect("console url"));
    assert_eq!(ingest_base == console_base, !separate_listener);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    let client = no_redirects();

    assert!(
        (200..300).contains(
            &ingest(
                &client,
                &ingest_base,
                "7d0c3a33-0000-4000-8000-000000000001"
            )
            .await
        ),
        "ingest needs no login"
    );
    assert_eq!(
        status(&client, &format!("{console_base}/console/overview")).await,
        303
    );
    assert_eq!(
        status(&client, &format!("{console_base}/console/login")).await,
        200
    );
    assert_eq!(
        status(
            &client,
            &format!("{console_base}/console/api/v1/charts/activity")
        )
        .await,
        401
    );
    if separate_listener {
        assert_eq!(
            status(&client, &format!("{ingest_base}/console/login")).await,
            404,
            "the ingest listener does not serve the console"
        );
        assert_eq!(
            status(&client, &format!("{console_base}/healthz")).await,
            404,
            "the console listener serves only the console"
        );
    }
    let _ = stop.send(());
    task.await.expect("task").expect("served without error");
    assert_eq!(backend.store.count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_beside_ingest_on_one_listener() {
    check(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_on_a_listener_of_its_own() {
    check(true).await;
}
