//! The tools beside the server: backups, the connection pooler, the HA manager.

pub mod backup;
pub mod patroni;
pub mod pgbouncer;
