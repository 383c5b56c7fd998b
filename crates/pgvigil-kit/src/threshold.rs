//! Warning and critical thresholds of a check: ranges keyed by the unit they
//! apply to, so `-w 16MB,30s` sets one limit on bytes and one on seconds.

use crate::error::Error;
use crate::range::Range;
use crate::status::Status;
use crate::units::Unit;

/// Which units a check's thresholds may use, and what a bare number means.
#[derive(Debug, Clone, Copy)]
pub struct UnitSpec {
    pub accepted: &'static [Unit],
    /// The unit of a bare number; `None` makes a unit mandatory.
    pub bare: Option<Unit>,
    /// Measurements a range may name, as in `-w errors=50,auth_failures=3`.
    pub labels: &'static [&'static str],
    /// A duration is the time left before something runs out (a forecast),
    /// so its ranges must be lower bounds: `7d:` alerts when less than
    /// seven days are left, where a bare `7d` would alert beyond seven.
    pub time_left: bool,
}

impl UnitSpec {
    /// Ranges in these units, a bare number in `bare` (None: a unit is
    /// needed), no named measurements, no time left.
    pub const fn of(accepted: &'static [Unit], bare: Option<Unit>) -> UnitSpec {
        UnitSpec {
            accepted,
            bare,
            labels: &[],
            time_left: false,
        }
    }

    /// The same, with measurements a range may name (`rate=64MB`).
    pub const fn with_labels(self, labels: &'static [&'static str]) -> UnitSpec {
        UnitSpec { labels, ..self }
    }

    /// The same, a duration being the time left before something runs out.
    pub const fn with_time_left(self) -> UnitSpec {
        UnitSpec {
            time_left: true,
            ..self
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Thresholds {
    warning: Vec<(Key, Range)>,
    critical: Vec<(Key, Range)>,
}

/// What a range applies to: every measurement in a unit, or one by name.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Unit(Unit),
    Label(String),
}

impl Thresholds {
    /// Parses `-w`/`-c` texts; each may list ranges separated by commas.
    pub fn parse(
        warning: Option<&str>,
        critical: Option<&str>,
        spec: UnitSpec,
    ) -> Result<Thresholds, Error> {
        Ok(Thresholds {
            warning: parse_list("-w/--warning", warning, spec)?,
            critical: parse_list("-c/--critical", critical, spec)?,
        })
    }

    /// The state for a set of measurements of one object: each range judges
    /// the measurement in its unit.
    pub fn status(&self, measured: &[(Unit, f64)]) -> Status {
        self.status_labeled(measured, &[])
    }

    /// The state for measurements in units and measurements by name; a
    /// named range judges only the measurement of that name.
    pub fn status_labeled(&self, measured: &[(Unit, f64)], named: &[(&str, f64)]) -> Status {
        let alerts = |ranges: &[(Key, Range)]| {
            ranges.iter().any(|(key, range)| match key {
                Key::Unit(unit) => measured
                    .iter()
                    .any(|(u, value)| u == unit && range.alerts(*value)),
                Key::Label(label) => named
                    .iter()
                    .any(|(l, value)| l == label && range.alerts(*value)),
            })
        };
        if alerts(&self.critical) {
            Status::Critical
        } else if alerts(&self.warning) {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    pub fn warning(&self, unit: Unit) -> Option<&Range> {
        find(&self.warning, &Key::Unit(unit))
    }

    pub fn critical(&self, unit: Unit) -> Option<&Range> {
        find(&self.critical, &Key::Unit(unit))
    }

    /// The warning range given for the measurement named `label`.
    pub fn warning_for(&self, label: &str) -> Option<&Range> {
        find(&self.warning, &Key::Label(label.to_string()))
    }

    pub fn critical_for(&self, label: &str) -> Option<&Range> {
        find(&self.critical, &Key::Label(label.to_string()))
    }

    /// True when any threshold was given in `unit`.
    pub fn uses(&self, unit: Unit) -> bool {
        self.warning(unit).is_some() || self.critical(unit).is_some()
    }

    /// Fills in a default for an option the user left out.
    /// An empty default leaves that option without one.
    pub fn with_defaults(mut self, warning: &str, critical: &str, spec: UnitSpec) -> Self {
        if self.warning.is_empty() && !warning.is_empty() {
            self.warning = parse_list("-w", Some(warning), spec).expect("valid default");
        }
        if self.critical.is_empty() && !critical.is_empty() {
            self.critical = parse_list("-c", Some(critical), spec).expect("valid default");
        }
        self
    }
}

fn find<'a>(ranges: &'a [(Key, Range)], key: &Key) -> Option<&'a Range> {
    ranges.iter().find(|(k, _)| k == key).map(|(_, r)| r)
}

fn parse_list(
    option: &str,
    text: Option<&str>,
    spec: UnitSpec,
) -> Result<Vec<(Key, Range)>, Error> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let bad = |why: String| Error::Usage(format!("invalid {option} '{text}': {why}"));
    if spec.accepted.is_empty() && spec.labels.is_empty() {
        return Err(bad("this check takes no thresholds of its own".into()));
    }
    let mut ranges: Vec<(Key, Range)> = Vec::new();
    for item in text.split(',') {
        if let Some((label, range_text)) = item.split_once('=') {
            let label = label.trim();
            if !spec.labels.contains(&label) {
                return Err(bad(if spec.labels.is_empty() {
                    format!("'{label}=' names a measurement, which this check does not take")
                } else {
                    format!(
                        "unknown measurement '{label}' (known: {})",
                        spec.labels.join(", ")
                    )
                }));
            }
            let key = Key::Label(label.to_string());
            if ranges.iter().any(|(k, _)| *k == key) {
                return Err(bad(format!("gives two ranges for {label}")));
            }
            ranges.push((key, Range::parse(range_text).map_err(bad)?));
            continue;
        }
        let range = Range::parse(item).map_err(bad)?;
        let unit = match range.unit.or(spec.bare) {
            Some(unit) => unit,
            None => {
                return Err(bad(format!(
                    "'{}' needs a unit: {}",
                    item.trim(),
                    describe(spec.accepted)
                )))
            }
        };
        if !spec.accepted.contains(&unit) {
            return Err(bad(format!(
                "{} is not accepted here; use {}",
                unit.describe(),
                describe(spec.accepted)
            )));
        }
        if ranges.iter().any(|(k, _)| *k == Key::Unit(unit)) {
            return Err(bad(format!("gives two ranges in {}", unit.describe())));
        }
        if spec.time_left
            && unit == Unit::Seconds
            && (range.inside || range.end.is_finite() || range.start <= 0.0)
        {
            let body = item.trim().trim_start_matches('@');
            let t = match body.split_once(':') {
                Some(("" | "~", end)) => end,
                Some((start, _)) => start,
                None => body,
            };
            return Err(bad(format!(
                "a duration here is the time left, which alerts when it falls below a bound: write '{t}:' (less than {t} left)"
            )));
        }
        ranges.push((Key::Unit(unit), range));
    }
    Ok(ranges)
}

