//! check_pg_wraparound: how close the oldest database is to transaction ID
//! (and multixact ID) wraparound, which stops a server that never freezes
//! its tables. pg_database holds every database's horizon, so one session
//! sees them all; what holds the horizon back is read only when it matters.

use crate::check::{Check, Context, Judging};
use crate::checks::common::catalog::require_stats_visibility;
use crate::checks::common::forecast::{self, ForecastArgs};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::forecast::Forecast;
use pgvigil_kit::output::one_line;
use pgvigil_kit::state::StateArgs;
use pgvigil_kit::units::round_to;
use pgvigil_kit::words::percent_text;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

pub struct Wraparound;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub forecast: ForecastArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

/// XIDs and multixact IDs wrap around at 2^31 transactions of age.
const WRAP_LIMIT: f64 = 2_147_483_648.0;
/// Where the server refuses new transactions until the oldest database is
/// vacuumed (3 million before wraparound since PostgreSQL 14, 1 million
/// before): the limit the time left runs to.
const STOP_LIMIT: f64 = WRAP_LIMIT - 3_000_000.0;
/// A day: transaction use follows the day's business, which a day averages.
const WINDOW: f64 = 86400.0;

// The next XID comes from the snapshot (txid_current() would assign one):
// its rate is the server's XID use, which ages the oldest database as fast
// while nothing freezes it. The txid_ names serve PostgreSQL 12 to 18.
const SQL: &str = "
SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all,
       extract(epoch FROM now())::float8 AS now,
       txid_snapshot_xmax(txid_current_snapshot())::float8 AS next_xid,
       current_setting('autovacuum_freeze_max_age')::float8 AS freeze_max_age,
       datname::text AS datname, age(datfrozenxid)::int8 AS xid_age,
       mxid_age(datminmxid)::int8 AS mxid_age
FROM pg_database ORDER BY age(datfrozenxid) DESC, datname";

// Everything that keeps vacuum from freezing past a transaction, oldest
// first: sessions' snapshots and transactions, prepared transactions,
// replication slots, and standbys' hot_standby_feedback.
const HOLDERS: &str = "
SELECT * FROM (
  SELECT 'session' AS kind,
         format('pid %s (%s@%s, %s), transaction open %s s', pid, usename, datname, state,
                coalesce(round(extract(epoch FROM now() - xact_start)), 0)) AS what,
         greatest(age(backend_xmin), age(backend_xid))::int8 AS age
    FROM pg_stat_activity
   WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
     AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)
  UNION ALL
  SELECT 'prepared transaction',
         format('%s (owner %s, database %s, prepared %s)', quote_literal(gid), owner, database,
                to_char(prepared, 'YYYY-MM-DD HH24:MI:SS TZ')),
         age(transaction)::int8
    FROM pg_prepared_xacts
  UNION ALL
  SELECT 'replication slot',
         format('%s (%s, %s)', slot_name, slot_type, CASE WHEN active THEN 'active' ELSE 'inactive' END),
         greatest(age(xmin), age(catalog_xmin))::int8
    FROM pg_replication_slots WHERE xmin IS NOT NULL OR catalog_xmin IS NOT NULL
  UNION ALL
  SELECT 'standby feedback', format('%s (pid %s)', application_name, pid), age(backend_xmin)::int8
    FROM pg_stat_replication WHERE backend_xmin IS NOT NULL
) h ORDER BY age DESC LIMIT 10";

/// What one run measures: every database's horizons, oldest XID age
/// first, and when the long output needs it, what holds the xmin horizon
/// back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub databases: Vec<Database>,
    pub holders: Vec<Holder>,
    /// When the oldest XID age reaches the stop limit at the rate XIDs are
    /// used; None without a history.
    pub forecast: Option<Forecast>,
    /// When it reaches autovacuum_freeze_max_age (and autovacuum starts
    /// freezing whatever it costs), while it is below.
    pub to_freeze: Option<Forecast>,
    /// Whether this role sees every session (pg_read_all_stats).
    pub sees_all: bool,
    /// Why a history restarted.
    pub notes: Vec<String>,
}

