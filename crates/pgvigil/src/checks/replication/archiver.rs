//! check_pg_archiver: is WAL archiving keeping up? pg_stat_archiver for
//! failures, and the `.ready` files still waiting in archive_status.

use crate::session::get;
use crate::units::pretty_duration;
use crate::words::plural;
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

pub struct Archiver;

#[derive(Debug, clap::Args)]
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
    const DISPLAY: &'static str = "ARCHIVER";
    const ABOUT: &'static str = "WAL archiving: CRITICAL when archive_command fails, thresholds on the WAL files waiting to be archived.";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Count, Unit::Seconds],
        bare: Some(Unit::Count),
        labels: &[],
    };
    const HINT: &'static str = "read the server log for the failing archive_command (run it by hand as the postgres user with a WAL file name), check the archive target is reachable and has room, and watch disk under pg_wal: it fills while archiving fails";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A plain number applies to the count of WAL files waiting (.ready), a
  duration to the age of the oldest. A failing archive_command is CRITICAL
  regardless.";
    type Args = Args;

    fn run(args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        // Query
        let row = db.query_one(SQL)?;
        let mode: String = get(&row, "archive_mode")?;
        let in_recovery: bool = get(&row, "in_recovery")?;
        let archived: i64 = get(&row, "archived_count")?;
        let failed: i64 = get(&row, "failed_count")?;
        let ready: i64 = get(&row, "ready")?;
        let oldest: f64 = get(&row, "oldest_ready_seconds")?;

        let t = &ctx.thresholds;
        let perf = [
            PerfData::new("ready", ready as f64, Unit::Count)
                .thresholds(t)
                .min(0.0),
            PerfData::new("oldest_ready", oldest.round(), Unit::Seconds)
                .thresholds(t)
                .min(0.0),
            PerfData::counter("archived", archived as f64),
            PerfData::counter("failed", failed as f64),
        ];

        // Archiving that is not meant to happen here.
        let idle_reason = if mode == "off" {
            Some("archiving is off (archive_mode = off)")
        } else if in_recovery && mode == "on" {
            Some(
                "standby with archive_mode = on: the primary archives (use always to archive here)",
            )
        } else {
            None
        };
        if let Some(reason) = idle_reason {
            let status = if args.require_archiving && mode == "off" {
                Status::Critical
            } else {
                Status::Ok
            };
            return Ok(CheckResult::new(status, reason).perf(perf));
        }

        // Compare: a failing archive_command outranks every threshold.
        let failing: bool = get(&row, "failing")?;
        let mut status = t.status(&[(Unit::Count, ready as f64), (Unit::Seconds, oldest)]);
        if failing {
            status = Status::Critical;
        }

        // Report
        let waiting = format!(
            "{ready} WAL file{} waiting{}",
            plural(ready),
            if ready > 0 {
                format!(", oldest {}", pretty_duration(oldest))
            } else {
                String::new()
            }
        );
        let last_ok = match get::<Option<String>>(&row, "last_archived_at")? {
            Some(at) => format!(
                "last success {at} ({})",
                get::<Option<String>>(&row, "last_archived_wal")?.unwrap_or_default()
            ),
            None => "never archived successfully".to_string(),
        };
        let summary = if failing {
            format!(
                "archive_command failing: {} failed at {} ({failed} failure{} in all), {last_ok}; {waiting}",
                get::<Option<String>>(&row, "last_failed_wal")?.unwrap_or_default(),
                get::<Option<String>>(&row, "last_failed_at")?.unwrap_or_default(),
                plural(failed),
            )
        } else {
            format!("{waiting}; {last_ok}")
        };
        Ok(CheckResult::new(status, summary).perf(perf))
    }
}
