//! A console served on 127.0.0.1 over a real SQLite store, and a client that logs in the
//! way a browser does (form, cookies, CSRF token read from the page).

use std::net::SocketAddr;
use std::sync::Arc;

use beacon_console::ConsoleOptions;
use beacon_store::Store;
use beacon_store::testing::TestDb;
use reqwest::header::{COOKIE, HeaderName, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode, redirect};

pub const USER: &str = "admin";
pub const PASSWORD: &str = "correct horse battery";

pub struct Served {
    pub base: String,
    pub store: Arc<dyn Store>,
    _db: TestDb,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// `GET path` of this console from `client`, with `headers` (credentials, cookies).
    pub async fn get(
        &self,
        client: &Client,
        path: &str,
        headers: &[(HeaderName, &str)],
    ) -> reqwest::Response {
        let mut request = client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let sent = request.send().await;
        sent.unwrap_or_else(|error| panic!("GET {path}: {error}"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A console with one admin user and `reports` seeded reports ending today.
pub async fn serve(reports: usize, options: ConsoleOptions) -> Served {
    let db = TestDb::sqlite();
    let store = beacon_store::open_store(db.url())
        .await
        .expect("open store");
    let hash = beacon_auth::hash_password(PASSWORD).expect("hash");
    assert!(store.add_user(USER, &hash).await.expect("add user"));
    if reports > 0 {
        let today = chrono::Utc::now().date_naive();
        store
            .bulk_insert(Box::new(beacon_seed::generate(reports, today, 7)))
            .await
            .expect("seed");
    }
    let app = beacon_console::router(Arc::clone(&store), options);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        // With the peer address, as the collector serves it (sign-in throttling uses it).
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).await.expect("serve");
    });
    Served {
        base,
        store,
        _db: db,
        task,
    }
}

/// A client that does not follow redirects, so that tests see them.
pub fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client")
}

/// `name=value` of the first `Set-Cookie` named `name`, and its full header text.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            (
                v.split(';').next().unwrap_or_default().to_owned(),
                v.to_owned(),
            )
        })
}

/// The `value` of the hidden input called `name` in `html`.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in {html}"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// An `application/x-www-form-urlencoded` body, as a browser sends a form.
pub fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("form pairs encode")
}

/// GET `url` with the session cookie of a logged-in browser.
pub async fn get_signed_in(client: &Client, url: &str, session: &Session) -> reqwest::Response {
    client
        .get(url)
        .header(reqwest::header::COOKIE, &session.cookie)
        .send()
        .await
        .expect("GET with the session cookie")
}

/// A logged-in browser: its session cookie and the CSRF token of its forms.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    /// The full `Set-Cookie` text of the session cookie, for attribute checks.
    pub set_cookie: String,
}

/// The response to posting the login form fetched just before.
pub async fn post_login(
    client: &Client,
    base: &str,
    password: &str,
    with_csrf: bool,
) -> reqwest::Response {
    post_login_as(client, base, USER, password, with_csrf).await
}

/// [`post_login`] for the user named `user`.
pub async fn post_login_as(
    client: &Client,
    base: &str,
    user: &str,
    password: &str,
    with_csrf: bool,
) -> reqwest::Response {
    let page = client
        .get(format!("{base}/console/login"))
        .send()
        .await
        .expect("login page");
    assert_eq!(page.status(), StatusCode::OK);
    let (login_cookie, _) = set_cookie(&page, "beacon_console_login").expect("login form cookie");
    let html = page.text().await.expect("login html");
    let csrf = if with_csrf {
        hidden(&html, "csrf")
    } else {
        String::new()
    };
    client
        .post(format!("{base}/console/login"))
        .header(COOKIE, login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("username", user),
            ("password", password),
            ("csrf", &csrf),
            ("next", "/console/versions"),
        ]))
        .send()
        .await
        .expect("post login")
}

pub async fn login(client: &Client, base: &str) -> Session {
    let response = post_login(client, base, PASSWORD, true).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "login succeeds");
    assert_eq!(
        response.headers()[LOCATION],
        "/console/versions",
        "login goes to `next`"
    );
    let (cookie, set_cookie) = set_cookie(&response, "beacon_console").expect("session cookie");
    let page = client
        .get(format!("{base}/console/tokens"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("tokens page");
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = hidden(&page.text().await.expect("html"), "csrf");
    Session {
        cookie,
        csrf,
        set_cookie,
    }
}
