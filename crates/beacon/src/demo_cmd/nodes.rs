//! The demo's broker nodes: each one a `beacon broker` child process of this binary, with
//! its own config file and data directory under the demo's, reporting to the demo's
//! collector. With `--nodes N` above 1 they form one cluster from static seeds, exactly as
//! an operator's nodes would (README, "Run a cluster").
//!
//! Why child processes rather than several [`beacon_node::Node`]s in this process: rmqtt's
//! raft plugin cannot be stopped once started (its thread has its own runtime) and calls
//! `std::process::exit` when it fails to initialise, so one node's failure would take the
//! collector and the other nodes down with it, and a stopped node would leave its raft
//! thread running. Processes isolate that, stop cleanly on SIGTERM, and run the very
//! command the README shows. Ctrl-C in a terminal reaches every process of the group; the
//! demo also sends SIGTERM itself (`--stop-after`, or a SIGTERM sent to the demo alone),
//! and on Linux each child gets SIGTERM if the demo dies without stopping it, so no node
//! outlives the demo holding its ports.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// A clustered node may wait up to 30 s for the raft bootstrapper (the first seed) before
/// it gives up; a debug build on a busy machine adds more.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// rmqtt's raft port is the cluster (gRPC) port plus this (`beacon-broker`'s rule).
const RAFT_PORT_OFFSET: u16 = 1000;

/// What one node is given: its name, files and ports.
#[derive(Debug, Clone)]
pub struct NodePlan {
    /// EMQX node name (`beacon2@127.0.0.1`).
    pub name: String,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    /// Where its stderr (its log) goes.
    pub log: PathBuf,
    pub mqtt_port: u16,
    pub dashboard_port: u16,
    /// Its cluster port (raft uses this + 1000); `None` for a node that runs alone.
    pub cluster_port: Option<u16>,
}

impl NodePlan {
    /// `node/` for a lone node (the demo's layout before clusters, so its ids carry over),
    /// `node1/`, `node2/`, ... in a cluster.
    pub fn new(dir: &Path, number: usize, total: usize, ports: (u16, u16)) -> Self {
        let stem = if total == 1 {
            "node".to_owned()
        } else {
            format!("node{number}")
        };
        Self {
            name: format!("beacon{number}@127.0.0.1"),
            data_dir: dir.join(&stem),
            config: dir.join(format!("{stem}.conf")),
            log: dir.join(format!("{stem}.log")),
            mqtt_port: ports.0,
            dashboard_port: ports.1,
            cluster_port: None,
        }
    }

    /// The node's own part of its config file: listeners, and its place in the cluster.
    fn config_text(&self, seeds: &[String]) -> String {
        let mut text = format!(
            "listeners.tcp.default.bind = \"0.0.0.0:{}\"\n\
             dashboard.listeners.http.bind = \"127.0.0.1:{}\"\n",
            self.mqtt_port, self.dashboard_port
        );
        if self.cluster_port.is_some() {
            let quoted: Vec<String> = seeds.iter().map(|s| format!("\"{s}\"")).collect();
            text.push_str(&format!(
                "node.name = \"{}\"\n\
                 cluster.discovery_strategy = static\n\
                 cluster.static.seeds = [{}]\n",
                self.name,
                quoted.join(", ")
            ));
        }
        text
    }

    /// `name@127.0.0.1:port`, the node's entry in `cluster.static.seeds`.
    fn seed(&self) -> Option<String> {
        self.cluster_port
            .map(|port| format!("{}:{port}", self.name))
    }
}

/// Gives every plan a cluster port P with P + 1000 free too, when there is more than one.
/// The listeners are held until all are chosen, so no two nodes get the same port.
pub fn assign_cluster_ports(plans: &mut [NodePlan]) -> anyhow::Result<()> {
    if plans.len() < 2 {
        return Ok(());
    }
    let mut held = Vec::new();
    for plan in plans.iter_mut() {
        let port = loop {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .context("cannot find a free cluster port")?;
            let port = listener.local_addr()?.port();
            held.push(listener);
            let Some(raft) = port.checked_add(RAFT_PORT_OFFSET) else {
                continue;
            };
            if let Ok(raft_listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, raft)) {
                held.push(raft_listener);
                break port;
            }
        };
        plan.cluster_port = Some(port);
    }
    Ok(())
}

/// A running node and where it listens.
#[derive(Debug)]
pub struct DemoNode {
    pub name: String,
    pub mqtt: SocketAddr,
    pub dashboard: SocketAddr,
    pub log: PathBuf,
    child: Child,
}

