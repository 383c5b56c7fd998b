//! check_pg_locks: sessions blocked by other sessions, how long the longest
//! has waited, and how full the shared lock table is: a query over many
//! partitions or a pg_dump of many tables fails with "out of shared memory"
//! once it is full.

use crate::check::{Check, Context, Judging};
use crate::checks::common::catalog::require_stats_visibility;
use crate::checks::common::filter::{SessionFilter, Verdict, Who};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::output::one_line;
use pgvigil_kit::units::{pretty_duration, round_to};
use pgvigil_kit::words::{percent_text, plural};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Locks;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The filters choose the blocked sessions judged (not their blockers).
    #[command(flatten)]
    pub filter: SessionFilter,
}

// Most runs find no lock waiting: they cost one cheap aggregate. The blocked
// sessions are looked up only when some lock waits (a new backend pays for
// every catalog entry a statement touches, so the full query costs ~4 ms).
const TOTALS_SQL: &str = "
SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all,
       count(*) AS total_locks, count(*) FILTER (WHERE NOT granted) AS waiting_locks,
       count(*) FILTER (WHERE NOT fastpath) AS shared_locks,
       current_setting('max_locks_per_transaction')::int8
         * (current_setting('max_connections')::int8
            + current_setting('max_prepared_transactions')::int8) AS lock_capacity,
       (SELECT array[pid, count(*)] FROM pg_locks WHERE NOT fastpath AND pid IS NOT NULL
         GROUP BY pid ORDER BY count(*) DESC LIMIT 1) AS top_holder
FROM pg_locks";

// pg_locks.waitstart exists from PostgreSQL 14; reading it through to_jsonb
// keeps one statement for every version (older ones fall back to state_change).
const BLOCKED_SQL: &str = "
SELECT b.pid, b.blockers, b.usename, b.datname, b.application_name, b.backend_type,
       b.query, b.wait_seconds,
       h.state AS blocker_state, left(h.query, 60) AS blocker_query,
       greatest(extract(epoch FROM now() - h.state_change), 0)::float8 AS blocker_state_seconds
FROM (
  SELECT a.pid, pg_blocking_pids(a.pid) AS blockers, a.usename::text AS usename,
         a.datname::text AS datname, a.application_name, a.backend_type,
         left(a.query, 100) AS query,
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
    const UNITS: UnitSpec = UnitSpec::of(
        &[Unit::Count, Unit::Seconds, Unit::Percent],
        Some(Unit::Count),
    );
    const HINT: &'static str = "find the blocker: SELECT pid, pg_blocking_pids(pid), state, query FROM pg_stat_activity WHERE wait_event_type = 'Lock'; end it with pg_cancel_backend(pid) (or pg_terminate_backend) after review; a lock table filling up comes from one transaction touching many relations (partitions, a pg_dump of many tables): see the pid holding the most, and raise max_locks_per_transaction (a restart) if that is its normal load";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A plain number applies to the number of blocked sessions, a duration to the
  longest wait, a percentage to the shared lock table's use: locks outside
  the fast path against max_locks_per_transaction x (max_connections +
  max_prepared_transactions), the documented capacity (-w 5,30s,50%).";
    type Args = Args;
    type Measured = Measured;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let measured = keep(measure(db, &ctx.conn.user)?, &args.filter);
        Ok(measured)
    }

    /// The blocked sessions against `-w`/`-c` (a count to how many, a duration to
    /// the longest wait); each blocked session named when not OK, or with -v;
    /// always how many the filters left out.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (filter, t, verbose) = (&judging.args.filter, judging.thresholds, judging.verbose);
        let blocked = m.blocked.len() as i64;
        let longest = m.blocked.iter().map(|b| b.wait_seconds).fold(0.0, f64::max);
        let table_pct = if m.lock_capacity > 0 {
            m.shared_locks as f64 / m.lock_capacity as f64 * 100.0
        } else {
            0.0
        };
        let status = t.status(&[
            (Unit::Count, blocked as f64),
            (Unit::Seconds, longest),
            (Unit::Percent, table_pct),
        ]);
        let mut summary = if blocked == 0 {
            format!(
                "no session blocked ({} locks held, {} waiting)",
                m.total_locks, m.waiting_locks
            )
        } else {
            format!(
                "{blocked} session{} blocked, longest waiting {} ({} lock{} waiting)",
                plural(blocked),
                pretty_duration(longest),
                m.waiting_locks,
                plural(m.waiting_locks)
            )
        };
        summary.push_str(&format!(
            "; lock table {} used ({} of {})",
            percent_text(table_pct),
            m.shared_locks,
            m.lock_capacity
        ));
        let perf = [
            PerfData::new("locks", m.total_locks as f64, Unit::Count).min(0.0),
            PerfData::new("waiting", m.waiting_locks as f64, Unit::Count).min(0.0),
            PerfData::new("blocked", blocked as f64, Unit::Count)
                .thresholds(t)
                .min(0.0),
            PerfData::new("longest_wait", round_to(longest, 3), Unit::Seconds)
                .thresholds(t)
                .min(0.0),
            PerfData::new("lock_table_used", round_to(table_pct, 2), Unit::Percent)
                .thresholds(t)
                .min(0.0)
                .max(100.0),
        ];
        let mut details = if status == Status::Ok && verbose == 0 {
            Vec::new()
        } else {
            m.blocked.iter().map(describe_blocked).collect()
        };
        if status != Status::Ok || verbose > 0 {
            if let Some((pid, held)) = m.top_holder {
                details.push(format!(
                    "pid {pid} holds the most locks in the shared lock table: {held}"
                ));
            }
        }
        details.extend(filter.excluded_line(m.excluded));
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

