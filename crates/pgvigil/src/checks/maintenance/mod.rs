//! What VACUUM, ANALYZE and index upkeep owe: wraparound, dead rows, bloat, indexes.

pub mod bloat;
pub mod indexes;
pub mod vacuum;
pub mod wraparound;
