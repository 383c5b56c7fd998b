//! log_line_prefix as the server reports it, turned into the pattern that
//! finds the user and client of each stderr line: any prefix gives a valid
//! pattern (a repeated %u once gave two groups of one name, and a panic).
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil_kit::logs::stderr::pattern;

fuzz_target!(|prefix: &str| {
    let pattern = pattern(prefix);
    // The syntax check is what the regex crate compiles first; compiling
    // itself is the regex crate's work, and a hundred times slower.
    if let Err(e) = regex_syntax::Parser::new().parse(&pattern) {
        panic!("{prefix:?} gave {pattern:?}: {e}");
    }
});
