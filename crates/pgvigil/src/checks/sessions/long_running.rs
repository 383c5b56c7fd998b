//! check_pg_long_running: how long the oldest open transaction has been open.
//! A long statement is always inside a transaction at least as old, so one
//! age covers both queries running for more than 5 minutes and the sessions
//! left idle in transaction: either holds locks and the xmin horizon that
//! vacuum needs to move.

use crate::check::{database_names, require_stats_visibility};
use crate::output::one_line;
use crate::session::get;
use crate::units::{pretty_duration, round_to};
use crate::words::plural;
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

pub struct LongRunning;

#[derive(Debug, clap::Args)]
pub struct Args {}

// Every client session with a transaction open, oldest first, less our own;
// the left join keeps one row, with the privilege flag, when there is none.
const SQL: &str = "
SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all,
       s.pid, pg_get_userbyid(s.usesysid)::text AS usename, s.datid, s.state,
       left(s.query, 100) AS query,
       extract(epoch FROM now() - s.xact_start)::float8 AS transaction_seconds,
       CASE WHEN s.state = 'active'
            THEN extract(epoch FROM now() - s.query_start)::float8 END AS statement_seconds,
       CASE WHEN s.state LIKE 'idle in transaction%'
            THEN extract(epoch FROM now() - s.state_change)::float8 END AS idle_seconds
FROM (SELECT 1) one
LEFT JOIN pg_stat_get_activity(NULL) s
  ON s.backend_type = 'client backend' AND s.xact_start IS NOT NULL
     AND s.pid <> pg_backend_pid()
ORDER BY s.xact_start";

/// One session with a transaction open.
struct Open {
    pid: i32,
    usename: String,
    datid: Option<u32>,
    state: String,
    query: String,
    transaction: f64,
    statement: f64,
    idle: f64,
}

impl Check for LongRunning {
    const DISPLAY: &'static str = "LONG_RUNNING";
    const ABOUT: &'static str = "Age of the oldest open transaction (a long statement, or a session idle in transaction), with the longest statement and idle-in-transaction time.";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Seconds],
        bare: Some(Unit::Seconds),
        labels: &[],
    };
    const HINT: &'static str = "look at the session in pg_stat_activity (query, state, client); cancel it with pg_cancel_backend(pid) or end it with pg_terminate_backend(pid) after review; set statement_timeout or idle_in_transaction_session_timeout for the role";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to how long the oldest transaction has been open (a bare number
  is seconds). Default: -w 5min -c 30min.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("5min", "30min"));
    type Args = Args;

    fn run(_args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        // Query
        let rows = db.query(SQL)?;
        let first = rows.first().ok_or_else(|| Error::Query("no row".into()))?;
        require_stats_visibility(get(first, "sees_all")?, &ctx.conn.user)?;
        let mut open = Vec::new();
        for row in &rows {
            let Some(pid) = get::<Option<i32>>(row, "pid")? else {
                continue;
            };
            // A clock step can make an age negative for a moment.
            let age = |column: &str| -> Result<f64, Error> {
                Ok(get::<Option<f64>>(row, column)?.unwrap_or(0.0).max(0.0))
            };
            open.push(Open {
                pid,
                usename: get::<Option<String>>(row, "usename")?.unwrap_or_default(),
                datid: get(row, "datid")?,
                state: get::<Option<String>>(row, "state")?.unwrap_or_default(),
                query: get::<Option<String>>(row, "query")?.unwrap_or_default(),
                transaction: age("transaction_seconds")?,
                statement: age("statement_seconds")?,
                idle: age("idle_seconds")?,
            });
        }

        // Measure
        let longest = |of: fn(&Open) -> f64| open.iter().map(of).fold(0.0, f64::max);
        let oldest = longest(|o| o.transaction);
        let statement = longest(|o| o.statement);
        let idle = longest(|o| o.idle);

        // Compare
        let t = &ctx.thresholds;
        let status = t.status(&[(Unit::Seconds, oldest)]);

        // Report
        let summary = match open.first() {
            None => "no transaction open".to_string(),
            Some(o) => format!(
                "oldest transaction open {} (pid {}, {}); longest statement {}, longest idle in transaction {}; {} transaction{} open",
                pretty_duration(oldest),
                o.pid,
                o.state,
                pretty_duration(statement),
                pretty_duration(idle),
                open.len(),
                plural(open.len() as i64)
            ),
        };
        let perf = [
            PerfData::new("oldest_transaction", round_to(oldest, 3), Unit::Seconds)
                .thresholds(t)
                .min(0.0),
            PerfData::new("longest_statement", round_to(statement, 3), Unit::Seconds).min(0.0),
            PerfData::new(
                "longest_idle_in_transaction",
                round_to(idle, 3),
                Unit::Seconds,
            )
            .min(0.0),
            PerfData::new("open_transactions", open.len() as f64, Unit::Count).min(0.0),
        ];
        let mut details = Vec::new();
        if !open.is_empty() && (status != Status::Ok || ctx.verbose > 0) {
            let names = database_names(db)?;
            for o in &open {
                let datname = o
                    .datid
                    .and_then(|d| names.get(&d))
                    .map_or("", String::as_str);
                let since = match o.state.as_str() {
                    "active" => format!(", statement running {}", pretty_duration(o.statement)),
                    s if s.starts_with("idle in transaction") => {
                        format!(" for {}", pretty_duration(o.idle))
                    }
                    _ => String::new(),
                };
                details.push(format!(
                    "pid {} ({}@{datname}) transaction open {}, {}{since}: {}",
                    o.pid,
                    o.usename,
                    pretty_duration(o.transaction),
                    o.state,
                    one_line(&o.query)
                ));
            }
        }
        Ok(CheckResult::new(status, summary)
            .perf(perf)
            .details(details))
    }
}
