//! Property tests of the three parsers: no input makes them panic or claim
//! more than they were given, and what the server would write comes back
//! entry for entry.

use proptest::prelude::*;

use super::{Format, Severity};

fn parse_all(format: Format, buf: &[u8]) -> (Vec<(Severity, Vec<u8>)>, usize) {
    let mut found = Vec::new();
    let used = format.parse(buf, &mut |e| {
        found.push((e.severity, e.message.into_owned()))
    });
    (found, used)
}

const SEVERITIES: [(&str, Severity); 5] = [
    ("LOG", Severity::Log),
    ("ERROR", Severity::Error),
    ("FATAL", Severity::Fatal),
    ("WARNING", Severity::Warning),
    ("PANIC", Severity::Panic),
];

/// A message as the server writes it: any text, quotes and commas included.
fn message() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,\"'():._=\\\\é-]{0,60}".prop_map(|s| s.trim().to_string())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..2000)) {
        for format in [Format::Stderr, Format::Csvlog, Format::Jsonlog] {
            let (_, used) = parse_all(format, &buf);
            prop_assert!(used <= buf.len());
        }
    }

    #[test]
    fn stderr_entries_come_back(entries in proptest::collection::vec((0..5usize, message(), proptest::option::of(message())), 0..20)) {
        let mut text = String::new();
        for (i, (s, msg, statement)) in entries.iter().enumerate() {
            text.push_str(&format!("2026-11-25 22:42:30.{:03} UTC [{i}] app@db {}:  {msg}\n", i % 1000, SEVERITIES[*s].0));
            if let Some(statement) = statement {
                text.push_str(&format!("2026-11-25 22:42:30.000 UTC [{i}] app@db STATEMENT:  {statement}\n\tmore {statement}\n"));
            }
        }
        let (found, used) = parse_all(Format::Stderr, text.as_bytes());
        prop_assert_eq!(used, text.len());
        let expected: Vec<(Severity, Vec<u8>)> = entries
            .iter()
            .map(|(s, msg, _)| (SEVERITIES[*s].1, msg.as_bytes().to_vec()))
            .collect();
        prop_assert_eq!(found, expected);
    }

    #[test]
    fn csv_records_come_back_and_a_cut_one_waits(entries in proptest::collection::vec((0..5usize, message()), 1..20), cut in 1..40usize) {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let mut text = String::new();
        for (i, (s, msg)) in entries.iter().enumerate() {
            text.push_str(&format!(
                "2026-11-25 22:42:30.000 UTC,{},\"db\",{i},\"[local]\",abc.1,1,\"SELECT\",2026-11-25 22:42:30 UTC,3/1,0,{},00000,{},{},,,,,{},,,\"psql\",\"client backend\",,0\n",
                quote("app"), SEVERITIES[*s].0, quote(msg), quote("detail, with\nnewline"), quote("select 1")
            ));
        }
        let (found, used) = parse_all(Format::Csvlog, text.as_bytes());
        prop_assert_eq!(used, text.len());
        let expected: Vec<(Severity, Vec<u8>)> = entries
            .iter()
            .map(|(s, msg)| (SEVERITIES[*s].1, msg.as_bytes().to_vec()))
            .collect();
        prop_assert_eq!(found.clone(), expected);
        // A record cut short is left whole for the next run.
        let cut_at = text.len().saturating_sub(cut);
        let (partial, used) = parse_all(Format::Csvlog, &text.as_bytes()[..cut_at]);
        prop_assert!(partial.len() < found.len() || cut_at == text.len());
        prop_assert!(used == 0 || text.as_bytes()[used - 1] == b'\n');
    }

    #[test]
    fn json_records_come_back(entries in proptest::collection::vec((0..5usize, message()), 0..20)) {
        let mut text = String::new();
        for (s, msg) in &entries {
            text.push_str(&serde_json::json!({"timestamp": "t", "user": "app", "error_severity": SEVERITIES[*s].0, "message": msg}).to_string());
            text.push('\n');
        }
        let (found, used) = parse_all(Format::Jsonlog, text.as_bytes());
        prop_assert_eq!(used, text.len());
        let expected: Vec<(Severity, Vec<u8>)> = entries
            .iter()
            .map(|(s, msg)| (SEVERITIES[*s].1, msg.as_bytes().to_vec()))
            .collect();
        prop_assert_eq!(found, expected);
    }
}

proptest! {
    /// The fast reading of a duration agrees with parsing the decimal.
    #[test]
    fn durations_read_as_the_decimal(text in "[0-9]{0,18}(\\.[0-9]{0,8})?|[0-9.e+-]{1,12}") {
        let message = format!("duration: {text} ms  statement: SELECT 1");
        let parsed: Option<f64> = text.parse().ok();
        prop_assert_eq!(super::tally::duration_ms(message.as_bytes()), parsed);
    }
}