/// Writes every node's config file (`shared` is the part all nodes have in common) and
/// starts them all at once: clustered nodes wait for each other, the first seed
/// bootstraps. Returns once every node has printed where it listens.
pub async fn start(plans: &[NodePlan], shared: &str) -> anyhow::Result<Vec<DemoNode>> {
    let seeds: Vec<String> = plans.iter().filter_map(NodePlan::seed).collect();
    let mut starting = Vec::with_capacity(plans.len());
    for plan in plans {
        let text = format!(
            "# Written by `beacon demo` at every start.\n{}{shared}",
            plan.config_text(&seeds)
        );
        std::fs::write(&plan.config, text)
            .with_context(|| format!("cannot write {}", plan.config.display()))?;
        starting.push(spawn(plan)?);
    }
    let mut nodes = Vec::with_capacity(plans.len());
    for (plan, (child, stdout)) in plans.iter().zip(starting) {
        nodes.push(ready(plan, child, stdout).await?);
    }
    Ok(nodes)
}

fn spawn(plan: &NodePlan) -> anyhow::Result<(Child, ChildStdout)> {
    let exe = std::env::current_exe().context("cannot find the beacon binary")?;
    let log = std::fs::File::create(&plan.log)
        .with_context(|| format!("cannot create {}", plan.log.display()))?;
    let mut command = Command::new(exe);
    command
        .arg("broker")
        .arg("--config")
        .arg(&plan.config)
        .arg("--data-dir")
        .arg(&plan.data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true);
    stop_with_parent(&mut command);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start node {}", plan.name))?;
    let stdout = child.stdout.take().context("the node's stdout is piped")?;
    Ok((child, stdout))
}

/// On Linux, the child gets SIGTERM when the demo dies, even by SIGKILL.
#[cfg(target_os = "linux")]
fn stop_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // which is async-signal-safe; it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn stop_with_parent(_command: &mut Command) {}

/// Reads the node's start lines (`beacon broker: MQTT listening on ...`, then
/// `... dashboard on http://...`); then drains its stdout in the background.
async fn ready(plan: &NodePlan, mut child: Child, stdout: ChildStdout) -> anyhow::Result<DemoNode> {
    let mut lines = BufReader::new(stdout).lines();
    let mut mqtt = None;
    let read = tokio::time::timeout(START_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = line.strip_prefix("beacon broker: MQTT listening on ") {
                mqtt = addr.parse::<SocketAddr>().ok();
            }
            if let Some(addr) = line.strip_prefix("beacon broker: dashboard on http://") {
                return Ok(addr.parse::<SocketAddr>().ok());
            }
        }
        Ok::<_, std::io::Error>(None)
    })
    .await;
    let dashboard = match read {
        Ok(Ok(Some(addr))) => addr,
        Ok(Ok(None)) | Ok(Err(_)) => {
            let exited = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            let status = exited.ok().and_then(Result::ok);
            bail!(
                "node {} did not start ({}):\n{}",
                plan.name,
                status.map_or("no exit status".into(), |s| s.to_string()),
                log_tail(&plan.log)
            );
        }
        Err(_) => bail!(
            "node {} printed no start lines within {START_TIMEOUT:?}:\n{}",
            plan.name,
            log_tail(&plan.log)
        ),
    };
    let mqtt = mqtt.with_context(|| format!("node {} has no MQTT listener", plan.name))?;
    // Nothing more is expected, but a full pipe must never block the node.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(DemoNode {
        name: plan.name.clone(),
        mqtt,
        dashboard,
        log: plan.log.clone(),
        child,
    })
}

/// The last lines of a node's log, for an error message.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("(last lines of {})\n{tail}", log.display())
}

/// Completes when a node exits by itself: which one, and how.
pub async fn first_exit(nodes: &mut [DemoNode]) -> (String, std::io::Result<ExitStatus>) {
    loop {
        for node in nodes.iter_mut() {
            match node.child.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => return (node.name.clone(), Ok(status)),
                Err(e) => return (node.name.clone(), Err(e)),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// SIGTERM to every node still running, then waits for each (killing one that takes
/// longer than [`STOP_TIMEOUT`]).
pub async fn stop(nodes: Vec<DemoNode>) {
    for node in &nodes {
        if let Some(pid) = node
            .child
            .id()
            .and_then(|id| libc::pid_t::try_from(id).ok())
        {
            // SAFETY: kill(2) with a pid this process spawned and has not reaped
            // (`id()` is `None` once it has been).
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    for mut node in nodes {
        match tokio::time::timeout(STOP_TIMEOUT, node.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => {
                eprintln!("beacon demo: node {} stopped with {status}", node.name);
            }
            Ok(Err(e)) => eprintln!("beacon demo: node {}: {e}", node.name),
            Err(_) => {
                eprintln!(
                    "beacon demo: node {} did not stop within {STOP_TIMEOUT:?}; killing it",
                    node.name
                );
                let _ = node.child.kill().await;
            }
        }
    }
}
