//! PostgreSQL's server log, read incrementally: the three formats, the
//! counting of what an operator wants to know, and the files followed
//! across rotation.

pub mod csv;
pub mod entry;
pub mod files;
pub mod json;
#[cfg(test)]
mod properties;
pub mod stderr;
pub mod tally;

pub use entry::{Entry, Origin, Severity};

/// The log formats PostgreSQL writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Stderr,
    Csvlog,
    Jsonlog,
}

impl Format {
    /// The extension the logging collector gives each format's files.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Stderr => "log",
            Format::Csvlog => "csv",
            Format::Jsonlog => "json",
        }
    }

    pub fn from_extension(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "log" => Some(Format::Stderr),
            "csv" => Some(Format::Csvlog),
            "json" => Some(Format::Jsonlog),
            _ => None,
        }
    }

    /// Feeds the complete entries at the start of `buf` to `each`; returns
    /// the bytes consumed (what is left is an entry still being written).
    pub fn parse(self, buf: &[u8], each: &mut dyn FnMut(Entry<'_>)) -> usize {
        match self {
            Format::Stderr => stderr::parse(buf, each),
            Format::Csvlog => csv::parse(buf, each),
            Format::Jsonlog => json::parse(buf, each),
        }
    }
}
