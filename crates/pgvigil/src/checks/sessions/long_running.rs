//! check_pg_long_running: how long the oldest open transaction has been open.
//! A long statement is always inside a transaction at least as old, so one
//! age covers both queries running for more than 5 minutes and the sessions
//! left idle in transaction: either holds locks and the xmin horizon that
//! vacuum needs to move.

use std::collections::BTreeMap;

use crate::check::{Check, Context, Judging};
use crate::checks::common::catalog::{database_names, name_databases, require_stats_visibility};
use crate::checks::common::filter::{database_name, SessionFilter, Verdict, Who};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::output::one_line;
use pgvigil_kit::units::{pretty_duration, round_to};
use pgvigil_kit::words::plural;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

pub struct LongRunning;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub filter: SessionFilter,
}

// Every session with a transaction open, oldest first, less our own; the
// filters apply here, to the rows. The left join keeps one row, with the
// privilege flag, when there is none.
const SQL: &str = "
SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all,
       s.pid, pg_get_userbyid(s.usesysid)::text AS usename, s.datid, s.state,
       s.application_name, s.backend_type, left(s.query, 100) AS query,
       extract(epoch FROM now() - s.xact_start)::float8 AS transaction_seconds,
       CASE WHEN s.state = 'active'
            THEN extract(epoch FROM now() - s.query_start)::float8 END AS statement_seconds,
       CASE WHEN s.state LIKE 'idle in transaction%'
            THEN extract(epoch FROM now() - s.state_change)::float8 END AS idle_seconds
FROM (SELECT 1) one
LEFT JOIN pg_stat_get_activity(NULL) s
  ON s.xact_start IS NOT NULL AND s.pid <> pg_backend_pid()
ORDER BY s.xact_start";

/// What one run sees: the sessions with a transaction open, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub open: Vec<Open>,
    /// Sessions of a judged type the name filters left out.
    pub excluded: i64,
    /// Database names by oid, read when a filter or the long output needs
    /// them.
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
    pub application_name: String,
    pub backend_type: String,
    pub query: String,
    pub transaction: f64,
    pub statement: f64,
    pub idle: f64,
}

impl Open {
    /// The session as the filters and the long output see it.
    fn who<'a>(&'a self, names: &'a BTreeMap<u32, String>) -> Who<'a> {
        Who {
            user: &self.usename,
            database: database_name(names, self.datid),
            app: &self.application_name,
            backend_type: &self.backend_type,
        }
    }
}

impl Measured {
    fn longest(&self, of: fn(&Open) -> f64) -> f64 {
        self.open.iter().map(of).fold(0.0, f64::max)
    }
}

impl Check for LongRunning {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Seconds], Some(Unit::Seconds));
    const HINT: &'static str = "look at the session in pg_stat_activity (query, state, client); cancel it with pg_cancel_backend(pid) or end it with pg_terminate_backend(pid) after review; set statement_timeout or idle_in_transaction_session_timeout for the role";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to how long the oldest transaction has been open (a bare number
  is seconds). Default: {defaults}.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("5min", "30min"));
    type Args = Args;
    type Measured = Measured;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let open = measure(db, &ctx.conn.user)?;
        // The databases are named where a filter needs them.
        let mut names = BTreeMap::new();
        if args.filter.reads_databases() && !open.is_empty() {
            names = database_names(db)?;
        }
        Ok(keep(open, names, &args.filter))
    }

    /// The databases are named only where the long output lists them: an
    /// alert, or `-v`.
    fn look_closer(
        m: &mut Measured,
        first: &CheckResult,
        judging: &Judging<Args>,
        db: &mut Session,
        _ctx: &Context,
    ) -> Result<bool, Error> {
        if m.open.is_empty() {
            return Ok(false);
        }
        name_databases(&mut m.database_names, first, judging.verbose, db)
    }

    /// The verdict; when not OK (or with -v) every open transaction, oldest
    /// first; always how many sessions the filters left out.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (filter, t, verbose) = (&judging.args.filter, judging.thresholds, judging.verbose);
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
        let mut details: Vec<String> = if status != Status::Ok || verbose > 0 {
            m.open
                .iter()
                .map(|o| describe(o, &m.database_names))
                .collect()
        } else {
            Vec::new()
        };
        details.extend(filter.excluded_line(m.excluded));
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

fn measure(db: &mut Session, user: &str) -> Result<Vec<Open>, Error> {
    let rows = db.query(SQL)?;
    let first = rows.first().ok_or_else(|| Error::Query("no row".into()))?;
    require_stats_visibility(get(first, "sees_all")?, user)?;
    let mut open = Vec::new();
    for row in &rows {
        let Some(pid) = get::<Option<i32>>(row, "pid")? else {
            continue;
        };
        // A clock step can make an age negative for a moment.
        let age = |column: &str| -> Result<f64, Error> {
            Ok(get::<Option<f64>>(row, column)?.unwrap_or(0.0).max(0.0))
        };
        let text = |column: &str| -> Result<String, Error> {
            Ok(get::<Option<String>>(row, column)?.unwrap_or_default())
        };
        open.push(Open {
            pid,
            usename: text("usename")?,
            datid: get(row, "datid")?,
            state: text("state")?,
            application_name: text("application_name")?,
            backend_type: text("backend_type")?,
            query: get::<Option<String>>(row, "query")?.unwrap_or_default(),
            transaction: age("transaction_seconds")?,
            statement: age("statement_seconds")?,
            idle: age("idle_seconds")?,
        });
    }
    Ok(open)
}

