//! Broken files are refused whole, with file:line:column. The truncated inputs are the
//! ones measured in notes/hocon.md, plus a stray `}` the parser alone would accept.

use std::path::Path;

use beacon_config::{Config, ConfigError};

fn syntax_error(text: &str) -> (usize, usize, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("emqx.conf");
    std::fs::write(&path, text).expect("write");
    let err = Config::load(Some(&path), true, Vec::new()).expect_err(text);
    let display = err.to_string();
    match err {
        ConfigError::Syntax {
            path: p,
            line,
            column,
            message,
        } => {
            assert_eq!(p, path, "{text:?}");
            let prefix = format!("{}:{line}:{column}: ", path.display());
            assert!(display.starts_with(&prefix), "{display}");
            (line, column, message, display)
        }
        other => panic!("{text:?}: expected a syntax error, got {other:?}"),
    }
}

#[test]
fn truncated_value_in_block() {
    let (line, column, message, _) = syntax_error("telemetry { enable = fals");
    assert_eq!((line, column), (1, 26));
    assert_eq!(message, "expected }");
}

#[test]
fn missing_closing_brace_on_last_line() {
    let (line, column, message, _) =
        syntax_error("node.name = \"a@b\"\ntelemetry {\n  enable = false\n");
    assert_eq!((line, column), (4, 1));
    assert_eq!(message, "expected }");

    let (line, column, _, _) = syntax_error("telemetry {\n  enable = false");
    assert_eq!((line, column), (2, 17));
}

#[test]
fn unterminated_list() {
    let (line, column, message, _) = syntax_error("a = [1, 2\n");
    assert_eq!((line, column), (2, 1));
    assert_eq!(message, "expected ]");
}

#[test]
fn stray_closing_brace_at_the_end() {
    let (line, column, message, _) = syntax_error("telemetry { enable = false }\n}\n");
    assert_eq!((line, column), (2, 1));
    assert_eq!(message, "unexpected }");
}

#[test]
fn stray_closing_brace_in_the_middle_does_not_drop_the_rest() {
    // Without the guard the parser returns only `a` and silently drops line 3.
    let (line, column, message, _) = syntax_error("a = 1\n}\ntelemetry.enable = false\n");
    assert_eq!((line, column), (2, 1));
    assert_eq!(message, "unexpected }");
}

#[test]
fn stray_closing_bracket_and_mismatch() {
    let (line, column, ..) = syntax_error("a = [1, 2]]\n");
    assert_eq!((line, column), (1, 11));
    let (line, ..) = syntax_error("a {\n  b = [1, 2}\n}\n");
    assert_eq!(line, 2);
}

#[test]
fn from_str_reports_the_given_path() {
    let err = Config::from_str(
        "telemetry {\n enable = false\n",
        Path::new("etc/emqx.conf"),
        Vec::new(),
    )
    .expect_err("truncated");
    assert_eq!(err.to_string(), "etc/emqx.conf:3:1: expected }");
    assert!(matches!(err, ConfigError::Syntax { path, .. } if path == Path::new("etc/emqx.conf")));
}

#[test]
fn other_syntax_errors_have_positions() {
    let (line, column, ..) = syntax_error("a = 1\nb = ]\n");
    assert_eq!((line, column), (2, 5));
    let (line, ..) = syntax_error("a = \"unterminated\n");
    assert_eq!(line, 1);
    let (line, column, ..) = syntax_error("[1, 2]\n");
    assert_eq!((line, column), (1, 1));
}

#[test]
fn include_is_refused_because_included_files_escape_the_checks() {
    let (line, column, message, _) = syntax_error("a = 1\n  include \"extra.conf\"\n");
    assert_eq!((line, column), (2, 3));
    assert!(message.starts_with("include is not supported"), "{message}");
    // The word itself is an ordinary value.
    let config =
        Config::from_str("mode = include\n", Path::new("x.conf"), Vec::new()).expect("value");
    assert_eq!(
        config.string("mode").expect("s").map(|s| s.value),
        Some("include".into())
    );
}

#[test]
fn empty_and_comment_only_files_are_empty_configs() {
    for text in ["", "\n\n", "# only a comment\n// another\n"] {
        let config = Config::from_str(text, Path::new("x.conf"), Vec::new()).expect(text);
        assert_eq!(config.subtree(""), Some(&serde_json::json!({})), "{text:?}");
    }
}
