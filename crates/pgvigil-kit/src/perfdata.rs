//! Performance data: `'label'=value[UOM];[warn];[crit];[min];[max]`.

use std::fmt;

use crate::threshold::Thresholds;
use crate::units::{format_number, Unit};

#[derive(Debug, Clone, PartialEq)]
pub struct PerfData {
    pub label: String,
    pub value: f64,
    pub unit: Unit,
    pub warning: Option<String>,
    pub critical: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl PerfData {
    pub fn new(label: impl Into<String>, value: f64, unit: Unit) -> PerfData {
        PerfData {
            label: label.into(),
            value,
            unit,
            warning: None,
            critical: None,
            min: None,
            max: None,
        }
    }

    /// Counter of events since some reset (`c`), e.g. archived WAL files.
    pub fn counter(label: impl Into<String>, value: f64) -> PerfData {
        PerfData::new(label, value, Unit::Counter)
    }

    pub fn min(mut self, min: f64) -> PerfData {
        self.min = Some(min);
        self
    }

    pub fn max(mut self, max: f64) -> PerfData {
        self.max = Some(max);
        self
    }

    /// Attaches the thresholds given in this value's unit.
    pub fn thresholds(mut self, thresholds: &Thresholds) -> PerfData {
        self.warning = thresholds.warning(self.unit).map(|r| r.to_perfdata());
        self.critical = thresholds.critical(self.unit).map(|r| r.to_perfdata());
        self
    }

    /// The ranges `-w`/`-c` give the measurement named `label`
    /// (`-w rate=64MB`), as this perfdata's warn and crit.
    pub fn thresholds_of(mut self, thresholds: &Thresholds, label: &str) -> PerfData {
        self.warning = thresholds.warning_for(label).map(|r| r.to_perfdata());
        self.critical = thresholds.critical_for(label).map(|r| r.to_perfdata());
        self
    }
}

/// Quotes a label when it holds anything but letters, digits and `_ . - / :`.
/// Labels come from server data (database, slot, application names), so `=`,
/// `|` and control characters become `_`: none may end the label, the
/// perfdata or the line early.
pub fn quote_label(label: &str) -> String {
    let plain = !label.is_empty()
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':'));
    if plain {
        label.to_string()
    } else {
        format!("'{}'", safe_label(label).replace('\'', "''"))
    }
}

/// The label as perfdata carries it: `=`, `|` and control characters as `_`.
pub fn safe_label(label: &str) -> String {
    let unsafe_char = |c: char| c == '=' || c == '|' || c.is_control();
    label
        .chars()
        .map(|c| if unsafe_char(c) { '_' } else { c })
        .collect()
}

impl fmt::Display for PerfData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<f64>| v.map(format_number).unwrap_or_default();
        let fields = [
            self.warning.clone().unwrap_or_default(),
            self.critical.clone().unwrap_or_default(),
            opt(self.min),
            opt(self.max),
        ];
        let used = fields
            .iter()
            .rposition(|s| !s.is_empty())
            .map_or(0, |i| i + 1);
        write!(
            f,
            "{}={}{}",
            quote_label(&self.label),
            format_number(self.value),
            self.unit.uom()
        )?;
        for field in &fields[..used] {
            write!(f, ";{field}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::UnitSpec;

    #[test]
    fn plain_labels_stay_bare_and_others_are_quoted() {
        assert_eq!(quote_label("connections"), "connections");
        assert_eq!(quote_label("locks::waiting"), "locks::waiting");
        assert_eq!(quote_label("standby1 lag_bytes"), "'standby1 lag_bytes'");
        assert_eq!(quote_label("it's"), "'it''s'");
        assert_eq!(quote_label("a=b"), "'a_b'");
        assert_eq!(quote_label(""), "''");
        assert_eq!(quote_label("a|b\nc\u{7f}"), "'a_b_c_'");
    }

    #[test]
    fn full_form_with_thresholds_min_and_max() {
        let spec = UnitSpec {
            accepted: &[Unit::Count],
            bare: Some(Unit::Count),
            labels: &[],
            time_left: false,
        };
        let t = Thresholds::parse(Some("77"), Some("@80:90"), spec).unwrap();
        let p = PerfData::new("connections", 85.0, Unit::Count)
            .thresholds(&t)
            .min(0.0)
            .max(97.0);
        assert_eq!(p.to_string(), "connections=85;77;@80:90;0;97");
    }

    #[test]
    fn trailing_empty_fields_are_dropped_and_units_printed() {
        assert_eq!(
            PerfData::new("lag", 0.5, Unit::Seconds).to_string(),
            "lag=0.5s"
        );
        assert_eq!(
            PerfData::new("used", 1024.0, Unit::Bytes)
                .max(4096.0)
                .to_string(),
            "used=1024B;;;;4096"
        );
        assert_eq!(
            PerfData::new("pct", 12.5, Unit::Percent)
                .min(0.0)
                .max(100.0)
                .to_string(),
            "pct=12.5%;;;0;100"
        );
    }

    #[test]
    fn thresholds_of_another_unit_are_not_attached() {
        let spec = UnitSpec {
            accepted: &[Unit::Bytes, Unit::Seconds],
            bare: None,
            labels: &[],
            time_left: false,
        };
        let t = Thresholds::parse(Some("16MB"), Some("5min"), spec).unwrap();
        assert_eq!(
            PerfData::new("lag_bytes", 1.0, Unit::Bytes)
                .thresholds(&t)
                .to_string(),
            "lag_bytes=1B;16777216"
        );
        assert_eq!(
            PerfData::new("lag_seconds", 2.0, Unit::Seconds)
                .thresholds(&t)
                .to_string(),
            "lag_seconds=2s;;300"
        );
    }
}

/// Rendered perfdata read back by an independent parser of the guidelines'
/// grammar (`'label'=value[UOM];warn;crit;min;max`) gives what was rendered.
#[cfg(test)]
mod round_trip {
    use super::*;
    use pgvigil_reference::perfdata::{number, parse_item};
    use proptest::prelude::*;

    fn unit() -> impl Strategy<Value = Unit> {
        prop_oneof![
            Just(Unit::Count),
            Just(Unit::Percent),
            Just(Unit::Bytes),
            Just(Unit::Seconds),
            Just(Unit::Counter)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        #[test]
        fn what_is_rendered_reads_back(
            label in ".{0,20}",
            value in -1e12f64..1e12,
            unit in unit(),
            min in proptest::option::of(-1e6f64..1e6),
            max in proptest::option::of(-1e6f64..1e6),
        ) {
            let mut p = PerfData::new(label.clone(), value, unit);
            p.min = min;
            p.max = max;
            let text = p.to_string();
            let item = parse_item(&text).expect("parsable");
            prop_assert_eq!(item.label, safe_label(&label));
            prop_assert!((item.value - value).abs() <= 6e-7 + value.abs() * 1e-15, "{} {}", text, value);
            prop_assert_eq!(item.uom, unit.uom());
            if let Some(min) = min {
                prop_assert!((number(item.fields.get(2)).unwrap() - min).abs() <= 6e-7);
            }
            if let Some(max) = max {
                prop_assert!((number(item.fields.get(3)).unwrap() - max).abs() <= 6e-7);
            }
        }
    }
}
