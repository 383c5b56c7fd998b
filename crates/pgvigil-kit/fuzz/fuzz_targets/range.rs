//! Threshold ranges: never a panic, and every range the guidelines' grammar
//! accepts alerts exactly as the reference reading says.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil_kit::range::Range;
use pgvigil_reference::range as reference;

fuzz_target!(|text: &str| {
    let parsed = Range::parse(text);
    if let Ok(range) = &parsed {
        // What a range prints in perfdata (base units, no suffix) reads back
        // as the same range.
        let back = Range::parse(&range.to_perfdata()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let close = |a: f64, b: f64| a == b || (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(
            close(back.start, range.start)
                && close(back.end, range.end)
                && back.inside == range.inside,
            "{text:?} printed as {}",
            range.to_perfdata()
        );
    }
    let Some((start, tilde, end, at)) = reference::parse(text) else {
        return;
    };
    let range = parsed.unwrap_or_else(|e| panic!("{text:?} refused: {e}"));
    let mut probes = vec![0.0, -0.0, -1.0, 1.0, f64::MAX, f64::MIN];
    for v in [start, end].into_iter().flatten() {
        probes.extend([v, v - 1e-9 * v.abs().max(1.0), v + 1e-9 * v.abs().max(1.0)]);
    }
    for value in probes {
        assert_eq!(
            range.alerts(value),
            reference::alerts(start, tilde, end, at, value),
            "{text:?} with {value}"
        );
    }
});
