//! Reading a report from text, and the checks that need the typed report: id shapes,
//! rates, the Beacon additions.

use serde_json::Value;

use crate::path::Path;
use crate::{
    MqttRuntimeInsights, ParsedReport, PayloadFormat, Report, ReportError, json, limits, schema,
};

/// Digits allowed per group of an id, in order. EMQX prints each group with `~.16B`,
/// which drops leading zeros, so a group may be shorter but never longer.
const UUID_GROUP_DIGITS: [usize; 5] = [8, 4, 4, 4, 12];

/// Hex digits in a SHA-256 digest.
const SHA256_HEX_LEN: usize = 64;

/// Parses and validates a JSON document (already decompressed).
///
/// Checks, in order: UTF-8, nesting depth (before any recursive parsing), JSON syntax
/// and duplicate keys, a top-level object, size limits, the JSON type of every known
/// field, then the shape of ids and of the Beacon additions. The first problem found
/// is returned.
pub fn parse(bytes: &[u8]) -> Result<ParsedReport, ReportError> {
    parse_document(bytes).map(|(parsed, _)| parsed)
}

/// [`parse`], also giving the parsed JSON document, for a caller that reads more of it
/// (redaction, analytics facts) without parsing the text again.
pub fn parse_document(bytes: &[u8]) -> Result<(ParsedReport, Value), ReportError> {
    let text = json::utf8(bytes)?;
    let (report, document) = read(text)?;
    let parsed = ParsedReport {
        format: report.format(),
        report,
        raw: text.to_owned(),
    };
    Ok((parsed, document))
}

fn read(text: &str) -> Result<(Report, Value), ReportError> {
    json::check_depth(text)?;
    let value = json::parse_strict(text)?;
    let Value::Object(object) = &value else {
        return Err(ReportError::NotAnObject {
            found: schema::type_name(&value),
        });
    };
    limits::check(&value)?;
    schema::check(object)?;
    let report: Report = serde_path_to_error::deserialize(&value).map_err(|e| {
        // Unreachable when the schema tables match the structs; kept precise anyway.
        ReportError::invalid(&e.path().to_string(), e.inner().to_string())
    })?;
    report.check_semantics()?;
    Ok((report, value))
}

impl Report {
    /// Checks the report as it would be sent: exactly the checks [`crate::parse`] makes
    /// on its JSON text, plus finite rates (JSON cannot carry NaN or infinity). An
    /// `extra` key that repeats a typed field's name is refused as a duplicate key.
    pub fn validate(&self) -> Result<(), ReportError> {
        self.check_semantics()?;
        read(&self.to_json()).map(drop)
    }

    /// Nodes in the reporting cluster: EMQX lists the *other* nodes in `nodes_uuid`.
    pub fn node_count(&self) -> u64 {
        let others = self.nodes_uuid.as_ref().map_or(0, Vec::len);
        u64::try_from(others).map_or(u64::MAX, |n| n.saturating_add(1))
    }

    /// `license.edition`, when sent.
    pub fn edition(&self) -> Option<&str> {
        self.license.as_ref()?.edition.as_deref()
    }

    /// Which EMQX generation the report follows: 5.x when it carries any 5.x-only part
    /// or its version's major number is 5 or more.
    pub fn format(&self) -> PayloadFormat {
        let v5_parts =
            self.cluster_uuid.is_some() || self.build_info.is_some() || self.vm_specs.is_some();
        if v5_parts || major_version(&self.emqx_version).is_some_and(|major| major >= 5) {
            PayloadFormat::V5
        } else {
            PayloadFormat::V4
        }
    }

    /// Compact JSON text, as sent on the wire.
    pub fn to_json(&self) -> String {
        // Cannot fail: every map key is a string and no field has a fallible
        // `Serialize` impl; non-finite floats are written as `null`.
        serde_json::to_string(self).expect("a Report always serializes to JSON")
    }

    fn check_semantics(&self) -> Result<(), ReportError> {
        let root = Path::Root;
        if self.emqx_version.is_empty() {
            return Err(ReportError::invalid("emqx_version", "must not be empty"));
        }
        check_uuid(&self.uuid, &root.key("uuid"))?;
        if let Some(cluster_uuid) = &self.cluster_uuid {
            check_uuid(cluster_uuid, &root.key("cluster_uuid"))?;
        }
        if let Some(nodes) = &self.nodes_uuid {
            let field = root.key("nodes_uuid");
            for (i, node) in nodes.iter().enumerate() {
                check_uuid(node, &field.index(i))?;
            }
        }
        if let Some(insights) = &self.mqtt_runtime_insights {
            check_rates(insights)?;
        }
        if let Some(secret) = &self.deletion_secret_sha256 {
            check_sha256_hex(secret)?;
        }
        Ok(())
    }
}

/// The leading number of a version such as `5.0.9`, `e4.4.5` or `v5.1.0`.
fn major_version(version: &str) -> Option<u64> {
    let digits = version.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

fn check_uuid(id: &str, path: &Path<'_>) -> Result<(), ReportError> {
    let groups = id.split('-').count();
    if groups != UUID_GROUP_DIGITS.len() {
        return Err(ReportError::invalid(
            &path.render(),
            format!("expected an id of 5 hex groups separated by '-', found {groups} group(s)"),
        ));
    }
    for (n, (group, max)) in id.split('-').zip(UUID_GROUP_DIGITS).enumerate() {
        let reason = if group.is_empty() {
            format!("group {} of the id is empty", n + 1)
        } else if !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            format!(
                "group {} of the id has a character that is not a hex digit",
                n + 1
            )
        } else if group.len() > max {
            format!(
                "group {} of the id has {} hex digits, at most {max} allowed (8-4-4-4-12)",
                n + 1,
                group.len()
            )
        } else {
            continue;
        };
        return Err(ReportError::invalid(&path.render(), reason));
    }
    Ok(())
}

fn check_rates(insights: &MqttRuntimeInsights) -> Result<(), ReportError> {
    let rates = [
        ("messages_sent_rate", insights.messages_sent_rate),
        ("messages_received_rate", insights.messages_received_rate),
    ];
    for (name, rate) in rates {
        if let Some(rate) = rate.filter(|r| !(r.is_finite() && *r >= 0.0)) {
            return Err(ReportError::invalid(
                &format!("mqtt_runtime_insights.{name}"),
                format!("expected a non-negative number, found {rate}"),
            ));
        }
    }
    Ok(())
}

fn check_sha256_hex(secret: &str) -> Result<(), ReportError> {
    let reason = if secret.len() != SHA256_HEX_LEN {
        format!(
            "expected {SHA256_HEX_LEN} lowercase hex digits (a SHA-256), found {} bytes",
            secret.len()
        )
    } else if !secret
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        "has a character that is not a lowercase hex digit".to_owned()
    } else {
        return Ok(());
    };
    Err(ReportError::invalid("deletion_secret_sha256", reason))
}
