//! `-w`/`-c` lists with units and labels, and the size and duration options:
//! a value or a reason, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil_kit::units::{parse_duration_option, parse_quantity, parse_size_option, Unit};
use pgvigil_kit::{Thresholds, UnitSpec};

const SPEC: UnitSpec = UnitSpec {
    accepted: &[Unit::Count, Unit::Percent, Unit::Bytes, Unit::Seconds],
    bare: Some(Unit::Count),
    labels: &["errors", "auth_failures"],
    time_left: false,
};

fuzz_target!(|text: &str| {
    let (warning, critical) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(t) = Thresholds::parse(Some(warning), Some(critical), SPEC) {
        let measured = [
            (Unit::Count, 5.0),
            (Unit::Bytes, 1e9),
            (Unit::Seconds, 30.0),
        ];
        let _ = t.status_labeled(&measured, &[("errors", 3.0)]);
        let _ = t.with_defaults("10", "20", SPEC);
    }
    let _ = parse_quantity(text);
    let _ = parse_size_option(text);
    if let Ok(seconds) = parse_duration_option(text) {
        assert!(seconds.is_finite(), "{text:?} gave {seconds}");
    }
});
