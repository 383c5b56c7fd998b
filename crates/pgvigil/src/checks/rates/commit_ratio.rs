//! check_pg_commit_ratio: rollbacks as a share of the transactions that
//! ended since the previous run: an application failing its transactions
//! shows here before anywhere else.

use crate::checks::rates::stat_database::{self, Sample};
use crate::rates::Interval;
use crate::state::StateArgs;
use crate::units::round_to;
use crate::words::{percent_text, plural};
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

pub struct CommitRatio;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Commit ratio")]
pub struct Args {
    /// Transactions an interval needs before its rollback share is judged
    #[arg(long, value_name = "N", default_value_t = 100.0)]
    pub min_transactions: f64,
    #[command(flatten)]
    pub state: StateArgs,
}

const COLUMNS: &[&str] = &["xact_commit", "xact_rollback"];

fn rollbacks(sample: &Sample, database: &str) -> (f64, f64) {
    (
        sample.delta(database, "xact_rollback").unwrap_or(0.0),
        sample.delta(database, "xact_commit").unwrap_or(0.0),
    )
}

fn share(rolled_back: f64, committed: f64) -> f64 {
    let ended = rolled_back + committed;
    if ended > 0.0 {
        rolled_back / ended * 100.0
    } else {
        0.0
    }
}

impl Check for CommitRatio {
    const DISPLAY: &'static str = "COMMIT_RATIO";
    const ABOUT: &'static str = "Rolled-back transactions as a share of all that ended since the previous run (counters kept in a state file).";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Percent, Unit::Count],
        bare: Some(Unit::Count),
        labels: &[],
    };
    const HINT: &'static str = "many rollbacks point to application errors: read the server log for the failing statements and ask the application owners; pg_stat_database shows which database";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A percentage applies to the share of rollbacks among the transactions that
  ended since the previous run (judged from --min-transactions on), a plain
  number to the count of rollbacks. No default.";
    type Args = Args;

    fn run(args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        // Query
        let sample = stat_database::sample(db, ctx, &args.state, COLUMNS)?;
        let counters = [
            PerfData::counter("commits", sample.total("xact_commit")),
            PerfData::counter("rollbacks", sample.total("xact_rollback")),
        ];
        if let Interval::Baseline { why } = &sample.rates.interval {
            return Ok(CheckResult::new(Status::Ok, why.clone()).perf(counters));
        }

        // Measure
        let rolled_back = sample.total_delta("xact_rollback");
        let committed = sample.total_delta("xact_commit");
        let pct = share(rolled_back, committed);

        // Compare
        let t = &ctx.thresholds;
        let mut measured = vec![(Unit::Count, rolled_back)];
        if rolled_back + committed >= args.min_transactions {
            measured.push((Unit::Percent, pct));
        }
        let status = t.status(&measured);

        // Report
        let summary = format!(
            "{rolled_back} rollback{} of {} transactions ({}) {}",
            plural(rolled_back as i64),
            rolled_back + committed,
            percent_text(pct),
            sample.rates.over()
        );
        let mut perf = vec![
            PerfData::new("rollback_pct", round_to(pct, 2), Unit::Percent)
                .thresholds(t)
                .min(0.0)
                .max(100.0),
            PerfData::new("rollbacks_interval", rolled_back, Unit::Count)
                .thresholds(t)
                .min(0.0),
            PerfData::new(
                "transactions_interval",
                rolled_back + committed,
                Unit::Count,
            )
            .min(0.0),
        ];
        perf.extend(counters);
        let mut details = Vec::new();
        if status != Status::Ok || ctx.verbose > 0 {
            for d in &sample.databases {
                let (r, c) = rollbacks(&sample, &d.name);
                if r + c > 0.0 {
                    details.push(format!(
                        "{}: {r} rollback{} of {} transactions ({})",
                        d.name,
                        plural(r as i64),
                        r + c,
                        percent_text(share(r, c))
                    ));
                }
            }
        }
        Ok(CheckResult::new(status, summary)
            .perf(perf)
            .details(details))
    }
}
