//! The console's filters as its pages and data API read them: a query string, through
//! axum's `Query` extractor, into `Filters::parse`. Properties:
//! - a refused question is a 400 naming the parameter or the order of the dates;
//! - accepted filters write a query string that is a valid URI query and reads back as
//!   the same filters (so `from` is not after `to`), also after the "last N weeks" links
//!   change the range, which keep `to`.
#![no_main]

use axum::extract::Query;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use beacon_console::ConsoleError;
use beacon_console::fuzzing::{Filters, RawFilters};
use libfuzzer_sys::fuzz_target;

/// The ranges of the filter bar's quick links.
const QUICK_WEEKS: [u64; 4] = [4, 13, 26, 52];

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    // What a client cannot send in a request line is not a question the console gets.
    let Ok(uri) = format!("/console/overview?{query}").parse::<Uri>() else {
        return;
    };
    let Ok(Query(raw)) = Query::<RawFilters>::try_from_uri(&uri) else {
        return;
    };
    match Filters::parse(raw) {
        Ok(filters) => round_trips(&filters),
        Err(error) => named(&error),
    }
});

fn read(query: &str) -> Filters {
    let uri: Uri = format!("/console/overview?{query}")
        .parse()
        .unwrap_or_else(|e| panic!("written query {query:?} is not a URI query: {e}"));
    let Query(raw) = Query::<RawFilters>::try_from_uri(&uri)
        .unwrap_or_else(|e| panic!("written query {query:?} is not read back: {e}"));
    Filters::parse(raw).unwrap_or_else(|e| panic!("written query {query:?} is refused: {e}"))
}

fn round_trips(filters: &Filters) {
    let query = filters.query_string();
    assert_eq!(&read(&query), filters, "{query:?} reads back differently");
    for weeks in QUICK_WEEKS {
        let quick = filters.last_weeks(weeks);
        let quick_query = quick.query_string();
        assert_eq!(read(&quick_query), quick, "{quick_query:?}");
        assert_eq!(
            param(&quick_query, "to"),
            param(&query, "to"),
            "the quick links keep `to`"
        );
    }
}

/// The value of `name` in a query string the console wrote.
fn param<'q>(query: &'q str, name: &str) -> &'q str {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{query:?} has no {name}"))
}

/// A refusal is a 400 that names the parameter it could not use.
fn named(error: &ConsoleError) {
    let ConsoleError::BadRequest(message) = error else {
        panic!("filters refused with {error:?}");
    };
    let status = ConsoleError::BadRequest(message.clone())
        .into_response()
        .status();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        ["`from`", "`to`"].iter().any(|name| message.contains(name)),
        "{message}"
    );
}
