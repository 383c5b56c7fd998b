//! check_pg_conflicts: queries on a hot standby cancelled by recovery
//! conflicts since the previous run, per database and per kind. A report
//! on a standby fails with "canceling statement due to conflict with
//! recovery" when replay must remove rows it still reads, or take a lock it
//! holds; PostgreSQL counts each kind in pg_stat_database_conflicts.

use crate::check::{Check, Context, Judging};
use crate::checks::common::stat_database::{self, Sample};
use crate::session::Session;
use pgvigil_kit::state::StateArgs;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Conflicts;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub state: StateArgs,
}

/// Each kind of conflict: its column, and what the output calls it.
const KINDS: &[(&str, &str)] = &[
    ("confl_snapshot", "snapshot"),
    ("confl_lock", "lock"),
    ("confl_bufferpin", "buffer pin"),
    ("confl_deadlock", "deadlock"),
    ("confl_tablespace", "tablespace"),
    ("confl_active_logicalslot", "logical slot"),
];

const COLUMNS: &[&str] = &[
    "confl_snapshot",
    "confl_lock",
    "confl_bufferpin",
    "confl_deadlock",
    "confl_tablespace",
    "confl_active_logicalslot",
];

// The columns every pg_stat_database sample has, and the conflicts by kind;
// confl_active_logicalslot is 16+, read through to_jsonb so that one
// statement serves every version.
const SQL: &str = "
SELECT extract(epoch FROM now())::float8 AS now, pg_postmaster_start_time()::text AS started,
       current_setting('data_checksums') = 'on' AS data_checksums,
       pg_is_in_recovery() AS in_recovery,
       d.datname::text AS datname, coalesce(d.stats_reset::text, '') AS stats_reset,
       NULL::text AS checksum_last_failure,
       c.confl_snapshot::float8 AS confl_snapshot, c.confl_lock::float8 AS confl_lock,
       c.confl_bufferpin::float8 AS confl_bufferpin, c.confl_deadlock::float8 AS confl_deadlock,
       c.confl_tablespace::float8 AS confl_tablespace,
       coalesce((to_jsonb(c) ->> 'confl_active_logicalslot')::float8, 0) AS confl_active_logicalslot
FROM pg_stat_database d JOIN pg_stat_database_conflicts c ON c.datid = d.datid
ORDER BY d.datname";

impl Check for Conflicts {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Count], Some(Unit::Count));
    const HINT: &'static str = "queries on this standby were cancelled so that replay could go on: raise max_standby_streaming_delay (the standby then lags while a query runs), set hot_standby_feedback = on (the primary then keeps rows longer: bloat), or run long reports on a standby kept for them";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the conflicts since the previous run, all kinds together.
  Default: {defaults} (any cancelled query is WARNING), no -c. Only a standby has
  recovery conflicts: on a primary the count stays 0. The first run saves a
  baseline and is OK.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("0", ""));
    type Args = Args;
    type Measured = Sample;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let rows = db.query(SQL)?;
        stat_database::from_rows(&rows, ctx, &args.state, COLUMNS)
    }

    /// The conflicts of every kind over the interval against `-w`/`-c`, named
    /// per database and kind.
    fn judge(sample: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let t = judging.thresholds;
        let counters: Vec<PerfData> = KINDS
            .iter()
            .map(|(column, _)| {
                PerfData::counter(
                    format!("{}_total", column.trim_start_matches("confl_")),
                    sample.total(column),
                )
            })
            .collect();
        if let Some(first) = sample.baseline(&counters) {
            return first;
        }
        let by_kind: Vec<(&str, f64)> = KINDS
            .iter()
            .map(|(column, name)| (*name, sample.total_delta(column)))
            .collect();
        let total: f64 = by_kind.iter().map(|(_, n)| n).sum();
        let status = t.status(&[(Unit::Count, total)]);
        let mut summary = format!(
            "{total} quer{} cancelled by recovery conflicts {}",
            if total == 1.0 { "y" } else { "ies" },
            sample.rates.over()
        );
        let kinds: Vec<String> = by_kind
            .iter()
            .filter(|(_, n)| *n > 0.0)
            .map(|(name, n)| format!("{n} {name}"))
            .collect();
        if !kinds.is_empty() {
            summary.push_str(&format!(" ({})", kinds.join(", ")));
        }
        if !sample.in_recovery {
            summary.push_str("; a primary: recovery conflicts happen only on standbys");
        }
        let mut perf = vec![PerfData::new("conflicts", total, Unit::Count)
            .thresholds(t)
            .min(0.0)];
        perf.extend(KINDS.iter().zip(&by_kind).map(|((column, _), (_, n))| {
            PerfData::new(column.trim_start_matches("confl_"), *n, Unit::Count).min(0.0)
        }));
        perf.extend(counters);
        let details = if status != Status::Ok || total > 0.0 {
            sample
                .databases
                .iter()
                .filter_map(|d| {
                    let parts: Vec<String> = KINDS
                        .iter()
                        .filter_map(|(column, name)| {
                            let n = sample.delta(&d.name, column)?;
                            (n > 0.0).then(|| format!("{n} {name}"))
                        })
                        .collect();
                    (!parts.is_empty()).then(|| format!("{}: {}", d.name, parts.join(", ")))
                })
                .collect()
        } else {
            Vec::new()
        };
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

    #[test]
    fn conflicts_are_counted_per_kind_and_database() {
        let t = thresholds::<Conflicts>(None, None);
        let s = measured(
            300.0,
            &[
                (
                    "app",
                    &[("confl_snapshot", 1.0, 4.0), ("confl_lock", 0.0, 1.0)],
                ),
                ("reports", &[("confl_snapshot", 0.0, 0.0)]),
            ],
        );
        let r = reported::<Conflicts>(judge::<Conflicts>(&s, &options(&[]), &t, 0));
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "4 queries cancelled by recovery conflicts in the last 5 min 0 s (3 snapshot, 1 lock)"
        );
        assert_eq!(r.details, ["app: 3 snapshot, 1 lock"]);
        assert_eq!(
            perf(&r)[..3],
            ["conflicts=4;0;;0", "snapshot=3;;;0", "lock=1;;;0"]
        );
        assert!(r.hint.unwrap().contains("max_standby_streaming_delay"));
        let none = measured(60.0, &[("app", &[("confl_snapshot", 4.0, 4.0)])]);
        let r = judge::<Conflicts>(&none, &options(&[]), &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.summary,
            "0 queries cancelled by recovery conflicts in the last 1 min 0 s"
        );
        let first = judge::<Conflicts>(
            &baseline(&[("app", &[("confl_snapshot", 4.0)])]),
            &options(&[]),
            &t,
            0,
        );
        assert_eq!(first.summary, "first run, baseline saved");
    }
}
