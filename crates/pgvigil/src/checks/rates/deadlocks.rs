//! check_pg_deadlocks: deadlocks since the previous run. PostgreSQL only
//! counts them since the last statistics reset, so the count between two
//! runs comes from the state store.

use crate::check::{Check, Context, Judging};
use crate::checks::common::stat_database::{self, Sample};
use crate::session::Session;
use pgvigil_kit::state::StateArgs;
use pgvigil_kit::words::plural;
use pgvigil_kit::{CheckResult, Error, PerfData, Unit, UnitSpec};

pub struct Deadlocks;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub state: StateArgs,
}

impl Check for Deadlocks {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Count], Some(Unit::Count));
    const HINT: &'static str = "the server log names both statements of every deadlock: make the application take its locks in one order, and keep transactions short";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the deadlocks since the previous run. Default: {defaults} (any
  deadlock is WARNING), no -c. The first run saves a baseline and is OK; a
  statistics reset or a server restart starts a new one, and says so.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("0", ""));
    type Args = Args;
    type Measured = Sample;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        stat_database::sample(db, ctx, &args.state, &["deadlocks"])
    }

    /// Deadlocks over the interval against `-w`/`-c` (default `-w 0`).
    fn judge(sample: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let t = judging.thresholds;
        let counters = sample.counters(&[("deadlocks_total", "deadlocks")]);
        if let Some(first) = sample.baseline(&counters) {
            return first;
        }
        let count = sample.total_delta("deadlocks");
        let status = t.status(&[(Unit::Count, count)]);
        let by_database = per_database(sample);
        let mut summary = format!(
            "{count} deadlock{} {}",
            plural(count as i64),
            sample.rates.over()
        );
        if !by_database.is_empty() {
            summary.push_str(&format!(" ({})", by_database.join(", ")));
        }
        let perf = [PerfData::new("deadlocks", count, Unit::Count)
            .thresholds(t)
            .min(0.0)]
        .into_iter()
        .chain(counters);
        CheckResult::new(status, summary).perf(perf)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::stat_database::samples::{baseline, measured};
    use crate::checks::testing::{judge, options, perf, reported, thresholds};
    use pgvigil_kit::Status;

    #[test]
    fn the_first_run_is_a_baseline() {
        let s = baseline(&[("app", &[("deadlocks", 4.0)])]);
        let r = judge::<Deadlocks>(&s, &options(&[]), &thresholds::<Deadlocks>(None, None), 0);
        assert_eq!(
            (r.status, r.summary.as_str()),
            (Status::Ok, "first run, baseline saved")
        );
        assert_eq!(perf(&r), ["deadlocks_total=4c"]);
    }

    #[test]
    fn by_default_any_deadlock_warns() {
        let t = thresholds::<Deadlocks>(None, None);
        let none = measured(300.0, &[("app", &[("deadlocks", 4.0, 4.0)])]);
        let r = judge::<Deadlocks>(&none, &options(&[]), &t, 0);
        assert_eq!(
            (r.status, r.summary.as_str()),
            (Status::Ok, "0 deadlocks in the last 5 min 0 s")
        );
        let two = measured(
            60.0,
            &[
                ("app", &[("deadlocks", 4.0, 6.0)]),
                ("shop", &[("deadlocks", 1.0, 1.0)]),
            ],
        );
        let r = reported::<Deadlocks>(judge::<Deadlocks>(&two, &options(&[]), &t, 0));
        assert_eq!(r.status, Status::Warning);
        assert_eq!(r.summary, "2 deadlocks in the last 1 min 0 s (app 2)");
        assert_eq!(perf(&r), ["deadlocks=2;0;;0", "deadlocks_total=7c"]);
        assert!(r.hint.is_some());
        assert_eq!(
            judge::<Deadlocks>(
                &two,
                &options(&[]),
                &thresholds::<Deadlocks>(Some("5"), Some("1")),
                0
            )
            .status,
            Status::Critical
        );
    }

    #[test]
    fn a_database_new_since_the_last_run_counts_from_its_next_run() {
        let mut s = measured(60.0, &[("app", &[("deadlocks", 0.0, 0.0)])]);
        s.databases.push(
            baseline(&[("new", &[("deadlocks", 9.0)])])
                .databases
                .remove(0),
        );
        let r = judge::<Deadlocks>(&s, &options(&[]), &thresholds::<Deadlocks>(None, None), 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(perf(&r)[1], "deadlocks_total=9c");
    }
}
