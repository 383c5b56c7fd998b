//! Forecasts: how long until a growing quantity (a filesystem, pg_wal, a
//! sequence, XID age) reaches its limit, from a short history of samples
//! kept in the state store between runs.
//!
//! The rate is the Theil–Sen slope, the median of the slopes between every
//! two samples of the window: one odd sample (a burst of temporary files, a
//! bulk load then deleted) moves it little, where a least-squares line
//! would bend towards it.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::state::{Loaded, Snapshot, Store};

/// Samples kept at most, whatever the window and the check interval: about
/// half of them span the window, and the newest one floats until it is a
/// spacing away from the one before.
pub const MAX_SAMPLES: usize = 64;

/// How one quantity's history is kept and read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Seconds of history the rate is fitted over.
    pub window: f64,
    /// How far the value may fall below the previous sample, as a share of
    /// it, before the trend counts as broken and the history restarts: 0 for
    /// what only grows until something resets it (a sequence, XID age), a
    /// few percent for levels that wobble (space used).
    pub drop_tolerance: f64,
}

impl Policy {
    /// The least time between two kept samples.
    pub fn spacing(&self) -> f64 {
        self.window / (MAX_SAMPLES / 2) as f64
    }

    /// History needed before the first forecast: an eighth of the window,
    /// so that a rate is not drawn from two neighbouring runs.
    pub fn min_span(&self) -> f64 {
        self.window / 8.0
    }
}

/// One quantity's samples, oldest first: (seconds since the epoch on the
/// measuring clock, value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub samples: Vec<(f64, f64)>,
}

/// What the history says about the time left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Forecast {
    /// Not enough history yet; `more` seconds of it are still needed.
    Gathering { more: f64 },
    /// Flat or shrinking over the last `span` seconds (`rate` per second,
    /// zero or less).
    NotGrowing { rate: f64, span: f64 },
    /// The limit is reached in `left` seconds (0 when it already is) at
    /// `rate` per second, fitted over the last `span` seconds.
    Left { left: f64, rate: f64, span: f64 },
}

impl Series {
    /// Adds a measurement. Returns true when it broke the trend (the value
    /// fell by more than the policy tolerates, or the clock went back) and
    /// the history restarted from it.
    pub fn add(&mut self, at: f64, value: f64, policy: &Policy) -> bool {
        if !at.is_finite() || !value.is_finite() {
            return false;
        }
        let broke = self
            .samples
            .last()
            .is_some_and(|&(t, v)| at < t || value < v - policy.drop_tolerance * v.abs());
        if broke {
            self.samples.clear();
        }
        let n = self.samples.len();
        if n >= 2 && at - self.samples[n - 2].0 < policy.spacing() {
            self.samples[n - 1] = (at, value);
        } else {
            self.samples.push((at, value));
        }
        let from = at - policy.window;
        let old = self.samples.iter().take_while(|s| s.0 < from).count();
        let over = self.samples.len().saturating_sub(old + MAX_SAMPLES);
        self.samples.drain(..old + over);
        broke
    }

    /// Seconds between the oldest and the newest sample.
    pub fn span(&self) -> f64 {
        match (self.samples.first(), self.samples.last()) {
            (Some(a), Some(b)) => b.0 - a.0,
            _ => 0.0,
        }
    }

    /// The Theil–Sen slope, per second; `None` with fewer than two distinct
    /// times.
    pub fn rate(&self) -> Option<f64> {
        let mut slopes = Vec::new();
        for (i, &(ti, vi)) in self.samples.iter().enumerate() {
            for &(tj, vj) in &self.samples[i + 1..] {
                if tj > ti {
                    slopes.push((vj - vi) / (tj - ti));
                }
            }
        }
        median(&mut slopes)
    }

    /// The time until `value` (the newest measurement) reaches `limit`.
    pub fn forecast(&self, value: f64, limit: f64, policy: &Policy) -> Forecast {
        let span = self.span();
        let rate = match self.rate() {
            Some(rate) if span >= policy.min_span() => rate,
            // Two distinct times make a span, and a span a rate.
            _ => {
                return Forecast::Gathering {
                    more: policy.min_span() - span,
                }
            }
        };
        if value >= limit {
            return Forecast::Left {
                left: 0.0,
                rate,
                span,
            };
        }
        if rate <= 0.0 {
            return Forecast::NotGrowing { rate, span };
        }
        Forecast::Left {
            left: (limit - value) / rate,
            rate,
            span,
        }
    }

    /// `t:v t:v …`, for a marker of the state file.
    pub fn render(&self) -> String {
        let parts: Vec<String> = self
            .samples
            .iter()
            .map(|(t, v)| format!("{t}:{v}"))
            .collect();
        parts.join(" ")
    }

