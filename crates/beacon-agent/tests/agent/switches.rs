//! The switch: every combination of its four sources, runtime changes, and bad input.

use std::path::{Path, PathBuf};

use beacon_agent::{AgentSettings, SwitchError, SwitchSource, read_status};
use beacon_config::Config;

use crate::support::{settings, start};

const VAR: &str = "EMQX_TELEMETRY__ENABLE";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FileSays {
    Absent,
    True,
    False,
}

#[derive(Debug, Clone, Copy)]
pub struct Case {
    file: FileSays,
    env: Option<bool>,
    runtime: Option<bool>,
    dnt: bool,
}

pub fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for file in [FileSays::Absent, FileSays::True, FileSays::False] {
        for env in [None, Some(true), Some(false)] {
            for runtime in [None, Some(true), Some(false)] {
                for dnt in [false, true] {
                    cases.push(Case {
                        file,
                        env,
                        runtime,
                        dnt,
                    });
                }
            }
        }
    }
    cases
}

/// The documented rule, written out independently of the agent: off if any source says
/// off, named in the order environment, DO_NOT_TRACK, file, runtime; on by runtime,
/// environment, file, default.
pub fn expected(case: Case, file_path: &Path) -> (bool, SwitchSource) {
    let env = SwitchSource::Environment { var: VAR.into() };
    let file = SwitchSource::ConfigFile {
        path: file_path.to_path_buf(),
    };
    let offs = [
        (case.env == Some(false), env.clone()),
        (case.dnt, SwitchSource::DoNotTrack),
        (case.file == FileSays::False, file.clone()),
        (case.runtime == Some(false), SwitchSource::Runtime),
    ];
    if let Some((_, source)) = offs.into_iter().find(|(off, _)| *off) {
        return (false, source);
    }
    let source = if case.runtime == Some(true) {
        SwitchSource::Runtime
    } else if case.env == Some(true) {
        env
    } else if case.file == FileSays::True {
        file
    } else {
        SwitchSource::Default
    };
    (true, source)
}

/// A node directory for `case`: config file (both HOCON spellings), runtime setting as
/// the agent itself persisted it, and the environment and DO_NOT_TRACK values.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub dnt: Option<String>,
}

impl Node {
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("etc/emqx.conf")
    }

    pub fn settings(&self, extra_block: &str) -> AgentSettings {
        let mut settings =
            AgentSettings::from_config(&self.config, self.dnt.clone()).expect("settings");
        let extra = crate::support::settings(extra_block, &[]);
        settings.url = extra.url;
        settings.interval = extra.interval;
        settings.initial_delay = extra.initial_delay;
        settings
    }
}

pub async fn node_for(case: Case) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("etc/emqx.conf");
    std::fs::create_dir_all(dir.path().join("etc")).expect("etc");
    let text = match case.file {
        FileSays::Absent => None,
        FileSays::True => Some("telemetry {\n  enable = true\n}\n"),
        FileSays::False => Some("node.name = beacon\ntelemetry.enable = false\n"),
    };
    if let Some(text) = text {
        std::fs::write(&conf, text).expect("write conf");
    }
    if let Some(runtime) = case.runtime {
        persist_runtime(&dir.path().join("data"), runtime).await;
    }
    let env: Vec<(String, String)> = case
        .env
        .map(|on| (VAR.to_owned(), on.to_string()))
        .into_iter()
        .collect();
    let config = Config::load(Some(&conf), false, env).expect("load config");
    let dnt = case.dnt.then(|| "1".to_owned());
    Node { dir, config, dnt }
}

/// Sets the runtime switch the way an operator does: through a running agent (with no
/// other source, so it starts on by default).
pub async fn persist_runtime(data: &Path, enable: bool) {
    let agent = start(quiet(), data);
    if enable {
        agent.set_enabled(false).await.expect("off");
    }
    agent.set_enabled(enable).await.expect("switch");
    agent.shutdown().await;
}

/// Settings that never send during a test: an unused loopback port, an hour's delay.
pub fn quiet() -> AgentSettings {
    settings(
        "url = \"http://127.0.0.1:9/api/telemetry\"\ninitial_delay = 1h\ninterval = 1h",
        &[],
    )
}

#[tokio::test]
async fn every_combination_of_sources_resolves_as_documented() {
    let cases = all_cases();
    assert_eq!(cases.len(), 54);
    for case in cases {
        let node = node_for(case).await;
        let (enable, source) = expected(case, &node.conf());
        let offline = read_status(&node.data(), &node.config, node.dnt.clone()).expect("read");
        assert_eq!(
            (offline.enable, &offline.source),
            (enable, &source),
            "{case:?} offline"
        );
        assert!(!offline.running);
        let agent = start(
            node.settings("url = \"http://127.0.0.1:9/x\"\ninitial_delay = 1h"),
            &node.data(),
        );
        let status = agent.status();
        assert_eq!(
            (status.enable, &status.source),
            (enable, &source),
            "{case:?} running"
        );
        agent.shutdown().await;
    }
}

