//! EMQX's cluster keys from a config file and `EMQX_*` variables: what a node joins,
//! and each bad value refused naming its key and where it was set.

use std::path::Path;

use beacon_broker::{BrokerConfig, BrokerError};
use beacon_config::Config;

fn parse_with_env(text: &str, env: &[(&str, &str)]) -> Result<BrokerConfig, BrokerError> {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    let config = Config::from_str(text, Path::new("etc/emqx.conf"), env).expect("HOCON parses");
    BrokerConfig::from_config(&config)
}

fn parse(text: &str) -> Result<BrokerConfig, BrokerError> {
    parse_with_env(text, &[])
}

fn error(text: &str) -> String {
    parse(text).expect_err("config is refused").to_string()
}

const THREE: &str = r#"cluster.static.seeds = ["beacon3@127.0.0.1:5373", "beacon1@127.0.0.1:5371", "beacon2@127.0.0.1"]"#;

#[test]
fn without_cluster_keys_a_node_runs_alone_under_the_default_name() {
    let config = parse("").expect("valid");
    assert!(config.cluster().is_none());
    assert_eq!(config.node_name(), "beacon@127.0.0.1");
    assert_eq!(BrokerConfig::default().node_name(), "beacon@127.0.0.1");
    let config =
        parse("node.name = \"a@b\"\ncluster.discovery_strategy = singleton\n").expect("valid");
    assert!(config.cluster().is_none());
    assert_eq!(config.node_name(), "a@b");
}

#[test]
fn static_seeds_make_a_cluster_whose_peers_are_the_other_seeds() {
    let text = format!(
        "node.name = \"beacon2@127.0.0.1\"\ncluster.discovery_strategy = static\n{THREE}\n"
    );
    let config = parse(&text).expect("valid");
    let cluster = config.cluster().expect("clustered");
    assert_eq!(cluster.node_name(), "beacon2@127.0.0.1");
    assert_eq!(cluster.peers(), ["beacon1@127.0.0.1", "beacon3@127.0.0.1"]);
}

#[test]
fn manual_runs_alone() {
    let config = parse(&format!("cluster.discovery_strategy = manual\n{THREE}\n")).expect("valid");
    assert!(config.cluster().is_none());
}

#[test]
fn every_cluster_key_works_from_the_environment() {
    let config = parse_with_env(
        "",
        &[
            ("EMQX_NODE__NAME", "beacon1@127.0.0.1"),
            ("EMQX_CLUSTER__DISCOVERY_STRATEGY", "static"),
            (
                "EMQX_CLUSTER__STATIC__SEEDS",
                r#"["beacon1@127.0.0.1:6001", "beacon2@127.0.0.1:6002"]"#,
            ),
        ],
    )
    .expect("valid");
    let cluster = config.cluster().expect("clustered");
    assert_eq!(cluster.node_name(), "beacon1@127.0.0.1");
    assert_eq!(cluster.peers(), ["beacon2@127.0.0.1"]);

    let err = parse_with_env(
        "node.name = \"beacon1@127.0.0.1\"\n",
        &[("EMQX_CLUSTER__DISCOVERY_STRATEGY", "gossip")],
    )
    .expect_err("refused")
    .to_string();
    assert!(
        err.contains("environment EMQX_CLUSTER__DISCOVERY_STRATEGY"),
        "{err}"
    );
    assert!(err.contains("\"gossip\""), "{err}");

    let err = parse_with_env(
        "node.name = \"beacon1@127.0.0.1\"\ncluster.discovery_strategy = static\n",
        &[(
            "EMQX_CLUSTER__STATIC__SEEDS",
            "[\"beacon1@127.0.0.1\", \"beacon2\"]",
        )],
    )
    .expect_err("refused")
    .to_string();
    assert!(
        err.contains("environment EMQX_CLUSTER__STATIC__SEEDS"),
        "{err}"
    );
    assert!(err.contains("cluster.static.seeds[1]"), "{err}");
}

#[test]
fn an_unknown_strategy_is_refused_with_its_line() {
    let err = error("node.name = \"a@b\"\n\ncluster {\n  discovery_strategy = sideways\n}\n");
    assert!(err.contains("cluster.discovery_strategy"), "{err}");
    assert!(err.contains("etc/emqx.conf line 4"), "{err}");
    assert!(err.contains("singleton, static or manual"), "{err}");
    let err = error("cluster.discovery_strategy = etcd\n");
    assert!(err.contains("Beacon does not support"), "{err}");
}

#[test]
fn a_seed_that_does_not_parse_is_refused_naming_it() {
    let err = error(
        "node.name = \"beacon1@127.0.0.1\"\ncluster.discovery_strategy = static\n\
         cluster.static.seeds = [\"beacon1@127.0.0.1:5371\", \"beacon2@127.0.0.1:port\"]\n",
    );
    assert!(err.contains("cluster.static.seeds[1]"), "{err}");
    assert!(err.contains("etc/emqx.conf line 3"), "{err}");
    assert!(err.contains("not a port"), "{err}");
}

#[test]
fn repeated_names_and_shared_ports_are_refused() {
    let err = error(
        "node.name = \"b1@127.0.0.1\"\ncluster.discovery_strategy = static\n\
         cluster.static.seeds = [\"b1@127.0.0.1:6000\", \"b2@127.0.0.1:6100\", \"b1@127.0.0.1:6200\"]\n",
    );
    assert!(err.contains("cluster.static.seeds[2]"), "{err}");
    assert!(err.contains("repeats cluster.static.seeds[0]"), "{err}");
    // b2's cluster port is b1's raft port (6000 + 1000).
    let err = error(
        "node.name = \"b1@127.0.0.1\"\ncluster.discovery_strategy = static\n\
         cluster.static.seeds = [\"b1@127.0.0.1:6000\", \"b2@127.0.0.1:7000\"]\n",
    );
    assert!(err.contains("cluster.static.seeds[1]"), "{err}");
    assert!(err.contains("port + 1000"), "{err}");
}

#[test]
fn a_node_name_missing_from_the_seeds_is_refused_where_it_was_set() {
    let err = error(&format!(
        "cluster.discovery_strategy = static\n{THREE}\nnode.name = \"beacon4@127.0.0.1\"\n"
    ));
    assert!(err.contains("node.name"), "{err}");
    assert!(err.contains("etc/emqx.conf line 3"), "{err}");
    assert!(err.contains("beacon4@127.0.0.1"), "{err}");
    // Unset, the default name is named, and it is not among the seeds either.
    let err = error(&format!("cluster.discovery_strategy = static\n{THREE}\n"));
    assert!(err.contains("default: node.name"), "{err}");
    assert!(err.contains("beacon@127.0.0.1"), "{err}");
}

#[test]
fn static_without_seeds_is_refused() {
    let err = error("node.name = \"a@b\"\ncluster.discovery_strategy = static\n");
    assert!(err.contains("cluster.static.seeds"), "{err}");
    assert!(err.contains("etc/emqx.conf line 2"), "{err}");
}

#[test]
fn an_empty_node_name_is_refused() {
    let err = error("node.name = \"\"\n");
    assert!(err.contains("node.name"), "{err}");
    assert!(err.contains("line 1"), "{err}");
}
