//! Access control over real HTTP: pages need a login session, the data API a session or
//! an API token, forms a CSRF token; API tokens never open pages.

use crate::support;

use beacon_console::{Chart, ConsoleOptions};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, LOCATION, WWW_AUTHENTICATE};
use support::{PASSWORD, client, form, hidden, login, post_login, serve};

const PAGES: &[&str] = &[
    "/console/overview",
    "/console/activity",
    "/console/versions",
    "/console/platforms",
    "/console/hardware",
    "/console/features",
    "/console/workload",
    "/console/tokens",
];

/// Every data API route: each chart, each export, the filters and the OpenAPI document.
fn data_routes() -> Vec<String> {
    let mut routes = vec![
        "/console/api/v1/openapi.json".to_owned(),
        "/console/api/v1/filters".to_owned(),
        "/console/api/v1/export/reports.csv".to_owned(),
        "/console/api/v1/export/reports.ndjson".to_owned(),
    ];
    for chart in Chart::ALL {
        routes.push(format!("/console/api/v1/charts/{}", chart.name()));
        routes.push(format!("/console/api/v1/export/{}.csv", chart.name()));
        routes.push(format!("/console/api/v1/export/{}.ndjson", chart.name()));
    }
    routes
}

#[tokio::test]
async fn every_page_without_login_redirects_to_the_login_page() {
    let served = serve(0, ConsoleOptions::default()).await;
    let client = client();
    for page in PAGES {
        let response = served.get(&client, &format!("{page}?os=Linux"), &[]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        let target = response.headers()[LOCATION].to_str().unwrap();
        let encoded_page = page.replace('/', "%2F");
        assert_eq!(
            target,
            format!("/console/login?next={encoded_page}%3Fos%3DLinux"),
            "{page} comes back after login"
        );
    }
    for form_route in [
        "/console/logout",
        "/console/tokens",
        "/console/tokens/revoke",
    ] {
        let response = client
            .post(format!("{}{form_route}", served.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "POST {form_route}"
        );
    }
}

#[tokio::test]
async fn every_data_route_without_credentials_is_401() {
    let served = serve(0, ConsoleOptions::default()).await;
    let client = client();
    for route in data_routes() {
        let response = served.get(&client, &route, &[]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{route}");
        assert!(response.headers().contains_key(WWW_AUTHENTICATE), "{route}");
        let bad_token = served
            .get(&client, &route, &[(AUTHORIZATION, "Bearer 00ff")])
            .await;
        assert_eq!(
            bad_token.status(),
            StatusCode::UNAUTHORIZED,
            "{route} with an unknown token"
        );
        let fake_cookie = served
            .get(&client, &route, &[(COOKIE, "beacon_console=forged")])
            .await;
        assert_eq!(
            fake_cookie.status(),
            StatusCode::UNAUTHORIZED,
            "{route} with a forged session"
        );
    }
}

#[tokio::test]
async fn login_gives_a_strict_http_only_session_that_opens_everything() {
    let served = serve(0, ConsoleOptions::default()).await;
    let client = client();
    let wrong = post_login(&client, &served.base, "wrong password", true).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(support::set_cookie(&wrong, "beacon_console").is_none());
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Wrong user name or password")
    );

    let session = login(&client, &served.base).await;
    assert!(
        session.set_cookie.contains("HttpOnly"),
        "{}",
        session.set_cookie
    );
    assert!(
        session.set_cookie.contains("SameSite=Strict"),
        "{}",
        session.set_cookie
    );
    assert!(
        session.set_cookie.contains("Path=/console"),
        "{}",
        session.set_cookie
    );
    assert!(
        !session.set_cookie.contains("Secure"),
        "plain HTTP: no Secure flag"
    );
    for page in PAGES {
        let response =
            support::get_signed_in(&client, &format!("{}{page}", served.base), &session).await;
        assert_eq!(response.status(), StatusCode::OK, "{page}");
    }
    for route in data_routes() {
        let response =
            support::get_signed_in(&client, &format!("{}{route}", served.base), &session).await;
        assert_eq!(response.status(), StatusCode::OK, "{route}");
    }
}

#[tokio::test]
async fn session_cookies_are_secure_when_served_over_tls() {
    let options = ConsoleOptions {
        secure_cookies: true,
        ..ConsoleOptions::default()
    };
    let served = serve(0, options).await;
    let session = login(&client(), &served.base).await;
    assert!(
        session.set_cookie.contains("; Secure"),
        "{}",
        session.set_cookie
    );
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_forbidden() {
    let served = serve(0, ConsoleOptions::default()).await;
    let client = client();
    let login_without = post_login(&client, &served.base, PASSWORD, false).await;
    assert_eq!(
        login_without.status(),
        StatusCode::FORBIDDEN,
        "login form without its token"
    );
    assert!(support::set_cookie(&login_without, "beacon_console").is_none());

    let session = login(&client, &served.base).await;
    let post = |path: &str, body: String| {
        client
            .post(format!("{}{path}", served.base))
            .header(COOKIE, &session.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let cases = [
        ("/console/tokens", form(&[("name", "ci")])),
        ("/console/tokens", form(&[("name", "ci"), ("csrf", "0123")])),
        ("/console/tokens/revoke", form(&[("name", "ci")])),
        ("/console/logout", String::new()),
    ];
    for (path, body) in cases {
        let response = post(path, body.clone()).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "POST {path} {body}"
        );
    }
    assert!(
        served.store.api_tokens().await.unwrap().is_empty(),
        "nothing was created"
    );
    let still_in = support::get_signed_in(
        &client,
        &format!("{}/console/overview", served.base),
        &session,
    )
    .await;
    assert_eq!(
        still_in.status(),
        StatusCode::OK,
        "a refused logout did not log out"
    );

    let logout = post("/console/logout", form(&[("csrf", &session.csrf)]))
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let after = support::get_signed_in(
        &client,
        &format!("{}/console/overview", served.base),
        &session,
    )
    .await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "the session ended");
}

#[tokio::test]
async fn api_tokens_open_the_data_api_and_not_the_pages() {
    let served = serve(0, ConsoleOptions::default()).await;
    let client = client();
    let session = login(&client, &served.base).await;
    let created = client
        .post(format!("{}/console/tokens", served.base))
        .header(COOKIE, &session.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("name", "ci-job"), ("csrf", &session.csrf)]))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let html = created.text().await.unwrap();
    let start = html.find("id=\"new-token\">").expect("token shown") + "id=\"new-token\">".len();
    let token = &html[start..start + 64];
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    let bearer = format!("Bearer {token}");

    for route in data_routes() {
        let response = served
            .get(&client, &route, &[(AUTHORIZATION, &bearer)])
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{route} with the token");
    }
    for page in PAGES {
        let response = served.get(&client, page, &[(AUTHORIZATION, &bearer)]).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "{page} refuses the token"
        );
    }

    let tokens_page = support::get_signed_in(
        &client,
        &format!("{}/console/tokens", served.base),
        &session,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(tokens_page.contains("ci-job"));
    assert!(!tokens_page.contains(token), "the token is shown only once");
    let revoked = client
        .post(format!("{}/console/tokens/revoke", served.base))
        .header(COOKIE, &session.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("name", "ci-job"),
            ("csrf", &hidden(&tokens_page, "csrf")),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let after = served
        .get(
            &client,
            "/console/api/v1/charts/activity",
            &[(AUTHORIZATION, &bearer)],
        )
        .await;
    assert_eq!(
        after.status(),
        StatusCode::UNAUTHORIZED,
        "a revoked token stops working"
    );
}

#[tokio::test]
async fn a_removed_user_is_logged_out_at_once() {
    let served = serve(0, ConsoleOptions::default()).await;
    let client = client();
    let session = login(&client, &served.base).await;
    assert!(served.store.remove_user(support::USER).await.unwrap());
    let response = support::get_signed_in(
        &client,
        &format!("{}/console/overview", served.base),
        &session,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_password_ends_the_sessions_of_the_old_one() {
    let served = serve(0, ConsoleOptions::default()).await;
    let client = client();
    let session = login(&client, &served.base).await;
    let overview = format!("{}/console/overview", served.base);
    let before = support::get_signed_in(&client, &overview, &session).await;
    assert_eq!(before.status(), StatusCode::OK);
    let hash = beacon_auth::hash_password("a new password").expect("hash");
    assert!(
        served
            .store
            .set_password(support::USER, &hash)
            .await
            .unwrap()
    );
    let after = support::get_signed_in(&client, &overview, &session).await;
    assert_eq!(
        after.status(),
        StatusCode::SEE_OTHER,
        "sent back to the login page"
    );
    let again = support::post_login(&client, &served.base, "a new password", true).await;
    assert_eq!(
        again.status(),
        StatusCode::SEE_OTHER,
        "the new password signs in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_attempts_are_limited_per_user_name() {
    let options = ConsoleOptions {
        logins_per_minute: std::num::NonZeroU32::MIN,
        login_burst: std::num::NonZeroU32::new(2).unwrap(),
        ..ConsoleOptions::default()
    };
    let served = serve(0, options).await;
    let hash = beacon_auth::hash_password("other password").expect("hash");
    assert!(served.store.add_user("other", &hash).await.unwrap());
    let client = client();
    for _ in 0..2 {
        let wrong = support::post_login(&client, &served.base, "guess", true).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = support::post_login(&client, &served.base, support::PASSWORD, true).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let page = throttled.text().await.unwrap();
    assert!(page.contains("Too many sign-in attempts"), "{page}");
    let other =
        support::post_login_as(&client, &served.base, "other", "other password", true).await;
    assert_eq!(
        other.status(),
        StatusCode::SEE_OTHER,
        "another name is not held up"
    );
}
