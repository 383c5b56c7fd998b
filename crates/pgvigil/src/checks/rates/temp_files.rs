//! check_pg_temp_files: temporary files written since the previous run, by
//! queries whose sorts and hashes did not fit in work_mem.

use crate::checks::rates::stat_database;
use crate::rates::Interval;
use crate::state::StateArgs;
use crate::units::pretty_bytes;
use crate::words::plural;
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

pub struct TempFiles;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub state: StateArgs,
}

const COLUMNS: &[&str] = &["temp_files", "temp_bytes"];

impl Check for TempFiles {
    const DISPLAY: &'static str = "TEMP_FILES";
    const ABOUT: &'static str =
        "Temporary files and bytes written since the previous run (counters kept in a state file).";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Count, Unit::Bytes],
        bare: Some(Unit::Count),
        labels: &[],
    };
    const HINT: &'static str = "queries spill sorts and hashes to disk: find them with log_temp_files and pg_stat_statements (temp_blks_written), then raise work_mem for those roles or fix the queries";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A plain number applies to the temporary files written since the previous
  run, a size to their bytes. No default.";
    type Args = Args;

    fn run(args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        // Query
        let sample = stat_database::sample(db, ctx, &args.state, COLUMNS)?;
        let counters = [
            PerfData::counter("temp_files_total", sample.total("temp_files")),
            PerfData::counter("temp_bytes_total", sample.total("temp_bytes")),
        ];
        if let Interval::Baseline { why } = &sample.rates.interval {
            return Ok(CheckResult::new(Status::Ok, why.clone()).perf(counters));
        }

        // Measure
        let files = sample.total_delta("temp_files");
        let bytes = sample.total_delta("temp_bytes");

        // Compare
        let t = &ctx.thresholds;
        let status = t.status(&[(Unit::Count, files), (Unit::Bytes, bytes)]);

        // Report
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
        Ok(CheckResult::new(status, summary)
            .perf(perf)
            .details(details))
    }
}