/// One database's horizons.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Database {
    pub name: String,
    pub xid_age: i64,
    pub mxid_age: i64,
}

/// Something that keeps vacuum from freezing: `session`, `prepared
/// transaction`, `replication slot` or `standby feedback`, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Holder {
    pub kind: String,
    pub what: String,
    pub age: i64,
}

impl Check for Wraparound {
    const INTERVAL: u32 = 900;
    const UNITS: UnitSpec = UnitSpec::of(
        &[Unit::Count, Unit::Percent, Unit::Seconds],
        Some(Unit::Count),
    )
    .with_time_left();
    const HINT: &'static str = "VACUUM (FREEZE, VERBOSE) the oldest tables of the named database now; first end what holds the xmin horizon back: long transactions, prepared transactions (pg_prepared_xacts) and stale replication slots";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A plain number applies to the oldest transaction ID age (age(datfrozenxid)),
  a percentage to the share of the 2^31 wraparound limit used by the oldest
  XID or multixact ID age, a duration to the time left before the server
  refuses new transactions, as a lower bound (-w 50%,30d: -c 75%,3d:).
  Default: {defaults}.
  autovacuum_freeze_max_age (default 200 million, 9.3%) is where autovacuum
  starts forcing freezes; ages far beyond it mean vacuum cannot keep up.

FORECAST
  Each run keeps the server's next transaction ID in a history (a state
  file); its rate over --forecast-window (default 1d, the day's business
  averaged; the median of the slopes between samples) is how fast the
  oldest database ages while nothing freezes it. The time left runs to
  2^31 - 3 million, where PostgreSQL stops assigning XIDs; the time to
  autovacuum_freeze_max_age is in the long output. The first forecast comes
  after an eighth of the window; perfdata time_left is in seconds.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("50%", "75%"));
    type Args = Args;
    type Measured = Measured;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let rows = db.query(SQL)?;
        let first = rows
            .first()
            .ok_or_else(|| Error::Query("no database".into()))?;
        let now: f64 = get(first, "now")?;
        let next_xid: f64 = get(first, "next_xid")?;
        let freeze_max_age: f64 = get(first, "freeze_max_age")?;
        let mut measured = Measured {
            sees_all: get(first, "sees_all")?,
            ..Measured::default()
        };
        for row in &rows {
            measured.databases.push(Database {
                name: get(row, "datname")?,
                xid_age: get(row, "xid_age")?,
                mxid_age: get(row, "mxid_age")?,
            });
        }
        forecast_ages(&mut measured, (now, next_xid, freeze_max_age), args, ctx)?;
        Ok(measured)
    }

    /// What holds the xmin horizon back, read only for an alert or `-v`.
    fn look_closer(
        m: &mut Measured,
        first: &CheckResult,
        judging: &Judging<Args>,
        db: &mut Session,
        ctx: &Context,
    ) -> Result<bool, Error> {
        if judging.verbose == 0 && first.status == Status::Ok {
            return Ok(false);
        }
        // Without pg_read_all_stats other roles' snapshots are invisible,
        // and the list would wrongly look complete.
        require_stats_visibility(m.sees_all, &ctx.conn.user)?;
        for h in db.query(HOLDERS)? {
            m.holders.push(Holder {
                kind: get(&h, "kind")?,
                what: get(&h, "what")?,
                age: get::<Option<i64>>(&h, "age")?.unwrap_or(0),
            });
        }
        Ok(true)
    }

    /// The verdict; when not OK (or with -v) what holds the xmin horizon back,
    /// oldest first, and every database's ages.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, verbose) = (judging.thresholds, judging.verbose);
        let Some((oldest, oldest_multi)) = m.oldest() else {
            return CheckResult::new(Status::Unknown, "no database listed in pg_database");
        };
        let (xid_pct, mxid_pct) = m.shares();
        let pct = xid_pct.max(mxid_pct);
        let status = status(m, t);
        let mut summary = format!(
            "oldest XID age {} in database {} ({} of wraparound), oldest multixact age {} in {} ({})",
            oldest.xid_age,
            oldest.name,
            percent_text(xid_pct),
            oldest_multi.mxid_age,
            oldest_multi.name,
            percent_text(mxid_pct)
        );
        let mut perf = vec![
            PerfData::new("max_xid_age", oldest.xid_age as f64, Unit::Count)
                .thresholds(t)
                .min(0.0)
                .max(WRAP_LIMIT),
            PerfData::new("max_mxid_age", oldest_multi.mxid_age as f64, Unit::Count)
                .min(0.0)
                .max(WRAP_LIMIT),
            PerfData::new("wraparound_pct", round_to(pct, 3), Unit::Percent)
                .thresholds(t)
                .min(0.0)
                .max(100.0),
        ];
        for d in &m.databases {
            perf.push(
                PerfData::new(format!("{} xid_age", d.name), d.xid_age as f64, Unit::Count)
                    .min(0.0),
            );
            perf.push(
                PerfData::new(
                    format!("{} mxid_age", d.name),
                    d.mxid_age as f64,
                    Unit::Count,
                )
                .min(0.0),
            );
        }
        if let Some(f) = &m.forecast {
            if matches!(f, Forecast::Left { .. }) {
                summary.push_str(&format!(
                    "; {}",
                    forecast::describe(f, "new transactions refused", xids)
                ));
            }
            perf.extend(forecast::perf("time_left".into(), f, t));
        }
        let mut details = Vec::new();
        if let Some(f) = &m.forecast {
            details.push(format!(
                "wraparound stop (2^31 - 3 million): {}",
                forecast::describe(f, "reached", xids)
            ));
        }
        if let Some(f @ Forecast::Left { .. }) = &m.to_freeze {
            details.push(format!(
                "autovacuum_freeze_max_age: {}",
                forecast::describe(f, "reached", xids)
            ));
        }
        if status != Status::Ok || verbose > 0 {
            if m.holders.is_empty() {
                details.push("nothing holds the xmin horizon back: VACUUM (FREEZE) the oldest database's oldest tables".to_string());
            }
            if let Some(h) = m.holders.first() {
                // Where the on-call person should look first.
                let name = h.what.split(" (").next().unwrap_or_default();
                summary.push_str(&format!(
                    "; oldest xmin held by {} {name} (age {})",
                    h.kind, h.age
                ));
            }
            for h in &m.holders {
                details.push(format!(
                    "xmin horizon held by {} {}: age {}",
                    h.kind,
                    one_line(&h.what),
                    h.age
                ));
            }
            for d in &m.databases {
                details.push(format!(
                    "database {}: XID age {}, multixact age {}",
                    d.name, d.xid_age, d.mxid_age
                ));
            }
        }
        details.extend(m.notes.iter().cloned());
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

