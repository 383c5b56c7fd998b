//! What the server's log says.

pub mod log;
