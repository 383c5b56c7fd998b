//! Room on disk: the filesystems and the databases' sizes.

pub mod db_size;
pub mod disk;
