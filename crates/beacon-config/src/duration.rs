use std::time::Duration;

/// Parses an EMQX/HOCON style duration: `10s`, `5m`, `7d`, `1h`, `500ms`, combinations
/// such as `1h 30m` or `1h30m`, and a bare integer meaning milliseconds (as EMQX does).
///
/// The error text names the offending input but not the key; callers add that.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".to_string());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("{text:?} is too large a number of milliseconds"));
    }
    humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration: {e}"))
}
