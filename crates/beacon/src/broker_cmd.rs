//! `beacon broker`: runs the MQTT broker node with telemetry and the dashboard until
//! SIGINT or SIGTERM.

use std::io::Write;

use anyhow::Context;
use beacon_node::{Node, NodeOptions, RunningNode};

use crate::node_config::{self, NodePaths};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    paths: NodePaths,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.paths.load()?;
    let node = Node::start(NodeOptions {
        config,
        data_dir: args.paths.data_dir.clone(),
        do_not_track: node_config::do_not_track(),
    })
    .await
    .context("cannot start the broker")?;
    // Watching before the start lines: they invite a signal (scripts and tests send
    // SIGTERM as soon as they read them).
    let stop = crate::signals::shutdown_signal();
    announce(&node).context("cannot write the start lines to stdout")?;
    stop.await;
    node.shutdown().await;
    Ok(())
}

/// The lines an operator (or a script) reads at start: where to connect and log in.
fn announce(node: &RunningNode) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let listeners = node.mqtt_listeners();
    if listeners.is_empty() {
        writeln!(out, "beacon broker: MQTT listener disabled")?;
    }
    // listeners.tcp.default keeps the line scripts already read.
    for (id, addr) in listeners {
        match id.as_str() {
            "tcp:default" => writeln!(out, "beacon broker: MQTT listening on {addr}")?,
            _ => writeln!(out, "beacon broker: MQTT {id} listening on {addr}")?,
        }
    }
    writeln!(
        out,
        "beacon broker: dashboard on http://{}",
        node.http_addr()
    )?;
    if let Some(password) = node.generated_password() {
        writeln!(
            out,
            "beacon broker: first start: dashboard user \"admin\", password {password}\n\
             beacon broker: this password is shown only now; it is stored only as a hash"
        )?;
    }
    out.flush()
}
