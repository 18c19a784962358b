//! Strings shaped like identifying data: IP addresses, MAC addresses, e-mail addresses.
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
//!
//! This module only looks at one string: `privacy` walks documents with it, and field
//! paths (`path`) use it to hide keys that are identifiers.

use std::fmt;
use std::net::Ipv6Addr;

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
        // Most strings of a report have none of a kind's separators: one byte search
        // skips them without walking their tokens.
        if !self
            .separators()
            .iter()
            .any(|s| text.as_bytes().contains(s))
        {
            return false;
        }
        match self {
            Self::Ipv4 => tokens(text, is_ipv4_char).any(|t| is_ipv4_token(text, t)),
            Self::Ipv6 => tokens(text, is_ipv6_char).any(|t| is_ipv6(trim_dots(t.text))),
            Self::Mac => tokens(text, is_mac_char).any(|t| is_mac(t.text)),
            Self::Email => tokens(text, is_email_char).any(|t| is_email(trim_dots(t.text))),
        }
    }

    /// Bytes of which every identifier of the kind holds at least one.
    fn separators(self) -> &'static [u8] {
        match self {
            Self::Ipv4 => b".",
            Self::Ipv6 => b":",
            Self::Mac => b":-",
            Self::Email => b"@",
        }
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first kind of identifying data found in `text`, if any.
pub fn identifier_kind(text: &str) -> Option<IdentifierKind> {
    kinds_in(text).next()
}

/// Every kind of identifying data found in `text`, in a fixed order.
pub(crate) fn kinds_in(text: &str) -> impl Iterator<Item = IdentifierKind> + '_ {
    IdentifierKind::ALL
        .into_iter()
        .filter(move |kind| kind.found_in(text))
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
    let mut octets = 0;
    token.split('.').all(|octet| {
        octets += 1;
        (1..=3).contains(&octet.len()) && octet.parse::<u16>().is_ok_and(|n| n <= 255)
    }) && octets == 4
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
