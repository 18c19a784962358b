//! `EMQX_*` environment variables as config overrides, EMQX 5 style:
//! `EMQX_TELEMETRY__ENABLE=false` sets `telemetry.enable`.

use serde_json::Value;
use tracing::debug;

use crate::ConfigError;
use crate::document;

const PREFIX: &str = "EMQX_";

/// One variable that sets one key path.
#[derive(Debug, Clone)]
pub(crate) struct EnvOverride {
    pub var: String,
    pub path: Vec<String>,
    pub value: Value,
}

/// The overrides found in `env`, shallowest paths first so that a deeper variable
/// (`EMQX_A__B`) refines an object set by a shallower one (`EMQX_A={...}`).
pub(crate) fn overrides(env: &[(String, String)]) -> Result<Vec<EnvOverride>, ConfigError> {
    let mut found: Vec<EnvOverride> = Vec::new();
    for (var, raw) in env {
        let Some(path) = key_path(var) else { continue };
        let value = parse_env_value(var, raw)?;
        found.push(EnvOverride {
            var: var.clone(),
            path,
            value,
        });
    }
    found.sort_by(|a, b| (a.path.len(), &a.var).cmp(&(b.path.len(), &b.var)));
    reject_conflicts(&found)?;
    found.dedup_by(|later, earlier| later.path == earlier.path);
    Ok(found)
}

/// `EMQX_DASHBOARD__DEFAULT_PASSWORD` -> `["dashboard", "default_password"]`.
fn key_path(var: &str) -> Option<Vec<String>> {
    let rest = var.strip_prefix(PREFIX)?;
    let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
    if path.iter().any(String::is_empty) {
        debug!(
            var,
            "ignoring environment variable with an empty key segment"
        );
        return None;
    }
    Some(path)
}

/// Two spellings of one key (`EMQX_A` and `EMQX_a`) with different values leave no
/// honest answer, so they are refused rather than resolved by an arbitrary order.
fn reject_conflicts(sorted: &[EnvOverride]) -> Result<(), ConfigError> {
    for (i, a) in sorted.iter().enumerate() {
        let clash = sorted[i + 1..]
            .iter()
            .find(|b| b.path == a.path && b.value != a.value);
        if let Some(b) = clash {
            return Err(ConfigError::EnvSyntax {
                var: b.var.clone(),
                message: format!(
                    "sets {} to a different value than {} does",
                    a.path.join("."),
                    a.var
                ),
            });
        }
    }
    Ok(())
}

/// Reads a variable's value the way HOCON reads a value. Unquoted text is taken
/// whole: unlike a HOCON file, `//` is not a comment here, so URLs need no quotes.
fn parse_env_value(var: &str, raw: &str) -> Result<Value, ConfigError> {
    let text = raw.trim();
    let env_error = |message: String| ConfigError::EnvSyntax {
        var: var.to_string(),
        message,
    };
    match text {
        "true" => Ok(Value::Bool(true)),
        "false" => Ok(Value::Bool(false)),
        "null" => Ok(Value::Null),
        _ if text.starts_with('"') => serde_json::from_str::<String>(text)
            .map(Value::String)
            .map_err(|e| env_error(format!("invalid quoted string: {e}"))),
        _ if text.starts_with('[') || text.starts_with('{') => document::parse_value(text)
            .map_err(|e| env_error(format!("{}:{}: {}", e.line, e.column, e.message))),
        _ => Ok(text
            .parse::<serde_json::Number>()
            .map_or_else(|_| Value::String(text.to_string()), Value::Number)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_parse_like_hocon() {
        let cases = [
            ("false", json!(false)),
            (" 1883 ", json!(1883)),
            ("maybe", json!("maybe")),
            ("\"a b\"", json!("a b")),
            ("0.0.0.0:1883", json!("0.0.0.0:1883")),
            (
                "https://c.example/api // x",
                json!("https://c.example/api // x"),
            ),
            ("[a, \"b\", 3]", json!(["a", "b", 3])),
            ("{x = 1}", json!({"x": 1})),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                parse_env_value("EMQX_K", raw).expect(raw),
                expected,
                "{raw}"
            );
        }
    }

    #[test]
    fn broken_structured_values_name_the_variable() {
        for raw in ["[1, 2", "\"open", "{a = 1}}", "[1]\nb = 2"] {
            let err = parse_env_value("EMQX_K", raw).expect_err(raw);
            assert!(err.to_string().starts_with("environment EMQX_K: "), "{err}");
        }
    }

    #[test]
    fn key_paths() {
        assert_eq!(
            key_path("EMQX_LISTENERS__TCP__DEFAULT__BIND"),
            Some(vec![
                "listeners".into(),
                "tcp".into(),
                "default".into(),
                "bind".into()
            ])
        );
        assert_eq!(key_path("EMQX_NODE_NAME"), Some(vec!["node_name".into()]));
        assert_eq!(key_path("EMQX_A____B"), None);
        assert_eq!(key_path("EMQX_"), None);
        assert_eq!(key_path("HOME"), None);
        assert_eq!(key_path("emqx_telemetry__enable"), None);
    }
}