/// Adds the next XID to its history; forecasts the oldest age's course.
fn forecast_ages(
    m: &mut Measured,
    (now, next_xid, freeze_max_age): (f64, f64, f64),
    args: &Args,
    ctx: &Context,
) -> Result<(), Error> {
    // The next XID only grows: a fall is another cluster (a restore).
    let policy = args.forecast.policy(WINDOW, 0.0);
    let age = m.oldest().map_or(0.0, |(x, _)| x.xid_age as f64);
    let (mut to_stop, mut to_freeze) = (None, None);
    let notes = forecast::update(ctx, &args.state, now, |histories| {
        let (series, _) = histories.add("next_xid", now, next_xid, &policy);
        to_stop = Some(series.forecast(age, STOP_LIMIT, &policy));
        if age < freeze_max_age {
            to_freeze = Some(series.forecast(age, freeze_max_age, &policy));
        }
    })?;
    m.forecast = to_stop;
    m.to_freeze = to_freeze;
    m.notes.extend(notes);
    Ok(())
}

/// `3600000 XIDs`, for a rate.
fn xids(n: f64) -> String {
    format!("{} XIDs", n.round())
}

impl Measured {
    /// The database with the oldest XID age, and the one with the oldest
    /// multixact age.
    fn oldest(&self) -> Option<(&Database, &Database)> {
        // The first of equals, as the statement orders them (age, then name).
        let xid = self.databases.iter().rev().max_by_key(|d| d.xid_age)?;
        let mxid = self.databases.iter().max_by_key(|d| d.mxid_age)?;
        Some((xid, mxid))
    }

