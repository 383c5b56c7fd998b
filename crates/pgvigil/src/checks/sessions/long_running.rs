//! check_pg_long_running: how long the oldest open transaction has been open.
//! A long statement is always inside a transaction at least as old, so one
//! age covers both queries running for more than 5 minutes and the sessions
//! left idle in transaction: either holds locks and the xmin horizon that
//! vacuum needs to move.

use std::collections::BTreeMap;

use crate::check::{database_names, require_stats_visibility};
use crate::check::{Check, Context};
use crate::output::one_line;
use crate::session::get;
use crate::session::Session;
use crate::units::{pretty_duration, round_to};
use crate::words::plural;
use crate::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

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

/// What one run sees: the sessions with a transaction open, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub open: Vec<Open>,
    /// Database names by oid, read when the long output needs them.
    pub database_names: BTreeMap<u32, String>,
}

/// One session with a transaction open; ages in seconds, 0 when not in
/// that state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Open {
    pub pid: i32,
    pub usename: String,
    pub datid: Option<u32>,
    pub state: String,
    pub query: String,
    pub transaction: f64,
    pub statement: f64,
    pub idle: f64,
}

impl Measured {
    fn longest(&self, of: fn(&Open) -> f64) -> f64 {
        self.open.iter().map(of).fold(0.0, f64::max)
    }
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
        let mut measured = fetch(db, &ctx.conn.user)?;
        // The databases are named only where the long output lists sessions.
        if !measured.open.is_empty()
            && (ctx.verbose > 0 || status(&measured, &ctx.thresholds) != Status::Ok)
        {
            measured.database_names = database_names(db)?;
        }
        Ok(judge(&measured, &ctx.thresholds, ctx.verbose))
    }
}

fn fetch(db: &mut Session, user: &str) -> Result<Measured, Error> {
    let rows = db.query(SQL)?;
    let first = rows.first().ok_or_else(|| Error::Query("no row".into()))?;
    require_stats_visibility(get(first, "sees_all")?, user)?;
    let mut measured = Measured::default();
    for row in &rows {
        let Some(pid) = get::<Option<i32>>(row, "pid")? else {
            continue;
        };
        // A clock step can make an age negative for a moment.
        let age = |column: &str| -> Result<f64, Error> {
            Ok(get::<Option<f64>>(row, column)?.unwrap_or(0.0).max(0.0))
        };
        measured.open.push(Open {
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
    Ok(measured)
}

/// The oldest transaction's age against `-w`/`-c`.
pub fn status(m: &Measured, t: &Thresholds) -> Status {
    t.status(&[(Unit::Seconds, m.longest(|o| o.transaction))])
}

/// The verdict; when not OK (or with -v) every open transaction, oldest first.
pub fn judge(m: &Measured, t: &Thresholds, verbose: u8) -> CheckResult {
    let oldest = m.longest(|o| o.transaction);
    let statement = m.longest(|o| o.statement);
    let idle = m.longest(|o| o.idle);
    let status = status(m, t);
    let summary = match m.open.first() {
        None => "no transaction open".to_string(),
        Some(o) => format!(
            "oldest transaction open {} (pid {}, {}); longest statement {}, longest idle in transaction {}; {} transaction{} open",
            pretty_duration(oldest),
            o.pid,
            o.state,
            pretty_duration(statement),
            pretty_duration(idle),
            m.open.len(),
            plural(m.open.len() as i64)
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
        PerfData::new("open_transactions", m.open.len() as f64, Unit::Count).min(0.0),
    ];
    let details = if status != Status::Ok || verbose > 0 {
        m.open
            .iter()
            .map(|o| describe(o, &m.database_names))
            .collect()
    } else {
        Vec::new()
    };
    CheckResult::new(status, summary)
        .perf(perf)
        .details(details)
}

/// `pid 42 (app@shop) transaction open 6 min, idle in transaction for 6 min: UPDATE …`
fn describe(o: &Open, names: &BTreeMap<u32, String>) -> String {
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
    format!(
        "pid {} ({}@{datname}) transaction open {}, {}{since}: {}",
        o.pid,
        o.usename,
        pretty_duration(o.transaction),
        o.state,
        one_line(&o.query)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{perf, reported, thresholds};

    fn open(pid: i32, state: &str, transaction: f64) -> Open {
        Open {
            pid,
            usename: "app".into(),
            datid: Some(16384),
            state: state.into(),
            query: "UPDATE t\n SET v = 1".into(),
            transaction,
            statement: if state == "active" {
                transaction / 2.0
            } else {
                0.0
            },
            idle: if state == "active" {
                0.0
            } else {
                transaction / 3.0
            },
        }
    }

    fn measured(open: Vec<Open>) -> Measured {
        Measured {
            open,
            database_names: [(16384, "shop".to_string())].into_iter().collect(),
        }
    }

    #[test]
    fn default_thresholds_are_5min_and_30min_inclusive() {
        let t = thresholds::<LongRunning>(None, None);
        let at = |s: f64| judge(&measured(vec![open(1, "active", s)]), &t, 0).status;
        assert_eq!(at(300.0), Status::Ok);
        assert_eq!(at(300.5), Status::Warning);
        assert_eq!(at(1800.0), Status::Warning);
        assert_eq!(at(1800.5), Status::Critical);
        let t = thresholds::<LongRunning>(Some("60"), Some("2h"));
        assert_eq!(
            judge(&measured(vec![open(1, "active", 61.0)]), &t, 0).status,
            Status::Warning
        );
    }

    #[test]
    fn nothing_open_is_ok_with_zeros() {
        let r = judge(
            &Measured::default(),
            &thresholds::<LongRunning>(None, None),
            0,
        );
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.summary, "no transaction open");
        assert_eq!(
            perf(&r),
            [
                "oldest_transaction=0s;300;1800;0",
                "longest_statement=0s;;;0",
                "longest_idle_in_transaction=0s;;;0",
                "open_transactions=0;;;0"
            ]
        );
    }

    #[test]
    fn alerts_list_each_session_oldest_first() {
        let m = measured(vec![
            open(10, "idle in transaction", 600.0),
            open(11, "active", 120.0),
        ]);
        let r = reported::<LongRunning>(judge(&m, &thresholds::<LongRunning>(None, None), 0));
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "oldest transaction open 10 min 0 s (pid 10, idle in transaction); longest statement 1 min 0 s, longest idle in transaction 3 min 20 s; 2 transactions open"
        );
        assert_eq!(
            r.details,
            [
                "pid 10 (app@shop) transaction open 10 min 0 s, idle in transaction for 3 min 20 s: UPDATE t SET v = 1",
                "pid 11 (app@shop) transaction open 2 min 0 s, active, statement running 1 min 0 s: UPDATE t SET v = 1"
            ]
        );
        assert!(r.hint.unwrap().contains("pg_cancel_backend"));
    }
}
