//! Independent readings of the Monitoring Plugins guidelines: a second
//! implementation, kept deliberately plain, that the core's parsers and
//! renderers are checked against by property tests and fuzz targets.

pub mod perfdata;
pub mod range;
