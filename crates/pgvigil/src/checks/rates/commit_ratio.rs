//! check_pg_commit_ratio: rollbacks as a share of the transactions that
//! ended since the previous run: an application failing its transactions
//! shows here before anywhere else. And commits per second, with lower
//! bounds: an application that stopped writing (a stuck consumer, a pool
//! pointed at the wrong host) leaves a server that is up and quiet.

use crate::check::{Check, Context, Judging};
use crate::checks::common::stat_database::{self, Sample};
use crate::session::Session;
use pgvigil_kit::rates::Interval;
use pgvigil_kit::state::StateArgs;
use pgvigil_kit::units::{format_number, round_to};
use pgvigil_kit::words::{percent_text, plural};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct CommitRatio;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Commit ratio")]
pub struct Args {
    /// Transactions an interval needs before its rollback share is judged
    #[arg(long, value_name = "N", default_value_t = 100.0)]
    pub min_transactions: f64,
    /// Only the databases whose name matches REGEX count toward commit_rate [default: all]
    #[arg(long, value_name = "REGEX", value_parser = crate::session::databases::parse_regex)]
    pub rate_db: Option<regex::Regex>,
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
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Percent, Unit::Count], Some(Unit::Count))
        .with_labels(&["commit_rate"]);
    const HINT: &'static str = "many rollbacks point to application errors: read the server log for the failing statements and ask the application owners; pg_stat_database shows which database; too few commits: is the application connected to this server at all (pg_stat_activity by application_name), or is a consumer stuck?";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A percentage applies to the share of rollbacks among the transactions that
  ended since the previous run (judged from --min-transactions on), a plain
  number to the count of rollbacks. commit_rate=RANGE applies to commits per
  second over the interval, in the databases --rate-db matches: a lower
  bound (-w commit_rate=1: -c commit_rate=0.1:) catches an application that
  stopped writing. No default.";
    type Args = Args;
    type Measured = Sample;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        stat_database::sample(db, ctx, &args.state, COLUMNS)
    }

    /// Rollbacks over the interval: a count, and from --min-transactions on a
    /// share of the transactions that ended, against `-w`/`-c`.
    fn judge(sample: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, args, verbose) = (judging.thresholds, judging.args, judging.verbose);
        let counters =
            sample.counters(&[("commits", "xact_commit"), ("rollbacks", "xact_rollback")]);
        if let Some(first) = sample.baseline(&counters) {
            return first;
        }
        let rolled_back = sample.total_delta("xact_rollback");
        let committed = sample.total_delta("xact_commit");
        let pct = share(rolled_back, committed);
        let mut measured = vec![(Unit::Count, rolled_back)];
        if rolled_back + committed >= args.min_transactions {
            measured.push((Unit::Percent, pct));
        }
        let seconds = match &sample.rates.interval {
            Interval::Measured { seconds, .. } => *seconds,
            _ => 0.0,
        };
        let rate_commits: f64 = sample
            .databases
            .iter()
            .filter(|d| args.rate_db.as_ref().is_none_or(|r| r.is_match(&d.name)))
            .map(|d| sample.delta(&d.name, "xact_commit").unwrap_or(0.0))
            .sum();
        let commit_rate = if seconds > 0.0 {
            rate_commits / seconds
        } else {
            0.0
        };
        let status = t.status_labeled(&measured, &[("commit_rate", commit_rate)]);
        let mut summary = format!(
            "{rolled_back} rollback{} of {} transactions ({}) {}",
            plural(rolled_back as i64),
            rolled_back + committed,
            percent_text(pct),
            sample.rates.over()
        );
        summary.push_str(&format!(
            "; {} commits per second{}",
            format_number(round_to(commit_rate, 2)),
            match &args.rate_db {
                Some(r) => format!(" in databases matching {}", r.as_str()),
                None => String::new(),
            }
        ));
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
        perf.push(
            PerfData::new("commit_rate", round_to(commit_rate, 3), Unit::Count)
                .min(0.0)
                .thresholds_of(t, "commit_rate"),
        );
        perf.extend(counters);
        let mut details = Vec::new();
        if status != Status::Ok || verbose > 0 {
            for d in &sample.databases {
                let (r, c) = rollbacks(sample, &d.name);
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
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::stat_database::samples::{baseline, measured};
    use crate::checks::testing::{judge, perf, reported, thresholds};

    fn args(min: f64) -> Args {
        Args {
            min_transactions: min,
            rate_db: None,
            state: StateArgs::default(),
        }
    }

    fn sample(rollbacks: f64, commits: f64) -> Sample {
        measured(
            60.0,
            &[
                (
                    "app",
                    &[
                        ("xact_commit", 0.0, commits),
                        ("xact_rollback", 0.0, rollbacks),
                    ],
                ),
                (
                    "idle",
                    &[("xact_commit", 7.0, 7.0), ("xact_rollback", 0.0, 0.0)],
                ),
            ],
        )
    }

    #[test]
    fn percent_to_the_share_a_number_to_the_count() {
        let t = thresholds::<CommitRatio>(Some("5%"), Some("20%"));
        assert_eq!(
            judge::<CommitRatio>(&sample(5.0, 95.0), &args(100.0), &t, 0).status,
            Status::Ok
        );
        assert_eq!(
            judge::<CommitRatio>(&sample(6.0, 94.0), &args(100.0), &t, 0).status,
            Status::Warning
        );
        assert_eq!(
            judge::<CommitRatio>(&sample(21.0, 79.0), &args(100.0), &t, 0).status,
            Status::Critical
        );
        let t = thresholds::<CommitRatio>(Some("10"), None);
        assert_eq!(
            judge::<CommitRatio>(&sample(11.0, 1e6), &args(100.0), &t, 0).status,
            Status::Warning
        );
        assert_eq!(
            judge::<CommitRatio>(
                &sample(11.0, 1e6),
                &args(100.0),
                &thresholds::<CommitRatio>(None, None),
                0
            )
            .status,
            Status::Ok
        );
    }

    #[test]
    fn a_quiet_interval_is_not_judged_by_its_share() {
        let t = thresholds::<CommitRatio>(Some("5%"), Some("20%"));
        let r = judge::<CommitRatio>(&sample(50.0, 49.0), &args(100.0), &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.summary,
            "50 rollbacks of 99 transactions (50.5%) in the last 1 min 0 s; 0.82 commits per second"
        );
        assert_eq!(
            judge::<CommitRatio>(&sample(50.0, 50.0), &args(100.0), &t, 0).status,
            Status::Critical
        );
        // No transaction at all: a share of 0, never a division by zero.
        let r = judge::<CommitRatio>(&sample(0.0, 0.0), &args(0.0), &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(perf(&r)[0], "rollback_pct=0%;5;20;0;100");
    }

    #[test]
    fn too_few_commits_per_second_is_an_application_that_stopped() {
        let t = thresholds::<CommitRatio>(Some("commit_rate=1:"), Some("commit_rate=0.1:"));
        // 70 commits over a minute in app, 0 in idle.
        let r = reported::<CommitRatio>(judge::<CommitRatio>(
            &sample(0.0, 70.0),
            &args(100.0),
            &t,
            0,
        ));
        assert_eq!(r.status, Status::Ok);
        assert!(
            r.summary.ends_with("; 1.17 commits per second"),
            "{}",
            r.summary
        );
        let r = reported::<CommitRatio>(judge::<CommitRatio>(
            &sample(0.0, 30.0),
            &args(100.0),
            &t,
            0,
        ));
        assert_eq!(r.status, Status::Warning);
        assert!(r.hint.unwrap().contains("consumer stuck"));
        assert_eq!(
            judge::<CommitRatio>(&sample(0.0, 5.0), &args(100.0), &t, 0).status,
            Status::Critical
        );
        // Only the databases --rate-db names count.
        let mut a = args(100.0);
        a.rate_db = Some(regex::Regex::new("^idle$").unwrap());
        let r = judge::<CommitRatio>(&sample(0.0, 70.0), &a, &t, 0);
        assert_eq!(r.status, Status::Critical);
        assert!(r
            .summary
            .ends_with("; 0 commits per second in databases matching ^idle$"));
        assert_eq!(perf(&r)[3], "commit_rate=0;1:;0.1:;0");
    }

    #[test]
    fn alerts_name_the_databases_that_ended_transactions() {
        let t = thresholds::<CommitRatio>(Some("5%"), None);
        let r = reported::<CommitRatio>(judge::<CommitRatio>(
            &sample(30.0, 70.0),
            &args(100.0),
            &t,
            0,
        ));
        assert_eq!(r.details, ["app: 30 rollbacks of 100 transactions (30%)"]);
        assert!(r.hint.is_some());
        let first = judge::<CommitRatio>(
            &baseline(&[("app", &[("xact_commit", 1.0), ("xact_rollback", 1.0)])]),
            &args(1.0),
            &t,
            1,
        );
        assert_eq!(first.summary, "first run, baseline saved");
    }
}
