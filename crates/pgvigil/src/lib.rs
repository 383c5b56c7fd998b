//! pgvigil: the core of a suite of Nagios/Icinga plugins for PostgreSQL.
//!
//! The plugin binaries are one line each; everything they share lives here:
//! threshold ranges, perfdata, status and output, connection settings,
//! timeouts, and the checks themselves.

pub mod checks;
pub mod cli;
pub mod conninfo;
pub mod databases;
pub mod error;
pub mod filesystem;
pub mod formats;
pub mod handlers;
pub mod logs;
pub mod output;
pub mod perfdata;
pub mod range;
pub mod rates;
pub mod relations;
pub mod session;
pub mod state;
pub mod status;
pub mod threshold;
pub mod timeout;
mod tls;
pub mod units;

pub use cli::{run, Check, Context};
pub use error::Error;
pub use output::CheckResult;
pub use perfdata::PerfData;
pub use session::Session;
pub use status::Status;
pub use threshold::{Thresholds, UnitSpec};
pub use units::Unit;