    /// Reads `render`'s text back; anything else is a reason, never a panic.
    pub fn parse(text: &str) -> Result<Series, String> {
        let mut samples = Vec::new();
        for part in text.split(' ').filter(|p| !p.is_empty()) {
            let (t, v) = part
                .split_once(':')
                .ok_or_else(|| format!("sample {part:?} is malformed"))?;
            let number = |s: &str| {
                s.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| format!("sample {part:?} is malformed"))
            };
            samples.push((number(t)?, number(v)?));
        }
        if samples.len() > MAX_SAMPLES {
            return Err(format!("it holds {} samples", samples.len()));
        }
        if samples.windows(2).any(|w| w[1].0 < w[0].0) {
            return Err("its samples are out of order".into());
        }
        Ok(Series { samples })
    }
}

/// The histories of one check's quantities (each filesystem, each sequence),
/// in a state file of their own: written whole and renamed like every state
/// file, so concurrent runs never tear it (the last writer wins, and the
/// other run's sample is lost, not garbled), and a file that cannot be read
/// is a fresh start with a note, never an error that repeats.
#[derive(Debug)]
pub struct Histories {
    store: Store,
    kept: BTreeMap<String, Series>,
    /// The series added to in this run: only they are saved, so that what
    /// is gone (a dropped sequence) leaves the file.
    touched: BTreeMap<String, Series>,
    /// Why the earlier histories could not be used, if they could not.
    pub note: Option<String>,
}

const SERIES: &str = "series ";

impl Histories {
    pub fn load(store: Store) -> Histories {
        let mut kept = BTreeMap::new();
        let mut note = None;
        match store.load() {
            Loaded::Found(snapshot) => {
                for (name, text) in &snapshot.markers {
                    let Some(name) = name.strip_prefix(SERIES) else {
                        continue;
                    };
                    match Series::parse(text) {
                        Ok(series) => {
                            kept.insert(name.to_string(), series);
                        }
                        Err(why) => note = Some(format!("history of {name} dropped: {why}")),
                    }
                }
            }
            Loaded::Missing => {}
            Loaded::Unusable(why) => {
                note = Some(format!(
                    "forecast history {} restarted: {why}",
                    store.file.display()
                ))
            }
        }
        Histories {
            store,
            kept,
            touched: BTreeMap::new(),
            note,
        }
    }

    /// Adds this run's value of `name` to its history and returns the
    /// history, and whether the value broke the trend.
    pub fn add(&mut self, name: &str, at: f64, value: f64, policy: &Policy) -> (&Series, bool) {
        let mut series = self.kept.remove(name).unwrap_or_default();
        let broke = series.add(at, value, policy);
        let series = self.touched.entry(name.to_string()).or_insert(series);
        (series, broke)
    }

