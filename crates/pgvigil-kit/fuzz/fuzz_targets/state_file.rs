//! The state file loader: any bytes on disk are a snapshot or a reason, and
//! a snapshot it accepts is written back and read again unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil_kit::state::{parse, render};

fuzz_target!(|text: &str| {
    if let Ok(snapshot) = parse(text) {
        assert_eq!(parse(&render(&snapshot)), Ok(snapshot), "{text:?}");
    }
});
