//! The server and its sessions: alive, connections, locks, long transactions.

pub mod alive;
pub mod connections;
pub mod locks;
pub mod long_running;
pub mod prepared_txns;
