//! check_pg_checksums: data checksum failures since the previous run (a page
//! read from disk that is not what was written: failing storage), and
//! whether data checksums are on at all.

use crate::check::{Check, Context, Judging};
use crate::checks::common::stat_database::{self, Sample};
use crate::session::Session;
use pgvigil_kit::rates::Interval;
use pgvigil_kit::state::StateArgs;
use pgvigil_kit::words::plural;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Checksums;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Checksums")]
pub struct Args {
    /// WARNING when data checksums are off (initdb --data-checksums, or pg_checksums --enable)
    #[arg(long)]
    pub require_checksums: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

impl Check for Checksums {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Count], Some(Unit::Count));
    const HINT: &'static str = "checksum failures mean corrupted pages: find them in the server log and pg_stat_database, check the storage (dmesg, SMART), and restore the damaged relations from a backup; enabling checksums needs pg_checksums on a stopped cluster";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the checksum failures since the previous run. Default: {defaults}
  (any new failure is CRITICAL). Failures recorded before the first run are
  WARNING on that run, so they are seen once.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("", "0"));
    type Args = Args;
    type Measured = Sample;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        stat_database::sample(db, ctx, &args.state, &["checksum_failures"])
    }

    /// New checksum failures against `-w`/`-c` (default `-c 0`); failures from
    /// before the first run warn once; checksums off warn with --require-checksums.
    fn judge(sample: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, args) = (judging.thresholds, judging.args);
        let enabled = if sample.data_checksums {
            "data checksums on"
        } else {
            "data checksums off"
        };
        let off_status = if !sample.data_checksums && args.require_checksums {
            Status::Warning
        } else {
            Status::Ok
        };
        let total = sample.total("checksum_failures");
        let counter = PerfData::counter("checksum_failures_total", total);
        let failing = |delta_of: &dyn Fn(&str) -> Option<f64>| -> Vec<String> {
            sample
                .databases
                .iter()
                .filter_map(|d| {
                    let n = delta_of(&d.name)?;
                    (n > 0.0).then(|| {
                        format!(
                            "{}: {n} checksum failure{}, last at {}",
                            d.name,
                            plural(n as i64),
                            d.checksum_last_failure
                                .as_deref()
                                .unwrap_or("an unknown time")
                        )
                    })
                })
                .collect()
        };
        if let Interval::Baseline { why } = &sample.rates.interval {
            // Failures from before the first run are shown once.
            let earlier = failing(&|name| {
                sample
                    .databases
                    .iter()
                    .find(|d| d.name == name)
                    .map(|d| d.value("checksum_failures"))
            });
            let status = if earlier.is_empty() {
                off_status
            } else {
                Status::Warning
            };
            let summary = if earlier.is_empty() {
                format!("{enabled}; {why}")
            } else {
                format!(
                    "{enabled}; {total} checksum failure{} recorded before this check's first run ({}); {why}",
                    plural(total as i64),
                    earlier.join("; ")
                )
            };
            return CheckResult::new(status, summary).perf([counter]);
        }
        let new = sample.total_delta("checksum_failures");
        let status = t.status(&[(Unit::Count, new)]).worst(off_status);
        let which = failing(&|name| sample.delta(name, "checksum_failures"));
        let mut summary = format!(
            "{enabled}; {new} new checksum failure{} {}",
            plural(new as i64),
            sample.rates.over()
        );
        if !which.is_empty() {
            summary.push_str(&format!(" ({})", which.join("; ")));
        }
        let perf = [
            PerfData::new("checksum_failures", new, Unit::Count)
                .thresholds(t)
                .min(0.0),
            counter,
        ];
        CheckResult::new(status, summary).perf(perf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::stat_database::samples::{baseline, measured};
    use crate::checks::testing::{judge, perf, reported, thresholds};

    fn args(require_checksums: bool) -> Args {
        Args {
            require_checksums,
            state: StateArgs::default(),
        }
    }

    #[test]
    fn by_default_any_new_failure_is_critical_and_named() {
        let t = thresholds::<Checksums>(None, None);
        let clean = measured(60.0, &[("app", &[("checksum_failures", 2.0, 2.0)])]);
        let r = judge::<Checksums>(&clean, &args(false), &t, 0);
        assert_eq!(
            (r.status, r.summary.as_str()),
            (
                Status::Ok,
                "data checksums on; 0 new checksum failures in the last 1 min 0 s"
            )
        );
        let mut failing = measured(60.0, &[("app", &[("checksum_failures", 2.0, 3.0)])]);
        failing.databases[0].checksum_last_failure = Some("2026-11-29 10:00:00 UTC".into());
        let r = reported::<Checksums>(judge::<Checksums>(&failing, &args(false), &t, 0));
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "data checksums on; 1 new checksum failure in the last 1 min 0 s (app: 1 checksum failure, last at 2026-11-29 10:00:00 UTC)"
        );
        assert_eq!(
            perf(&r),
            ["checksum_failures=1;;0;0", "checksum_failures_total=3c"]
        );
        assert!(r.hint.is_some());
    }

    #[test]
    fn failures_before_the_first_run_warn_once() {
        let t = thresholds::<Checksums>(None, None);
        let r = judge::<Checksums>(
            &baseline(&[("app", &[("checksum_failures", 2.0)])]),
            &args(false),
            &t,
            0,
        );
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "data checksums on; 2 checksum failures recorded before this check's first run (app: 2 checksum failures, last at an unknown time); first run, baseline saved"
        );
        let r = judge::<Checksums>(
            &baseline(&[("app", &[("checksum_failures", 0.0)])]),
            &args(false),
            &t,
            0,
        );
        assert_eq!(r.status, Status::Ok);
    }

    #[test]
    fn checksums_off_warn_only_when_required() {
        let t = thresholds::<Checksums>(None, None);
        let mut off = measured(60.0, &[("app", &[("checksum_failures", 0.0, 0.0)])]);
        off.data_checksums = false;
        assert_eq!(
            judge::<Checksums>(&off, &args(false), &t, 0).status,
            Status::Ok
        );
        let r = judge::<Checksums>(&off, &args(true), &t, 0);
        assert_eq!(r.status, Status::Warning);
        assert!(r.summary.starts_with("data checksums off; "));
    }
}
