//! Growth per day of what a storage check sizes (a database, a relation):
//! its size now against the size the previous run kept, over the real
//! interval between them, judged by `--growth` and `--growth-critical`.

use crate::range::Range;
use crate::rates::{Interval, Rates};
use crate::units::{pretty_bytes, pretty_duration, round_to};
use crate::{PerfData, Status, Unit};

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
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::units::parse_duration_option)]
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