fn describe(units: &[Unit]) -> String {
    units
        .iter()
        .map(|u| u.describe())
        .collect::<Vec<_>>()
        .join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: UnitSpec = UnitSpec {
        accepted: &[Unit::Bytes, Unit::Seconds],
        bare: None,
        labels: &[],
        time_left: false,
    };
    const CONNECTIONS: UnitSpec = UnitSpec {
        accepted: &[Unit::Count, Unit::Percent],
        bare: Some(Unit::Count),
        labels: &[],
        time_left: false,
    };

    const FILLING: UnitSpec = UnitSpec {
        accepted: &[Unit::Percent, Unit::Seconds],
        bare: Some(Unit::Percent),
        labels: &[],
        time_left: true,
    };

    #[test]
    fn time_left_takes_lower_bounds_only() {
        let t = Thresholds::parse(Some("80%,7d:"), Some("90%,1d:"), FILLING).unwrap();
        let left = |s: f64| [(Unit::Percent, 10.0), (Unit::Seconds, s)];
        assert_eq!(t.status(&left(8.0 * 86400.0)), Status::Ok);
        assert_eq!(t.status(&left(2.0 * 86400.0)), Status::Warning);
        assert_eq!(t.status(&left(3600.0)), Status::Critical);
        // No forecast yet: nothing in seconds, nothing judged.
        assert_eq!(t.status(&[(Unit::Percent, 10.0)]), Status::Ok);
        for bad in ["7d", "1d:7d", "@7d:", "~:7d"] {
            let e = Thresholds::parse(Some(bad), None, FILLING).unwrap_err();
            assert!(e.to_string().contains("time left"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_unit_decides_what_a_range_applies_to() {
        let t = Thresholds::parse(Some("16MB,30s"), Some("1GB,5min"), LAG).unwrap();
        let bytes = |b: f64| [(Unit::Bytes, b), (Unit::Seconds, 0.0)];
        assert_eq!(t.status(&bytes(1.0)), Status::Ok);
        assert_eq!(t.status(&bytes(17.0 * 1048576.0)), Status::Warning);
        assert_eq!(t.status(&bytes(2.0 * 1073741824.0)), Status::Critical);
        assert_eq!(
            t.status(&[(Unit::Bytes, 0.0), (Unit::Seconds, 31.0)]),
            Status::Warning
        );
        assert_eq!(t.warning(Unit::Seconds).unwrap().end, 30.0);
    }

    #[test]
    fn only_one_unit_may_be_given() {
        let t = Thresholds::parse(Some("30s"), None, LAG).unwrap();
        assert_eq!(
            t.status(&[(Unit::Bytes, 1e12), (Unit::Seconds, 1.0)]),
            Status::Ok
        );
        assert!(!t.uses(Unit::Bytes));
    }

    #[test]
    fn bare_numbers_take_the_default_unit_or_are_refused() {
        let t = Thresholds::parse(Some("80"), Some("90%"), CONNECTIONS).unwrap();
        assert!(t.warning(Unit::Count).is_some());
        assert!(t.critical(Unit::Percent).is_some());
        let err = Thresholds::parse(Some("100"), None, LAG).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid -w/--warning '100': '100' needs a unit: a size (B, kB, MB, GB, TB) or a duration (ms, s, min, h, d)"
        );
    }

    #[test]
    fn errors_name_the_option_and_the_text() {
        let err = Thresholds::parse(None, Some("2:1"), CONNECTIONS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid -c/--critical '2:1': start 2 is greater than end 1"
        );
        let err = Thresholds::parse(Some("10MB"), None, CONNECTIONS).unwrap_err();
        assert!(err.to_string().contains("is not accepted here"), "{err}");
        let err = Thresholds::parse(Some("1MB,2MB"), None, LAG).unwrap_err();
        assert!(err.to_string().contains("two ranges"), "{err}");
    }

    #[test]
    fn critical_wins_over_warning() {
        let t = Thresholds::parse(Some("5"), Some("10"), CONNECTIONS).unwrap();
        assert_eq!(t.status(&[(Unit::Count, 11.0)]), Status::Critical);
        assert_eq!(t.status(&[(Unit::Count, 6.0)]), Status::Warning);
        assert_eq!(t.status(&[(Unit::Count, 5.0)]), Status::Ok);
    }

    #[test]
    fn ranges_may_name_a_measurement() {
        const LOG: UnitSpec = UnitSpec {
            accepted: &[Unit::Count],
            bare: Some(Unit::Count),
            labels: &["errors", "auth_failures"],
            time_left: false,
        };
        let t = Thresholds::parse(Some("errors=50,auth_failures=3"), Some("500"), LOG).unwrap();
        let judge = |errors: f64, auth: f64| {
            t.status_labeled(
                &[(Unit::Count, errors)],
                &[("errors", errors), ("auth_failures", auth)],
            )
        };
        assert_eq!(judge(10.0, 3.0), Status::Ok);
        assert_eq!(judge(10.0, 4.0), Status::Warning);
        assert_eq!(judge(51.0, 0.0), Status::Warning);
        assert_eq!(judge(501.0, 0.0), Status::Critical);
        assert_eq!(t.warning_for("auth_failures").unwrap().end, 3.0);
        let err = Thresholds::parse(Some("fatal=1"), None, LOG).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown measurement 'fatal' (known: errors, auth_failures)"),
            "{err}"
        );
        let err = Thresholds::parse(Some("errors=1"), None, CONNECTIONS).unwrap_err();
        assert!(err.to_string().contains("does not take"), "{err}");
    }
}
