//! A quantity grown at a steady rate, a plugin run after each step, and
//! what the forecast tests assert of the runs: the time left against the
//! truth the test measured, and the states in the order they came.

use std::time::{Duration, Instant};

use crate::PluginOutput;

pub struct Course {
    start: Instant,
    /// Each state once, as it changed.
    pub seen: Vec<String>,
    /// Forecasts held to the truth.
    pub compared: usize,
    /// Forecasts off by more than 25%, where a few are tolerated.
    pub misses: Vec<String>,
}

impl Default for Course {
    fn default() -> Self {
        Course::new()
    }
}

impl Course {
    pub fn new() -> Course {
        Course {
            start: Instant::now(),
            seen: Vec::new(),
            compared: 0,
            misses: Vec::new(),
        }
    }

    /// Sleeps until step `i`, a quarter second apart from the start.
    pub fn step(&self, i: u64) {
        let due = self.start + Duration::from_millis(250 * i);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Keeps the run's state when it differs from the last one seen.
    pub fn saw(&mut self, out: &PluginOutput) {
        if self.seen.last().map(String::as_str) != Some(out.state()) {
            self.seen.push(out.state().to_string());
        }
    }

    /// The forecast `left` within 25% of `truth`, once more than 3 s are
    /// truly left (nearer the end a quarter second is already more).
    pub fn compare(&mut self, left: f64, truth: f64, out: &PluginOutput) {
        // Shown when the test fails, and with --nocapture.
        eprintln!("true {truth:.1} s: {}", out.status_line());
        if truth > 3.0 {
            assert!(
                (left - truth).abs() <= 0.25 * truth,
                "forecast {left} s, true {truth:.1} s: {}",
                out.stdout
            );
            self.compared += 1;
        }
    }

    /// A filesystem filled since the start from `used_at_start` to `used`
    /// of `size` bytes: the truth is the time left at the rate the writes
    /// really kept (a loaded machine slips the schedule). A forecast off by
    /// more than 25%, with more than 4 s truly left, is a miss; returns the
    /// truth.
    pub fn compare_fill(
        &mut self,
        left: f64,
        (used_at_start, used, size): (f64, f64, f64),
        out: &PluginOutput,
    ) -> f64 {
        let rate = (used - used_at_start) / self.elapsed();
        let truth = (size - used) / rate;
        // Shown when the test fails, and with --nocapture.
        eprintln!("true {truth:.1} s: {}", out.status_line());
        if truth > 4.0 && (left - truth).abs() > 0.25 * truth {
            self.misses
                .push(format!("forecast {left} s, true {truth:.1} s"));
        }
        truth
    }

    /// At most two misses over the whole course.
    pub fn assert_few_misses(&self) {
        assert!(
            self.misses.len() <= 2,
            "forecasts off by more than 25%: {:?}",
            self.misses
        );
    }
}
