//! Privacy rules: find and redact strings shaped like identifying data (IP addresses,
//! MAC addresses, e-mail addresses) anywhere in a JSON value, in string values and in
//! object keys alike. What counts as identifying is decided string by string in
//! [`crate::identifiers`]; this module walks documents.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::identifiers::kinds_in;
pub use crate::identifiers::{IdentifierKind, REDACTED, identifier_kind};
use crate::path::Path;

/// One identifying string: where it is and what it looks like. The path never contains
/// the identifier itself: a key that is one shows as `<redacted>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: String,
    pub kind: IdentifierKind,
}

/// Every identifying string in `value`, each kind found in a string reported once.
pub fn find_identifiers(value: &Value) -> Vec<Finding> {
    let mut findings = Vec::new();
    collect(value, &Path::Root, &mut findings);
    findings
}

/// Replaces each identifying string value with [`REDACTED`] and renames each
/// identifying key to [`REDACTED`] (`<redacted>#2`, ... when one object has several),
/// in place. Returns how many strings were replaced, keys included.
pub fn redact_identifiers(value: &mut Value) -> usize {
    match value {
        Value::String(text) if identifier_kind(text).is_some() => {
            *text = REDACTED.to_owned();
            1
        }
        Value::Array(items) => items.iter_mut().map(redact_identifiers).sum(),
        Value::Object(map) => {
            let renamed = redact_keys(map);
            renamed + map.values_mut().map(redact_identifiers).sum::<usize>()
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => 0,
    }
}

fn collect(value: &Value, path: &Path<'_>, findings: &mut Vec<Finding>) {
    match value {
        Value::String(text) => report_kinds(text, path, findings),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect(item, &path.index(i), findings);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let child = path.key(key);
                report_kinds(key, &child, findings);
                collect(item, &child, findings);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn report_kinds(text: &str, path: &Path<'_>, findings: &mut Vec<Finding>) {
    for kind in kinds_in(text) {
        findings.push(Finding {
            path: path.render(),
            kind,
        });
    }
}

/// Renames identifying keys, keeping the order of the entries.
fn redact_keys(map: &mut Map<String, Value>) -> usize {
    if !map.keys().any(|key| identifier_kind(key).is_some()) {
        return 0;
    }
    let old = std::mem::take(map);
    // Names to avoid: keys that stay, including a `<redacted>` from an earlier pass.
    let kept: HashSet<String> = old
        .keys()
        .filter(|key| identifier_kind(key).is_none())
        .cloned()
        .collect();
    let mut renamed = 0;
    for (key, item) in old {
        let key = if kept.contains(&key) {
            key
        } else {
            renamed += 1;
            free_name(|name| kept.contains(name) || map.contains_key(name))
        };
        map.insert(key, item);
    }
    renamed
}

fn free_name(taken: impl Fn(&str) -> bool) -> String {
    let mut name = REDACTED.to_owned();
    let mut n = 1;
    while taken(&name) {
        n += 1;
        name = format!("{REDACTED}#{n}");
    }
    name
}
