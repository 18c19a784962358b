//! Identifying strings are found in values and keys, and only those.

use beacon_report::fixtures::{EMQX_4_4, REAL_WORLD_5, SEED_5_0_9};
use beacon_report::privacy::{
    Finding, IdentifierKind, REDACTED, find_identifiers, identifier_kind, redact_identifiers,
};
use serde_json::{Value, json};

fn finding(path: &str, kind: IdentifierKind) -> Finding {
    Finding {
        path: path.to_owned(),
        kind,
    }
}

#[test]
fn fixtures_have_no_findings() {
    for fixture in [SEED_5_0_9, EMQX_4_4, REAL_WORLD_5] {
        let value: Value = serde_json::from_str(fixture).expect("fixture");
        assert_eq!(find_identifiers(&value), vec![]);
    }
}

#[test]
fn ipv4_is_four_octets_as_a_whole_token() {
    for text in [
        "10.0.0.1",
        "192.168.1.20:1883",
        "host at 172.16.0.5.",
        "emqx@127.0.0.1",
        "[8.8.8.8]",
        "255.255.255.255",
        "node-10.1.2.3",
    ] {
        assert!(
            matches!(
                identifier_kind(text),
                Some(IdentifierKind::Ipv4 | IdentifierKind::Email)
            ),
            "{text} should be found"
        );
    }
    for text in [
        "5.0.9",
        "1.2.3.4.5",
        "x86_64-apple-darwin20.6.0",
        "24.2.1-1",
        "256.1.1.1",
        "1.2.3",
        "v1.2.3.4",
        "1.2.3.4a",
        "1..2.3",
        "1234.1.1.1",
        "20.04.6 LTS (Focal Fossa)",
    ] {
        assert_eq!(identifier_kind(text), None, "{text} is not an address");
    }
}

#[test]
fn ipv6_parses_as_an_address() {
    for text in [
        "::1",
        "fe80::1%eth0",
        "[2001:db8::1]:1883",
        "2001:db8:0:0:0:0:0:1",
        "::ffff:10.0.0.1",
    ] {
        assert!(identifier_kind(text).is_some(), "{text} should be found");
    }
    assert_eq!(identifier_kind("2001:db8::1"), Some(IdentifierKind::Ipv6));
    for text in [
        "std::net",
        "12:30:45",
        "a:b",
        "mechanism:backend",
        "password_based:built_in_database",
    ] {
        assert_eq!(identifier_kind(text), None, "{text} is not an address");
    }
}

#[test]
fn mac_is_six_hex_pairs_with_one_separator() {
    for text in [
        "aa:bb:cc:dd:ee:ff",
        "00-1A-2B-3C-4D-5E",
        "mac=02:42:ac:11:00:02",
    ] {
        assert_eq!(identifier_kind(text), Some(IdentifierKind::Mac), "{text}");
    }
    for text in [
        "aa:bb:cc:dd:ee",
        "aa:bb-cc:dd:ee:ff",
        "aa:bb:cc:dd:ee:ff:00",
        "gg:bb:cc:dd:ee:ff",
        "5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E",
        "AB-CD-EF-12-34",
    ] {
        assert_eq!(identifier_kind(text), None, "{text} is not a MAC");
    }
}

#[test]
fn email_is_local_at_dotted_domain() {
    for text in ["x@y.z", "Mail me: first.last+tag@example.co.uk."] {
        assert_eq!(identifier_kind(text), Some(IdentifierKind::Email), "{text}");
    }
    for text in ["x@y", "@y.z", "x@.z", "x@y.", "emqx@localhost", "a@b@c.d"] {
        assert_eq!(identifier_kind(text), None, "{text} is not an e-mail");
    }
}

#[test]
fn findings_name_paths_and_kinds() {
    let value = json!({
        "os_name": "Ubuntu",
        "nodes": ["ok", "10.0.0.7"],
        "deep": {"list": [{"mac": "aa:bb:cc:dd:ee:ff"}]},
        "who": "emqx@192.168.0.2",
        "2001:db8::5": {"inner": "admin@example.com"}
    });
    assert_eq!(
        find_identifiers(&value),
        vec![
            finding("nodes[1]", IdentifierKind::Ipv4),
            finding("deep.list[0].mac", IdentifierKind::Mac),
            finding("who", IdentifierKind::Ipv4),
            finding("who", IdentifierKind::Email),
            finding("<redacted>", IdentifierKind::Ipv6),
            finding("<redacted>.inner", IdentifierKind::Email),
        ]
    );
}

#[test]
fn redaction_replaces_values_and_keys_in_place() {
    let mut value = json!({
        "a": "10.0.0.1",
        "b": ["fine", "x@y.z", 3, null],
        "10.0.0.2": {"c": "aa:bb:cc:dd:ee:ff"},
        "::1": 1,
        "<redacted>": "kept",
        "seed_arch": "x86_64-apple-darwin20.6.0"
    });
    assert_eq!(redact_identifiers(&mut value), 5);
    assert_eq!(
        value,
        json!({
            "a": REDACTED,
            "b": ["fine", REDACTED, 3, null],
            "<redacted>#2": {"c": REDACTED},
            "<redacted>#3": 1,
            "<redacted>": "kept",
            "seed_arch": "x86_64-apple-darwin20.6.0"
        })
    );
    let keys: Vec<&String> = value.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "a",
            "b",
            "<redacted>#2",
            "<redacted>#3",
            "<redacted>",
            "seed_arch"
        ]
    );
    assert_eq!(find_identifiers(&value), vec![]);
    assert_eq!(redact_identifiers(&mut value), 0);
}

#[test]
fn redacting_a_clean_seed_changes_nothing() {
    let mut value: Value = serde_json::from_str(SEED_5_0_9).expect("seed");
    let before = value.clone();
    assert_eq!(redact_identifiers(&mut value), 0);
    assert_eq!(value, before);
}

#[test]
fn kind_names_are_stable() {
    let names: Vec<String> = [
        IdentifierKind::Ipv4,
        IdentifierKind::Ipv6,
        IdentifierKind::Mac,
        IdentifierKind::Email,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(names, ["ipv4", "ipv6", "mac", "email"]);
}
