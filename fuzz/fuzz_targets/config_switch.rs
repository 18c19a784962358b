//! HOCON file + `EMQX_*` environment -> `Config` -> the telemetry switch (`BootSwitches`)
//! and `AgentSettings`. The input is the file's bytes, optionally followed by `\0ENV\0`
//! and `NAME=VALUE` lines (the environment; `DO_NOT_TRACK` among them is the convention's
//! variable). Properties:
//! - loading the file from disk and from memory agree; a refusal names the file with a
//!   line inside it, or a variable of the environment;
//! - an accepted file is read whole: a line added after it is read, a stray `}` after it
//!   is refused;
//! - every reading of a value names a source that exists (the file, a variable);
//! - off is sticky: when a boot source says off, no runtime setting turns telemetry on,
//!   and the decision names that source; labels read back.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use beacon_agent::{
    AgentError, AgentSettings, BootSwitches, Decision, ENABLE_KEY, MIN_INTERVAL, SwitchSource,
    do_not_track_set,
};
use beacon_config::{Config, ConfigError, Origin};
use libfuzzer_sys::fuzz_target;

const ENV_MARK: &[u8] = b"\0ENV\0";
const PROBE_KEY: &str = "beacon_fuzz_probe";

struct Input<'a> {
    file: &'a [u8],
    env: Vec<(String, String)>,
    do_not_track: Option<String>,
}

fuzz_target!(|data: &[u8]| {
    let input = split(data);
    let path = config_path();
    std::fs::write(path, input.file).expect("write the fuzzed config file");
    let loaded = Config::load(Some(path), true, input.env.clone());
    if let Ok(text) = std::str::from_utf8(input.file) {
        let in_memory = Config::from_str(text, path, input.env.clone());
        assert_eq!(
            loaded.as_ref().err().map(ToString::to_string),
            in_memory.as_ref().err().map(ToString::to_string),
            "file and in-memory loads disagree"
        );
    }
    match loaded {
        Err(error) => refusal_names_a_place(&error, &input, path),
        Ok(config) => {
            if let Ok(text) = std::str::from_utf8(input.file) {
                read_whole(text, &input, path);
            }
            switches(&config, &input, path);
            settings(&config, &input, path);
        }
    }
});

/// One file per process: libFuzzer runs one input at a time.
fn config_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("beacon-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz config directory");
        dir.join("emqx.conf")
    })
}

fn split(data: &[u8]) -> Input<'_> {
    let at = data.windows(ENV_MARK.len()).position(|w| w == ENV_MARK);
    let Some(at) = at else {
        return Input {
            file: data,
            env: Vec::new(),
            do_not_track: None,
        };
    };
    let mut env = Vec::new();
    let mut do_not_track = None;
    for line in data[at + ENV_MARK.len()..].split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if name == "DO_NOT_TRACK" {
            do_not_track = Some(value.to_owned());
        }
        env.push((name.to_owned(), value.to_owned()));
    }
    Input {
        file: &data[..at],
        env,
        do_not_track,
    }
}

fn is_var(input: &Input<'_>, var: &str) -> bool {
    var.starts_with("EMQX_") && input.env.iter().any(|(name, _)| name == var)
}

/// A refused load names a line of the file, or one of the `EMQX_*` variables given.
fn refusal_names_a_place(error: &ConfigError, input: &Input<'_>, path: &Path) {
    match error {
        ConfigError::Syntax {
            path: at,
            line,
            column,
            ..
        } => {
            assert_eq!(at, path);
            let lines = input.file.split(|&b| b == b'\n').count();
            assert!(
                (1..=lines).contains(line),
                "line {line} of a file of {lines} lines: {error}"
            );
            assert!(*column >= 1, "{error}");
        }
        ConfigError::EnvSyntax { var, .. } => assert!(is_var(input, var), "{error}"),
        other => panic!("loading refused without a place: {other}"),
    }
}

