//! How the server is set up: settings that drifted, roles that hold too much,
//! releases and extensions left behind.

pub mod roles;
pub mod settings;
pub mod version;
