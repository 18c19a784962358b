//! Privacy rules: find and redact strings shaped like identifying data (IP addresses,
//! MAC addresses, e-mail addresses) anywhere in a JSON value, in string values and in
//! object keys alike.
//!
//! Detection works on tokens, so a version such as `5.0.9`, a target triple such as
//! `x86_64-apple-darwin20.6.0` or an id such as `5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E`
//! is not mistaken for an address, while `10.0.0.1:1883` or `host [fe80::1]` is found:
//! - IPv4: a run of digits and dots that is exactly four decimal octets 0-255, not
//!   directly preceded or followed by a letter (so `v1.2.3.4` and `1.2.3.4.5` are not);
//! - IPv6: a run of letters, digits, `:` and `.` with at least two `:` that parses as
//!   [`std::net::Ipv6Addr`];
//! - MAC: a run of letters, digits, `:` and `-` that is exactly six hex pairs joined by
//!   the same separator, `:` or `-`;
//! - e-mail: a run of letters, digits and `._%+-@` shaped `local@label.label`.
//!
//! A trailing `.` (the end of a sentence) is not part of a token.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv6Addr;

use serde_json::{Map, Value};

use crate::path::Path;

/// What redaction writes in place of an identifying string.
pub const REDACTED: &str = "<redacted>";

/// A kind of identifying data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentifierKind {
    Ipv4,
    Ipv6,
    Mac,
    Email,
}

impl IdentifierKind {
    const ALL: [Self; 4] = [Self::Ipv4, Self::Ipv6, Self::Mac, Self::Email];

    /// Stable lower-case name, e.g. for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Mac => "mac",
            Self::Email => "email",
        }
    }

    fn found_in(self, text: &str) -> bool {
        match self {
            Self::Ipv4 => tokens(text, is_ipv4_char).any(|t| is_ipv4_token(text, t)),
            Self::Ipv6 => tokens(text, is_ipv6_char).any(|t| is_ipv6(trim_dots(t.text))),
            Self::Mac => tokens(text, is_mac_char).any(|t| is_mac(t.text)),
            Self::Email => tokens(text, is_email_char).any(|t| is_email(trim_dots(t.text))),
        }
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One identifying string: where it is and what it looks like. The path never contains
/// the identifier itself: a key that is one shows as `<redacted>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: String,
    pub kind: IdentifierKind,
}

/// The first kind of identifying data found in `text`, if any.
pub fn identifier_kind(text: &str) -> Option<IdentifierKind> {
    IdentifierKind::ALL
        .into_iter()
        .find(|kind| kind.found_in(text))
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
    for kind in IdentifierKind::ALL {
        if kind.found_in(text) {
            findings.push(Finding {
                path: path.render(),
                kind,
            });
        }
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

/// A maximal run of bytes of one class, with its place in the whole text.
#[derive(Clone, Copy)]
struct Token<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

/// Maximal runs of ASCII bytes accepted by `class`; any other byte separates them.
fn tokens(text: &str, class: fn(u8) -> bool) -> impl Iterator<Item = Token<'_>> {
    let bytes = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() && !class(bytes[at]) {
            at += 1;
        }
        let start = at;
        while at < bytes.len() && class(bytes[at]) {
            at += 1;
        }
        // Classes are ASCII only, so both ends are char boundaries.
        (start < at).then(|| Token {
            text: &text[start..at],
            start,
            end: at,
        })
    })
}

fn trim_dots(token: &str) -> &str {
    token.trim_end_matches('.')
}

fn is_ipv4_char(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.'
}

fn is_ipv6_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b':' || b == b'.'
}

fn is_mac_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b':' || b == b'-'
}

fn is_email_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._%+-@".contains(&b)
}

fn is_ipv4_token(text: &str, token: Token<'_>) -> bool {
    let bytes = text.as_bytes();
    let letter_before = token.start > 0 && bytes[token.start - 1].is_ascii_alphabetic();
    let letter_after = bytes.get(token.end).is_some_and(u8::is_ascii_alphabetic);
    !letter_before && !letter_after && is_ipv4(trim_dots(token.text))
}

fn is_ipv4(token: &str) -> bool {
    let octets: Vec<&str> = token.split('.').collect();
    octets.len() == 4
        && octets.iter().all(|octet| {
            (1..=3).contains(&octet.len()) && octet.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

fn is_ipv6(token: &str) -> bool {
    token.bytes().filter(|&b| b == b':').count() >= 2 && token.parse::<Ipv6Addr>().is_ok()
}

fn is_mac(token: &str) -> bool {
    let bytes = token.as_bytes();
    let separator = match bytes.get(2) {
        Some(&b) if b == b':' || b == b'-' => b,
        _ => return false,
    };
    bytes.len() == 17
        && bytes.chunks(3).all(|chunk| match chunk {
            [a, b, sep] => a.is_ascii_hexdigit() && b.is_ascii_hexdigit() && *sep == separator,
            [a, b] => a.is_ascii_hexdigit() && b.is_ascii_hexdigit(),
            _ => false,
        })
}

fn is_email(token: &str) -> bool {
    let Some((local, domain)) = token.split_once('@') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    !local.is_empty()
        && !domain.contains('@')
        && labels.len() >= 2
        && labels.iter().all(|label| !label.is_empty())
}
