//! Times every dashboard page and data API answer over HTTP (127.0.0.1) against an
//! existing collector database, e.g. one filled by `beacon collector seed-demo-data`:
//! median of several runs after one warm-up, for the default range (26 weeks) and a year.
//!
//! ```text
//! cargo run --release -p beacon-console --example console_bench -- --db sqlite://PATH [--runs 7]
//! ```
//!
//! It adds a console user and an API token named `console-bench` to that database, and
//! removes them at the end.

use std::error::Error;
use std::time::{Duration, Instant};

use beacon_console::{Chart, ConsoleOptions};
use reqwest::header::{AUTHORIZATION, COOKIE};
use sha2::{Digest, Sha256};

#[allow(dead_code)] // the bench signs in with two of the tests' helpers
#[path = "../tests/console/support/mod.rs"]
mod support;

type BoxError = Box<dyn Error + Send + Sync>;

const USER: &str = "console-bench";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (db, runs) = options()?;
    let store = beacon_store::open_store(&db).await?;
    let password = beacon_auth::random_password();
    let token = beacon_auth::random_token();
    store.remove_user(USER).await?;
    store
        .add_user(USER, &beacon_auth::hash_password(&password)?)
        .await?;
    let token_hash = hex::encode(Sha256::digest(token.as_bytes()));
    store.add_api_token(USER, USER, &token_hash).await?;
    println!("{} reports in {db}", store.count().await?);

    let app = beacon_console::router(store.clone(), ConsoleOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie = login(&client, &base, &password).await?;

    let today = chrono::Utc::now().date_naive();
    let year = format!("from={}&to={today}", today - chrono::Days::new(364));
    println!("| request | 26 weeks (default) ms | 52 weeks ms |");
    println!("|---|---:|---:|");
    let mut slowest = Duration::ZERO;
    for chart in Chart::ALL {
        let name = chart.name();
        let targets = [
            (
                format!("GET /console/{name} (page)"),
                format!("/console/{name}"),
                true,
            ),
            (
                format!("GET /console/api/v1/charts/{name}"),
                format!("/console/api/v1/charts/{name}"),
                false,
            ),
        ];
        for (label, path, page) in targets {
            let mut row = format!("| {label} |");
            for query in ["", year.as_str()] {
                let url = format!("{base}{path}?{query}");
                let request = || {
                    let builder = client.get(&url);
                    if page {
                        builder.header(COOKIE, &cookie)
                    } else {
                        builder.header(AUTHORIZATION, format!("Bearer {token}"))
                    }
                };
                let median = time(runs, || async {
                    let response = request().send().await?;
                    if !response.status().is_success() {
                        return Err(format!("{url}: {}", response.status()).into());
                    }
                    response.bytes().await?;
                    Ok(())
                })
                .await?;
                slowest = slowest.max(median);
                row.push_str(&format!(" {:.1} |", median.as_secs_f64() * 1000.0));
            }
            println!("{row}");
        }
    }
    println!("slowest median: {:.1} ms", slowest.as_secs_f64() * 1000.0);
    server.abort();
    store.remove_user(USER).await?;
    Ok(())
}

fn options() -> Result<(String, usize), BoxError> {
    let (mut db, mut runs) = (None, 7);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--db" => db = Some(value),
            "--runs" => {
                runs = value
                    .parse()
                    .map_err(|_| format!("--runs: not a number: {value}"))?
            }
            other => return Err(format!("unknown option {other} (use --db URL, --runs N)").into()),
        }
    }
    Ok((db.ok_or("--db URL is required")?, runs.max(1)))
}

/// Logs in through the form, as a browser does (the console tests' way); answers the
/// session cookie.
async fn login(client: &reqwest::Client, base: &str, password: &str) -> Result<String, BoxError> {
    let response = support::post_login_as(client, base, USER, password, true).await;
    let (cookie, _) = support::set_cookie(&response, "beacon_console")
        .ok_or_else(|| format!("login refused: {}", response.status()))?;
    Ok(cookie)
}

/// Median duration of `runs` calls after one warm-up.
async fn time<F, Fut>(runs: usize, call: F) -> Result<Duration, BoxError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    call().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        call().await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}
