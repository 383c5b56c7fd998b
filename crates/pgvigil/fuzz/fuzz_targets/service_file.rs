//! The connection service file: the first input line names the service,
//! the rest is the file. Its keywords, none, or a usage error naming the
//! line; never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil::conninfo::service;

fuzz_target!(|text: &str| {
    let (name, contents) = text.split_once('\n').unwrap_or((text, ""));
    let _ = service::parse(contents, name, std::path::Path::new("pg_service.conf"));
});
