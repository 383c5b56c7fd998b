//! How the server is set up: settings that drifted, roles that hold too much,
//! releases and extensions left behind, a data directory left open.

pub mod pgdata;
pub mod roles;
pub mod settings;
pub mod version;
