//! Copies of the data leaving the primary: standbys, slots, the WAL archive.

pub mod archiver;
pub mod replication_lag;
pub mod replication_slots;
pub mod role;
pub mod subscriptions;
