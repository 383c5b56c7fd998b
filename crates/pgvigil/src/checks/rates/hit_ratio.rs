//! check_pg_hit_ratio: the share of block reads served from shared buffers
//! over the interval since the previous run, not since the statistics were
//! last reset (a ratio "since March" never moves).

use crate::check::{Check, Context, Judging};
use crate::checks::common::stat_database::{self, Sample};
use crate::session::Session;
use pgvigil_kit::state::StateArgs;
use pgvigil_kit::units::round_to;
use pgvigil_kit::words::percent_text;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct HitRatio;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Hit ratio")]
pub struct Args {
    /// Block reads (hits plus misses) an interval needs before its ratio is judged, in all and per database
    #[arg(long, value_name = "N", default_value_t = 1000.0)]
    pub min_reads: f64,
    #[command(flatten)]
    pub state: StateArgs,
}

const COLUMNS: &[&str] = &["blks_hit", "blks_read"];

/// Hit ratio of the blocks read in the interval, with how many were read.
fn ratio(sample: &Sample, database: Option<&str>) -> (f64, f64) {
    let (hit, read) = match database {
        Some(name) => (
            sample.delta(name, "blks_hit").unwrap_or(0.0),
            sample.delta(name, "blks_read").unwrap_or(0.0),
        ),
        None => (
            sample.total_delta("blks_hit"),
            sample.total_delta("blks_read"),
        ),
    };
    let accesses = hit + read;
    let pct = if accesses > 0.0 {
        hit / accesses * 100.0
    } else {
        100.0
    };
    (pct, accesses)
}

impl Check for HitRatio {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Percent], Some(Unit::Percent));
    const HINT: &'static str = "reads miss shared_buffers: check shared_buffers against the working set, look for sequential scans of large tables (pg_stat_user_tables.seq_tup_read) and missing indexes";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the hit ratio in % (in all, and of each database that read
  at least --min-reads blocks); they are lower bounds. Default: {defaults}.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("95:", "90:"));
    type Args = Args;
    type Measured = Sample;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        stat_database::sample(db, ctx, &args.state, COLUMNS)
    }

    /// The hit ratio over the interval, in all and per database, against the
    /// lower bounds `-w`/`-c`; fewer than --min-reads block reads are not judged.
    fn judge(sample: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, args, verbose) = (judging.thresholds, judging.args, judging.verbose);
        let counters = sample.counters(&[("blks_hit", "blks_hit"), ("blks_read", "blks_read")]);
        if let Some(first) = sample.baseline(&counters) {
            return first;
        }
        let (pct, accesses) = ratio(sample, None);
        let judged = |pct: f64, accesses: f64| {
            if accesses >= args.min_reads {
                t.status(&[(Unit::Percent, pct)])
            } else {
                Status::Ok
            }
        };
        let mut status = judged(pct, accesses);
        let mut details = Vec::new();
        let mut perf = vec![PerfData::new("hit_ratio", round_to(pct, 2), Unit::Percent)
            .thresholds(t)
            .min(0.0)
            .max(100.0)];
        for d in &sample.databases {
            if sample.delta(&d.name, "blks_hit").is_none() {
                continue;
            }
            let (db_pct, db_accesses) = ratio(sample, Some(&d.name));
            let db_status = judged(db_pct, db_accesses);
            status = status.worst(db_status);
            perf.push(
                PerfData::new(
                    format!("{} hit_ratio", d.name),
                    round_to(db_pct, 2),
                    Unit::Percent,
                )
                .min(0.0)
                .max(100.0),
            );
            if db_accesses > 0.0 {
                details.push(format!(
                    "{} {}: {} of {db_accesses} block reads from shared buffers",
                    db_status,
                    d.name,
                    percent_text(db_pct)
                ));
            }
        }
        perf.extend(counters);
        let summary = if accesses < args.min_reads {
            format!(
                "{} hit ratio {}, {accesses} block reads (fewer than --min-reads {}: not judged)",
                percent_text(pct),
                sample.rates.over(),
                args.min_reads
            )
        } else {
            format!(
                "{} hit ratio {}, {accesses} block reads",
                percent_text(pct),
                sample.rates.over()
            )
        };
        if status == Status::Ok && verbose == 0 {
            details.clear();
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

    fn args(min_reads: f64) -> Args {
        Args {
            min_reads,
            state: StateArgs::default(),
        }
    }

    /// `app` reads hit+read blocks in the interval; `quiet` a few, all misses.
    fn sample(hit: f64, read: f64) -> Sample {
        measured(
            60.0,
            &[
                ("app", &[("blks_hit", 0.0, hit), ("blks_read", 0.0, read)]),
                ("quiet", &[("blks_hit", 0.0, 0.0), ("blks_read", 0.0, 5.0)]),
            ],
        )
    }

    #[test]
    fn default_lower_bounds_are_95_and_90_percent() {
        let t = thresholds::<HitRatio>(None, None);
        // 5 misses of quiet count in all: 9500 of 10005.
        assert_eq!(
            judge::<HitRatio>(&sample(9505.0, 495.0), &args(1000.0), &t, 0).status,
            Status::Ok
        );
        assert_eq!(
            judge::<HitRatio>(&sample(9400.0, 600.0), &args(1000.0), &t, 0).status,
            Status::Warning
        );
        assert_eq!(
            judge::<HitRatio>(&sample(8900.0, 1100.0), &args(1000.0), &t, 0).status,
            Status::Critical
        );
    }

    #[test]
    fn too_few_reads_are_not_judged_in_all_nor_per_database() {
        let t = thresholds::<HitRatio>(None, None);
        let r = judge::<HitRatio>(&sample(10.0, 90.0), &args(1000.0), &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.summary,
            "9.5% hit ratio in the last 1 min 0 s, 105 block reads (fewer than --min-reads 1000: not judged)"
        );
        // quiet's 5 reads, all misses, are below --min-reads even when app alerts.
        let r = reported::<HitRatio>(judge::<HitRatio>(
            &sample(8000.0, 2000.0),
            &args(100.0),
            &t,
            0,
        ));
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.details,
            [
                "CRITICAL app: 80% of 10000 block reads from shared buffers",
                "OK quiet: 0% of 5 block reads from shared buffers"
            ]
        );
        assert!(r.hint.is_some());
    }

    #[test]
    fn perfdata_in_all_per_database_and_the_counters() {
        let t = thresholds::<HitRatio>(None, None);
        let r = judge::<HitRatio>(&sample(9995.0, 0.0), &args(1000.0), &t, 0);
        assert_eq!(
            perf(&r),
            [
                "hit_ratio=99.95%;95:;90:;0;100",
                "'app hit_ratio'=100%;;;0;100",
                "'quiet hit_ratio'=0%;;;0;100",
                "blks_hit=9995c",
                "blks_read=5c"
            ]
        );
        assert!(r.details.is_empty());
        let first = judge::<HitRatio>(
            &baseline(&[("app", &[("blks_hit", 1.0), ("blks_read", 1.0)])]),
            &args(1.0),
            &t,
            0,
        );
        assert_eq!(first.summary, "first run, baseline saved");
    }
}
