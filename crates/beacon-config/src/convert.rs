//! Typed readings of a sourced JSON value; failures name the key and the source.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::Value;

use crate::{ConfigError, Sourced, parse_duration};

const FOUND_MAX_CHARS: usize = 60;

impl Sourced<&Value> {
    /// `true`/`false`, or a string spelling of them in any case (`"FALSE"` from an
    /// environment variable must not silently turn into "unset").
    pub fn to_bool(&self, key: &str) -> Result<Sourced<bool>, ConfigError> {
        self.convert(key, "true or false", |v| match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        })
    }

    /// A string; numbers and booleans are taken as their text, as HOCON does.
    pub fn to_text(&self, key: &str) -> Result<Sourced<String>, ConfigError> {
        self.convert(key, "a string", scalar_text)
    }

    /// A non-negative integer, also written as a quoted string of digits.
    pub fn to_u64(&self, key: &str) -> Result<Sourced<u64>, ConfigError> {
        self.convert(key, "a non-negative integer", |v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    /// A duration (`10s`, `5m`, `7d`, `500ms`); a bare integer is milliseconds.
    pub fn to_duration(&self, key: &str) -> Result<Sourced<Duration>, ConfigError> {
        self.convert(
            key,
            "a duration such as 10s, 5m, 7d or 500ms",
            |v| match v {
                Value::Number(n) => n.as_u64().map(Duration::from_millis),
                Value::String(s) => parse_duration(s).ok(),
                _ => None,
            },
        )
    }

    /// `ip:port` (`0.0.0.0:1883`, `[::1]:1883`), or a port alone (`1883`, `:1883`)
    /// meaning all IPv4 interfaces, as EMQX's `bind` accepts. Never resolves names.
    pub fn to_socket_addr(&self, key: &str) -> Result<Sourced<SocketAddr>, ConfigError> {
        self.convert(
            key,
            "an address such as 0.0.0.0:1883 or a port",
            |v| match v {
                Value::Number(n) => n.as_u64().and_then(any_interface),
                Value::String(s) => socket_addr(s.trim()),
                _ => None,
            },
        )
    }

    /// A list of scalars, or a single comma-separated string (`"a, b"`), which is the
    /// practical way to give a list through an environment variable.
    pub fn to_string_list(&self, key: &str) -> Result<Sourced<Vec<String>>, ConfigError> {
        self.convert(key, "a list of strings", |v| match v {
            Value::Array(items) => items.iter().map(scalar_text).collect(),
            Value::String(s) => Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|part| !part.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            _ => None,
        })
    }

    fn convert<T>(
        &self,
        key: &str,
        expected: &'static str,
        read: impl FnOnce(&Value) -> Option<T>,
    ) -> Result<Sourced<T>, ConfigError> {
        match read(self.value) {
            Some(value) => Ok(Sourced {
                value,
                origin: self.origin.clone(),
            }),
            None => Err(ConfigError::Type {
                key: key.to_string(),
                origin: self.origin.clone(),
                expected,
                found: describe(self.value),
            }),
        }
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn socket_addr(text: &str) -> Option<SocketAddr> {
    text.parse().ok().or_else(|| {
        let port = text.strip_prefix(':').unwrap_or(text);
        port.parse::<u64>().ok().and_then(any_interface)
    })
}

fn any_interface(port: u64) -> Option<SocketAddr> {
    let port = u16::try_from(port).ok()?;
    Some(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
}

/// How a wrong value is shown in an error: strings quoted and escaped (so control
/// characters cannot forge log lines) and shortened; containers only by kind.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) if s.chars().count() > FOUND_MAX_CHARS => {
            let head: String = s.chars().take(FOUND_MAX_CHARS).collect();
            format!("{}...", Value::String(head))
        }
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Origin;
    use serde_json::json;

    fn sourced(value: &Value) -> Sourced<&Value> {
        Sourced {
            value,
            origin: Origin::Default,
        }
    }

    #[test]
    fn socket_addresses() {
        let ok = [
            (json!("0.0.0.0:1883"), "0.0.0.0:1883"),
            (json!("[::1]:8883"), "[::1]:8883"),
            (json!(1883), "0.0.0.0:1883"),
            (json!(":18083"), "0.0.0.0:18083"),
        ];
        for (value, expected) in ok {
            let got = sourced(&value).to_socket_addr("k").expect("valid address");
            assert_eq!(got.value.to_string(), expected);
        }
        for value in [
            json!("localhost:1883"),
            json!(70000),
            json!("x"),
            json!(true),
        ] {
            assert!(sourced(&value).to_socket_addr("k").is_err(), "{value}");
        }
    }

    #[test]
    fn string_lists() {
        let list = json!(["a", 1, true]);
        assert_eq!(
            sourced(&list).to_string_list("k").expect("list").value,
            ["a", "1", "true"]
        );
        let csv = json!("a, b,,c");
        assert_eq!(
            sourced(&csv).to_string_list("k").expect("csv").value,
            ["a", "b", "c"]
        );
        assert!(sourced(&json!([["nested"]])).to_string_list("k").is_err());
    }

    #[test]
    fn numbers_and_text() {
        assert_eq!(
            sourced(&json!("8080")).to_u64("k").expect("digits").value,
            8080
        );
        assert!(sourced(&json!(-1)).to_u64("k").is_err());
        assert!(sourced(&json!(1.5)).to_u64("k").is_err());
        assert_eq!(
            sourced(&json!(12345)).to_text("k").expect("number").value,
            "12345"
        );
        assert!(sourced(&json!(null)).to_text("k").is_err());
    }

    #[test]
    fn long_or_hostile_values_are_shortened_and_escaped() {
        let long = json!("x".repeat(500));
        assert_eq!(describe(&long).len(), FOUND_MAX_CHARS + 2 + 3);
        assert_eq!(describe(&json!("a\nb")), "\"a\\nb\"");
        assert_eq!(describe(&json!({"a": 1})), "an object");
    }
}
