//! The checks, grouped by what they watch. Each reads as fetch (the measured
//! values, from SQL, files or a console), then judge (a pure function of
//! those values, the thresholds and the options), then report; what several
//! share is in `common`.

pub mod common;
pub mod configuration;
pub mod health;
pub mod logs;
pub mod maintenance;
pub mod query;
pub mod rates;
pub mod replication;
pub mod sessions;
pub mod storage;
pub mod tools;

#[cfg(test)]
pub(crate) mod testing;
