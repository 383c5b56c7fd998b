//! check_pg_wraparound: how close the oldest database is to transaction ID
//! (and multixact ID) wraparound, which stops a server that never freezes
//! its tables. pg_database holds every database's horizon, so one session
//! sees them all; what holds the horizon back is read only when it matters.

use crate::check::require_stats_visibility;
use crate::check::{Check, Context};
use crate::output::one_line;
use crate::session::get;
use crate::session::Session;
use crate::units::round_to;
use crate::words::percent_text;
use crate::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

pub struct Wraparound;

#[derive(Debug, clap::Args)]
pub struct Args {}

/// XIDs and multixact IDs wrap around at 2^31 transactions of age.
const WRAP_LIMIT: f64 = 2_147_483_648.0;

const SQL: &str = "
SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all,
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
    const DISPLAY: &'static str = "WRAPAROUND";
    const ABOUT: &'static str = "Transaction ID and multixact ID age of the oldest database, against the 2^31 wraparound limit, naming what holds the xmin horizon back.";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Count, Unit::Percent],
        bare: Some(Unit::Count),
        labels: &[],
        time_left: false,
    };
    const HINT: &'static str = "VACUUM (FREEZE, VERBOSE) the oldest tables of the named database now; first end what holds the xmin horizon back: long transactions, prepared transactions (pg_prepared_xacts) and stale replication slots";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A plain number applies to the oldest transaction ID age (age(datfrozenxid)),
  a percentage to the share of the 2^31 wraparound limit used by the oldest
  XID or multixact ID age. Default: -w 50% -c 75%.
  autovacuum_freeze_max_age (default 200 million, 9.3%) is where autovacuum
  starts forcing freezes; ages far beyond it mean vacuum cannot keep up.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("50%", "75%"));
    type Args = Args;

    fn run(_args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        let rows = db.query(SQL)?;
        let first = rows
            .first()
            .ok_or_else(|| Error::Query("no database".into()))?;
        let sees_all: bool = get(first, "sees_all")?;
        let mut measured = Measured::default();
        for row in &rows {
            measured.databases.push(Database {
                name: get(row, "datname")?,
                xid_age: get(row, "xid_age")?,
                mxid_age: get(row, "mxid_age")?,
            });
        }
        if ctx.verbose > 0 || status(&measured, &ctx.thresholds) != Status::Ok {
            // Without pg_read_all_stats other roles' snapshots are invisible,
            // and the list would wrongly look complete.
            require_stats_visibility(sees_all, &ctx.conn.user)?;
            for h in db.query(HOLDERS)? {
                measured.holders.push(Holder {
                    kind: get(&h, "kind")?,
                    what: get(&h, "what")?,
                    age: get::<Option<i64>>(&h, "age")?.unwrap_or(0),
                });
            }
        }
        Ok(judge(&measured, &ctx.thresholds, ctx.verbose))
    }
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
    t.status(&[
        (Unit::Count, xid_age as f64),
        (Unit::Percent, xid_pct.max(mxid_pct)),
    ])
}

/// The verdict; when not OK (or with -v) what holds the xmin horizon back,
/// oldest first, and every database's ages.
pub fn judge(m: &Measured, t: &Thresholds, verbose: u8) -> CheckResult {
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
            PerfData::new(format!("{} xid_age", d.name), d.xid_age as f64, Unit::Count).min(0.0),
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
    let mut details = Vec::new();
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
    CheckResult::new(status, summary)
        .perf(perf)
        .details(details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{perf, reported, thresholds};

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
        }
    }

    #[test]
    fn default_thresholds_are_50_and_75_percent_of_the_limit() {
        let t = thresholds::<Wraparound>(None, None);
        let half = (WRAP_LIMIT / 2.0) as i64;
        assert_eq!(judge(&measured(half, 0), &t, 0).status, Status::Ok);
        assert_eq!(
            judge(&measured(half + 1000, 0), &t, 0).status,
            Status::Warning
        );
        assert_eq!(
            judge(&measured(0, (WRAP_LIMIT * 0.76) as i64), &t, 0).status,
            Status::Critical
        );
    }

    #[test]
    fn a_plain_number_is_the_xid_age() {
        let t = thresholds::<Wraparound>(Some("200000000"), Some("1000000000"));
        assert_eq!(judge(&measured(200_000_000, 0), &t, 0).status, Status::Ok);
        assert_eq!(
            judge(&measured(200_000_001, 0), &t, 0).status,
            Status::Warning
        );
        // The multixact age counts through the percentage only.
        assert_eq!(judge(&measured(1, 1_500_000_000), &t, 0).status, Status::Ok);
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
        let r = reported::<Wraparound>(judge(&m, &t, 0));
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
        let free = judge(&measured(5000, 0), &t, 0);
        assert!(free.details[0].starts_with("nothing holds the xmin horizon back"));
    }

    #[test]
    fn quiet_when_ok_and_perfdata_per_database() {
        let r = judge(&measured(3, 4), &thresholds::<Wraparound>(None, None), 0);
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
            judge(
                &Measured::default(),
                &thresholds::<Wraparound>(None, None),
                0
            )
            .status,
            Status::Unknown
        );
    }
}
