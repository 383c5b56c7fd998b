//! check_pg_settings' `--expect` values: a number with a unit, read in the
//! setting's own unit (first line the value, second pg_settings.unit, third
//! vartype). A value is finite or refused; the server's own value equals
//! itself; a number given in the setting's own unit is that number.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil::checks::configuration::settings::{parse_number, same_value, Setting};

fuzz_target!(|text: &str| {
    let mut lines = text.splitn(3, '\n');
    let wanted = lines.next().unwrap_or_default();
    let unit = lines.next().unwrap_or_default();
    let vartype = lines.next().unwrap_or_default();
    let parsed = parse_number(wanted, unit);
    if let Ok(value) = parsed {
        assert!(value.is_finite(), "{text:?} gave {value}");
        // A bare number spelled with the setting's own (plain) unit reads
        // the same.
        let bare = !wanted.contains(|c: char| c.is_ascii_alphabetic());
        let plain = parse_number(&format!("1{unit}"), unit) == Ok(1.0);
        if bare && plain && !unit.is_empty() {
            let spelled = format!("{}{unit}", wanted.trim());
            if let Ok(again) = parse_number(&spelled, unit) {
                assert!(
                    (again - value).abs() <= 1e-9 * value.abs().max(1.0),
                    "{spelled:?} in {unit:?}: {again} != {value}"
                );
            }
        }
    }
    // pg_settings prints a value without surrounding blanks.
    let setting = Setting {
        value: wanted.trim().to_string(),
        unit: unit.to_string(),
        vartype: vartype.to_string(),
        ..Setting::default()
    };
    let own = same_value(wanted, &setting);
    match vartype {
        // A number, a boolean or a word is the value it is.
        "real" if parsed.is_ok() && wanted.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
            assert_eq!(own, Ok(true), "{text:?}")
        }
        "enum" | "string" if wanted.trim() == wanted => assert_eq!(own, Ok(true), "{text:?}"),
        "bool" if own.is_ok() => assert_eq!(own, Ok(true), "{text:?}"),
        _ => {}
    }
});
