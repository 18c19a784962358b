//! Analytics query benchmark: seeds fresh databases with synthetic history (10,000 and
//! 1,000,000 reports by default) through `bulk_insert`, then times every dashboard query
//! (median of several runs after one warm-up) and prints, per backend, the time at each
//! size and the ratio of the largest to the smallest.
//!
//! ```text
//! cargo run --release -p beacon-store --example analytics_bench -- [--sizes 10000,1000000] [--runs 7]
//! ```
//!
//! SQLite files go to a temporary directory; PostgreSQL is measured too when
//! `TEST_DATABASE_URL` is set, each size in a scratch schema that is dropped afterwards.

use std::collections::BTreeMap;
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use beacon_seed as seed;
use beacon_store::testing::TestDb;
use beacon_store::{AnalyticsQuery, Store, StoreError, open_store};
use chrono::{Days, NaiveDate};

type BoxError = Box<dyn Error + Send + Sync>;
type Answer<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// The day the seeded year ends.
const END: (i32, u32, u32) = (2025, 6, 30);

struct Options {
    sizes: Vec<usize>,
    runs: usize,
}

fn options() -> Result<Options, BoxError> {
    let mut options = Options {
        sizes: vec![10_000, 1_000_000],
        runs: 7,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sizes" => {
                options.sizes = value
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("--sizes {value}: {e}"))?;
            }
            "--runs" => {
                options.runs = value.parse().map_err(|e| format!("--runs {value}: {e}"))?;
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if options.sizes.is_empty() || options.runs == 0 {
        return Err("--sizes and --runs must not be empty or zero".into());
    }
    Ok(options)
}

/// Medians in milliseconds per query name, and the bulk load rate.
struct Measured {
    load_per_second: f64,
    medians: BTreeMap<String, f64>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let options = options()?;
    let mut backends: Vec<(&str, Vec<Measured>)> = Vec::new();
    let mut sqlite = Vec::new();
    for &size in &options.sizes {
        let db = TestDb::sqlite();
        sqlite.push(measure("sqlite", db.url(), size, options.runs).await?);
    }
    backends.push(("sqlite", sqlite));
    if std::env::var_os("TEST_DATABASE_URL").is_some() {
        let mut postgres = Vec::new();
        for &size in &options.sizes {
            let db = TestDb::postgres().ok_or("PostgreSQL skipped by BEACON_SKIP_POSTGRES")?;
            postgres.push(measure("postgres", db.url(), size, options.runs).await?);
        }
        backends.push(("postgres", postgres));
    }
    print_table(&options, &backends);
    Ok(())
}

async fn measure(backend: &str, url: &str, size: usize, runs: usize) -> Result<Measured, BoxError> {
    let end = NaiveDate::from_ymd_opt(END.0, END.1, END.2).ok_or("bad end day")?;
    let store = open_store(url).await?;
    eprintln!("{backend}: seeding {size} reports...");
    let started = Instant::now();
    store
        .bulk_insert(Box::new(seed::generate(size, end, 1)))
        .await?;
    let load = started.elapsed();
    let load_per_second = size as f64 / load.as_secs_f64();
    eprintln!("{backend}: seeded in {load:.1?} ({load_per_second:.0} reports/s)");
    let mut medians = BTreeMap::new();
    for (name, query) in queries(&*store, end).await? {
        let mut times = Vec::with_capacity(runs);
        for run in 0..=runs {
            let started = Instant::now();
            ask(&*store, &name, &query).await?;
            // The first run warms caches and prepared statements.
            if run > 0 {
                times.push(started.elapsed());
            }
        }
        times.sort();
        medians.insert(name, millis(times[times.len() / 2]));
    }
    Ok(Measured {
        load_per_second,
        medians,
    })
}

/// Every query, over the whole year, over the last four weeks, and filtered by the
/// newest version and the most common OS.
async fn queries(
    store: &dyn Store,
    end: NaiveDate,
) -> Result<Vec<(String, AnalyticsQuery)>, BoxError> {
    let year = AnalyticsQuery {
        from: end - Days::new(364),
        to: end,
        version: None,
        os: None,
    };
    let month = AnalyticsQuery {
        from: end - Days::new(27),
        ..year.clone()
    };
    let platforms = store.platforms(&year).await?;
    let filtered = AnalyticsQuery {
        version: store.distinct_versions().await?.into_iter().next(),
        os: platforms.os.first().map(|share| share.value.clone()),
        ..year.clone()
    };
    let mut all = Vec::new();
    for name in NAMES {
        for (scope, query) in [
            ("year", &year),
            ("4 weeks", &month),
            ("filtered", &filtered),
        ] {
            if name.starts_with("distinct") && scope != "year" {
                continue;
            }
            all.push((format!("{name} ({scope})"), query.clone()));
        }
    }
    Ok(all)
}

const NAMES: [&str; 9] = [
    "overview",
    "activity",
    "version_adoption",
    "platforms",
    "hardware",
    "features",
    "workload",
    "distinct_versions",
    "distinct_os",
];

fn ask<'a>(store: &'a dyn Store, name: &str, query: &'a AnalyticsQuery) -> Answer<'a> {
    let method = name.split(' ').next().unwrap_or_default();
    match method {
        "overview" => Box::pin(async move { store.overview(query).await.map(drop) }),
        "activity" => Box::pin(async move { store.activity(query).await.map(drop) }),
        "version_adoption" => {
            Box::pin(async move { store.version_adoption(query).await.map(drop) })
        }
        "platforms" => Box::pin(async move { store.platforms(query).await.map(drop) }),
        "hardware" => Box::pin(async move { store.hardware(query).await.map(drop) }),
        "features" => Box::pin(async move { store.features(query).await.map(drop) }),
        "workload" => Box::pin(async move { store.workload(query).await.map(drop) }),
        "distinct_versions" => Box::pin(async move { store.distinct_versions().await.map(drop) }),
        _ => Box::pin(async move { store.distinct_os().await.map(drop) }),
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn print_table(options: &Options, backends: &[(&str, Vec<Measured>)]) {
    let sizes: Vec<String> = options.sizes.iter().map(|s| s.to_string()).collect();
    let mut header = String::from("| query |");
    let mut rule = String::from("|---|");
    for (backend, _) in backends {
        for size in &sizes {
            header.push_str(&format!(" {backend} {size} (ms) |"));
            rule.push_str("---:|");
        }
        header.push_str(&format!(" {backend} ratio |"));
        rule.push_str("---:|");
    }
    println!("{header}\n{rule}");
    let Some((_, first)) = backends.first() else {
        return;
    };
    for name in first[0].medians.keys() {
        let mut line = format!("| {name} |");
        for (_, measured) in backends {
            let times: Vec<f64> = measured.iter().map(|m| m.medians[name]).collect();
            for time in &times {
                line.push_str(&format!(" {time:.2} |"));
            }
            let ratio = times.last().unwrap_or(&0.0) / times.first().unwrap_or(&1.0);
            line.push_str(&format!(" {ratio:.2}x |"));
        }
        println!("{line}");
    }
    let mut load = String::from("| bulk load (reports/s) |");
    for (_, measured) in backends {
        for m in measured {
            load.push_str(&format!(" {:.0} |", m.load_per_second));
        }
        load.push_str(" |");
    }
    println!("{load}");
}
