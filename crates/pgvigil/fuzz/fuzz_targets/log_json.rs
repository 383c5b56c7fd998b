//! check_pg_log's json reader and the tally over it: any bytes a log file
//! may hold give entries and counts, never a panic or an endless loop.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil::logs::tally::Tally;
use pgvigil::logs::Format;
use pgvigil_fuzz::prefix;

fuzz_target!(|data: &[u8]| {
    let Some((choice, buf)) = data.split_first() else {
        return;
    };
    let mut tally = Tally::new(100.0);
    let prefix = prefix(*choice);
    let used = Format::Jsonlog.parse(buf, &mut |entry| tally.add(&entry, prefix));
    assert!(used <= buf.len());
    assert!(tally.count("errors") <= tally.count("lines"));
});
