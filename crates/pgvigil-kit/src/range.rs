//! Monitoring Plugins threshold ranges: `[@]start:end`, with unit suffixes.

use crate::units::{format_bound, format_number, parse_quantity, Unit};

/// One threshold range, its ends in the base unit of `unit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub start: f64,
    pub end: f64,
    /// `@` given: alert when the value is inside the range.
    pub inside: bool,
    /// The unit its suffixes named; `None` for bare numbers.
    pub unit: Option<Unit>,
}

impl Range {
    /// Parses one range (`10`, `10:`, `~:10`, `10:20`, `@10:20`, `16MB`, `80%`).
    pub fn parse(text: &str) -> Result<Range, String> {
        let trimmed = text.trim();
        let (inside, body) = match trimmed.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        if body.is_empty() {
            return Err("empty range".into());
        }
        let (start_text, end_text) = match body.split_once(':') {
            Some((s, e)) => (s, e),
            None => ("", body),
        };
        let start = if start_text == "~" {
            Some((f64::NEG_INFINITY, None))
        } else if start_text.is_empty() {
            None
        } else {
            Some(parse_quantity(start_text)?)
        };
        let end = if end_text.is_empty() {
            if !body.contains(':') {
                return Err(format!("'{trimmed}' has no end"));
            }
            None
        } else {
            Some(parse_quantity(end_text)?)
        };
        let start_unit = start.and_then(|(_, u)| u);
        let end_unit = end.and_then(|(_, u)| u);
        let unit = match (start_unit, end_unit) {
            (Some(a), Some(b)) if a != b => {
                return Err(format!(
                    "'{trimmed}' mixes {} and {}",
                    a.describe(),
                    b.describe()
                ))
            }
            (a, b) => a.or(b),
        };
        // A bare end takes the suffix of the other end: `10:20MB` is 10 MB to 20 MB.
        let rescale = |(value, given): (f64, Option<Unit>), other: Option<&str>| {
            if given.is_none() && value.is_finite() {
                if let Some(other) = other {
                    let suffix: String = other
                        .chars()
                        .skip_while(|c| !(c.is_ascii_alphabetic() || *c == '%'))
                        .collect();
                    if !suffix.is_empty() {
                        return parse_quantity(&format!("{}{}", value, suffix)).map(|q| q.0);
                    }
                }
            }
            Ok(value)
        };
        let start = match start {
            Some(q) => rescale(q, Some(end_text))?,
            None => 0.0,
        };
        let end = match end {
            Some(q) => rescale(q, Some(start_text))?,
            None => f64::INFINITY,
        };
        if start > end {
            return Err(format!(
                "start {} is greater than end {}",
                format_number(start),
                format_number(end)
            ));
        }
        Ok(Range {
            start,
            end,
            inside,
            unit,
        })
    }

    /// True when `value` should raise an alert.
    pub fn alerts(&self, value: f64) -> bool {
        let within = self.start <= value && value <= self.end;
        within == self.inside
    }

    /// The range as perfdata writes it, in base units, with values scaled by `factor`.
    pub fn to_perfdata_scaled(&self, factor: f64) -> String {
        let mut out = String::new();
        if self.inside {
            out.push('@');
        }
        let (start, end) = (self.start * factor, self.end * factor);
        if start == f64::NEG_INFINITY {
            out.push_str("~:");
        } else if start != 0.0 || end.is_infinite() {
            out.push_str(&format_bound(start));
            out.push(':');
        }
        if end.is_finite() {
            out.push_str(&format_bound(end));
        }
        out
    }

