//! The jsonlog format (PostgreSQL 15+): one JSON object per line.

use std::borrow::Cow;

use memchr::memmem::Finder;
use once_cell::sync::Lazy;
use serde::Deserialize;

use super::entry::{Entry, Origin, Severity};

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    remote_host: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    error_severity: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    state_code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

fn bytes(text: Cow<'_, str>) -> Cow<'_, [u8]> {
    match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

fn emit(record: Record<'_>, each: &mut dyn FnMut(Entry<'_>)) {
    let Some(severity) = record
        .error_severity
        .as_deref()
        .and_then(|s| Severity::parse(s.as_bytes()))
    else {
        return;
    };
    each(Entry {
        severity,
        sqlstate: record.state_code.map(bytes),
        message: record.message.map(bytes).unwrap_or_default(),
        origin: Origin::Fields {
            user: record.user.map(bytes),
            client: record.remote_host.map(bytes),
        },
    });
}

/// Feeds every complete line's record to `each`; returns the bytes consumed.
pub fn parse(buf: &[u8], each: &mut dyn FnMut(Entry<'_>)) -> usize {
    let mut start = 0;
    while let Some(nl) = memchr::memchr(b'\n', &buf[start..]) {
        let line = &buf[start..start + nl];
        start += nl + 1;
        if !scan(line, each) {
            parse_whole(line, each);
        }
    }
    start
}

// The server writes each record on one line, keys unspaced and never nested,
// so a key is found by its text: `"key":"` cannot occur inside a string value,
// where the quotes would be escaped. Only the values an entry needs are
// decoded, rather than every field of every record.
static SEVERITY: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"\"error_severity\":\""));
static STATE_CODE: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"\"state_code\":\""));
static MESSAGE: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"\"message\":\""));
static USER: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"\"user\":\""));
static REMOTE_HOST: Lazy<Finder<'static>> = Lazy::new(|| Finder::new(b"\"remote_host\":\""));

/// The record on `line` read by its keys; false when it has no severity
/// written as the server writes it, for the full parser to try.
fn scan(line: &[u8], each: &mut dyn FnMut(Entry<'_>)) -> bool {
    let Some(severity) = string_at(line, &SEVERITY) else {
        return false;
    };
    let Some(severity) = Severity::parse(&severity) else {
        return true;
    };
    each(Entry {
        severity,
        sqlstate: string_at(line, &STATE_CODE),
        message: string_at(line, &MESSAGE).unwrap_or_default(),
        origin: Origin::Json(line),
    });
    true
}

/// A field's value as read: borrowed from the line unless it had escapes.
pub type Value<'a> = Option<Cow<'a, [u8]>>;

/// The user and client host of a record, read when an entry needs them.
pub fn user_and_client(line: &[u8]) -> (Value<'_>, Value<'_>) {
    (string_at(line, &USER), string_at(line, &REMOTE_HOST))
}

/// The string value after `key` (which ends with the opening quote),
/// unescaped; None when the key is absent or its value is not a string.
fn string_at<'a>(line: &'a [u8], key: &Finder<'_>) -> Value<'a> {
    let open = key.find(line)? + key.needle().len() - 1;
    let mut at = open + 1;
    let close = loop {
        let quote = memchr::memchr(b'"', &line[at..])? + at;
        let backslashes = line[..quote]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count();
        if backslashes % 2 == 0 {
            break quote;
        }
        at = quote + 1;
    };
    let inner = &line[open + 1..close];
    if memchr::memchr(b'\\', inner).is_none() {
        return Some(Cow::Borrowed(inner));
    }
    let quoted = &line[open..=close];
    let text = serde_json::from_slice::<String>(quoted)
        .or_else(|_| serde_json::from_str::<String>(&String::from_utf8_lossy(quoted)))
        .ok()?;
    Some(Cow::Owned(text.into_bytes()))
}

/// A record the key scan could not read, parsed whole. The server writes
/// messages' bytes as they are, so a line that is not valid UTF-8 is read
/// again with the bad bytes replaced.
fn parse_whole(line: &[u8], each: &mut dyn FnMut(Entry<'_>)) {
    match serde_json::from_slice::<Record>(line) {
        Ok(record) => emit(record, each),
        Err(_) => {
            let text = String::from_utf8_lossy(line);
            if let Ok(record) = serde_json::from_str::<Record>(&text) {
                emit(record, each);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_with_escapes_and_invalid_utf8() {
        let mut log = br#"{"timestamp":"2026-11-25 22:42:30.760 UTC","user":"victim","dbname":"postgres","pid":7915,"remote_host":"[local]","error_severity":"FATAL","state_code":"28P01","message":"password authentication failed for user \"victim\"","detail":"x"}"#.to_vec();
        log.push(b'\n');
        log.extend_from_slice(b"{\"error_severity\":\"ERROR\",\"state_code\":\"22012\",\"message\":\"bad \xff byte\"}\n");
        log.extend_from_slice(b"{\"error_severity\":\"LOG\",\"message\":\"partial");
        let mut found = Vec::new();
        let used = parse(&log, &mut |e| {
            found.push((e.severity, String::from_utf8_lossy(&e.message).into_owned()))
        });
        assert_eq!(
            found,
            vec![
                (
                    Severity::Fatal,
                    "password authentication failed for user \"victim\"".to_string()
                ),
                (Severity::Error, "bad \u{fffd} byte".to_string()),
            ]
        );
        assert!(log[used..].starts_with(b"{\"error_severity\":\"LOG\""));
    }

    #[test]
    fn keys_are_found_by_their_text_and_values_unescaped() {
        // The message quotes a key's text; the severity comes after it; a
        // value carries escapes and a \u sequence; the user is null.
        let log = concat!(
            r#"{"timestamp":"t","user":null,"remote_host":"::1","message":"say \"error_severity\":\"PANIC\" \\ caf\u00e9","state_code":"XX000","error_severity":"ERROR"}"#,
            "\n",
            r#"{"user":"ann","remote_host":"10.0.0.9","error_severity":"FATAL","message":"no"}"#,
            "\n",
            // Spaced as the server never writes it: the full parser reads it.
            r#"{"error_severity": "WARNING", "message": "spaced"}"#,
            "\n",
        );
        let mut found = Vec::new();
        parse(log.as_bytes(), &mut |e| {
            let (user, client) = match &e.origin {
                Origin::Json(line) => {
                    let (u, c) = user_and_client(line);
                    (u.map(|u| u.into_owned()), c.map(|c| c.into_owned()))
                }
                _ => (None, None),
            };
            found.push((
                e.severity,
                e.sqlstate.map(|s| s.into_owned()),
                String::from_utf8_lossy(&e.message).into_owned(),
                user,
                client,
            ))
        });
        assert_eq!(
            found,
            vec![
                (
                    Severity::Error,
                    Some(b"XX000".to_vec()),
                    "say \"error_severity\":\"PANIC\" \\ café".to_string(),
                    None,
                    Some(b"::1".to_vec())
                ),
                (
                    Severity::Fatal,
                    None,
                    "no".to_string(),
                    Some(b"ann".to_vec()),
                    Some(b"10.0.0.9".to_vec())
                ),
                (Severity::Warning, None, "spaced".to_string(), None, None),
            ]
        );
    }
}
