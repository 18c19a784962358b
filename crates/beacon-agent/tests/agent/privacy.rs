//! Privacy: the report built on this machine carries nothing that identifies it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use beacon_agent::{BridgeCount, BrokerReading};
use beacon_report::privacy::find_identifiers;
use serde_json::{Value, json};

use crate::switches::quiet;

#[tokio::test]
async fn report_contains_no_hostname_address_mac_or_machine_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reading = BrokerReading {
        num_clients: 4,
        messages_received: 30,
        messages_sent: 30,
        num_topics: 3,
        retained: 2,
        authn: vec!["password_based:built_in_database".into()],
        authz: vec!["file".into()],
        active_plugins: vec!["retainer-0.1.0".into()],
        num_rules: 1,
        bridges: BTreeMap::from([(
            "webhook".to_owned(),
            BridgeCount {
                num: 1,
                num_linked_by_rules: 1,
            },
        )]),
        ..BrokerReading::default()
    };
    let agent = beacon_agent::Agent::start(
        quiet(),
        dir.path().to_path_buf(),
        std::sync::Arc::new(reading),
    )
    .expect("start");
    let report = agent.preview();
    agent.shutdown().await;
    let text = report.to_json();
    let value: Value = serde_json::from_str(&text).expect("json");

    assert_eq!(find_identifiers(&value), Vec::new(), "{text}");
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let hostname = hostname.trim().to_lowercase();
    assert!(!hostname.is_empty());
    let mut tokens = Vec::new();
    string_tokens(&value, &mut tokens);
    let short_name = hostname.split('.').next().unwrap_or_default().to_owned();
    for token in &tokens {
        assert!(
            *token != hostname && *token != short_name,
            "hostname in report: {text}"
        );
    }
    let lower = text.to_lowercase();
    for ip in local_addresses() {
        assert!(
            !lower.contains(&ip.to_string()),
            "address {ip} in report: {text}"
        );
    }
    for mac in mac_addresses() {
        assert!(!lower.contains(&mac), "MAC {mac} in report: {text}");
        assert!(
            !lower.contains(&mac.replace(':', "")),
            "MAC {mac} in report: {text}"
        );
    }
    for path in [
        "/etc/machine-id",
        "/var/lib/dbus/machine-id",
        "/sys/class/dmi/id/product_uuid",
        "/sys/class/dmi/id/product_serial",
        "/sys/class/dmi/id/board_serial",
    ] {
        let Ok(id) = std::fs::read_to_string(path) else {
            continue;
        };
        let id = id.trim().to_lowercase();
        if id.len() >= 8 {
            assert!(!lower.contains(&id), "{path} in report: {text}");
            assert!(
                !lower.contains(&id.replace('-', "")),
                "{path} in report: {text}"
            );
        }
    }
    assert_eq!(
        value["authn_authz"],
        json!({"authz": ["file"], "authn_listener": {}, "authn": ["password_based:built_in_database"]})
    );
}

/// Every string value (not key) split into host-name-like tokens, lowercased.
fn string_tokens(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.extend(
            s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
                .filter(|t| !t.is_empty())
                .map(str::to_lowercase),
        ),
        Value::Array(items) => items.iter().for_each(|v| string_tokens(v, out)),
        Value::Object(map) => map.values().for_each(|v| string_tokens(v, out)),
        _ => {}
    }
}

/// Non-loopback addresses of this machine, from the kernel's tables.
fn local_addresses() -> Vec<IpAddr> {
    let mut found = Vec::new();
    // fib_trie lists each local IPv4 address on the line before "/32 host LOCAL".
    let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    let lines: Vec<&str> = trie.lines().collect();
    for pair in lines.windows(2) {
        if pair[1].contains("/32 host LOCAL")
            && let Some(ip) = pair[0]
                .split_whitespace()
                .last()
                .and_then(|t| t.parse::<Ipv4Addr>().ok())
        {
            found.push(IpAddr::V4(ip));
        }
    }
    let inet6 = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    for line in inet6.lines() {
        let Some(hex) = line.split_whitespace().next() else {
            continue;
        };
        if let Ok(bits) = u128::from_str_radix(hex, 16) {
            found.push(IpAddr::V6(Ipv6Addr::from(bits)));
        }
    }
    found.retain(|ip| !ip.is_loopback());
    found.sort();
    found.dedup();
    found
}

fn mac_addresses() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("address")).ok())
        .map(|mac| mac.trim().to_lowercase())
        .filter(|mac| !mac.is_empty() && mac != "00:00:00:00:00:00")
        .collect()
}
