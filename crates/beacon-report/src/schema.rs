//! The JSON type of every known field, checked on the parsed value before it becomes a
//! [`crate::Report`], so that a wrong type is reported with its path and in plain words
//! ("expected a non-negative integer, found a string") rather than as a serde error.
//!
//! The tables mirror the structs in `model.rs`; a test builds a document with every
//! field of every table and checks that no field ends up in an `extra` map.

use serde_json::{Map, Value};

use crate::ReportError;
use crate::path::Path;

pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
}

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Text,
    /// Non-negative integer.
    Counter,
    /// Non-negative number, integer or not.
    Rate,
    TextList,
    List,
    Object,
    ObjectOrList,
    Any,
    Struct(&'static [Field]),
    /// An object whose every value is a `Struct` of these fields.
    StructMap(&'static [Field]),
}

const fn field(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

/// Fields a report cannot do without.
pub(crate) const REQUIRED: [&str; 2] = ["emqx_version", "uuid"];

pub(crate) const REPORT: &[Field] = &[
    field("emqx_version", Kind::Text),
    field("license", Kind::Struct(LICENSE)),
    field("os_name", Kind::Text),
    field("os_version", Kind::Text),
    field("otp_version", Kind::Text),
    field("up_time", Kind::Counter),
    field("uuid", Kind::Text),
    field("cluster_uuid", Kind::Text),
    field("nodes_uuid", Kind::TextList),
    field("active_plugins", Kind::TextList),
    field("num_clients", Kind::Counter),
    field("messages_received", Kind::Counter),
    field("messages_sent", Kind::Counter),
    field("num_cluster_sessions", Kind::Counter),
    field("build_info", Kind::Struct(BUILD_INFO)),
    field("vm_specs", Kind::Struct(VM_SPECS)),
    field("mqtt_runtime_insights", Kind::Struct(MQTT_RUNTIME_INSIGHTS)),
    field(
        "advanced_mqtt_features",
        Kind::Struct(ADVANCED_MQTT_FEATURES),
    ),
    field("authn_authz", Kind::Struct(AUTHN_AUTHZ)),
    field("gateway", Kind::Object),
    field("rule_engine", Kind::Struct(RULE_ENGINE)),
    field("bridge", Kind::Struct(BRIDGE)),
    field("exhook", Kind::Struct(EXHOOK)),
    field("active_modules", Kind::Any),
    field("deletion_secret_sha256", Kind::Text),
];

pub(crate) const LICENSE: &[Field] = &[field("edition", Kind::Text)];

pub(crate) const BUILD_INFO: &[Field] = &[
    field("wordsize", Kind::Counter),
    field("relform", Kind::Text),
    field("os", Kind::Text),
    field("erlang", Kind::Text),
    field("elixir", Kind::Text),
    field("arch", Kind::Text),
    field("rustc", Kind::Text),
];

pub(crate) const VM_SPECS: &[Field] = &[
    field("num_cpus", Kind::Counter),
    field("total_memory", Kind::Counter),
];

pub(crate) const MQTT_RUNTIME_INSIGHTS: &[Field] = &[
    field("num_topics", Kind::Counter),
    field("messages_sent_rate", Kind::Rate),
    field("messages_received_rate", Kind::Rate),
];

pub(crate) const ADVANCED_MQTT_FEATURES: &[Field] = &[
    field("topic_rewrite", Kind::Counter),
    field("retained", Kind::Counter),
    field("delayed", Kind::Counter),
    field("auto_subscribe", Kind::Counter),
];

pub(crate) const AUTHN_AUTHZ: &[Field] = &[
    field("authz", Kind::TextList),
    field("authn_listener", Kind::ObjectOrList),
    field("authn", Kind::TextList),
];

pub(crate) const RULE_ENGINE: &[Field] = &[field("num_rules", Kind::Counter)];

pub(crate) const BRIDGE: &[Field] = &[
    field("num_data_bridges", Kind::Counter),
    field("data_bridge", Kind::StructMap(DATA_BRIDGE_STATS)),
];

pub(crate) const DATA_BRIDGE_STATS: &[Field] = &[
    field("num_linked_by_rules", Kind::Counter),
    field("num", Kind::Counter),
];

pub(crate) const EXHOOK: &[Field] = &[
    field("servers", Kind::List),
    field("num_servers", Kind::Counter),
];

/// Checks presence of the required fields and the type of every known field. Unknown
/// fields may hold anything; `null` in an optional field means absent.
pub(crate) fn check(report: &Map<String, Value>) -> Result<(), ReportError> {
    for name in REQUIRED {
        if !report.contains_key(name) {
            return Err(ReportError::MissingField {
                field: name.to_owned(),
            });
        }
    }
    check_struct(report, REPORT, &Path::Root)
}

fn check_struct(
    object: &Map<String, Value>,
    fields: &[Field],
    path: &Path<'_>,
) -> Result<(), ReportError> {
    fields.iter().try_for_each(|field| {
        let at = path.key(field.name);
        match object.get(field.name) {
            None => Ok(()),
            Some(Value::Null) if !REQUIRED.contains(&field.name) => Ok(()),
            Some(value) => check_kind(value, field.kind, &at),
        }
    })
}

fn check_kind(value: &Value, kind: Kind, path: &Path<'_>) -> Result<(), ReportError> {
    let (fits, expected) = match kind {
        Kind::Text => (value.is_string(), "a string"),
        Kind::Counter => (value.is_u64(), "a non-negative integer"),
        Kind::Rate => (
            value.as_f64().is_some_and(|rate| rate >= 0.0),
            "a non-negative number",
        ),
        Kind::List => (value.is_array(), "an array"),
        Kind::Object => (value.is_object(), "an object"),
        Kind::ObjectOrList => (
            value.is_object() || value.is_array(),
            "an object or an array",
        ),
        Kind::Any => (true, ""),
        Kind::TextList => return check_text_list(value, path),
        Kind::Struct(fields) => {
            return check_object(value, path, |object| check_struct(object, fields, path));
        }
        Kind::StructMap(fields) => return check_struct_map(value, fields, path),
    };
    if fits {
        Ok(())
    } else {
        Err(mismatch(expected, value, path))
    }
}

fn check_text_list(value: &Value, path: &Path<'_>) -> Result<(), ReportError> {
    let Value::Array(items) = value else {
        return Err(mismatch("an array of strings", value, path));
    };
    items
        .iter()
        .enumerate()
        .try_for_each(|(i, item)| check_kind(item, Kind::Text, &path.index(i)))
}

fn check_object(
    value: &Value,
    path: &Path<'_>,
    check: impl FnOnce(&Map<String, Value>) -> Result<(), ReportError>,
) -> Result<(), ReportError> {
    match value {
        Value::Object(object) => check(object),
        _ => Err(mismatch("an object", value, path)),
    }
}

fn check_struct_map(value: &Value, fields: &[Field], path: &Path<'_>) -> Result<(), ReportError> {
    check_object(value, path, |map| {
        map.iter().try_for_each(|(key, entry)| {
            let at = path.key(key);
            check_object(entry, &at, |object| check_struct(object, fields, &at))
        })
    })
}

fn mismatch(expected: &str, value: &Value, path: &Path<'_>) -> ReportError {
    ReportError::invalid(
        &path.render(),
        format!("expected {expected}, found {}", describe(value)),
    )
}

/// What a value is, for messages. Numbers are shown, strings are not: their content is
/// the sender's and may be long or private.
fn describe(value: &Value) -> String {
    match value {
        Value::Number(number) => number.to_string(),
        other => type_name(other).to_owned(),
    }
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::{Field, Kind, REPORT};

    /// A valid value of every known field, recursively.
    fn full(fields: &[Field]) -> Value {
        let object: Map<String, Value> = fields
            .iter()
            .map(|field| (field.name.to_owned(), sample(field.name, field.kind)))
            .collect();
        Value::Object(object)
    }

    fn sample(name: &str, kind: Kind) -> Value {
        match kind {
            Kind::Text if name == "deletion_secret_sha256" => json!("ab".repeat(32)),
            Kind::Text => json!("5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E"),
            Kind::Counter => json!(7),
            Kind::Rate => json!(0.5),
            Kind::TextList => json!(["A-B-C-D-E"]),
            Kind::List => json!([{"endpoint": "x"}]),
            Kind::Object => json!({"mqttsn": {"n": 1}}),
            Kind::ObjectOrList | Kind::Any => json!([]),
            Kind::Struct(fields) => full(fields),
            Kind::StructMap(fields) => json!({ "http": full(fields) }),
        }
    }

    /// Fails when a table names a field the structs do not have (it would land in an
    /// `extra` map) or misses one they have (it would not serialize back the same).
    #[test]
    fn tables_match_the_structs() {
        let doc = full(REPORT);
        let parsed = crate::parse(doc.to_string().as_bytes()).expect("every field valid");
        let back = serde_json::to_value(&parsed.report).expect("serializes");
        assert_eq!(back, doc);
        assert!(parsed.report.extra.is_empty());
        let extras = [
            parsed.report.license.map(|s| s.extra),
            parsed.report.build_info.map(|s| s.extra),
            parsed.report.vm_specs.map(|s| s.extra),
            parsed.report.mqtt_runtime_insights.map(|s| s.extra),
            parsed.report.advanced_mqtt_features.map(|s| s.extra),
            parsed.report.authn_authz.map(|s| s.extra),
            parsed.report.rule_engine.map(|s| s.extra),
            parsed.report.exhook.map(|s| s.extra),
        ];
        for extra in extras {
            assert_eq!(extra, Some(Map::new()));
        }
        let bridge = parsed.report.bridge.expect("bridge");
        assert!(bridge.extra.is_empty());
        let stats = bridge.data_bridge.expect("data_bridge");
        assert!(stats["http"].extra.is_empty());
    }
}