/// What one run sees of the server's locks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub total_locks: i64,
    pub waiting_locks: i64,
    /// Locks in the shared lock table (not the per-backend fast path), and
    /// how many it is sized for.
    pub shared_locks: i64,
    pub lock_capacity: i64,
    /// The session holding the most of them: pid and count.
    pub top_holder: Option<(i64, i64)>,
    /// The sessions some other session blocks, longest waiting first.
    pub blocked: Vec<Blocked>,
    /// Blocked sessions of a judged type the name filters left out.
    pub excluded: i64,
}

/// A blocked session and the first session that blocks it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blocked {
    pub pid: i32,
    pub blockers: Vec<i32>,
    pub usename: Option<String>,
    pub datname: Option<String>,
    pub application_name: Option<String>,
    pub backend_type: Option<String>,
    pub query: Option<String>,
    pub wait_seconds: f64,
    /// The first blocker's state (None when it has just gone), for how
    /// long, and its query.
    pub blocker_state: Option<String>,
    pub blocker_since: Option<f64>,
    pub blocker_query: Option<String>,
}

impl Blocked {
    /// The blocked session as the filters and the long output see it.
    fn who(&self) -> Who<'_> {
        Who {
            user: self.usename.as_deref().unwrap_or_default(),
            database: self.datname.as_deref().unwrap_or_default(),
            app: self.application_name.as_deref().unwrap_or_default(),
            backend_type: self.backend_type.as_deref().unwrap_or_default(),
        }
    }
}

fn measure(db: &mut Session, user: &str) -> Result<Measured, Error> {
    let totals = db.query_one(TOTALS_SQL)?;
    require_stats_visibility(get(&totals, "sees_all")?, user)?;
    let mut measured = Measured {
        total_locks: get(&totals, "total_locks")?,
        waiting_locks: get(&totals, "waiting_locks")?,
        shared_locks: get(&totals, "shared_locks")?,
        lock_capacity: get(&totals, "lock_capacity")?,
        top_holder: get::<Option<Vec<i64>>>(&totals, "top_holder")?.and_then(|v| match v[..] {
            [pid, held] => Some((pid, held)),
            _ => None,
        }),
        ..Measured::default()
    };
    if measured.waiting_locks == 0 {
        return Ok(measured);
    }
    for row in db.query(BLOCKED_SQL)? {
        measured.blocked.push(Blocked {
            pid: get(&row, "pid")?,
            blockers: get(&row, "blockers")?,
            usename: get(&row, "usename")?,
            datname: get(&row, "datname")?,
            application_name: get(&row, "application_name")?,
            backend_type: get(&row, "backend_type")?,
            query: get(&row, "query")?,
            wait_seconds: get(&row, "wait_seconds")?,
            blocker_state: get(&row, "blocker_state")?,
            blocker_since: get(&row, "blocker_state_seconds")?,
            blocker_query: get(&row, "blocker_query")?,
        });
    }
    Ok(measured)
}

