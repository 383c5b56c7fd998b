//! check_pg_archiver: is WAL archiving keeping up? pg_stat_archiver for
//! failures, and the `.ready` files still waiting in archive_status.

use crate::check::{Check, Context, Judging};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::units::pretty_duration;
use pgvigil_kit::words::plural;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Archiver;

#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Archiving")]
pub struct Args {
    /// CRITICAL when archive_mode is off (by default that is OK, and said so)
    #[arg(long)]
    pub require_archiving: bool,
}

// pg_ls_archive_statusdir needs pg_monitor; its refusal becomes an UNKNOWN naming the grant.
const SQL: &str = "
SELECT current_setting('archive_mode') AS archive_mode,
       pg_is_in_recovery() AS in_recovery,
       s.archived_count, s.failed_count, s.last_archived_wal, s.last_failed_wal,
       to_char(s.last_archived_time, 'YYYY-MM-DD HH24:MI:SS TZ') AS last_archived_at,
       to_char(s.last_failed_time, 'YYYY-MM-DD HH24:MI:SS TZ') AS last_failed_at,
       coalesce(s.last_failed_time > coalesce(s.last_archived_time, '-infinity'), false) AS failing,
       r.ready, coalesce(r.oldest_ready_seconds, 0)::float8 AS oldest_ready_seconds
FROM pg_stat_archiver s,
     (SELECT count(*)::int8 AS ready,
             greatest(extract(epoch FROM now() - min(modification)), 0) AS oldest_ready_seconds
        FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready') r";

impl Check for Archiver {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Count, Unit::Seconds], Some(Unit::Count));
    const HINT: &'static str = "read the server log for the failing archive_command (run it by hand as the postgres user with a WAL file name), check the archive target is reachable and has room, and watch disk under pg_wal: it fills while archiving fails";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A plain number applies to the count of WAL files waiting (.ready), a
  duration to the age of the oldest. A failing archive_command is CRITICAL
  regardless.";
    type Args = Args;
    type Measured = Measured;

    fn fetch(_args: &Args, db: &mut Session, _ctx: &Context) -> Result<Self::Measured, Error> {
        measure(db)
    }

    /// A failing archive_command is CRITICAL; otherwise the files waiting (a
    /// count) and the oldest one's age (a duration) against `-w`/`-c`. A server
    /// that is not meant to archive is OK, saying why, unless archiving is
    /// required.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, args) = (judging.thresholds, judging.args);
        let perf = [
            PerfData::new("ready", m.ready as f64, Unit::Count)
                .thresholds(t)
                .min(0.0),
            PerfData::new("oldest_ready", m.oldest_ready.round(), Unit::Seconds)
                .thresholds(t)
                .min(0.0),
            PerfData::counter("archived", m.archived as f64),
            PerfData::counter("failed", m.failed as f64),
        ];
        // Archiving that is not meant to happen here.
        let idle_reason = if m.mode == "off" {
            Some("archiving is off (archive_mode = off)")
        } else if m.in_recovery && m.mode == "on" {
            Some(
                "standby with archive_mode = on: the primary archives (use always to archive here)",
            )
        } else {
            None
        };
        if let Some(reason) = idle_reason {
            let status = if args.require_archiving && m.mode == "off" {
                Status::Critical
            } else {
                Status::Ok
            };
            return CheckResult::new(status, reason).perf(perf);
        }
        // A failing archive_command outranks every threshold.
        let status = if m.failing {
            Status::Critical
        } else {
            t.status(&[
                (Unit::Count, m.ready as f64),
                (Unit::Seconds, m.oldest_ready),
            ])
        };
        let waiting = format!(
            "{} WAL file{} waiting{}",
            m.ready,
            plural(m.ready),
            if m.ready > 0 {
                format!(", oldest {}", pretty_duration(m.oldest_ready))
            } else {
                String::new()
            }
        );
        let last_ok = match &m.last_archived_at {
            Some(at) => format!(
                "last success {at} ({})",
                m.last_archived_wal.as_deref().unwrap_or_default()
            ),
            None => "never archived successfully".to_string(),
        };
        let summary = if m.failing {
            format!(
                "archive_command failing: {} failed at {} ({} failure{} in all), {last_ok}; {waiting}",
                m.last_failed_wal.as_deref().unwrap_or_default(),
                m.last_failed_at.as_deref().unwrap_or_default(),
                m.failed,
                plural(m.failed),
            )
        } else {
            format!("{waiting}; {last_ok}")
        };
        CheckResult::new(status, summary).perf(perf)
    }
}

/// What one run reads of the archiver.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// archive_mode: off, on or always.
    pub mode: String,
    pub in_recovery: bool,
    pub archived: i64,
    pub failed: i64,
    /// The last failure is more recent than the last success.
    pub failing: bool,
    pub last_archived_wal: Option<String>,
    pub last_archived_at: Option<String>,
    pub last_failed_wal: Option<String>,
    pub last_failed_at: Option<String>,
    /// WAL files waiting (.ready) and the oldest one's age in seconds.
    pub ready: i64,
    pub oldest_ready: f64,
}