    /// The share of the wraparound limit used, by XID and by multixact ID.
    fn shares(&self) -> (f64, f64) {
        self.oldest().map_or((0.0, 0.0), |(x, m)| {
            (
                x.xid_age as f64 / WRAP_LIMIT * 100.0,
                m.mxid_age as f64 / WRAP_LIMIT * 100.0,
            )
        })
    }
}

/// The oldest XID age (a plain number) and the larger share of the
/// wraparound limit (a percentage) against `-w`/`-c`.
pub fn status(m: &Measured, t: &Thresholds) -> Status {
    let xid_age = m.oldest().map_or(0, |(x, _)| x.xid_age);
    let (xid_pct, mxid_pct) = m.shares();
    let mut measured = vec![
        (Unit::Count, xid_age as f64),
        (Unit::Percent, xid_pct.max(mxid_pct)),
    ];
    measured.extend(
        m.forecast
            .as_ref()
            .and_then(forecast::seconds_left)
            .map(|left| (Unit::Seconds, left)),
    );
    t.status(&measured)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};

    fn measured(xid_age: i64, mxid_age: i64) -> Measured {
        Measured {
            databases: vec![
                Database {
                    name: "app".into(),
                    xid_age,
                    mxid_age: 10,
                },
                Database {
                    name: "postgres".into(),
                    xid_age: 100,
                    mxid_age,
                },
            ],
            holders: vec![],
            ..Measured::default()
        }
    }

    #[test]
    fn default_thresholds_are_50_and_75_percent_of_the_limit() {
        let t = thresholds::<Wraparound>(None, None);
        let half = (WRAP_LIMIT / 2.0) as i64;
        assert_eq!(
            judge::<Wraparound>(&measured(half, 0), &options(&[]), &t, 0).status,
            Status::Ok
        );
        assert_eq!(
            judge::<Wraparound>(&measured(half + 1000, 0), &options(&[]), &t, 0).status,
            Status::Warning
        );
        assert_eq!(
            judge::<Wraparound>(
                &measured(0, (WRAP_LIMIT * 0.76) as i64),
                &options(&[]),
                &t,
                0
            )
            .status,
            Status::Critical
        );
    }

    #[test]
    fn a_plain_number_is_the_xid_age() {
        let t = thresholds::<Wraparound>(Some("200000000"), Some("1000000000"));
        assert_eq!(
            judge::<Wraparound>(&measured(200_000_000, 0), &options(&[]), &t, 0).status,
            Status::Ok
        );
        assert_eq!(
            judge::<Wraparound>(&measured(200_000_001, 0), &options(&[]), &t, 0).status,
            Status::Warning
        );
        // The multixact age counts through the percentage only.
        assert_eq!(
            judge::<Wraparound>(&measured(1, 1_500_000_000), &options(&[]), &t, 0).status,
            Status::Ok
        );
    }

    #[test]
    fn alerts_name_what_holds_the_horizon_oldest_first() {
        let t = thresholds::<Wraparound>(Some("1000"), None);
        let mut m = measured(5000, 20);
        m.holders = vec![
            Holder {
                kind: "prepared transaction".into(),
                what: "'tx1' (owner app, database app, prepared 2026-11-29 10:00:00 UTC)".into(),
                age: 4900,
            },
            Holder {
                kind: "session".into(),
                what: "pid 42 (app@app, idle in transaction), transaction open 60 s".into(),
                age: 30,
            },
        ];
        let r = reported::<Wraparound>(judge::<Wraparound>(&m, &options(&[]), &t, 0));
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "oldest XID age 5000 in database app (0% of wraparound), oldest multixact age 20 in postgres (0%); oldest xmin held by prepared transaction 'tx1' (age 4900)"
        );
        assert_eq!(
            r.details,
            [
                "xmin horizon held by prepared transaction 'tx1' (owner app, database app, prepared 2026-11-29 10:00:00 UTC): age 4900",
                "xmin horizon held by session pid 42 (app@app, idle in transaction), transaction open 60 s: age 30",
                "database app: XID age 5000, multixact age 10",
                "database postgres: XID age 100, multixact age 20"
            ]
        );
        assert!(r.hint.unwrap().starts_with("VACUUM (FREEZE, VERBOSE)"));
        let free = judge::<Wraparound>(&measured(5000, 0), &options(&[]), &t, 0);
        assert!(free.details[0].starts_with("nothing holds the xmin horizon back"));
    }

    #[test]
    fn the_time_left_runs_at_the_rate_xids_are_used() {
        let t = thresholds::<Wraparound>(Some("50%,30d:"), Some("75%,3d:"));
        let with = |left_days: f64| {
            let mut m = measured(1_000_000, 0);
            let rate = (STOP_LIMIT - 1_000_000.0) / (left_days * 86400.0);
            m.forecast = Some(Forecast::Left {
                left: left_days * 86400.0,
                rate,
                span: 86400.0,
            });
            m.to_freeze = Some(Forecast::Left {
                left: (200e6 - 1e6) / rate,
                rate,
                span: 86400.0,
            });
            reported::<Wraparound>(judge::<Wraparound>(&m, &options(&[]), &t, 0))
        };
        assert_eq!(with(40.0).status, Status::Ok);
        let w = with(10.0);
        assert_eq!(w.status, Status::Warning);
        assert!(
            w.summary
                .ends_with("; new transactions refused in 10 d 0 h at 8931182 XIDs per hour over the last 1 d 0 h"),
            "{}",
            w.summary
        );
        assert_eq!(w.details[0], "wraparound stop (2^31 - 3 million): reached in 10 d 0 h at 8931182 XIDs per hour over the last 1 d 0 h");
        assert_eq!(w.details[1], "autovacuum_freeze_max_age: reached in 22 h 16 min at 8931182 XIDs per hour over the last 1 d 0 h");
        assert!(perf(&w).contains(&"time_left=864000s;2592000:;259200:;0".to_string()));
        assert_eq!(with(1.0).status, Status::Critical);
    }

    #[test]
    fn quiet_when_ok_and_perfdata_per_database() {
        let r = judge::<Wraparound>(
            &measured(3, 4),
            &options(&[]),
            &thresholds::<Wraparound>(None, None),
            0,
        );
        assert!(r.details.is_empty());
        assert_eq!(
            perf(&r),
            [
                "max_xid_age=100;;;0;2147483648",
                "max_mxid_age=10;;;0;2147483648",
                "wraparound_pct=0%;50;75;0;100",
                "'app xid_age'=3;;;0",
                "'app mxid_age'=10;;;0",
                "'postgres xid_age'=100;;;0",
                "'postgres mxid_age'=4;;;0"
            ]
        );
        assert_eq!(
            judge::<Wraparound>(
                &Measured::default(),
                &options(&[]),
                &thresholds::<Wraparound>(None, None),
                0
            )
            .status,
            Status::Unknown
        );
    }
}
