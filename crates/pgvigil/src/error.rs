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
    pub fn status(&self) -> Status {
        match self {
            Error::Connect { .. } => Status::Critical,
            _ => Status::Unknown,
        }
    }
}