fn measure(db: &mut Session) -> Result<Measured, Error> {
    let row = db.query_one(SQL)?;
    Ok(Measured {
        mode: get(&row, "archive_mode")?,
        in_recovery: get(&row, "in_recovery")?,
        archived: get(&row, "archived_count")?,
        failed: get(&row, "failed_count")?,
        failing: get(&row, "failing")?,
        last_archived_wal: get(&row, "last_archived_wal")?,
        last_archived_at: get(&row, "last_archived_at")?,
        last_failed_wal: get(&row, "last_failed_wal")?,
        last_failed_at: get(&row, "last_failed_at")?,
        ready: get(&row, "ready")?,
        oldest_ready: get(&row, "oldest_ready_seconds")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, perf, reported, thresholds};

    fn archiving(ready: i64, oldest: f64) -> Measured {
        Measured {
            mode: "on".into(),
            archived: 12,
            last_archived_wal: Some("00000001000000000000000B".into()),
            last_archived_at: Some("2026-11-29 10:00:00 UTC".into()),
            ready,
            oldest_ready: oldest,
            ..Measured::default()
        }
    }

    #[test]
    fn no_default_thresholds_and_counts_and_ages_each_their_own() {
        let none = Args::default();
        let r = judge::<Archiver>(
            &archiving(500, 86400.0),
            &none,
            &thresholds::<Archiver>(None, None),
            0,
        );
        assert_eq!(r.status, Status::Ok);
        let t = thresholds::<Archiver>(Some("10,10min"), Some("50,1h"));
        assert_eq!(
            judge::<Archiver>(&archiving(10, 600.0), &none, &t, 0).status,
            Status::Ok
        );
        assert_eq!(
            judge::<Archiver>(&archiving(11, 0.0), &none, &t, 0).status,
            Status::Warning
        );
        assert_eq!(
            judge::<Archiver>(&archiving(1, 601.0), &none, &t, 0).status,
            Status::Warning
        );
        assert_eq!(
            judge::<Archiver>(&archiving(51, 0.0), &none, &t, 0).status,
            Status::Critical
        );
        let r = judge::<Archiver>(&archiving(2, 75.4), &none, &t, 0);
        assert_eq!(
            r.summary,
            "2 WAL files waiting, oldest 1 min 15 s; last success 2026-11-29 10:00:00 UTC (00000001000000000000000B)"
        );
        assert_eq!(
            perf(&r),
            [
                "ready=2;10;50;0",
                "oldest_ready=75s;600;3600;0",
                "archived=12c",
                "failed=0c"
            ]
        );
    }

    #[test]
    fn a_failing_command_is_critical_whatever_the_thresholds() {
        let m = Measured {
            failing: true,
            failed: 3,
            last_failed_wal: Some("00000001000000000000000C".into()),
            last_failed_at: Some("2026-11-29 10:05:00 UTC".into()),
            ..archiving(0, 0.0)
        };
        let r = reported::<Archiver>(judge::<Archiver>(
            &m,
            &Args::default(),
            &thresholds::<Archiver>(None, None),
            0,
        ));
        assert_eq!(r.status, Status::Critical);
        assert!(r.summary.starts_with(
            "archive_command failing: 00000001000000000000000C failed at 2026-11-29 10:05:00 UTC (3 failures in all), last success"
        ));
        assert!(r
            .hint
            .unwrap()
            .starts_with("read the server log for the failing archive_command"));
        let never = Measured {
            last_archived_at: None,
            ..m
        };
        assert!(judge::<Archiver>(
            &never,
            &Args::default(),
            &thresholds::<Archiver>(None, None),
            0
        )
        .summary
        .contains("never archived successfully"));
    }

    #[test]
    fn a_server_not_meant_to_archive_says_so() {
        let t = thresholds::<Archiver>(Some("0"), Some("0"));
        let off = Measured {
            mode: "off".into(),
            ready: 5,
            ..Measured::default()
        };
        let r = judge::<Archiver>(&off, &Args::default(), &t, 0);
        assert_eq!(
            (r.status, r.summary.as_str()),
            (Status::Ok, "archiving is off (archive_mode = off)")
        );
        let required = Args {
            require_archiving: true,
        };
        assert_eq!(
            judge::<Archiver>(&off, &required, &t, 0).status,
            Status::Critical
        );
        let standby = Measured {
            mode: "on".into(),
            in_recovery: true,
            ..Measured::default()
        };
        let r = judge::<Archiver>(&standby, &required, &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert!(r.summary.starts_with("standby with archive_mode = on"));
    }
}