    /// Keeps the histories added to in this run for the next one.
    pub fn save(&self, at: f64) -> Result<(), Error> {
        let mut snapshot = Snapshot {
            taken_at: at,
            ..Snapshot::default()
        };
        for (name, series) in &self.touched {
            snapshot
                .markers
                .insert(format!("{SERIES}{name}"), series.render());
        }
        self.store.save(&snapshot)
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOUR: Policy = Policy {
        window: 3600.0,
        drop_tolerance: 0.05,
    };

    fn series(points: &[(f64, f64)]) -> Series {
        Series {
            samples: points.to_vec(),
        }
    }

    #[test]
    fn until_an_eighth_of_the_window_it_gathers() {
        let mut s = Series::default();
        s.add(0.0, 10.0, &HOUR);
        s.add(300.0, 20.0, &HOUR);
        assert_eq!(
            s.forecast(20.0, 100.0, &HOUR),
            Forecast::Gathering { more: 150.0 }
        );
        s.add(450.0, 25.0, &HOUR);
        assert!(matches!(
            s.forecast(25.0, 100.0, &HOUR),
            Forecast::Left { .. }
        ));
    }

    #[test]
    fn a_steady_rise_is_forecast_from_the_newest_value() {
        let s = series(&[(0.0, 0.0), (600.0, 60.0), (1200.0, 120.0)]);
        assert_eq!(
            s.forecast(120.0, 1000.0, &HOUR),
            Forecast::Left {
                left: 8800.0,
                rate: 0.1,
                span: 1200.0
            }
        );
        // Already there: no time left, whatever the rate.
        assert!(matches!(
            s.forecast(1000.0, 1000.0, &HOUR),
            Forecast::Left { left, .. } if left == 0.0
        ));
    }

    #[test]
    fn one_odd_sample_hardly_moves_the_rate() {
        let s = series(&[
            (0.0, 0.0),
            (600.0, 60.0),
            (1200.0, 900.0),
            (1800.0, 180.0),
            (2400.0, 240.0),
        ]);
        let rate = s.rate().unwrap();
        assert!((rate - 0.1).abs() < 0.02, "{rate}");
    }

    #[test]
    fn a_fall_beyond_the_tolerance_restarts_the_history() {
        let mut s = Series::default();
        for (t, v) in [(0.0, 100.0), (600.0, 110.0), (1200.0, 120.0)] {
            assert!(!s.add(t, v, &HOUR));
        }
        // 4% down: a wobble.
        assert!(!s.add(1800.0, 115.5, &HOUR));
        assert_eq!(s.samples.len(), 4);
        // VACUUM FULL, TRUNCATE, a freeze: far down.
        assert!(s.add(2400.0, 40.0, &HOUR));
        assert_eq!(s.samples, vec![(2400.0, 40.0)]);
        // A clock that went back restarts it too.
        assert!(s.add(2000.0, 50.0, &HOUR));
        assert_eq!(s.samples, vec![(2000.0, 50.0)]);
    }

    #[test]
    fn a_strict_quantity_restarts_on_any_fall() {
        let strict = Policy {
            drop_tolerance: 0.0,
            ..HOUR
        };
        let mut s = series(&[(0.0, 1000.0)]);
        assert!(s.add(600.0, 999.0, &strict));
    }

    #[test]
    fn the_history_stays_small_and_within_the_window() {
        let day = Policy {
            window: 86400.0,
            drop_tolerance: 0.0,
        };
        let mut s = Series::default();
        // Four weeks of runs every minute.
        for i in 0..40_320 {
            s.add(f64::from(i) * 60.0, f64::from(i), &day);
            assert!(s.samples.len() <= MAX_SAMPLES);
        }
        assert!(s.span() <= day.window);
        assert!(s.span() >= day.window - day.spacing() * 2.0);
        assert!(s.render().len() < 2048);
    }

    #[test]
    fn garbage_is_a_reason() {
        for bad in ["x", "1:2 3", "1:nan", "5:1 4:2", "1:2:3"] {
            assert!(Series::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Series::parse("").unwrap(), Series::default());
    }

    #[test]
    fn histories_carry_over_runs_and_drop_what_is_gone() {
        let dir =
            std::env::temp_dir().join(format!("pgvigil-forecast-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let args = crate::state::StateArgs {
            state_dir: Some(dir.clone()),
        };
        let open = || Histories::load(Store::open(&args, "check forecast", &|_| None).unwrap());
        for (run, at) in [0.0, 600.0, 1200.0].into_iter().enumerate() {
            let mut h = open();
            assert_eq!(h.note, None);
            let (kept, broke) = h.add("/", at, 10.0 * at, &HOUR);
            assert!(!broke);
            assert_eq!(kept.samples.len(), run + 1);
            // Seen in the first run only.
            if run == 0 {
                h.add("/gone", at, 1.0, &HOUR);
            }
            h.save(at).unwrap();
        }
        let mut h = open();
        assert_eq!(h.add("/gone", 1800.0, 1.0, &HOUR).0.samples.len(), 1);
        // A corrupt file: a fresh start, said once.
        let store = Store::open(&args, "check forecast", &|_| None).unwrap();
        std::fs::write(&store.file, "pgvigil-state 1\ngarbage").unwrap();
        let h = open();
        assert!(
            h.note.as_deref().unwrap_or("").contains("restarted"),
            "{:?}",
            h.note
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    proptest! {
        #[test]
        fn a_linear_series_gives_its_slope(
            start in -1e6f64..1e6, slope in -1e3f64..1e3, step in 1f64..1e4, n in 2usize..64
        ) {
            let s = Series {
                samples: (0..n).map(|i| (i as f64 * step, start + slope * i as f64 * step)).collect(),
            };
            let rate = s.rate().unwrap();
            prop_assert!((rate - slope).abs() <= 1e-6 * (1.0 + slope.abs()), "{} vs {}", rate, slope);
        }

        /// Evenly spaced samples, each off the line by at most `noise`: over
        /// half the pairs are a quarter of the span apart or more, so the
        /// median slope is within 8·noise/span of the true one.
        #[test]
        fn bounded_noise_gives_a_bounded_error(
            slope in -10f64..10.0, noise in 0f64..50.0, n in 8usize..64,
            offsets in proptest::collection::vec(-1f64..1.0, 64)
        ) {
            let step = 60.0;
            let s = Series {
                samples: (0..n)
                    .map(|i| (i as f64 * step, slope * i as f64 * step + noise * offsets[i]))
                    .collect(),
            };
            let bound = 8.0 * noise / s.span() + 1e-9;
            prop_assert!((s.rate().unwrap() - slope).abs() <= bound);
        }

        #[test]
        fn a_constant_series_is_not_growing(value in -1e9f64..1e9, n in 2usize..64) {
            let s = Series { samples: (0..n).map(|i| (i as f64 * 600.0, value)).collect() };
            let limit = value.abs() * 2.0 + 1.0;
            let f = s.forecast(value, limit, &HOUR);
            let flat = matches!(f, Forecast::NotGrowing { rate, .. } if rate == 0.0);
            prop_assert!(flat || matches!(f, Forecast::Gathering { .. }), "{:?}", f);
        }

        #[test]
        fn what_is_rendered_reads_back(points in proptest::collection::vec((0f64..1e10, -1e12f64..1e12), 0..64)) {
            let mut points = points;
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let s = Series { samples: points };
            prop_assert_eq!(Series::parse(&s.render()).unwrap(), s);
        }

        #[test]
        fn no_text_makes_parse_panic(text in "\\PC{0,200}") {
            let _ = Series::parse(&text);
        }
    }
}
