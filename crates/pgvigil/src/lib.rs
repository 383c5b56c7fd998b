//! pgvigil: the PostgreSQL side of a suite of Nagios/Icinga plugins. The
//! connection, the session, the checks and their registry; everything that
//! knows no PostgreSQL (ranges, perfdata, output, state) is the kit,
//! re-exported here under the same names.

pub mod check;
pub mod checks;
pub mod conninfo;
pub mod filesystem;
pub mod handlers;
pub mod registry;
pub mod rest;
pub mod runner;
pub mod session;
pub mod setup_check;
mod tls;

pub use pgvigil_kit::{
    error, forecast, formats, judge, logs, output, perfdata, range, rates, state, status,
    threshold, timeout, units, words,
};

pub use error::Error;
pub use output::CheckResult;
pub use perfdata::PerfData;
pub use status::Status;
pub use threshold::{Thresholds, UnitSpec};
pub use units::Unit;
