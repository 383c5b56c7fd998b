//! What the log targets share: log_line_prefix values operators use, each
//! compiled once (the log_prefix target fuzzes the prefix itself), and the
//! run of one reader and the tally over arbitrary bytes.

use std::sync::OnceLock;

use pgvigil_kit::logs::stderr::Prefix;
use pgvigil_kit::logs::tally::Tally;
use pgvigil_kit::logs::Format;

const PREFIXES: [&str; 6] = [
    "%m [%p] %q%u@%d ",
    "%m [%p] ",
    "%t [%p]: user=%u,db=%d,app=%a,client=%h ",
    "%m %r %-10u ",
    "%t [%p-%l] %q%u@%d %h ",
    "",
];

pub fn prefix(choice: u8) -> &'static Prefix {
    static COMPILED: OnceLock<Vec<Prefix>> = OnceLock::new();
    let all = COMPILED.get_or_init(|| PREFIXES.iter().map(|p| Prefix::new(p)).collect());
    &all[usize::from(choice) % all.len()]
}

/// The first byte picks a prefix; the rest is what a log file may hold. Any
/// bytes give entries and counts, never a panic or an endless loop.
pub fn read_log(format: Format, data: &[u8]) {
    let Some((choice, buf)) = data.split_first() else {
        return;
    };
    let mut tally = Tally::new(100.0);
    let prefix = prefix(*choice);
    let used = format.parse(buf, &mut |entry| tally.add(&entry, prefix));
    assert!(used <= buf.len());
    assert!(tally.count("errors") <= tally.count("lines"));
}
