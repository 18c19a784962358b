//! What identifies this node to the collector, and nothing else: the random node and
//! cluster ids, and the hash of the deletion secret. All are random, generated once and
//! kept in the data directory; none is derived from the machine.

use sha2::{Digest, Sha256};
use tracing::warn;

use crate::datadir::{CLUSTER_UUID_FILE, DataDir, NODE_UUID_FILE, SECRET_FILE};

/// Hex digits allowed per group of an id. EMQX prints groups without leading zeros, so a
/// group may be shorter; such ids are kept exactly as found.
const ID_GROUP_DIGITS: [usize; 5] = [8, 4, 4, 4, 12];

/// Bytes of randomness in the deletion secret.
const SECRET_BYTES: usize = 32;

/// The ids and secret hash a report carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// Uppercase 8-4-4-4-12 hex, from `node.uuid`.
    pub(crate) uuid: String,
    /// Uppercase 8-4-4-4-12 hex, from `cluster.uuid`.
    pub(crate) cluster_uuid: String,
    /// Lowercase hex SHA-256 of the text in `telemetry/deletion.secret`.
    pub(crate) deletion_secret_sha256: String,
}

impl Identity {
    /// Reads the ids and secret, creating any that are missing and replacing (with a
    /// warning) any that are unreadable or corrupt. When the directory cannot be written,
    /// new values live in memory for this run.
    pub(crate) fn load_or_create(data: &DataDir) -> Self {
        let secret = load_or_create(data, SECRET_FILE, is_secret, new_secret);
        Self {
            uuid: load_or_create(data, NODE_UUID_FILE, is_id, new_id),
            cluster_uuid: load_or_create(data, CLUSTER_UUID_FILE, is_id, new_id),
            deletion_secret_sha256: hex::encode(Sha256::digest(secret.as_bytes())),
        }
    }
}

fn load_or_create(
    data: &DataDir,
    file: &str,
    valid: fn(&str) -> bool,
    generate: fn() -> String,
) -> String {
    match data.read(file) {
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(text) if valid(text.trim()) => return text.trim().to_owned(),
            _ => warn!(
                path = %data.path(file).display(),
                "telemetry file is corrupt; replacing it with a new random value"
            ),
        },
        Ok(None) => {}
        Err(error) => warn!(
            path = %data.path(file).display(),
            %error,
            "cannot read telemetry file; replacing it with a new random value"
        ),
    }
    let value = generate();
    data.save(file, value.as_bytes());
    value
}

/// Five `-`-separated groups of 1 to 8-4-4-4-12 hex digits, either case.
pub(crate) fn is_id(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == ID_GROUP_DIGITS.len()
        && groups.iter().zip(ID_GROUP_DIGITS).all(|(group, max)| {
            (1..=max).contains(&group.len()) && group.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

fn is_secret(text: &str) -> bool {
    text.len() == SECRET_BYTES * 2 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn new_id() -> String {
    uuid::Uuid::new_v4()
        .hyphenated()
        .encode_upper(&mut uuid::Uuid::encode_buffer())
        .to_owned()
}

fn new_secret() -> String {
    hex::encode(rand::random::<[u8; SECRET_BYTES]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_shapes() {
        assert!(is_id(&new_id()));
        assert!(is_id("5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E"));
        assert!(
            is_id("5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2"),
            "EMQX unpadded group"
        );
        assert!(is_id("e3c1-4-11ed-ad7c-d5aab80ced2e"));
        for bad in [
            "",
            "x",
            "5EAAF3C2-6186-11ED-AD7C",
            "5EAAF3C20-6186-11ED-AD7C-D5AAB80CED2E",
        ] {
            assert!(!is_id(bad), "{bad:?}");
        }
        assert!(!is_id("5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2G"));
        assert!(!is_id("5EAAF3C2--11ED-AD7C-D5AAB80CED2E"));
    }

    #[test]
    fn new_ids_are_uppercase_and_padded() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id, id.to_uppercase());
    }
}
