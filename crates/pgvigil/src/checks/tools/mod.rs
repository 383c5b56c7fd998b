//! The tools beside the server: backups and the connection pooler.

pub mod backup;
pub mod pgbouncer;
