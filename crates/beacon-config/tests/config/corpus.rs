//! The corpus of broken config files and environment values
//! (`tests/corpus/config/cases.json` at the repository root): each is refused whole,
//! naming file:line:column or the variable, never half-read.

use std::path::{Path, PathBuf};

use beacon_config::{Config, ConfigError};
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/config")
}

/// The bytes of a case's file: the corpus file plus what its recipe appends.
fn file_bytes(case: &Value) -> Option<(String, Vec<u8>)> {
    let name = case["file"].as_str()?;
    let path = corpus_dir().join(name);
    let mut bytes =
        std::fs::read(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    if let Some(hex) = case["append_hex"].as_str() {
        for byte in hex.split_whitespace() {
            bytes.push(u8::from_str_radix(byte, 16).expect("hex byte"));
        }
    }
    if let Some(repeat) = case.get("append_repeat") {
        let unit = repeat["unit"].as_str().expect("repeat unit");
        let count = repeat["count"].as_u64().expect("repeat count");
        bytes.extend(unit.repeat(count as usize).into_bytes());
    }
    Some((name.to_owned(), bytes))
}

fn env_of(case: &Value) -> Vec<(String, String)> {
    case["env"].as_object().map_or_else(Vec::new, |vars| {
        vars.iter()
            .map(|(name, value)| (name.clone(), value.as_str().expect("a text").to_owned()))
            .collect()
    })
}

/// Reads `key` as the type the case names; the error, if any.
fn read_as(config: &Config, get: &Value) -> Option<ConfigError> {
    let key = get["key"].as_str().expect("get.key");
    let result = match get["as"].as_str().expect("get.as") {
        "bool" => config.bool(key).map(drop),
        "duration" => config.duration(key).map(drop),
        "socket_addr" => config.socket_addr(key).map(drop),
        "u64" => config.u64(key).map(drop),
        other => panic!("unknown getter {other}"),
    };
    result.err()
}

/// Runs one case; a description of what went wrong, if anything did.
fn run(case: &Value, dir: &Path) -> Result<(), String> {
    let file = file_bytes(case).map(|(name, bytes)| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write the case's file");
        path
    });
    let loaded = Config::load(file.as_deref(), true, env_of(case));
    let expect = &case["expect"];
    let error = match (&case["get"], loaded) {
        (Value::Null, Ok(_)) => return Err("loaded: nothing refused".into()),
        (Value::Null, Err(error)) => error,
        (_, Err(error)) => return Err(format!("the load was refused: {error}")),
        (get, Ok(config)) => read_as(&config, get).ok_or("the value was read")?,
    };
    let text = error.to_string();
    let located = match (&error, file.as_deref()) {
        (ConfigError::EnvSyntax { var, .. }, _) => expect["var"].as_str() == Some(var.as_str()),
        (
            ConfigError::Syntax {
                path, line, column, ..
            },
            Some(file),
        ) => {
            path == file
                && expect["line"].as_u64() == Some(*line as u64)
                && expect["column"].as_u64() == Some(*column as u64)
                && text.starts_with(&format!("{}:{line}:{column}: ", file.display()))
        }
        (ConfigError::Type { .. }, file) => match (expect["var"].as_str(), file) {
            (Some(var), _) => text.starts_with(&format!("environment {var}: ")),
            (None, Some(file)) => text.starts_with(&format!(
                "config file {} line {}: ",
                file.display(),
                expect["line"]
            )),
            (None, None) => false,
        },
        _ => false,
    };
    let message = expect["message"].as_str().unwrap_or_default();
    if located && text.contains(message) {
        Ok(())
    } else {
        Err(format!("refused as {error:?}: {text}"))
    }
}

#[test]
fn every_broken_config_is_refused_naming_where() {
    let text = std::fs::read_to_string(corpus_dir().join("cases.json")).expect("cases.json");
    let corpus: Value = serde_json::from_str(&text).expect("cases.json is JSON");
    let cases = corpus["cases"].as_array().expect("a case list");
    assert!(cases.len() >= 40, "the corpus holds {} cases", cases.len());
    let mut failed = Vec::new();
    for case in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        if let Err(why) = run(case, dir.path()) {
            failed.push(format!("{}: {why}", case["name"]));
        }
    }
    assert!(
        failed.is_empty(),
        "{} cases:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
