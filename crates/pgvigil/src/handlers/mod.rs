//! Event handlers: opt-in actions a monitoring daemon runs when a service
//! changes state. Unlike the checks they may act on the server.

pub mod connections;