#[tokio::test]
async fn labels_are_the_documented_strings() {
    let node = node_for(Case {
        file: FileSays::False,
        env: None,
        runtime: None,
        dnt: false,
    })
    .await;
    let status = read_status(&node.data(), &node.config, None).expect("status");
    let json = serde_json::to_value(&status).expect("json");
    assert_eq!(json["enable"], false);
    assert_eq!(
        json["source"],
        format!("config file {}", node.conf().display())
    );
    let env_off = Config::load(None, false, [(VAR.to_owned(), "false".to_owned())]).expect("env");
    let status = read_status(&node.data(), &env_off, None).expect("status");
    assert_eq!(
        status.source.to_string(),
        "environment EMQX_TELEMETRY__ENABLE"
    );
    let status = read_status(&node.data(), &Config::empty(), Some("1".into())).expect("status");
    assert_eq!(status.source.to_string(), "DO_NOT_TRACK");
    let status = read_status(&node.data(), &Config::empty(), Some("0".into())).expect("status");
    assert_eq!(
        (status.enable, status.source.to_string()),
        (true, "default".into())
    );
}

#[tokio::test]
async fn enabling_while_a_boot_source_says_off_is_refused_naming_it() {
    let blocked = [
        (
            Case {
                file: FileSays::False,
                env: None,
                runtime: None,
                dnt: false,
            },
            "config file",
        ),
        (
            Case {
                file: FileSays::Absent,
                env: Some(false),
                runtime: None,
                dnt: false,
            },
            "environment EMQX_TELEMETRY__ENABLE",
        ),
        (
            Case {
                file: FileSays::Absent,
                env: None,
                runtime: None,
                dnt: true,
            },
            "DO_NOT_TRACK",
        ),
    ];
    for (case, named) in blocked {
        let node = node_for(case).await;
        let agent = start(node.settings("initial_delay = 1h"), &node.data());
        let err = agent.set_enabled(true).await.expect_err("refused");
        assert!(matches!(err, SwitchError::Locked { .. }), "{err:?}");
        assert!(err.to_string().contains(named), "{err}");
        assert!(!agent.status().enable);
        agent
            .preview()
            .validate()
            .expect("a preview is built while disabled");
        let err = agent.set_enabled(false).await.expect_err("already off");
        assert_eq!(err.to_string(), "Telemetry status is already disabled");
        agent.shutdown().await;
        assert!(
            !node.data().join("telemetry/runtime.json").exists(),
            "nothing persisted"
        );
    }
}

#[tokio::test]
async fn runtime_switch_persists_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = start(quiet(), dir.path());
    let err = agent.set_enabled(true).await.expect_err("already on");
    assert!(
        matches!(err, SwitchError::AlreadyInState { enabled: true }),
        "{err:?}"
    );
    let status = agent.set_enabled(false).await.expect("off");
    assert_eq!(
        (status.enable, status.source),
        (false, SwitchSource::Runtime)
    );
    assert_eq!(status.next_report_at, None);
    agent.shutdown().await;

    let agent = start(quiet(), dir.path());
    assert_eq!(
        (agent.status().enable, agent.status().source),
        (false, SwitchSource::Runtime)
    );
    agent.set_enabled(true).await.expect("on");
    agent.shutdown().await;

    let agent = start(quiet(), dir.path());
    let status = agent.status();
    assert_eq!(
        (status.enable, status.source),
        (true, SwitchSource::Runtime)
    );
    assert!(status.next_report_at.is_some());
    agent.shutdown().await;
}

#[test]
fn syntax_error_names_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("emqx.conf");
    std::fs::write(&conf, "node.name = beacon\ntelemetry {\n  enable = false\n").expect("write");
    let err = Config::load(Some(&conf), true, Vec::new()).expect_err("broken config");
    let text = err.to_string();
    assert!(text.starts_with(&format!("{}:", conf.display())), "{text}");
    let position = text[conf.display().to_string().len()..].to_owned();
    let mut numbers = position.split(':').skip(1).take(2).map(str::parse::<usize>);
    assert!(
        matches!((numbers.next(), numbers.next()), (Some(Ok(line)), Some(Ok(_column))) if line >= 3),
        "{text}"
    );
}

#[test]
fn unusable_environment_value_names_the_variable() {
    let env = [(VAR.to_owned(), "maybe".to_owned())];
    let config = Config::load(None, false, env).expect("env parses as a string");
    let err = AgentSettings::from_config(&config, None).expect_err("maybe is not a boolean");
    let text = err.to_string();
    assert!(text.contains(VAR), "{text}");
    assert!(text.contains("maybe"), "{text}");
}
