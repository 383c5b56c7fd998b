//! check_pg_checkpoints: the share of checkpoints since the previous run
//! that were requested (WAL filled max_wal_size, or someone asked) rather
//! than timed, and the time they spent writing and syncing. PostgreSQL 17
//! moved these counters from pg_stat_bgwriter to pg_stat_checkpointer.

use crate::check::{Check, Context, Judging};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::rates::{self, Interval, Rates};
use pgvigil_kit::state::{Snapshot, StateArgs};
use pgvigil_kit::units::{pretty_duration, round_to};
use pgvigil_kit::words::{percent_text, plural};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Checkpoints;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub state: StateArgs,
    /// Judge the requested share only over at least N checkpoints; until then the span since the last judged run carries over to the next run (0: judge every interval)
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub min_checkpoints: u32,
}

const VERSION: &str = "SELECT current_setting('server_version_num')::int AS version";

const UP_TO_16: &str = "
SELECT extract(epoch FROM now())::float8 AS now, pg_postmaster_start_time()::text AS started,
       coalesce(stats_reset::text, '') AS stats_reset,
       checkpoints_timed::float8 AS timed, checkpoints_req::float8 AS requested,
       checkpoint_write_time::float8 AS write_ms, checkpoint_sync_time::float8 AS sync_ms,
       buffers_checkpoint::float8 AS buffers
FROM pg_stat_bgwriter";

const FROM_17: &str = "
SELECT extract(epoch FROM now())::float8 AS now, pg_postmaster_start_time()::text AS started,
       coalesce(stats_reset::text, '') AS stats_reset,
       num_timed::float8 AS timed, num_requested::float8 AS requested,
       write_time::float8 AS write_ms, sync_time::float8 AS sync_ms,
       buffers_written::float8 AS buffers
FROM pg_stat_checkpointer";

const COUNTERS: [&str; 5] = ["timed", "requested", "write_ms", "sync_ms", "buffers"];

impl Check for Checkpoints {
    const INTERVAL: u32 = 3600;
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Percent], Some(Unit::Percent));
    const HINT: &'static str = "requested checkpoints come from WAL volume: raise max_wal_size until checkpoints are timed, spread them with checkpoint_completion_target, and look at what writes so much WAL (pg_stat_statements)";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the share (%) of requested checkpoints among those since the
  last judged run. Requested checkpoints come from WAL reaching max_wal_size
  (too small for the write load), but also from a CHECKPOINT command and from
  every base backup: so the share is judged only over at least
  --min-checkpoints (default 10, about 50 minutes at the default
  checkpoint_timeout of 5 min). Over fewer, the run is OK, says so, and the
  next run judges over the longer span. No default thresholds.";
    type Args = Args;
    type Measured = Rates;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let version: i32 = get(&db.query_one(VERSION)?, "version")?;
        let row = db.query_one(if version >= 170000 { FROM_17 } else { UP_TO_16 })?;
        let mut snapshot = Snapshot {
            taken_at: get(&row, "now")?,
            ..Snapshot::default()
        };
        snapshot
            .markers
            .insert("postmaster".into(), get(&row, "started")?);
        snapshot
            .markers
            .insert("checkpointer".into(), get(&row, "stats_reset")?);
        for name in COUNTERS {
            snapshot.counters.insert(name.into(), get(&row, name)?);
        }
        let store = ctx.state_store(&args.state)?;
        let min = f64::from(args.min_checkpoints);
        rates::advance_when(&store, snapshot, 0.0, |r| checkpoints(r) >= min)
    }

    /// The share of requested checkpoints over the interval against `-w`/`-c`,
    /// once the interval holds at least `min` checkpoints.
    fn judge(rates: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (min, t) = (judging.args.min_checkpoints, judging.thresholds);
        let counters = [
            PerfData::counter("checkpoints_timed", rates.current.counters["timed"]),
            PerfData::counter("checkpoints_requested", rates.current.counters["requested"]),
        ];
        if let Interval::Baseline { why } = &rates.interval {
            return CheckResult::new(Status::Ok, why.clone()).perf(counters);
        }
        let delta = |name: &str| rates.delta(name).unwrap_or(0.0);
        let (requested, all) = (delta("requested"), checkpoints(rates));
        let pct = if all > 0.0 {
            requested / all * 100.0
        } else {
            0.0
        };
        let (write, sync) = (delta("write_ms") / 1000.0, delta("sync_ms") / 1000.0);
        if all < f64::from(min) {
            // One CHECKPOINT or base backup among a handful is 100% requested
            // and says nothing of max_wal_size: wait for more.
            let summary = format!(
                "{all} checkpoint{} {}, {requested} requested: not judged, fewer than --min-checkpoints {min} (the span carries over to the next run)",
                plural(all as i64),
                rates.over(),
            );
            let mut perf = vec![PerfData::new("checkpoints", all, Unit::Count).min(0.0)];
            perf.extend(counters);
            return CheckResult::new(Status::Ok, summary).perf(perf);
        }
        let status = t.status(&[(Unit::Percent, pct)]);
        let summary = format!(
            "{all} checkpoint{} {}, {requested} requested ({}): writing {}, syncing {}, {} buffers written",
            plural(all as i64),
            rates.over(),
            percent_text(pct),
            pretty_duration(write),
            pretty_duration(sync),
            delta("buffers")
        );
        let mut perf = vec![
            PerfData::new("requested_pct", round_to(pct, 2), Unit::Percent)
                .thresholds(t)
                .min(0.0)
                .max(100.0),
            PerfData::new("checkpoints", all, Unit::Count).min(0.0),
            PerfData::new("write_time", round_to(write, 3), Unit::Seconds).min(0.0),
            PerfData::new("sync_time", round_to(sync, 3), Unit::Seconds).min(0.0),
        ];
        perf.extend(counters);
        CheckResult::new(status, summary).perf(perf)
    }
}

