//! Rates between runs: PostgreSQL keeps counters since the last reset, so a
//! check that wants "deadlocks in the last five minutes" compares this run's
//! counters with the previous run's, over the real interval between the two
//! (both timestamps from the server's clock).

use crate::error::Error;
use crate::state::{Loaded, Snapshot, Store};
use crate::units::pretty_duration;

/// How this run relates to the previous one.
#[derive(Debug, Clone, PartialEq)]
pub enum Interval {
    /// Nothing to compare with: this run's counters are the new baseline.
    Baseline {
        why: String,
    },
    Measured {
        seconds: f64,
        previous: Snapshot,
    },
    /// The previous run is too recent to measure against; it stays the baseline.
    TooSoon {
        seconds: f64,
        needed: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    pub current: Snapshot,
    pub interval: Interval,
}

impl Rates {
    /// How much counter `name` grew over the interval; `None` on a baseline
    /// run or for a counter the previous run did not have (a new database).
    pub fn delta(&self, name: &str) -> Option<f64> {
        match &self.interval {
            Interval::Baseline { .. } | Interval::TooSoon { .. } => None,
            Interval::Measured { previous, .. } => {
                let before = previous.counters.get(name)?;
                let now = self.current.counters.get(name)?;
                Some((now - before).max(0.0))
            }
        }
    }

    /// `in the last 5 min 2 s`, for summaries.
    pub fn over(&self) -> String {
        match &self.interval {
            Interval::Measured { seconds, .. } => {
                format!("in the last {}", pretty_duration(*seconds))
            }
            Interval::Baseline { .. } | Interval::TooSoon { .. } => String::new(),
        }
    }
}

/// Compares `current` with what `store` kept from the previous run, then
/// keeps `current` for the next one.
pub fn advance(store: &Store, current: Snapshot) -> Result<Rates, Error> {
    advance_after(store, current, 0.0)
}

/// Like `advance`, measuring only over at least `min_seconds`: a previous run
/// more recent than that stays the baseline (a rate extrapolated from a few
/// seconds says little).
pub fn advance_after(store: &Store, current: Snapshot, min_seconds: f64) -> Result<Rates, Error> {
    advance_when(store, current, min_seconds, |_| true)
}

/// Like `advance_after`, and a measured interval that `enough` finds too
/// thin to judge (one checkpoint among a handful) keeps its start as the
/// baseline too, so that the next runs judge over a longer span.
pub fn advance_when(
    store: &Store,
    current: Snapshot,
    min_seconds: f64,
    enough: impl Fn(&Rates) -> bool,
) -> Result<Rates, Error> {
    let interval = match store.load() {
        Loaded::Missing => Interval::Baseline {
            why: "first run, baseline saved".into(),
        },
        Loaded::Unusable(why) => Interval::Baseline {
            why: format!(
                "state file {} was unusable ({why}): new baseline saved",
                store.file.display()
            ),
        },
        Loaded::Found(previous) => match reset_reason(&previous, &current) {
            Some(why) => Interval::Baseline {
                why: format!("{why}: new baseline saved"),
            },
            None if current.taken_at - previous.taken_at < min_seconds => Interval::TooSoon {
                seconds: current.taken_at - previous.taken_at,
                needed: min_seconds,
            },
            None => Interval::Measured {
                seconds: current.taken_at - previous.taken_at,
                previous,
            },
        },
    };
    let rates = Rates { current, interval };
    let keep_previous = match rates.interval {
        Interval::TooSoon { .. } => true,
        Interval::Measured { .. } => !enough(&rates),
        Interval::Baseline { .. } => false,
    };
    if !keep_previous {
        store.save(&rates.current)?;
    }
    Ok(rates)
}

/// Why the previous counters cannot be subtracted from these, if they cannot.
fn reset_reason(previous: &Snapshot, current: &Snapshot) -> Option<String> {
    for (name, value) in &current.markers {
        match previous.markers.get(name) {
            Some(old) if old != value => {
                return Some(if name == "postmaster" {
                    format!("server restarted since the last run (at {value})")
                } else {
                    format!("statistics of {name} were reset since the last run (at {value})")
                })
            }
            _ => {}
        }
    }
    if let Some((name, _)) = current.counters.iter().find(|(name, now)| {
        previous
            .counters
            .get(*name)
            .is_some_and(|before| *now < before)
    }) {
        return Some(format!("counter {name} went backwards (statistics reset)"));
    }
    if current.taken_at <= previous.taken_at {
        return Some("no time passed since the last run by the server's clock".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(at: f64, started: &str, reset: &str, deadlocks: f64) -> Snapshot {
        let mut s = Snapshot {
            taken_at: at,
            ..Snapshot::default()
        };
        s.markers.insert("postmaster".into(), started.into());
        s.markers.insert("database app".into(), reset.into());
        s.counters.insert("app/deadlocks".into(), deadlocks);
        s
    }

    #[test]
    fn resets_restarts_and_backwards_counters_start_a_new_baseline() {
        let before = snap(100.0, "t0", "", 5.0);
        assert_eq!(reset_reason(&before, &snap(160.0, "t0", "", 7.0)), None);
        assert_eq!(
            reset_reason(&before, &snap(160.0, "t1", "", 7.0)).unwrap(),
            "server restarted since the last run (at t1)"
        );
        assert!(reset_reason(&before, &snap(160.0, "t0", "r1", 7.0))
            .unwrap()
            .starts_with("statistics of database app were reset"));
        assert!(reset_reason(&before, &snap(160.0, "t0", "", 4.0))
            .unwrap()
            .contains("went backwards"));
        assert!(reset_reason(&before, &snap(100.0, "t0", "", 5.0)).is_some());
    }

    #[test]
    fn deltas_over_the_interval_never_negative_and_none_for_new_counters() {
        let rates = Rates {
            current: snap(160.0, "t0", "", 7.0),
            interval: Interval::Measured {
                seconds: 60.0,
                previous: snap(100.0, "t0", "", 5.0),
            },
        };
        assert_eq!(rates.delta("app/deadlocks"), Some(2.0));
        assert_eq!(rates.delta("other/deadlocks"), None);
        assert_eq!(rates.over(), "in the last 1 min 0 s");
    }
}
