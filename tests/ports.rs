//! Ports for test clusters of broker processes, included with `#[path]` by the tests of
//! the broker and the end-to-end tests.
//!
//! They are drawn below Linux's ephemeral range (32768 to 60999), where every outgoing
//! connection of every test running at the same time takes its local port: a node killed
//! and started again on its ports then never finds one of them taken meanwhile by some
//! other test's connection ("cannot listen for the cluster's raft ... Address already in
//! use"). A node's raft port is its cluster port + 1000, so it stays below the range too.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;

const FIRST: u16 = 20_000;
const LAST_RAFT: u16 = 32_767;

/// `n` cluster ports `p` on 127.0.0.1, each free with its raft port `p + 1000`, none
/// the same as another's.
pub fn cluster_ports(n: usize) -> Vec<u16> {
    let span = u64::from(LAST_RAFT - 1000 - FIRST) + 1;
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < n {
        // A new RandomState is a new random key: a random number without a crate.
        let port = FIRST + (RandomState::new().build_hasher().finish() % span) as u16;
        let pair = [port, port + 1000];
        let clash = ports
            .iter()
            .any(|p| pair.contains(p) || pair.contains(&(p + 1000)));
        let free = pair
            .iter()
            .all(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok());
        if !clash && free {
            ports.push(port);
        }
    }
    ports
}