/// The blocked sessions the filters judge; those of a judged type they left
/// out by name are counted.
pub fn keep(mut m: Measured, filter: &SessionFilter) -> Measured {
    let all = std::mem::take(&mut m.blocked);
    for b in all {
        match filter.verdict(&b.who()) {
            Verdict::Judged => m.blocked.push(b),
            Verdict::Excluded => m.excluded += 1,
            Verdict::OtherType => {}
        }
    }
    m
}

/// `pid 4242 (app@shop) waiting 42 s on pid 4100 (idle in transaction for 5 min: UPDATE …): DELETE …`
fn describe_blocked(b: &Blocked) -> String {
    let blocker_list = b
        .blockers
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let blocker = match &b.blocker_state {
        Some(state) => format!(
            " ({state} for {}: {})",
            pretty_duration(b.blocker_since.unwrap_or(0.0)),
            one_line(b.blocker_query.as_deref().unwrap_or_default())
        ),
        None => String::new(),
    };
    let who = b.who().label();
    format!(
        "pid {} ({who}) waiting {} on pid {blocker_list}{blocker}: {}",
        b.pid,
        pretty_duration(b.wait_seconds),
        one_line(b.query.as_deref().unwrap_or_default())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::filter::tests::filter;
    use crate::checks::testing::{judge, perf, reported};
    use pgvigil_kit::Thresholds;

    fn judged(m: &Measured, t: &Thresholds, verbose: u8) -> CheckResult {
        judge::<Locks>(
            m,
            &Args {
                filter: SessionFilter::default().clone(),
            },
            t,
            verbose,
        )
    }

    fn thresholds(w: Option<&str>, c: Option<&str>) -> Thresholds {
        crate::checks::testing::thresholds::<Locks>(w, c)
    }

    fn blocked(pid: i32, wait: f64) -> Blocked {
        Blocked {
            pid,
            blockers: vec![100, 101],
            usename: Some("app".into()),
            datname: Some("shop".into()),
            application_name: None,
            backend_type: Some("client backend".into()),
            query: Some("DELETE FROM t\n WHERE id = 1".into()),
            wait_seconds: wait,
            blocker_state: Some("idle in transaction".into()),
            blocker_since: Some(300.0),
            blocker_query: Some("UPDATE t SET v = 1".into()),
        }
    }

    #[test]
    fn nothing_blocked_is_ok_and_quiet() {
        let m = Measured {
            total_locks: 7,
            waiting_locks: 0,
            shared_locks: 3,
            lock_capacity: 6400,
            ..Measured::default()
        };
        let r = judged(&m, &thresholds(Some("0"), Some("5")), 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.summary,
            "no session blocked (7 locks held, 0 waiting); lock table 0% used (3 of 6400)"
        );
        assert!(r.details.is_empty());
        assert_eq!(
            perf(&r),
            [
                "locks=7;;;0",
                "waiting=0;;;0",
                "blocked=0;0;5;0",
                "longest_wait=0s;;;0",
                "lock_table_used=0.05%;;;0;100"
            ]
        );
        assert_eq!(reported::<Locks>(r).hint, None);
    }

    #[test]
    fn counts_and_durations_meet_their_own_ranges_at_the_bounds() {
        let m = Measured {
            total_locks: 9,
            waiting_locks: 2,
            blocked: vec![blocked(1, 30.0), blocked(2, 5.0)],
            ..Measured::default()
        };
        // -w 2 is 0..2: two blocked sessions are within it.
        assert_eq!(
            judged(&m, &thresholds(Some("2"), None), 0).status,
            Status::Ok
        );
        assert_eq!(
            judged(&m, &thresholds(Some("1"), None), 0).status,
            Status::Warning
        );
        assert_eq!(
            judged(&m, &thresholds(Some("30s"), None), 0).status,
            Status::Ok
        );
        assert_eq!(
            judged(&m, &thresholds(Some("5,29s"), Some("20,5min")), 0).status,
            Status::Warning
        );
        assert_eq!(
            judged(&m, &thresholds(None, Some("29s")), 0).status,
            Status::Critical
        );
    }

    #[test]
    fn a_filling_lock_table_has_its_own_percentage() {
        let m = Measured {
            total_locks: 4000,
            waiting_locks: 0,
            shared_locks: 3900,
            lock_capacity: 6400,
            ..Measured::default()
        };
        let r = judged(&m, &thresholds(Some("5,50%"), Some("20,80%")), 0);
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "no session blocked (4000 locks held, 0 waiting); lock table 60.9% used (3900 of 6400)"
        );
        assert_eq!(perf(&r)[4], "lock_table_used=60.94%;50;80;0;100");
    }

    #[test]
    fn alerts_name_each_blocked_session_and_its_blocker() {
        let m = Measured {
            total_locks: 9,
            waiting_locks: 1,
            blocked: vec![blocked(4242, 42.0)],
            ..Measured::default()
        };
        let r = judged(&m, &thresholds(Some("0"), None), 0);
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "1 session blocked, longest waiting 42 s (1 lock waiting); lock table 0% used (0 of 0)"
        );
        assert_eq!(
            r.details,
            ["pid 4242 (app@shop) waiting 42 s on pid 100, 101 (idle in transaction for 5 min 0 s: UPDATE t SET v = 1): DELETE FROM t WHERE id = 1"]
        );
        let hint = reported::<Locks>(r).hint.unwrap();
        assert!(hint.starts_with("find the blocker: SELECT pid, pg_blocking_pids(pid)"));
        // A blocker gone by the time of the join, and NULL names.
        let gone = Blocked {
            pid: 7,
            blockers: vec![8],
            wait_seconds: 1.0,
            ..Blocked::default()
        };
        let m = Measured {
            blocked: vec![gone],
            ..m
        };
        let r = judged(&m, &thresholds(None, None), 1);
        assert_eq!(r.details, ["pid 7 (@) waiting 1 s on pid 8: "]);
    }

    #[test]
    fn filters_choose_the_blocked_sessions_and_count_the_rest() {
        let mut report = blocked(1, 600.0);
        report.usename = Some("report".into());
        let mut vacuum = blocked(2, 900.0);
        vacuum.backend_type = Some("autovacuum worker".into());
        let app = blocked(3, 20.0);
        let m = Measured {
            total_locks: 9,
            waiting_locks: 3,
            blocked: vec![vacuum, report, app],
            ..Measured::default()
        };
        let f = filter(&[("exclude-user", "^report$")]);
        let kept = keep(m.clone(), &f);
        assert_eq!(kept.blocked.len(), 1);
        assert_eq!(kept.excluded, 1);
        let r = judge::<Locks>(
            &kept,
            &Args { filter: f.clone() },
            &thresholds(Some("1,1min"), None),
            0,
        );
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.details,
            ["1 session excluded by filters (user !~ ^report$)"]
        );
        let f = filter(&[("backend-type", "all")]);
        let r = judge::<Locks>(
            &keep(m, &f),
            &Args { filter: f.clone() },
            &thresholds(Some("1,1min"), None),
            0,
        );
        assert_eq!(r.status, Status::Warning);
        assert!(r.details[0].starts_with("pid 2 (autovacuum worker, app@shop) waiting 15 min"));
    }
}