/// The sessions the filters judge, and how many of a judged type they
/// left out by name.
pub fn keep(open: Vec<Open>, names: BTreeMap<u32, String>, filter: &SessionFilter) -> Measured {
    let mut measured = Measured {
        database_names: names,
        ..Measured::default()
    };
    for o in open {
        match filter.verdict(&o.who(&measured.database_names)) {
            Verdict::Judged => measured.open.push(o),
            Verdict::Excluded => measured.excluded += 1,
            Verdict::OtherType => {}
        }
    }
    measured
}

/// The oldest transaction's age against `-w`/`-c`.
pub fn status(m: &Measured, t: &Thresholds) -> Status {
    t.status(&[(Unit::Seconds, m.longest(|o| o.transaction))])
}

/// `pid 42 (app@shop, psql) transaction open 6 min, idle in transaction for
/// 6 min: UPDATE …`; the application and a backend type other than a
/// client's named, so a filter can be written from what is shown.
fn describe(o: &Open, names: &BTreeMap<u32, String>) -> String {
    let who = o.who(names).label();
    let since = match o.state.as_str() {
        "active" => format!(", statement running {}", pretty_duration(o.statement)),
        s if s.starts_with("idle in transaction") => {
            format!(" for {}", pretty_duration(o.idle))
        }
        _ => String::new(),
    };
    format!(
        "pid {} ({who}) transaction open {}, {}{since}: {}",
        o.pid,
        pretty_duration(o.transaction),
        o.state,
        one_line(&o.query)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::filter::tests::filter;
    use crate::checks::testing::{judge, perf, reported, thresholds};

    fn none() -> SessionFilter {
        SessionFilter::default()
    }

    fn open(pid: i32, state: &str, transaction: f64) -> Open {
        Open {
            pid,
            usename: "app".into(),
            datid: Some(16384),
            state: state.into(),
            application_name: String::new(),
            backend_type: "client backend".into(),
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
            excluded: 0,
            database_names: [(16384, "shop".to_string())].into_iter().collect(),
        }
    }

    #[test]
    fn default_thresholds_are_5min_and_30min_inclusive() {
        let t = thresholds::<LongRunning>(None, None);
        let at = |s: f64| {
            judge::<LongRunning>(
                &measured(vec![open(1, "active", s)]),
                &Args {
                    filter: none().clone(),
                },
                &t,
                0,
            )
            .status
        };
        assert_eq!(at(300.0), Status::Ok);
        assert_eq!(at(300.5), Status::Warning);
        assert_eq!(at(1800.0), Status::Warning);
        assert_eq!(at(1800.5), Status::Critical);
        let t = thresholds::<LongRunning>(Some("60"), Some("2h"));
        assert_eq!(
            judge::<LongRunning>(
                &measured(vec![open(1, "active", 61.0)]),
                &Args {
                    filter: none().clone()
                },
                &t,
                0
            )
            .status,
            Status::Warning
        );
    }

    #[test]
    fn nothing_open_is_ok_with_zeros() {
        let r = judge::<LongRunning>(
            &Measured::default(),
            &Args {
                filter: none().clone(),
            },
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
        let r = reported::<LongRunning>(judge::<LongRunning>(
            &m,
            &Args {
                filter: none().clone(),
            },
            &thresholds::<LongRunning>(None, None),
            0,
        ));
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

    #[test]
    fn a_dump_left_out_by_application_is_counted_and_a_leak_still_alerts() {
        let mut dump = open(20, "active", 2400.0);
        dump.application_name = "pg_dump".into();
        let mut vacuum = open(21, "active", 3600.0);
        vacuum.backend_type = "autovacuum worker".into();
        let leak = open(22, "idle in transaction", 1900.0);
        let all = vec![dump, vacuum, leak];
        let t = thresholds::<LongRunning>(None, None);
        let names: BTreeMap<u32, String> = [(16384, "shop".to_string())].into_iter().collect();

        // Without a filter the dump leads, and autovacuum is not a client.
        let m = keep(all.clone(), names.clone(), &none());
        assert_eq!((m.open.len(), m.excluded), (2, 0));
        let r = judge::<LongRunning>(
            &m,
            &Args {
                filter: none().clone(),
            },
            &t,
            0,
        );
        assert_eq!(r.status, Status::Critical);
        assert!(r.summary.contains("(pid 20, active)"), "{}", r.summary);
        assert!(r.details[0].starts_with("pid 20 (app@shop, pg_dump) transaction open 40 min"));

        let f = filter(&[("exclude-app", "^pg_dump$")]);
        let m = keep(all.clone(), names.clone(), &f);
        let r = judge::<LongRunning>(&m, &Args { filter: f.clone() }, &t, 0);
        assert_eq!(r.status, Status::Critical);
        assert!(
            r.summary.contains("(pid 22, idle in transaction)"),
            "{}",
            r.summary
        );
        assert_eq!(
            r.details.last().unwrap(),
            "1 session excluded by filters (application !~ ^pg_dump$)"
        );

        // Once the leak is gone the dump alone is OK, and still counted.
        let m = keep(all[..2].to_vec(), names.clone(), &f);
        let r = judge::<LongRunning>(&m, &Args { filter: f.clone() }, &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.details,
            ["1 session excluded by filters (application !~ ^pg_dump$)"]
        );

        // Autovacuum is judged when asked for, and named as such.
        let f = filter(&[
            ("backend-type", "autovacuum-worker"),
            ("exclude-db", "^postgres$"),
        ]);
        let m = keep(all, names, &f);
        let r = judge::<LongRunning>(&m, &Args { filter: f.clone() }, &t, 0);
        assert_eq!(r.status, Status::Critical);
        assert!(
            r.details[0].starts_with("pid 21 (autovacuum worker, app@shop) transaction open 1 h")
        );
    }
}
