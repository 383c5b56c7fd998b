//! The jsonlog format (PostgreSQL 15+): one JSON object per line.

use std::borrow::Cow;

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
/// The server writes messages' bytes as they are, so a line that is not
/// valid UTF-8 is read again with the bad bytes replaced.
pub fn parse(buf: &[u8], each: &mut dyn FnMut(Entry<'_>)) -> usize {
    let mut start = 0;
    while let Some(nl) = memchr::memchr(b'\n', &buf[start..]) {
        let line = &buf[start..start + nl];
        start += nl + 1;
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
    start
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
}