/// An accepted file was read to its end: what follows it is read too. (Variables that
/// set the probe key, which the environment rightly overrides, are left out.)
fn read_whole(text: &str, input: &Input<'_>, path: &Path) {
    let more = format!("{text}\n{PROBE_KEY} = 7\n");
    let sets_probe = |name: &str| {
        let key = name
            .strip_prefix("EMQX_")
            .and_then(|rest| rest.split("__").next());
        key.is_some_and(|key| key.to_lowercase() == PROBE_KEY)
    };
    let env = input.env.iter().filter(|(name, _)| !sets_probe(name));
    let config = Config::from_str(&more, path, env.cloned())
        .unwrap_or_else(|e| panic!("a key after an accepted file is refused: {e}"));
    let probe = config.u64(PROBE_KEY).expect("the probe is a number");
    assert_eq!(
        probe.map(|p| p.value),
        Some(7),
        "the key after the file is lost"
    );
    let stray = format!("{text}\n}}\n");
    match Config::from_str(&stray, path, input.env.clone()) {
        Err(ConfigError::Syntax { .. }) => {}
        Err(other) => panic!("a stray }} refused without a line: {other}"),
        Ok(_) => panic!("a stray }} after an accepted file is accepted"),
    }
}

fn origin_exists(origin: &Origin, input: &Input<'_>, path: &Path) -> bool {
    match origin {
        Origin::File { path: at, .. } => at == path,
        Origin::Env { var } => is_var(input, var),
        Origin::Default => false,
    }
}

fn source_exists(source: &SwitchSource, input: &Input<'_>, path: &Path) -> bool {
    match source {
        SwitchSource::ConfigFile { path: at } => at == path,
        SwitchSource::Environment { var } => is_var(input, var),
        SwitchSource::DoNotTrack => do_not_track_set(input.do_not_track.as_deref()),
        SwitchSource::Default | SwitchSource::Runtime => true,
    }
}

fn switches(config: &Config, input: &Input<'_>, path: &Path) {
    let boot = match BootSwitches::from_config(config, input.do_not_track.as_deref()) {
        Ok(boot) => boot,
        Err(ConfigError::Type { key, origin, .. }) => {
            assert_eq!(key, ENABLE_KEY);
            assert!(origin_exists(&origin, input, path), "{origin}");
            return;
        }
        Err(other) => panic!("the switch refused without naming its source: {other}"),
    };
    assert_eq!(
        boot.do_not_track,
        do_not_track_set(input.do_not_track.as_deref())
    );
    for decision in [&boot.env, &boot.file].into_iter().flatten() {
        assert!(source_exists(&decision.source, input, path), "{decision:?}");
    }
    let merged_off = matches!(config.bool(ENABLE_KEY), Ok(Some(s)) if !s.value);
    let boot_off = boot.boot_off();
    for runtime in [None, Some(true), Some(false)] {
        let decision = boot.resolve(runtime);
        assert!(source_exists(&decision.source, input, path), "{decision:?}");
        labels_read_back(&decision);
        if merged_off {
            assert!(!decision.enable, "the merged config says off, {decision:?}");
        }
        match (&boot_off, runtime) {
            (Some(source), _) => {
                assert!(!decision.enable, "on while {source} says off");
                assert_eq!(&decision.source, source);
            }
            (None, Some(enable)) => {
                assert_eq!(
                    decision,
                    Decision {
                        enable,
                        source: SwitchSource::Runtime
                    }
                );
            }
            (None, None) => assert!(decision.enable, "off with no source saying off"),
        }
    }
}

fn labels_read_back(decision: &Decision) {
    let label = decision.source.to_string();
    assert_eq!(
        SwitchSource::from_label(&label).as_ref(),
        Some(&decision.source)
    );
    let json = serde_json::to_string(decision).expect("a decision serializes");
    let back: Decision = serde_json::from_str(&json).expect("a decision reads back");
    assert_eq!(&back, decision);
}

fn settings(config: &Config, input: &Input<'_>, path: &Path) {
    match AgentSettings::from_config(config, input.do_not_track.clone()) {
        Ok(settings) => {
            assert!(settings.interval >= MIN_INTERVAL);
            assert!(!settings.timeout.is_zero());
            let scheme = settings.url.scheme();
            assert!(
                scheme == "https" || (scheme == "http" && settings.is_loopback_url()),
                "{}",
                settings.url
            );
        }
        Err(AgentError::Config(ConfigError::Type { origin, .. }))
        | Err(AgentError::Setting { origin, .. }) => {
            assert!(origin_exists(&origin, input, path), "{origin}");
        }
        Err(other) => panic!("settings refused without naming a source: {other}"),
    }
}
