//! check_pg_locks: sessions blocked by other sessions, and how long the
//! longest has waited.

use crate::check::require_stats_visibility;
use crate::output::one_line;
use crate::session::get;
use crate::units::{pretty_duration, round_to};
use crate::words::plural;
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

pub struct Locks;

#[derive(Debug, clap::Args)]
pub struct Args {}

// Most runs find no lock waiting: they cost one cheap aggregate. The blocked
// sessions are looked up only when some lock waits (a new backend pays for
// every catalog entry a statement touches, so the full query costs ~4 ms).
const TOTALS_SQL: &str = "
SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all,
       count(*) AS total_locks, count(*) FILTER (WHERE NOT granted) AS waiting_locks
FROM pg_locks";

// pg_locks.waitstart exists from PostgreSQL 14; reading it through to_jsonb
// keeps one statement for every version (older ones fall back to state_change).
const BLOCKED_SQL: &str = "
SELECT b.pid, b.blockers, b.usename, b.datname, b.query, b.wait_seconds,
       h.state AS blocker_state, left(h.query, 60) AS blocker_query,
       greatest(extract(epoch FROM now() - h.state_change), 0)::float8 AS blocker_state_seconds
FROM (
  SELECT a.pid, pg_blocking_pids(a.pid) AS blockers, a.usename::text AS usename,
         a.datname::text AS datname, left(a.query, 100) AS query,
         greatest(extract(epoch FROM now() - coalesce(
           (SELECT min((to_jsonb(l) ->> 'waitstart')::timestamptz)
              FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted),
           a.state_change)), 0)::float8 AS wait_seconds
  FROM pg_stat_activity a
  WHERE a.wait_event_type = 'Lock'
) b
LEFT JOIN pg_stat_activity h ON h.pid = b.blockers[1]
WHERE cardinality(b.blockers) > 0
ORDER BY b.wait_seconds DESC";

impl Check for Locks {
    const DISPLAY: &'static str = "LOCKS";
    const ABOUT: &'static str =
        "Sessions blocked by other sessions' locks (pg_blocking_pids), and the longest wait.";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Count, Unit::Seconds],
        bare: Some(Unit::Count),
        labels: &[],
    };
    const HINT: &'static str = "find the blocker: SELECT pid, pg_blocking_pids(pid), state, query FROM pg_stat_activity WHERE wait_event_type = 'Lock'; end it with pg_cancel_backend(pid) (or pg_terminate_backend) after review";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A plain number applies to the number of blocked sessions, a duration to the
  longest wait.";
    type Args = Args;

    fn run(_args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        // Query
        let totals = db.query_one(TOTALS_SQL)?;
        require_stats_visibility(get(&totals, "sees_all")?, &ctx.conn.user)?;
        let total_locks: i64 = get(&totals, "total_locks")?;
        let waiting_locks: i64 = get(&totals, "waiting_locks")?;
        let rows = if waiting_locks > 0 {
            db.query(BLOCKED_SQL)?
        } else {
            Vec::new()
        };

        // Measure
        let mut details = Vec::new();
        let mut blocked = 0i64;
        let mut longest = 0.0f64;
        for row in &rows {
            let pid: i32 = get(row, "pid")?;
            blocked += 1;
            let wait: f64 = get(row, "wait_seconds")?;
            longest = longest.max(wait);
            details.push(describe_blocked(row, pid, wait)?);
        }

        // Compare
        let t = &ctx.thresholds;
        let status = t.status(&[(Unit::Count, blocked as f64), (Unit::Seconds, longest)]);

        // Report
        let summary = if blocked == 0 {
            format!("no session blocked ({total_locks} locks held, {waiting_locks} waiting)")
        } else {
            format!(
                "{blocked} session{} blocked, longest waiting {} ({waiting_locks} lock{} waiting)",
                plural(blocked),
                pretty_duration(longest),
                plural(waiting_locks)
            )
        };
        let perf = [
            PerfData::new("locks", total_locks as f64, Unit::Count).min(0.0),
            PerfData::new("waiting", waiting_locks as f64, Unit::Count).min(0.0),
            PerfData::new("blocked", blocked as f64, Unit::Count)
                .thresholds(t)
                .min(0.0),
            PerfData::new("longest_wait", round_to(longest, 3), Unit::Seconds)
                .thresholds(t)
                .min(0.0),
        ];
        if status == Status::Ok && ctx.verbose == 0 {
            details.clear();
        }
        Ok(CheckResult::new(status, summary)
            .perf(perf)
            .details(details))
    }
}

/// `pid 4242 (app@shop) waiting 42 s on pid 4100 (idle in transaction for 5 min: UPDATE …): DELETE …`
fn describe_blocked(row: &postgres::Row, pid: i32, wait: f64) -> Result<String, Error> {
    let blockers: Vec<i32> = get(row, "blockers")?;
    let blocker_list = blockers
        .iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let blocker_state: Option<String> = get(row, "blocker_state")?;
    let blocker = match blocker_state {
        Some(state) => {
            let since: Option<f64> = get(row, "blocker_state_seconds")?;
            let query: Option<String> = get(row, "blocker_query")?;
            format!(
                " ({state} for {}: {})",
                pretty_duration(since.unwrap_or(0.0)),
                one_line(&query.unwrap_or_default())
            )
        }
        None => String::new(),
    };
    Ok(format!(
        "pid {pid} ({}@{}) waiting {} on pid {blocker_list}{blocker}: {}",
        get::<Option<String>>(row, "usename")?.unwrap_or_default(),
        get::<Option<String>>(row, "datname")?.unwrap_or_default(),
        pretty_duration(wait),
        one_line(&get::<Option<String>>(row, "query")?.unwrap_or_default())
    ))
}
