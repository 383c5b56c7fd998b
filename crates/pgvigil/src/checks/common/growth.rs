//! Growth per day of what a storage check sizes (a database, a relation):
//! its size now against the size the previous run kept, over the real
//! interval between them, judged by `--growth` and `--growth-critical`.

use pgvigil_kit::range::Range;
use pgvigil_kit::rates::{Interval, Rates};
use pgvigil_kit::units::{pretty_bytes, pretty_duration, round_to};
use pgvigil_kit::{PerfData, Status, Unit};

#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Growth")]
pub struct GrowthArgs {
    /// WARNING when one's growth per day (a size, e.g. 1GB) is outside this range
    #[arg(long, value_name = "RANGE", value_parser = parse_growth, allow_hyphen_values = true)]
    pub growth: Option<Range>,
    /// CRITICAL when one's growth per day is outside this range
    #[arg(long, value_name = "RANGE", value_parser = parse_growth, allow_hyphen_values = true)]
    pub growth_critical: Option<Range>,
    /// Shortest interval growth is measured over: sizes from a more recent run are not compared
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = pgvigil_kit::units::parse_duration_option)]
    pub growth_interval: f64,
}

/// A growth range: a size per day, or a bare number of bytes.
pub fn parse_growth(text: &str) -> Result<Range, String> {
    let range = Range::parse(text)?;
    match range.unit {
        None | Some(Unit::Bytes) => Ok(range),
        Some(_) => Err(format!(
            "'{text}' is not a size per day (B, kB, MB, GB, TB)"
        )),
    }
}

impl GrowthArgs {
    /// `status` raised by the growth ranges, when the growth is known.
    pub fn judge(&self, per_day: Option<f64>, status: Status) -> Status {
        let Some(growth) = per_day else {
            return status;
        };
        if self
            .growth_critical
            .as_ref()
            .is_some_and(|r| r.alerts(growth))
        {
            Status::Critical
        } else if self.growth.as_ref().is_some_and(|r| r.alerts(growth)) {
            status.worst(Status::Warning)
        } else {
            status
        }
    }

    /// `label=…B;warn;crit` for a growth per day.
    pub fn perf(&self, label: String, per_day: f64) -> PerfData {
        let mut p = PerfData::new(label, round_to(per_day, 0), Unit::Bytes);
        p.warning = self.growth.as_ref().map(Range::to_perfdata);
        p.critical = self.growth_critical.as_ref().map(Range::to_perfdata);
        p
    }
}

/// How much `name` grew per day since the size the previous run kept; None
/// before an interval is measured or for one the previous run did not size.
pub fn per_day(rates: &Rates, name: &str, size: f64) -> Option<f64> {
    match &rates.interval {
        Interval::Measured { seconds, previous } if *seconds > 0.0 => previous
            .gauges
            .get(name)
            .map(|before| (size - before) / seconds * 86400.0),
        _ => None,
    }
}

/// ` (+120 MB per day)` when the growth is known.
pub fn growth_text(per_day: Option<f64>) -> String {
    match per_day {
        Some(g) if g < 0.0 => format!(" (-{} per day)", pretty_bytes(-g)),
        Some(g) => format!(" (+{} per day)", pretty_bytes(g)),
        None => String::new(),
    }
}

/// `; growth measured in the last 1 d 0 h`, or why it is not (yet).
pub fn interval_note(rates: &Rates) -> String {
    match &rates.interval {
        Interval::Baseline { why } => format!("; growth: {why}"),
        Interval::TooSoon { seconds, needed } => format!(
            "; growth: baseline from {} ago, measured once {} have passed",
            pretty_duration(*seconds),
            pretty_duration(*needed)
        ),
        Interval::Measured { .. } => format!("; growth measured {}", rates.over()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgvigil_kit::state::Snapshot;

    fn measured(seconds: f64, before: &[(&str, f64)]) -> Rates {
        Rates {
            current: Snapshot::default(),
            interval: Interval::Measured {
                seconds,
                previous: Snapshot {
                    gauges: before.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
                    ..Snapshot::default()
                },
            },
        }
    }

    fn args(growth: Option<&str>, critical: Option<&str>) -> GrowthArgs {
        GrowthArgs {
            growth: growth.map(|g| parse_growth(g).unwrap()),
            growth_critical: critical.map(|g| parse_growth(g).unwrap()),
            growth_interval: 3600.0,
        }
    }

    #[test]
    fn growth_is_per_day_over_the_real_interval() {
        let r = measured(6.0 * 3600.0, &[("app", 1e9)]);
        let close = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() < 1e-3);
        assert!(close(per_day(&r, "app", 1.25e9), 1e9));
        // Shrinking is negative growth, and said so.
        assert!(close(per_day(&r, "app", 0.75e9), -1e9));
        assert_eq!(growth_text(Some(-1e9)), " (-954 MB per day)");
        assert_eq!(growth_text(Some(2048.0)), " (+2048 bytes per day)");
        // What the previous run did not size has no growth yet.
        assert_eq!(per_day(&r, "new", 1.0), None);
        assert_eq!(growth_text(None), "");
    }

    #[test]
    fn no_growth_before_an_interval_is_measured() {
        let baseline = Rates {
            current: Snapshot::default(),
            interval: Interval::Baseline {
                why: "first run, baseline saved".into(),
            },
        };
        assert_eq!(per_day(&baseline, "app", 1e9), None);
        assert_eq!(
            interval_note(&baseline),
            "; growth: first run, baseline saved"
        );
        let soon = Rates {
            current: Snapshot::default(),
            interval: Interval::TooSoon {
                seconds: 600.0,
                needed: 3600.0,
            },
        };
        assert_eq!(per_day(&soon, "app", 1e9), None);
        assert_eq!(
            interval_note(&soon),
            "; growth: baseline from 10 min 0 s ago, measured once 1 h 0 min have passed"
        );
        assert_eq!(
            interval_note(&measured(86400.0, &[])),
            "; growth measured in the last 1 d 0 h"
        );
    }

    #[test]
    fn the_ranges_raise_the_state_and_a_size_is_all_they_take() {
        let a = args(Some("1GB"), Some("10GB"));
        let gb = 1024.0 * 1024.0 * 1024.0;
        assert_eq!(a.judge(Some(gb), Status::Ok), Status::Ok);
        assert_eq!(a.judge(Some(gb + 1.0), Status::Ok), Status::Warning);
        assert_eq!(a.judge(Some(10.0 * gb + 1.0), Status::Ok), Status::Critical);
        // A known state is never lowered, and an unknown growth leaves it.
        assert_eq!(a.judge(Some(0.0), Status::Critical), Status::Critical);
        assert_eq!(a.judge(None, Status::Warning), Status::Warning);
        assert_eq!(args(None, None).judge(Some(1e15), Status::Ok), Status::Ok);
        assert_eq!(
            a.perf("app growth".into(), 1234.4).to_string(),
            "'app growth'=1234B;1073741824;10737418240"
        );
        assert!(parse_growth("5%").is_err());
        assert!(parse_growth("1h").is_err());
        assert!(parse_growth("500").is_ok());
    }
}
