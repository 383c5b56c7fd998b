//! What the forecasting checks share: `--forecast-window`, the histories
//! kept between runs, and how a time left is judged, worded and graphed.

use crate::check::Context;
use pgvigil_kit::forecast::{Forecast, Histories, Policy};
use pgvigil_kit::state::{StateArgs, Store};
use pgvigil_kit::units::pretty_duration;
use pgvigil_kit::{Error, PerfData, Thresholds, Unit};

#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Forecast")]
pub struct ForecastArgs {
    /// History the rate of growth is fitted over; the first forecast comes once an eighth of it is kept [default: the check's, see FORECAST]
    #[arg(long, value_name = "DURATION", value_parser = parse_window)]
    pub forecast_window: Option<f64>,
}

fn parse_window(text: &str) -> Result<f64, String> {
    let seconds = pgvigil_kit::units::parse_duration_option(text)?;
    if seconds < 60.0 {
        return Err(format!("'{text}' is shorter than a minute"));
    }
    Ok(seconds)
}

/// Time left beyond this reads as never in perfdata: not growing, or so
/// slowly that it does not matter.
pub const HORIZON: f64 = 10.0 * 365.0 * 86400.0;

impl ForecastArgs {
    pub fn policy(&self, default_window: f64, drop_tolerance: f64) -> Policy {
        Policy {
            window: self.forecast_window.unwrap_or(default_window),
            drop_tolerance,
        }
    }
}

/// Opens the check's histories, lets `add` put this run's samples in them
/// (and forecast from them), and keeps them for the next run. What says why
/// there is no forecast, or why a history restarted, goes to the notes.
pub fn update(
    ctx: &Context,
    state: &StateArgs,
    at: f64,
    add: impl FnOnce(&mut Histories),
) -> Result<Vec<String>, Error> {
    let mut histories = match histories(ctx, state)? {
        Ok(histories) => histories,
        Err(note) => return Ok(vec![note]),
    };
    add(&mut histories);
    let mut notes: Vec<String> = histories.note.take().into_iter().collect();
    notes.extend(save(&histories, at, ctx)?);
    Ok(notes)
}

/// The check's histories, in a state file beside its own. Without a usable
/// state directory there is no forecast, only a note, unless a threshold
/// asks for the time left: then it is the error.
fn histories(ctx: &Context, state: &StateArgs) -> Result<Result<Histories, String>, Error> {
    let key = format!(
        "{} {} {} forecast",
        ctx.plugin,
        ctx.conn.target(),
        ctx.conn.dbname
    );
    match Store::open(state, &key, &|k| std::env::var(k).ok()) {
        Ok(store) => Ok(Ok(Histories::load(store))),
        Err(e) if ctx.thresholds.uses(Unit::Seconds) => Err(e),
        Err(e) => Ok(Err(format!("no forecast: {e}"))),
    }
}

/// Keeps this run's samples; as with opening, a failure is a note unless a
/// threshold asks for the time left.
fn save(histories: &Histories, at: f64, ctx: &Context) -> Result<Option<String>, Error> {
    match histories.save(at) {
        Ok(()) => Ok(None),
        Err(e) if ctx.thresholds.uses(Unit::Seconds) => Err(e),
        Err(e) => Ok(Some(format!("forecast history not kept: {e}"))),
    }
}

/// Seconds since the epoch on this machine's clock, for what is measured
/// here (filesystems).
pub fn local_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The time left as thresholds judge it: only a forecast has one.
pub fn seconds_left(forecast: &Forecast) -> Option<f64> {
    match forecast {
        Forecast::Left { left, .. } => Some(*left),
        Forecast::Gathering { .. } | Forecast::NotGrowing { .. } => None,
    }
}

/// `full in 3 d 4 h at 1.2 GB per hour over the last 6 h 0 min`; `reached`
/// says what happens at the limit, `amount` writes a quantity of what grows.
pub fn describe(forecast: &Forecast, reached: &str, amount: impl Fn(f64) -> String) -> String {
    match *forecast {
        Forecast::Gathering { more } => {
            format!("forecast after {} more of history", pretty_duration(more))
        }
        Forecast::NotGrowing { span, .. } => {
            format!("not growing over the last {}", pretty_duration(span))
        }
        Forecast::Left { left, .. } if left <= 0.0 => format!("{reached} now"),
        Forecast::Left { left, rate, span } => {
            let (per, unit) = if span < 2.0 * 86400.0 {
                (3600.0, "hour")
            } else {
                (86400.0, "day")
            };
            format!(
                "{reached} in {} at {} per {unit} over the last {}",
                pretty_left(left),
                amount(rate * per),
                pretty_duration(span)
            )
        }
    }
}

