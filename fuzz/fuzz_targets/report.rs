//! The report parser and validator (`beacon_report::parse`, `Report::validate`) on any
//! bytes. Properties:
//! - a refusal is a typed `ReportError` whose code, field and message agree, with a
//!   message short enough to log;
//! - an accepted report keeps the exact text, validates, and serializes to JSON that parses
//!   back to the same report (and the same JSON again);
//! - the validator agrees with the parser on the report's own JSON, and refuses exactly
//!   the rates that are negative or not finite.
#![no_main]

use beacon_report::{ParsedReport, Report, ReportError, parse};
use libfuzzer_sys::fuzz_target;

/// Paths are at most 32 levels of keys cut at 64 bytes; anything longer is unbounded echo.
const MAX_MESSAGE: usize = 4096;

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(parsed) => accepted(data, &parsed),
        Err(error) => refused(&error),
    }
});

fn accepted(data: &[u8], parsed: &ParsedReport) {
    assert_eq!(
        parsed.raw.as_bytes(),
        data,
        "the raw text is what was received"
    );
    assert_eq!(parsed.format, parsed.report.format());
    let report = &parsed.report;
    if let Err(error) = report.validate() {
        panic!("an accepted report fails validation: {error}");
    }
    let json = report.to_json();
    let again = match parse(json.as_bytes()) {
        Ok(again) => again,
        Err(error) => panic!("the JSON of an accepted report is refused: {error}\n{json}"),
    };
    assert_eq!(&again.report, report, "parse(to_json(report)) differs");
    assert_eq!(again.report.to_json(), json, "to_json is not stable");
    rates_are_checked(report, data);
}

/// Sets both rates to values drawn from the input and checks that `validate` refuses
/// exactly the negative and non-finite ones, and otherwise agrees with `parse`.
fn rates_are_checked(report: &Report, data: &[u8]) {
    let mut report = report.clone();
    let insights = report
        .mqtt_runtime_insights
        .get_or_insert_with(Default::default);
    let rate = f64::from_bits(seed(data));
    insights.messages_sent_rate = Some(rate);
    insights.messages_received_rate = Some(rate.abs());
    let fine = rate.is_finite() && rate >= 0.0;
    match report.validate() {
        Ok(()) => {
            assert!(fine, "rate {rate} accepted");
            let again = parse(report.to_json().as_bytes()).expect("a validated report parses");
            assert_eq!(again.report, report);
        }
        Err(error) if !fine => {
            assert_eq!(
                error.field(),
                Some("mqtt_runtime_insights.messages_sent_rate")
            );
        }
        // Another field can only fail if the original report failed: it did not.
        Err(error) => panic!("rate {rate} refused: {error}"),
    }
}

/// Eight bytes of the input (its last ones), so that the fuzzer steers the rate.
fn seed(data: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let tail = &data[data.len().saturating_sub(8)..];
    bytes[..tail.len()].copy_from_slice(tail);
    u64::from_le_bytes(bytes)
}

fn refused(error: &ReportError) {
    let message = error.to_string();
    assert!(!message.is_empty());
    assert!(
        message.len() <= MAX_MESSAGE,
        "message of {} bytes",
        message.len()
    );
    let with_field = ["MISSING_FIELD", "INVALID_FIELD", "TOO_LONG"];
    match error.field() {
        Some(field) => {
            assert!(with_field.contains(&error.code()));
            assert!(!field.is_empty(), "a field error names its field");
            assert!(message.contains(field), "{message} does not name {field}");
        }
        None => assert!(!with_field.contains(&error.code())),
    }
}
