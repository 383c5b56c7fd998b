//! What the new entries add up to: the counts the plugin judges and prints,
//! and, for the long output, the most frequent errors (normalized), failed
//! logins by user and client, the slowest statements and the busiest clients.

use std::collections::HashMap;

use memchr::memmem;
use once_cell::sync::Lazy;

use super::entry::{Entry, Origin, Severity};
use super::stderr::Prefix;

/// The perfdata labels, in the order they are printed.
pub const LABELS: [&str; 11] = [
    "lines",
    "errors",
    "fatals",
    "panics",
    "warnings",
    "auth_failures",
    "slow_statements",
    "deadlocks",
    "lock_waits",
    "temp_files",
    "checkpoint_warnings",
];

/// Distinct messages, logins and clients kept: a flood of unique texts must
/// not grow the plugin's memory without bound.
const MAX_DISTINCT: usize = 10_000;
const SLOWEST_KEPT: usize = 10;

#[derive(Debug, Clone, Default)]
pub struct Tally {
    counts: [u64; LABELS.len()],
    pub messages: HashMap<String, u64>,
    pub logins: HashMap<(String, String), u64>,
    pub clients: HashMap<String, u64>,
    /// Slowest first: duration in ms and the statement, normalized.
    pub slowest: Vec<(f64, String)>,
    /// `--slow` in milliseconds.
    slow_ms: f64,
}

// Their indices, so the per-entry counting compares no strings.
const LINES: usize = 0;
const ERRORS: usize = 1;
const FATALS: usize = 2;
const PANICS: usize = 3;
const WARNINGS: usize = 4;
const AUTH_FAILURES: usize = 5;
const SLOW_STATEMENTS: usize = 6;
const DEADLOCKS: usize = 7;
const LOCK_WAITS: usize = 8;
const TEMP_FILES: usize = 9;
const CHECKPOINT_WARNINGS: usize = 10;

fn index(label: &str) -> usize {
    LABELS
        .iter()
        .position(|l| *l == label)
        .expect("known label")
}

impl Tally {
    pub fn new(slow_ms: f64) -> Tally {
        Tally {
            slow_ms,
            ..Tally::default()
        }
    }

    pub fn count(&self, label: &str) -> u64 {
        self.counts[index(label)]
    }

    fn bump(&mut self, at: usize) {
        self.counts[at] += 1;
    }

    pub fn add(&mut self, entry: &Entry<'_>, prefix: &Prefix) {
        self.bump(LINES);
        let message = &entry.message[..];
        let sqlstate = entry.sqlstate.as_deref();
        match entry.severity {
            Severity::Error => self.bump(ERRORS),
            Severity::Fatal => self.bump(FATALS),
            Severity::Panic => self.bump(PANICS),
            Severity::Warning => self.bump(WARNINGS),
            _ => {}
        }
        if matches!(
            entry.severity,
            Severity::Error | Severity::Fatal | Severity::Panic
        ) {
            bounded_bump(&mut self.messages, normalize(message));
        }
        if is_auth_failure(entry.severity, sqlstate, message) {
            self.bump(AUTH_FAILURES);
            let (user, client) = user_and_client(entry, prefix);
            let user = user
                .or_else(|| quoted_after(message, b"for user \""))
                .unwrap_or_default();
            let client = client.unwrap_or_else(|| "local or unlogged".into());
            bounded_bump(&mut self.logins, (user, client));
        }
        if sqlstate == Some(b"40P01") || starts(message, b"deadlock detected") {
            self.bump(DEADLOCKS);
        }
        if let Some(ms) = duration_ms(message) {
            if ms >= self.slow_ms {
                self.bump(SLOW_STATEMENTS);
                self.keep_slow(ms, message);
            }
        }
        if entry.severity == Severity::Log {
            // "process N still waiting for ShareLock on ... after 1000.123 ms"
            if starts(message, b"process ") && LOCK_WAIT.find(message).is_some() {
                self.bump(LOCK_WAITS);
            } else if starts(message, b"temporary file: ") {
                self.bump(TEMP_FILES);
            } else if starts(message, b"connection received: host=") {
                let host = &message[b"connection received: host=".len()..];
                let end = host.iter().position(|b| *b == b' ').unwrap_or(host.len());
                bounded_bump(&mut self.clients, lossy(&host[..end]));
            }
        }
        if entry.severity == Severity::Log
            && starts(message, b"checkpoints are occurring too frequently")
        {
            self.bump(CHECKPOINT_WARNINGS);
        }
    }