    /// The range as perfdata writes it, in base units.
    pub fn to_perfdata(&self) -> String {
        self.to_perfdata_scaled(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> Range {
        Range::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn plain_number_alerts_below_zero_or_above_it() {
        let range = r("10");
        assert!(!range.alerts(0.0));
        assert!(!range.alerts(10.0));
        assert!(range.alerts(10.5));
        assert!(range.alerts(-1.0));
    }

    #[test]
    fn open_end_alerts_below_start() {
        let range = r("10:");
        assert!(range.alerts(9.9));
        assert!(!range.alerts(10.0));
        assert!(!range.alerts(1e12));
    }

    #[test]
    fn tilde_start_is_minus_infinity() {
        let range = r("~:10");
        assert!(!range.alerts(-1e9));
        assert!(range.alerts(11.0));
    }

    #[test]
    fn both_ends_are_inclusive() {
        let range = r("10:20");
        assert!(range.alerts(9.0));
        assert!(!range.alerts(10.0));
        assert!(!range.alerts(20.0));
        assert!(range.alerts(21.0));
    }

    #[test]
    fn at_sign_alerts_inside() {
        let range = r("@10:20");
        assert!(range.alerts(10.0));
        assert!(range.alerts(20.0));
        assert!(!range.alerts(9.0));
        assert!(!range.alerts(21.0));
    }

    #[test]
    fn negative_and_fractional_numbers() {
        let range = r("-5.5:-1.25");
        assert!(range.alerts(0.0));
        assert!(!range.alerts(-3.0));
        assert!(range.alerts(-6.0));
    }

    #[test]
    fn units_scale_to_base_units() {
        assert_eq!(r("16MB").end, 16777216.0);
        assert_eq!(r("16MB").unit, Some(Unit::Bytes));
        assert_eq!(r("5min").end, 300.0);
        assert_eq!(r("80%").unit, Some(Unit::Percent));
        let range = r("10:20MB");
        assert_eq!(
            (range.start, range.end),
            (10.0 * 1048576.0, 20.0 * 1048576.0)
        );
    }

    #[test]
    fn malformed_ranges_are_errors() {
        assert!(Range::parse("2:1").unwrap_err().contains("greater than"));
        assert!(Range::parse("abc").is_err());
        assert!(Range::parse("10XB").unwrap_err().contains("unknown unit"));
        assert!(Range::parse("").is_err());
        assert!(Range::parse("@").is_err());
        assert!(Range::parse("10s:20MB").unwrap_err().contains("mixes"));
        assert!(Range::parse("1:2:3").is_err());
    }

    #[test]
    fn perfdata_form_is_in_base_units() {
        assert_eq!(r("16MB").to_perfdata(), "16777216");
        assert_eq!(r("10:").to_perfdata(), "10:");
        assert_eq!(r("~:10").to_perfdata(), "~:10");
        assert_eq!(r("10:20").to_perfdata(), "10:20");
        assert_eq!(r("@10:20").to_perfdata(), "@10:20");
        assert_eq!(r("0:").to_perfdata(), "0:");
        assert_eq!(r("500ms").to_perfdata(), "0.5");
        assert_eq!(r("80%").to_perfdata_scaled(0.97), "77.6");
    }
}

/// Range semantics against a reference written straight from the Monitoring
/// Plugins guidelines, over generated ranges and values.
#[cfg(test)]
mod properties {
    use super::Range;
    use pgvigil_reference::range::alerts as reference;
    use proptest::prelude::*;

    fn number() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-1000i32..1000).prop_map(f64::from),
            (-1000.0f64..1000.0).prop_map(|v| (v * 100.0).round() / 100.0),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn ranges_alert_as_the_guidelines_define(
            start in proptest::option::of(number()),
            tilde in any::<bool>(),
            end in proptest::option::of(number()),
            at in any::<bool>(),
            value in prop_oneof![number(), Just(0.0), Just(-0.0)],
        ) {
            // Only forms the grammar has: `N`, `N:`, `~:N`, `N:M`, `~:`, each with or without @.
            let start_text = if tilde { Some("~".to_string()) } else { start.map(|s| s.to_string()) };
            let text = match (&start_text, end) {
                (None, None) => return Ok(()),
                (None, Some(e)) => e.to_string(),
                (Some(s), None) => format!("{s}:"),
                (Some(s), Some(e)) => format!("{s}:{e}"),
            };
            let text = if at { format!("@{text}") } else { text };
            let (start, end) = (if tilde { None } else { start }, end);
            match Range::parse(&text) {
                Ok(range) => prop_assert_eq!(
                    range.alerts(value),
                    reference(start, tilde, end, at, value),
                    "{} with {}", text, value
                ),
                // Refused only when start is above end, as the guidelines require.
                Err(_) => {
                    let low = if tilde { f64::NEG_INFINITY } else { start.unwrap_or(0.0) };
                    prop_assert!(low > end.unwrap_or(f64::INFINITY), "{} refused", text);
                }
            }
        }

        #[test]
        fn any_text_parses_or_is_refused_without_a_panic(text in ".{0,24}") {
            let _ = Range::parse(&text);
        }
    }
}