/// `, full in …` for a forecast with a time left, else nothing: what a
/// status line adds (the rest waits in the long output).
pub fn time_left_text(
    forecast: Option<&Forecast>,
    reached: &str,
    amount: impl Fn(f64) -> String,
) -> String {
    match forecast {
        Some(f @ Forecast::Left { .. }) => format!(", {}", describe(f, reached, amount)),
        _ => String::new(),
    }
}

/// What many forecasts (each sequence, each relation) say together: the
/// one with the least time left, not growing counting as never; while every
/// history is too short, the first of them, still gathering.
pub fn least<'a>(forecasts: impl IntoIterator<Item = &'a Forecast>) -> Option<Forecast> {
    let key = |f: &Forecast| seconds_left(f).unwrap_or(HORIZON);
    let mut gathering = None;
    let mut least: Option<Forecast> = None;
    for f in forecasts {
        match f {
            Forecast::Gathering { .. } => gathering = gathering.or(Some(*f)),
            _ if least.is_none_or(|l| key(f) < key(&l)) => least = Some(*f),
            _ => {}
        }
    }
    least.or(gathering)
}

fn pretty_left(seconds: f64) -> String {
    let years = seconds / (365.0 * 86400.0);
    if years >= 2.0 {
        format!("{years:.0} years")
    } else {
        pretty_duration(seconds)
    }
}

/// `<label>=…s;w;c;0`, the time left capped at `HORIZON` (never); absent
/// while the history is too short, run after run until it is not.
pub fn perf(label: String, forecast: &Forecast, t: &Thresholds) -> Option<PerfData> {
    perf_plain(label, forecast).map(|p| p.thresholds(t))
}

/// The same without thresholds, for a time left that they do not judge.
pub fn perf_plain(label: String, forecast: &Forecast) -> Option<PerfData> {
    let left = match *forecast {
        Forecast::Gathering { .. } => return None,
        Forecast::NotGrowing { .. } => HORIZON,
        Forecast::Left { left, .. } => left.clamp(0.0, HORIZON),
    };
    Some(PerfData::new(label, left.round(), Unit::Seconds).min(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgvigil_kit::units::pretty_bytes;

    #[test]
    fn the_forecast_states_its_basis() {
        let f = Forecast::Left {
            left: 3.0 * 3600.0 + 600.0,
            rate: 1024.0 * 1024.0 * 1024.0 / 3600.0,
            span: 6.0 * 3600.0,
        };
        assert_eq!(
            describe(&f, "full", pretty_bytes),
            "full in 3 h 10 min at 1024 MB per hour over the last 6 h 0 min"
        );
        let slow = Forecast::Left {
            left: 41.0 * 86400.0,
            rate: 10.0,
            span: 3.0 * 86400.0,
        };
        assert_eq!(
            describe(&slow, "runs out", |v| format!("{v}")),
            "runs out in 41 d 0 h at 864000 per day over the last 3 d 0 h"
        );
        let flat = Forecast::NotGrowing {
            rate: 0.0,
            span: 3600.0,
        };
        assert_eq!(
            describe(&flat, "full", pretty_bytes),
            "not growing over the last 1 h 0 min"
        );
        assert_eq!(
            describe(&Forecast::Gathering { more: 1800.0 }, "full", pretty_bytes),
            "forecast after 30 min 0 s more of history"
        );
    }

    #[test]
    fn the_least_time_left_speaks_for_many() {
        let left = |left: f64| Forecast::Left {
            left,
            rate: 1.0,
            span: 60.0,
        };
        let flat = Forecast::NotGrowing {
            rate: 0.0,
            span: 60.0,
        };
        let gathering = Forecast::Gathering { more: 30.0 };
        assert_eq!(
            least([&flat, &left(90.0), &gathering, &left(40.0)]),
            Some(left(40.0))
        );
        assert_eq!(least([&gathering, &flat]), Some(flat));
        assert_eq!(least([&gathering]), Some(gathering));
        assert_eq!(least([]), None);
        assert_eq!(time_left_text(Some(&flat), "full", |v| format!("{v}")), "");
        assert_eq!(
            time_left_text(Some(&left(40.0)), "full", |v| format!("{v}")),
            ", full in 40 s at 3600 per hour over the last 1 min 0 s"
        );
    }

    #[test]
    fn perfdata_is_absent_only_while_gathering() {
        let t = Thresholds::default();
        assert!(perf("x".into(), &Forecast::Gathering { more: 1.0 }, &t).is_none());
        let flat = perf(
            "x".into(),
            &Forecast::NotGrowing {
                rate: 0.0,
                span: 1.0,
            },
            &t,
        )
        .unwrap();
        assert_eq!(flat.value, HORIZON);
    }
}
