//! Throwaway PostgreSQL clusters for the integration tests, and a runner for
//! the plugin binaries that reads back what a monitoring system would see.
//!
//! Each cluster lives in its own temp dir with its own port and socket
//! directory. When the tests run as root (CI does), the servers run as an
//! unprivileged user, since PostgreSQL refuses to run as root.

pub mod cluster;
pub mod course;
pub mod daemon;
pub mod patroni;
pub mod plugin;
pub mod small_fs;
mod system;

pub use system::{
    as_server_user, bindir, chown, client_program, free_port, is_root, openssl, output_text,
    run_ok, server_major, temp_dir,
};

pub use cluster::{generated_password, Cluster, ClusterOptions, MONITOR, PLAIN};
pub use course::Course;
pub use plugin::{parse_perfdata, PerfValue, PluginOutput, PluginRun};
pub use small_fs::{df, SmallFs};
