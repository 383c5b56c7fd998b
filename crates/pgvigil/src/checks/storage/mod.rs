//! Room on disk and in ranges: the filesystems, the databases' sizes, sequences.

pub mod db_size;
pub mod disk;
pub mod relation_size;
pub mod sequences;
pub mod wal;
