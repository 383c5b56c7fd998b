//! check_pg_temp_files: temporary files written since the previous run, by
//! queries whose sorts and hashes did not fit in work_mem.

use crate::check::{Check, Context, Judging};
use crate::checks::common::stat_database::{self, Sample};
use crate::session::Session;
use pgvigil_kit::state::StateArgs;
use pgvigil_kit::units::pretty_bytes;
use pgvigil_kit::words::plural;
use pgvigil_kit::{CheckResult, Error, PerfData, Unit, UnitSpec};

pub struct TempFiles;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub state: StateArgs,
}

const COLUMNS: &[&str] = &["temp_files", "temp_bytes"];

impl Check for TempFiles {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Count, Unit::Bytes], Some(Unit::Count));
    const HINT: &'static str = "queries spill sorts and hashes to disk: find them with log_temp_files and pg_stat_statements (temp_blks_written), then raise work_mem for those roles or fix the queries";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A plain number applies to the temporary files written since the previous
  run, a size to their bytes. No default.";
    type Args = Args;
    type Measured = Sample;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        stat_database::sample(db, ctx, &args.state, COLUMNS)
    }

    /// Temporary files (a count) and their bytes (a size) over the interval
    /// against `-w`/`-c`.
    fn judge(sample: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let t = judging.thresholds;
        let counters = sample.counters(&[
            ("temp_files_total", "temp_files"),
            ("temp_bytes_total", "temp_bytes"),
        ]);
        if let Some(first) = sample.baseline(&counters) {
            return first;
        }
        let files = sample.total_delta("temp_files");
        let bytes = sample.total_delta("temp_bytes");
        let status = t.status(&[(Unit::Count, files), (Unit::Bytes, bytes)]);
        let summary = format!(
            "{files} temporary file{} ({}) {}",
            plural(files as i64),
            pretty_bytes(bytes),
            sample.rates.over()
        );
        let mut perf = vec![
            PerfData::new("temp_files", files, Unit::Count)
                .thresholds(t)
                .min(0.0),
            PerfData::new("temp_bytes", bytes, Unit::Bytes)
                .thresholds(t)
                .min(0.0),
        ];
        perf.extend(counters);
        let details = sample
            .databases
            .iter()
            .filter_map(|d| {
                let n = sample.delta(&d.name, "temp_files")?;
                let b = sample.delta(&d.name, "temp_bytes")?;
                (n > 0.0).then(|| format!("{}: {n} files, {}", d.name, pretty_bytes(b)))
            })
            .collect::<Vec<_>>();
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::stat_database::samples::{baseline, measured};
    use crate::checks::testing::{judge, options, perf, reported, thresholds};
    use pgvigil_kit::Status;

    fn sample(files: f64, bytes: f64) -> Sample {
        measured(
            600.0,
            &[
                (
                    "app",
                    &[
                        ("temp_files", 10.0, 10.0 + files),
                        ("temp_bytes", 0.0, bytes),
                    ],
                ),
                (
                    "shop",
                    &[("temp_files", 1.0, 1.0), ("temp_bytes", 5.0, 5.0)],
                ),
            ],
        )
    }

    #[test]
    fn counts_to_files_and_sizes_to_bytes_no_default() {
        assert_eq!(
            judge::<TempFiles>(
                &sample(1e6, 1e15),
                &options(&[]),
                &thresholds::<TempFiles>(None, None),
                0
            )
            .status,
            Status::Ok
        );
        let t = thresholds::<TempFiles>(Some("100,1GB"), Some("1000,10GB"));
        assert_eq!(
            judge::<TempFiles>(&sample(100.0, 1073741824.0), &options(&[]), &t, 0).status,
            Status::Ok
        );
        assert_eq!(
            judge::<TempFiles>(&sample(101.0, 0.0), &options(&[]), &t, 0).status,
            Status::Warning
        );
        assert_eq!(
            judge::<TempFiles>(&sample(0.0, 1073741825.0), &options(&[]), &t, 0).status,
            Status::Warning
        );
        assert_eq!(
            judge::<TempFiles>(&sample(1001.0, 0.0), &options(&[]), &t, 0).status,
            Status::Critical
        );
    }

    #[test]
    fn the_line_and_the_databases_that_spilled() {
        let t = thresholds::<TempFiles>(Some("1"), None);
        let r = reported::<TempFiles>(judge::<TempFiles>(
            &sample(3.0, 3.0 * 1048576.0),
            &options(&[]),
            &t,
            0,
        ));
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "3 temporary files (3072 kB) in the last 10 min 0 s"
        );
        assert_eq!(r.details, ["app: 3 files, 3072 kB"]);
        assert_eq!(
            perf(&r),
            [
                "temp_files=3;1;;0",
                "temp_bytes=3145728B;;;0",
                "temp_files_total=14c",
                "temp_bytes_total=3145733c"
            ]
        );
        assert!(r.hint.is_some());
        let first = judge::<TempFiles>(
            &baseline(&[("app", &[("temp_files", 2.0), ("temp_bytes", 9.0)])]),
            &options(&[]),
            &t,
            0,
        );
        assert_eq!((first.status, first.details.len()), (Status::Ok, 0));
    }
}
