//! `-t SECONDS[:STATE]`: a bounded watchdog or a reason, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil_kit::timeout::Timeout;

fuzz_target!(|text: &str| {
    if let Ok(t) = Timeout::parse(text) {
        assert!(t.seconds > 0, "{text:?}");
        let _ = t.duration();
    }
});
