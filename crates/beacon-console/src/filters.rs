//! The dashboard's question as it travels in URLs: `from`, `to` (YYYY-MM-DD, inclusive),
//! `version` and `os`. Pages and the data API read the same parameters, so a page's URL
//! and its chart's JSON URL carry the same query string.

use beacon_store::AnalyticsQuery;
use chrono::{Days, NaiveDate, Utc};
use serde::Deserialize;

use crate::error::ConsoleError;

/// Range shown when the URL names none: the last 26 weeks.
const DEFAULT_DAYS: u64 = 26 * 7 - 1;

/// Query parameters as sent; empty values mean "not given" (what an HTML form sends).
#[derive(Debug, Default, Deserialize)]
pub struct RawFilters {
    from: Option<String>,
    to: Option<String>,
    version: Option<String>,
    os: Option<String>,
}

/// A checked question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filters {
    pub(crate) from: NaiveDate,
    pub(crate) to: NaiveDate,
    pub(crate) version: Option<String>,
    pub(crate) os: Option<String>,
}

impl Filters {
    /// Checks `raw`; a missing `to` is today (UTC), a missing `from` 26 weeks before `to`.
    pub fn parse(raw: RawFilters) -> Result<Self, ConsoleError> {
        let to = match given(raw.to) {
            Some(text) => date("to", &text)?,
            None => Utc::now().date_naive(),
        };
        let from = match given(raw.from) {
            Some(text) => date("from", &text)?,
            None => to.checked_sub_days(Days::new(DEFAULT_DAYS)).unwrap_or(to),
        };
        if from > to {
            return Err(ConsoleError::BadRequest(format!(
                "`from` ({from}) is after `to` ({to})"
            )));
        }
        Ok(Self {
            from,
            to,
            version: given(raw.version),
            os: given(raw.os),
        })
    }

    pub(crate) fn query(&self) -> AnalyticsQuery {
        AnalyticsQuery {
            from: self.from,
            to: self.to,
            version: self.version.clone(),
            os: self.os.clone(),
        }
    }

    /// `from=...&to=...[&version=...][&os=...]`, percent-encoded.
    pub fn query_string(&self) -> String {
        let mut pairs = vec![("from", self.from.to_string()), ("to", self.to.to_string())];
        pairs.extend(self.version.clone().map(|v| ("version", v)));
        pairs.extend(self.os.clone().map(|v| ("os", v)));
        pairs
            .iter()
            .map(|(key, value)| format!("{key}={}", encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The same filters over the `weeks` weeks ending at `to`.
    pub fn last_weeks(&self, weeks: u64) -> Self {
        Self {
            from: self
                .to
                .checked_sub_days(Days::new(weeks * 7 - 1))
                .unwrap_or(self.to),
            ..self.clone()
        }
    }
}

fn given(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn date(field: &str, text: &str) -> Result<NaiveDate, ConsoleError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ConsoleError::BadRequest(format!(
            "`{field}` must be a date like 2026-01-31, not `{text}`"
        ))
    })
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(from: &str, to: &str, version: &str, os: &str) -> RawFilters {
        let some = |s: &str| Some(s.to_owned());
        RawFilters {
            from: some(from),
            to: some(to),
            version: some(version),
            os: some(os),
        }
    }

    #[test]
    fn filters_round_trip_through_the_query_string() {
        let filters =
            Filters::parse(raw("2026-01-05", "2026-03-01", "5.8.1", "Ubuntu 22")).unwrap();
        assert_eq!(
            filters.query_string(),
            "from=2026-01-05&to=2026-03-01&version=5.8.1&os=Ubuntu%2022"
        );
        let blank = Filters::parse(raw("2026-01-05", "2026-03-01", "", " ")).unwrap();
        assert_eq!((blank.version, blank.os), (None, None));
    }

    #[test]
    fn bad_dates_are_named() {
        let error = Filters::parse(raw("2026-13-01", "", "", "")).unwrap_err();
        assert!(error.to_string().contains("`from`"), "{error}");
        let error = Filters::parse(raw("2026-03-02", "2026-03-01", "", "")).unwrap_err();
        assert!(error.to_string().contains("after"), "{error}");
    }

    #[test]
    fn the_default_range_is_26_weeks_to_today() {
        let filters = Filters::parse(RawFilters::default()).unwrap();
        assert_eq!(filters.to, Utc::now().date_naive());
        assert_eq!((filters.to - filters.from).num_days(), 181);
    }
}
