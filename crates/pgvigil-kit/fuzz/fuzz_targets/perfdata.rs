//! Perfdata round trip: whatever a check measures and however its label
//! reads, the rendered item stays on one line and an independent parser of
//! the guidelines' grammar reads back the same label, value, unit and bounds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil_kit::perfdata::safe_label;
use pgvigil_kit::{PerfData, Unit};
use pgvigil_reference::perfdata::{number, parse_item};

const UNITS: [Unit; 5] = [
    Unit::Count,
    Unit::Percent,
    Unit::Bytes,
    Unit::Seconds,
    Unit::Counter,
];

fuzz_target!(|input: (String, f64, u8, Option<f64>, Option<f64>)| {
    let (label, value, unit, min, max) = input;
    if !value.is_finite() || value.abs() > 1e15 {
        return;
    }
    let unit = UNITS[usize::from(unit) % UNITS.len()];
    let mut p = PerfData::new(label.clone(), value, unit);
    p.min = min.filter(|v| v.is_finite() && v.abs() < 1e15);
    p.max = max.filter(|v| v.is_finite() && v.abs() < 1e15);
    let text = p.to_string();
    assert!(
        !text.contains(|c: char| c.is_control() || c == '|'),
        "{text:?}"
    );
    let item = parse_item(&text).unwrap_or_else(|| panic!("unreadable {text:?}"));
    assert_eq!(item.label, safe_label(&label));
    let close = |a: f64, b: f64| (a - b).abs() <= 6e-7 + b.abs() * 1e-12;
    assert!(close(item.value, value), "{text:?} for {value}");
    assert_eq!(item.uom, unit.uom());
    if let Some(min) = p.min {
        assert!(close(number(item.fields.get(2)).unwrap(), min), "{text:?}");
    }
    if let Some(max) = p.max {
        assert!(close(number(item.fields.get(3)).unwrap(), max), "{text:?}");
    }
});