    fn keep_slow(&mut self, ms: f64, message: &[u8]) {
        if self.slowest.len() == SLOWEST_KEPT && self.slowest[SLOWEST_KEPT - 1].0 >= ms {
            return;
        }
        let statement = statement_of(message);
        self.slowest.push((ms, normalize(statement)));
        self.slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
        self.slowest.truncate(SLOWEST_KEPT);
    }
}

// Built once: building a searcher per entry cost more than the search.
static LOCK_WAIT: Lazy<memmem::Finder<'static>> =
    Lazy::new(|| memmem::Finder::new(b" still waiting for "));

fn bounded_bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u64>, key: K) {
    let len = map.len();
    match map.get_mut(&key) {
        Some(n) => *n += 1,
        None if len < MAX_DISTINCT => {
            map.insert(key, 1);
        }
        None => {}
    }
}

fn starts(message: &[u8], what: &[u8]) -> bool {
    message.starts_with(what)
}

fn contains(message: &[u8], what: &[u8]) -> bool {
    memmem::find(message, what).is_some()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// SQLSTATE 28P01 (wrong password) or 28000 (no or rejecting pg_hba.conf
/// entry, unknown role, failed ident/peer/LDAP/certificate), or the messages
/// those come with where the format carries no SQLSTATE.
fn is_auth_failure(severity: Severity, sqlstate: Option<&[u8]>, message: &[u8]) -> bool {
    if severity != Severity::Fatal {
        return false;
    }
    if let Some(state) = sqlstate {
        return state == b"28P01" || state == b"28000";
    }
    contains(message, b"authentication failed for user")
        || starts(message, b"no pg_hba.conf entry for")
        || starts(message, b"pg_hba.conf rejects connection")
        || (starts(message, b"role \"") && contains(message, b"\" does not exist"))
        || contains(message, b"is not permitted to log in")
}

fn user_and_client(entry: &Entry<'_>, prefix: &Prefix) -> (Option<String>, Option<String>) {
    match &entry.origin {
        Origin::Prefix(p) => {
            let (user, client) = prefix.user_and_client(p);
            (user.map(lossy), client.map(lossy))
        }
        Origin::Fields { user, client } => {
            (user.as_deref().map(lossy), client.as_deref().map(lossy))
        }
        Origin::Json(line) => {
            let (user, client) = super::json::user_and_client(line);
            (user.as_deref().map(lossy), client.as_deref().map(lossy))
        }
    }
}

/// `x` in `... for user "x"`.
fn quoted_after(message: &[u8], marker: &[u8]) -> Option<String> {
    let at = memmem::find(message, marker)? + marker.len();
    let end = memchr::memchr(b'"', &message[at..])?;
    Some(lossy(&message[at..at + end]))
}

/// The milliseconds of a `duration: 12.345 ms` entry.
/// Exact in an f64, each of them.
const POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

pub fn duration_ms(message: &[u8]) -> Option<f64> {
    let rest = message.strip_prefix(b"duration: ")?;
    // The server writes `%.3f`: digits, a point, three digits, a space. As
    // an integer over a power of ten, both exact below 2^53, one division
    // rounds as parsing the decimal would; four times as fast on a log
    // where most entries are durations.
    let mut digits = 0u64;
    let mut count = 0;
    let mut fraction = None;
    for (i, b) in rest.iter().enumerate() {
        match b {
            b'0'..=b'9' if count < 15 => {
                digits = digits * 10 + u64::from(b - b'0');
                count += 1;
                fraction = fraction.map(|f: usize| f + 1);
            }
            b'.' if fraction.is_none() && count > 0 => fraction = Some(0),
            b' ' if count > 0 && fraction != Some(0) => {
                return Some(digits as f64 / POWERS_OF_TEN[fraction.unwrap_or(0)]);
            }
            _ => {
                let end = i + memchr::memchr(b' ', &rest[i..])?;
                return std::str::from_utf8(&rest[..end]).ok()?.parse().ok();
            }
        }
    }
    None
}

/// The statement of a duration entry: after `statement: ` or `execute NAME: `.
fn statement_of(message: &[u8]) -> &[u8] {
    for marker in [
        &b"  statement: "[..],
        b"  execute ",
        b"  parse ",
        b"  bind ",
    ] {
        if let Some(at) = memmem::find(message, marker) {
            let rest = &message[at + marker.len()..];
            if marker == b"  statement: " {
                return rest;
            }
            return memmem::find(rest, b": ").map_or(rest, |p| &rest[p + 2..]);
        }
    }
    message
}

/// A message or statement with its particulars replaced, so that the same
/// error about different rows counts as one: numbers become `N`, quoted
/// literals and identifiers `'?'` and `"?"`, runs of white space one space.
pub fn normalize(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let mut out = String::with_capacity(text.len().min(200));
    let mut chars = text.chars().peekable();
    let mut last_space = false;
    while let Some(c) = chars.next() {
        if out.len() > 200 {
            out.push('…');
            break;
        }
        match c {
            '\'' | '"' => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
                out.push(c);
                out.push('?');
                out.push(c);
                last_space = false;
            }
            c if c.is_ascii_digit()
                && !out.ends_with(|p: char| p.is_alphanumeric() || p == '_') =>
            {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_digit() || *d == '.')
                {
                    chars.next();
                }
                out.push('N');
                last_space = false;
            }
            c if c.is_whitespace() => {
                if !last_space && !out.is_empty() {
                    out.push(' ');
                }
                last_space = true;
            }
            c => {
                out.push(c);
                last_space = false;
            }
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizing_folds_particulars() {
        assert_eq!(
            normalize(b"duplicate key value violates unique constraint \"orders_pkey\""),
            "duplicate key value violates unique constraint \"?\""
        );
        assert_eq!(
            normalize(b"select * from t where id = 42 and name = 'bob'\n\t  limit 10"),
            "select * from t where id = N and name = '?' limit N"
        );
        assert_eq!(
            normalize(b"relation t2 does not exist"),
            "relation t2 does not exist"
        );
    }

    #[test]
    fn the_indices_name_their_labels() {
        for (at, label) in [
            (LINES, "lines"),
            (ERRORS, "errors"),
            (FATALS, "fatals"),
            (PANICS, "panics"),
            (WARNINGS, "warnings"),
            (AUTH_FAILURES, "auth_failures"),
            (SLOW_STATEMENTS, "slow_statements"),
            (DEADLOCKS, "deadlocks"),
            (LOCK_WAITS, "lock_waits"),
            (TEMP_FILES, "temp_files"),
            (CHECKPOINT_WARNINGS, "checkpoint_warnings"),
        ] {
            assert_eq!(LABELS[at], label);
        }
    }

    #[test]
    fn durations_and_statements() {
        let m = b"duration: 201.817 ms  statement: select pg_sleep(0.2)";
        assert_eq!(duration_ms(m), Some(201.817));
        assert_eq!(statement_of(m), b"select pg_sleep(0.2)");
        let m = b"duration: 3.5 ms  execute S_1: select 1";
        assert_eq!(statement_of(m), b"select 1");
        assert_eq!(duration_ms(b"connection authorized"), None);
    }
}
