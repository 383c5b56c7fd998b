//! How the server is set up: settings that drifted, roles that hold too much.

pub mod roles;
pub mod settings;
