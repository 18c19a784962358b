//! Field paths for messages: `vm_specs.num_cpus`, `nodes_uuid[2]`, `gateway["a.b"]`.
//!
//! A path is a chain of borrowed segments built while walking a document and rendered
//! only when something is reported, so walking costs no allocation per node. Keys come
//! from the sender: rendering truncates long ones and never prints a key that is
//! shaped like an IP address, MAC address or e-mail address.

use std::fmt::Write as _;

use crate::identifiers::{REDACTED, identifier_kind};

/// Keys longer than this are cut in messages.
const MAX_SHOWN_KEY: usize = 64;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub(crate) fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }

    pub(crate) fn render(&self) -> String {
        let mut segments = Vec::new();
        let mut current = self;
        loop {
            match current {
                Path::Root => break,
                Path::Key(parent, _) | Path::Index(parent, _) => {
                    segments.push(current);
                    current = parent;
                }
            }
        }
        if segments.is_empty() {
            return "(top level)".to_owned();
        }
        let mut out = String::new();
        for segment in segments.iter().rev() {
            match segment {
                Path::Key(_, key) => push_key(&mut out, key),
                Path::Index(_, index) => {
                    let _ = write!(out, "[{index}]");
                }
                Path::Root => {}
            }
        }
        out
    }
}

fn push_key(out: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key.len() <= MAX_SHOWN_KEY
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if identifier_kind(key).is_some() {
        dotted(out, REDACTED);
    } else if plain {
        dotted(out, key);
    } else {
        let _ = write!(out, "[{:?}]", shorten(key));
    }
}

fn dotted(out: &mut String, segment: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(segment);
}

/// A key as it may appear in a message: identifier-shaped keys hidden, long ones cut.
pub(crate) fn quote_key(key: &str) -> String {
    if identifier_kind(key).is_some() {
        return REDACTED.to_owned();
    }
    format!("{:?}", shorten(key))
}

fn shorten(key: &str) -> String {
    match key.char_indices().nth(MAX_SHOWN_KEY) {
        Some((cut, _)) => format!("{}…", &key[..cut]),
        None => key.to_owned(),
    }
}
