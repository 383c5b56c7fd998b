//! check_pg_log's json reader and the tally over it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil_kit::logs::Format;

fuzz_target!(|data: &[u8]| pgvigil_fuzz::read_log(Format::Jsonlog, data));
