//! The inline TOML that rmqtt plugins read as their configuration.
//!
//! rmqtt plugins take their settings as TOML text through the context's plugin
//! config map (never files in the user's directories). The values Beacon passes are
//! few and simple, so they are written here rather than pulling in a TOML writer;
//! the value type has no null, so every value has a TOML spelling.

pub(crate) enum TomlValue {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<TomlValue>),
    Table(Vec<(&'static str, TomlValue)>),
}

/// A TOML document with one `key = value` line per entry.
pub(crate) fn document(entries: Vec<(&'static str, TomlValue)>) -> String {
    entries
        .into_iter()
        .map(|(key, value)| format!("{key} = {}\n", inline(&value)))
        .collect()
}

fn inline(value: &TomlValue) -> String {
    match value {
        TomlValue::Str(s) => basic_string(s),
        TomlValue::Int(n) => n.to_string(),
        TomlValue::Bool(b) => b.to_string(),
        TomlValue::List(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        TomlValue::Table(entries) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(key, value)| format!("{key} = {}", inline(value)))
                .collect();
            format!("{{ {} }}", entries.join(", "))
        }
    }
}

/// JSON string escapes are all valid in TOML basic strings; TOML additionally
/// forbids a raw DEL, which JSON leaves as is.
fn basic_string(s: &str) -> String {
    serde_json::Value::from(s)
        .to_string()
        .replace('\u{7f}', "\\u007F")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nested_values_with_escapes() {
        let text = document(vec![
            ("max", TomlValue::Int(3)),
            (
                "rules",
                TomlValue::List(vec![TomlValue::Table(vec![
                    ("re", TomlValue::Str("^x/(.+)\"\\$".into())),
                    ("on", TomlValue::Bool(true)),
                    ("del", TomlValue::Str("a\u{7f}b".into())),
                ])]),
            ),
        ]);
        assert_eq!(
            text,
            "max = 3\nrules = [{ re = \"^x/(.+)\\\"\\\\$\", on = true, del = \"a\\u007Fb\" }]\n"
        );
    }
}
