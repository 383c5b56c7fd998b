//! What the log targets share: log_line_prefix values operators use, each
//! compiled once (the log_prefix target fuzzes the prefix itself).

use std::sync::OnceLock;

use pgvigil::logs::stderr::Prefix;

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
