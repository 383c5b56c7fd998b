//! check_pg_deadlocks: deadlocks since the previous run. PostgreSQL only
//! counts them since the last statistics reset, so the count between two
//! runs comes from the state store.

use crate::checks::rates::stat_database::{self, Sample};
use crate::rates::Interval;
use crate::state::StateArgs;
use crate::words::plural;
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Unit, UnitSpec};

pub struct Deadlocks;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub state: StateArgs,
}

impl Check for Deadlocks {
    const DISPLAY: &'static str = "DEADLOCKS";
    const ABOUT: &'static str = "Deadlocks since the previous run, in every database (the interval and counters are kept in a state file).";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Count],
        bare: Some(Unit::Count),
        labels: &[],
    };
    const HINT: &'static str = "the server log names both statements of every deadlock: make the application take its locks in one order, and keep transactions short";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the deadlocks since the previous run. Default: -w 0 (any
  deadlock is WARNING), no -c. The first run saves a baseline and is OK; a
  statistics reset or a server restart starts a new one, and says so.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("0", ""));
    type Args = Args;

    fn run(args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        // Query
        let sample = stat_database::sample(db, ctx, &args.state, &["deadlocks"])?;
        let total = PerfData::counter("deadlocks_total", sample.total("deadlocks"));
        if let Interval::Baseline { why } = &sample.rates.interval {
            return Ok(CheckResult::new(crate::Status::Ok, why.clone()).perf([total]));
        }

        // Measure
        let count = sample.total_delta("deadlocks");

        // Compare
        let t = &ctx.thresholds;
        let status = t.status(&[(Unit::Count, count)]);

        // Report
        let by_database = per_database(&sample);
        let mut summary = format!(
            "{count} deadlock{} {}",
            plural(count as i64),
            sample.rates.over()
        );
        if !by_database.is_empty() {
            summary.push_str(&format!(" ({})", by_database.join(", ")));
        }
        let perf = [
            PerfData::new("deadlocks", count, Unit::Count)
                .thresholds(t)
                .min(0.0),
            total,
        ];
        Ok(CheckResult::new(status, summary).perf(perf))
    }
}

/// `app 3` for each database that had deadlocks in the interval.
fn per_database(sample: &Sample) -> Vec<String> {
    sample
        .databases
        .iter()
        .filter_map(|d| {
            let n = sample.delta(&d.name, "deadlocks")?;
            (n > 0.0).then(|| format!("{} {n}", d.name))
        })
        .collect()
}
