//! Counters judged over the interval since the previous run.

pub mod checkpoints;
pub mod checksums;
pub mod commit_ratio;
pub mod conflicts;
pub mod deadlocks;
pub mod hit_ratio;
pub mod temp_files;
