//! Store URLs: which backend, where, and how to show them without the password.

use std::path::PathBuf;
use std::time::Duration;

use crate::StoreError;

/// How long a PostgreSQL connection attempt may take unless the URL says otherwise, so that
/// a health check against a dead server fails instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) enum StoreUrl {
    Sqlite(PathBuf),
    Postgres(Box<PgTarget>),
}

pub(crate) struct PgTarget {
    /// Connection settings, with Beacon's `schema` parameter already turned into a
    /// `search_path` option.
    pub(crate) config: tokio_postgres::Config,
    pub(crate) schema: Option<String>,
    pub(crate) redacted: String,
}

pub(crate) fn parse(url: &str) -> Result<StoreUrl, StoreError> {
    let bad = |reason: String| StoreError::BadUrl {
        url_redacted: redact(url),
        reason,
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("expected `sqlite://PATH` or `postgres://...`".into()));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => parse_sqlite(rest).map_err(bad),
        "postgres" | "postgresql" => parse_postgres(url).map_err(bad),
        other => Err(bad(format!(
            "unknown scheme `{other}`; expected `sqlite` or `postgres`"
        ))),
    }
}

fn parse_sqlite(path: &str) -> Result<StoreUrl, String> {
    if path.is_empty() {
        return Err("the database file path is missing (`sqlite://PATH`)".into());
    }
    // A `?` would silently become part of the file name.
    if path.contains('?') {
        return Err("sqlite URLs take no query parameters".into());
    }
    Ok(StoreUrl::Sqlite(PathBuf::from(path)))
}

fn parse_postgres(url: &str) -> Result<StoreUrl, String> {
    let (base, schema) = take_schema(url)?;
    let mut config: tokio_postgres::Config = base
        .parse()
        .map_err(|error: tokio_postgres::Error| crate::error::chain(&error))?;
    if let Some(schema) = &schema {
        let search_path = format!("-c search_path={schema}");
        let options = match config.get_options() {
            Some(options) => format!("{options} {search_path}"),
            None => search_path,
        };
        config.options(options);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("beacon-collector");
    }
    Ok(StoreUrl::Postgres(Box::new(PgTarget {
        config,
        schema,
        redacted: redact(url),
    })))
}

/// Splits Beacon's `schema` query parameter off the URL PostgreSQL will see.
fn take_schema(url: &str) -> Result<(String, Option<String>), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", name)) => {
                if schema.replace(checked_schema(name)?).is_some() {
                    return Err("parameter `schema` is given more than once".into());
                }
            }
            _ => kept.push(pair),
        }
    }
    let base = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((base, schema))
}

/// Only plain lowercase identifiers: they need no quoting in `search_path` or in the
/// connection options, where quoting rules differ.
fn checked_schema(name: &str) -> Result<String, String> {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if starts_well && rest_ok && name.len() <= 63 {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "parameter `schema` = `{name}`: use 1 to 63 characters of a-z, 0-9 and _, \
             not starting with a digit"
        ))
    }
}

/// The URL with any password (in the user info or a `password=` parameter) replaced by
/// `***`. When in doubt it hides more, never less.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_query(url);
    };
    // The last `@` ends the user info even if the password holds an unescaped `@`.
    let Some(at) = rest.rfind('@') else {
        return format!("{scheme}://{}", redact_query(rest));
    };
    let (userinfo, tail) = rest.split_at(at);
    let userinfo = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        None => redact_query(userinfo),
    };
    format!("{scheme}://{userinfo}{}", redact_query(tail))
}

fn redact_query(text: &str) -> String {
    let Some((path, query)) = text.split_once('?') else {
        return text.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords_everywhere() {
        let cases = [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u:se@cr/et@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u@h/db?password=secret&x=1",
                "postgres://u@h/db?password=***&x=1",
            ),
            (
                "postgres://h/db?password=secret&o=a@b",
                "postgres://h/db?password=***&o=a@b",
            ),
            (
                "postgres://h:5/db?password=secret&o=a@b",
                "postgres://h:***@b",
            ),
            ("sqlite://data/collector.db", "sqlite://data/collector.db"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact(url), expected, "{url}");
        }
    }

    #[test]
    fn sqlite_urls_give_paths() {
        for (url, path) in [
            ("sqlite://data/collector.db", "data/collector.db"),
            ("sqlite:///var/lib/beacon/c.db", "/var/lib/beacon/c.db"),
        ] {
            match parse(url) {
                Ok(StoreUrl::Sqlite(got)) => assert_eq!(got, PathBuf::from(path)),
                _ => panic!("{url} should be a sqlite path"),
            }
        }
    }

    #[test]
    fn schema_is_stripped_and_becomes_search_path() {
        let url = "postgres://u:pw@127.0.0.1:5432/test?schema=beacon_1&sslmode=disable";
        let Ok(StoreUrl::Postgres(target)) = parse(url) else {
            panic!("should parse");
        };
        assert_eq!(target.schema.as_deref(), Some("beacon_1"));
        assert_eq!(target.config.get_options(), Some("-c search_path=beacon_1"));
        assert_eq!(target.config.get_dbname(), Some("test"));
        assert!(!target.redacted.contains("pw"));
    }

    #[test]
    fn bad_urls_name_the_problem_without_the_password() {
        let cases = [
            ("mysql://u:pw@h/db", "unknown scheme `mysql`"),
            ("collector.db", "expected `sqlite://PATH`"),
            ("sqlite://", "path is missing"),
            ("sqlite://c.db?mode=ro", "no query parameters"),
            (
                "postgres://u:pw@h/db?schema=Bad-Name",
                "`schema` = `Bad-Name`",
            ),
            ("postgres://u:pw@h/db?schema=a&schema=b", "more than once"),
            ("postgres://u:pw@h:notaport/db", "port"),
        ];
        for (url, expected) in cases {
            match parse(url) {
                Err(StoreError::BadUrl {
                    url_redacted,
                    reason,
                }) => {
                    assert!(reason.contains(expected), "{url}: {reason}");
                    let message = StoreError::BadUrl {
                        url_redacted,
                        reason,
                    }
                    .to_string();
                    assert!(!message.contains("pw"), "{url}: {message}");
                }
                Err(other) => panic!("{url}: expected BadUrl, got {other}"),
                Ok(_) => panic!("{url}: should be refused"),
            }
        }
    }
}