/// Checkpoints, timed and requested, over the interval.
fn checkpoints(rates: &Rates) -> f64 {
    rates.delta("timed").unwrap_or(0.0) + rates.delta("requested").unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};

    fn with_min_checkpoints(min_checkpoints: u32) -> Args {
        Args {
            min_checkpoints,
            ..options(&[])
        }
    }

    fn rates(timed: f64, requested: f64) -> Rates {
        let snapshot = |timed: f64, requested: f64| {
            let mut s = Snapshot::default();
            for (name, v) in [
                ("timed", timed),
                ("requested", requested),
                ("write_ms", timed * 1500.0),
                ("sync_ms", 20.0),
                ("buffers", 1000.0),
            ] {
                s.counters.insert(name.into(), v);
            }
            s
        };
        Rates {
            current: snapshot(10.0 + timed, 5.0 + requested),
            interval: Interval::Measured {
                seconds: 3600.0,
                previous: snapshot(10.0, 5.0),
            },
        }
    }

    #[test]
    fn percent_of_requested_checkpoints_no_default() {
        assert_eq!(
            judge::<Checkpoints>(
                &rates(1.0, 9.0),
                &with_min_checkpoints(10),
                &thresholds::<Checkpoints>(None, None),
                0
            )
            .status,
            Status::Ok
        );
        let t = thresholds::<Checkpoints>(Some("30%"), Some("60%"));
        assert_eq!(
            judge::<Checkpoints>(&rates(7.0, 3.0), &with_min_checkpoints(10), &t, 0).status,
            Status::Ok
        );
        assert_eq!(
            judge::<Checkpoints>(&rates(6.0, 4.0), &with_min_checkpoints(10), &t, 0).status,
            Status::Warning
        );
        assert_eq!(
            judge::<Checkpoints>(&rates(3.0, 7.0), &with_min_checkpoints(10), &t, 0).status,
            Status::Critical
        );
        // No checkpoint at all in the interval: not judged, not a division
        // by zero, even with a minimum of one.
        let r = judge::<Checkpoints>(&rates(0.0, 0.0), &with_min_checkpoints(1), &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.summary,
            "0 checkpoints in the last 1 h 0 min, 0 requested: not judged, fewer than --min-checkpoints 1 (the span carries over to the next run)"
        );
    }

    #[test]
    fn a_single_requested_checkpoint_is_not_judged() {
        let t = thresholds::<Checkpoints>(Some("30%"), Some("60%"));
        let r = judge::<Checkpoints>(&rates(0.0, 1.0), &with_min_checkpoints(10), &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.summary,
            "1 checkpoint in the last 1 h 0 min, 1 requested: not judged, fewer than --min-checkpoints 10 (the span carries over to the next run)"
        );
        assert_eq!(
            perf(&r),
            [
                "checkpoints=1;;;0",
                "checkpoints_timed=10c",
                "checkpoints_requested=6c"
            ]
        );
        // A CHECKPOINT and a base backup in fifty minutes of timed ones.
        assert_eq!(
            judge::<Checkpoints>(&rates(8.0, 2.0), &with_min_checkpoints(10), &t, 0).status,
            Status::Ok
        );
        // Sustained WAL volume.
        assert_eq!(
            judge::<Checkpoints>(&rates(1.0, 11.0), &with_min_checkpoints(10), &t, 0).status,
            Status::Critical
        );
    }

    #[test]
    fn the_line_and_perfdata() {
        let t = thresholds::<Checkpoints>(Some("30%"), None);
        let r = reported::<Checkpoints>(judge::<Checkpoints>(
            &rates(2.0, 2.0),
            &with_min_checkpoints(4),
            &t,
            0,
        ));
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "4 checkpoints in the last 1 h 0 min, 2 requested (50%): writing 3 s, syncing 0 ms, 0 buffers written"
        );
        assert_eq!(
            perf(&r),
            [
                "requested_pct=50%;30;;0;100",
                "checkpoints=4;;;0",
                "write_time=3s;;;0",
                "sync_time=0s;;;0",
                "checkpoints_timed=12c",
                "checkpoints_requested=7c"
            ]
        );
        assert!(r
            .hint
            .unwrap()
            .starts_with("requested checkpoints come from WAL volume"));
    }
}
