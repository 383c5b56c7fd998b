//! One log entry as the three formats give it, borrowed from the read buffer.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Debug,
    Log,
    Info,
    Notice,
    Warning,
    Error,
    Fatal,
    Panic,
}

impl Severity {
    pub fn parse(word: &[u8]) -> Option<Severity> {
        Some(match word {
            b"LOG" => Severity::Log,
            b"ERROR" => Severity::Error,
            b"FATAL" => Severity::Fatal,
            b"WARNING" => Severity::Warning,
            b"PANIC" => Severity::Panic,
            b"INFO" => Severity::Info,
            b"NOTICE" => Severity::Notice,
            b"DEBUG" | b"DEBUG1" | b"DEBUG2" | b"DEBUG3" | b"DEBUG4" | b"DEBUG5" => Severity::Debug,
            _ => return None,
        })
    }
}

/// Where the user and client of an entry come from: a stderr line's prefix
/// (matched only when an entry needs them), or the record's own fields.
#[derive(Debug, Clone)]
pub enum Origin<'a> {
    Prefix(&'a [u8]),
    Fields {
        user: Option<Cow<'a, [u8]>>,
        /// The host alone, as each format's reader finds it.
        client: Option<Cow<'a, [u8]>>,
    },
    /// A jsonlog record's line, its fields read when an entry needs them.
    Json(&'a [u8]),
}

#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub severity: Severity,
    /// SQLSTATE where the format carries it (csvlog, jsonlog).
    pub sqlstate: Option<Cow<'a, [u8]>>,
    /// The primary message; for stderr with its continuation lines.
    pub message: Cow<'a, [u8]>,
    pub origin: Origin<'a>,
}
