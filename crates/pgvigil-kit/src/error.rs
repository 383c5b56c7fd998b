//! Why a check could not give a verdict, and the state each reason maps to.

use crate::status::Status;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// Bad arguments: UNKNOWN, with a hint to `--help` added by the caller.
    #[error("{0}")]
    Usage(String),
    /// The server is down or refuses us: CRITICAL, the service is not usable.
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    /// The server ended the session mid-check: CRITICAL, as when it refuses us.
    #[error("lost the connection to {target} during the check: {reason}")]
    Lost { target: String, reason: String },
    /// The monitoring role lacks a grant: UNKNOWN naming what is missing.
    #[error("{0}")]
    Privilege(String),
    /// A query failed for another reason: UNKNOWN with the server's message.
    #[error("query failed: {0}")]
    Query(String),
    /// The state directory or file cannot be used: UNKNOWN naming it and why.
    #[error("{0}")]
    State(String),
    /// The check cannot measure here (e.g. disk of a remote server): UNKNOWN.
    #[error("{0}")]
    CannotMeasure(String),
}

impl Error {
    /// The next step this failure calls for, whatever the check.
    pub fn hint(&self, plugin: &str) -> Option<String> {
        Some(match self {
            Error::Usage(_) => format!("fix the command line; {plugin} --help lists every option"),
            Error::Connect { .. } | Error::Lost { .. } => "is the server up and reachable from here? run pg_isready with the same host and port, then read the server log (authentication, max_connections, pg_hba.conf)".into(),
            Error::Privilege(_) => "grant the monitoring role what the message names (pg_monitor covers all but a few checks); no superuser is needed".into(),
            Error::Query(_) => "read the server log around this time for the statement's error, and rerun with -v".into(),
            Error::State(_) => "the state directory must exist and be writable by the user the monitoring daemon runs as (--state-dir, PGVIGIL_STATE_DIR)".into(),
            Error::CannotMeasure(_) => "run this check where it can measure: on the database host, through the local socket".into(),
        })
    }

    pub fn status(&self) -> Status {
        match self {
            Error::Connect { .. } | Error::Lost { .. } => Status::Critical,
            _ => Status::Unknown,
        }
    }
}
