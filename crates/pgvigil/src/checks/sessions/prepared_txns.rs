//! check_pg_prepared_txns: transactions left prepared (two-phase commit). A
//! `PREPARE TRANSACTION` an XA or JTA transaction manager never finished
//! holds its locks and the xmin horizon until someone commits or rolls it
//! back, survives restarts, and has no session in pg_stat_activity: so
//! check_pg_long_running never sees it, and it gets its own check.

use crate::check::{Check, Context, Judging};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::output::one_line;
use pgvigil_kit::units::{pretty_duration, round_to};
use pgvigil_kit::words::{count, plural};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct PreparedTxns;

#[derive(Debug, clap::Args)]
pub struct Args {}

// pg_prepared_xacts needs no grant; the outer join keeps one row, with the
// setting, when none is prepared.
const SQL: &str = "
SELECT current_setting('max_prepared_transactions')::int4 AS max_prepared,
       p.gid, p.owner::text AS owner, p.database::text AS database,
       greatest(extract(epoch FROM now() - p.prepared), 0)::float8 AS age_seconds,
       age(p.transaction)::int8 AS xid_age
FROM (SELECT 1) one LEFT JOIN pg_prepared_xacts p ON true
ORDER BY p.prepared";

/// What one run reads: the prepared transactions, oldest first, and how
/// many the server allows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub max_prepared: i32,
    pub prepared: Vec<Prepared>,
}

/// One prepared transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepared {
    pub gid: String,
    pub owner: String,
    pub database: String,
    /// Seconds since PREPARE TRANSACTION.
    pub age: f64,
    /// Transactions since its own: how far it holds the xmin horizon back.
    pub xid_age: i64,
}

impl Check for PreparedTxns {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Seconds, Unit::Count], Some(Unit::Count));
    const HINT: &'static str = "a prepared transaction holds its locks and the xmin horizon until it is resolved: ask the transaction manager (XA/JTA) that prepared it; after review run COMMIT PREPARED 'gid' or ROLLBACK PREPARED 'gid' in its database, as its owner or a superuser";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A duration applies to the age of the oldest prepared transaction, a plain
  number to how many there are (-w 5min,10).
  Default: {defaults}: a transaction manager resolves its own within
  seconds, so one prepared for minutes is likely forgotten.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("5min", "1h"));
    type Args = Args;
    type Measured = Measured;

    fn fetch(_args: &Args, db: &mut Session, _ctx: &Context) -> Result<Self::Measured, Error> {
        measure(db)
    }

    /// The oldest one's age (a duration) and how many (a count) against
    /// `-w`/`-c`; each named, oldest first, when not OK or with -v.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, verbose) = (judging.thresholds, judging.verbose);
        let prepared_count = m.prepared.len();
        let oldest = m.prepared.iter().map(|p| p.age).fold(0.0, f64::max);
        let status = t.status(&[
            (Unit::Seconds, oldest),
            (Unit::Count, prepared_count as f64),
        ]);
        let summary = match m.prepared.first() {
            None if m.max_prepared == 0 => {
                "no prepared transaction (max_prepared_transactions is 0: none can be)".to_string()
            }
            None => format!(
                "no prepared transaction (max_prepared_transactions {})",
                m.max_prepared
            ),
            Some(p) => format!(
                "{prepared_count} prepared transaction{}, oldest {} ago: {} ({}@{}, {} behind); max_prepared_transactions {}",
                plural(prepared_count as i64),
                pretty_duration(oldest),
                quoted(&p.gid),
                p.owner,
                p.database,
                behind(p.xid_age),
                m.max_prepared
            ),
        };
        let mut prepared = PerfData::new("prepared", prepared_count as f64, Unit::Count)
            .thresholds(t)
            .min(0.0);
        if m.max_prepared > 0 {
            prepared = prepared.max(f64::from(m.max_prepared));
        }
        let perf = [
            prepared,
            PerfData::new("oldest_prepared", round_to(oldest, 3), Unit::Seconds)
                .thresholds(t)
                .min(0.0),
        ];
        let details = if status != Status::Ok || verbose > 0 {
            m.prepared
                .iter()
                .map(|p| {
                    format!(
                        "{} prepared {} ago by {} in {}, {} behind",
                        quoted(&p.gid),
                        pretty_duration(p.age),
                        p.owner,
                        p.database,
                        behind(p.xid_age)
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

fn measure(db: &mut Session) -> Result<Measured, Error> {
    let rows = db.query(SQL)?;
    let mut measured = Measured::default();
    for row in &rows {
        measured.max_prepared = get(row, "max_prepared")?;
        let Some(gid) = get::<Option<String>>(row, "gid")? else {
            continue;
        };
        measured.prepared.push(Prepared {
            gid,
            owner: get::<Option<String>>(row, "owner")?.unwrap_or_default(),
            database: get::<Option<String>>(row, "database")?.unwrap_or_default(),
            age: get(row, "age_seconds")?,
            xid_age: get::<Option<i64>>(row, "xid_age")?.unwrap_or(0),
        });
    }
    Ok(measured)
}

/// `1200 transactions`: how far it holds the xmin horizon back.
fn behind(xid_age: i64) -> String {
    count(usize::try_from(xid_age).unwrap_or(0), "transaction")
}

/// A gid as COMMIT PREPARED takes it: quoted, on one line.
fn quoted(gid: &str) -> String {
    format!("'{}'", one_line(&gid.replace('\'', "''")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};

    fn prepared(gid: &str, age: f64) -> Prepared {
        Prepared {
            gid: gid.into(),
            owner: "app".into(),
            database: "shop".into(),
            age,
            xid_age: 1200,
        }
    }

    fn measured(prepared: Vec<Prepared>) -> Measured {
        Measured {
            max_prepared: 100,
            prepared,
        }
    }

    #[test]
    fn default_thresholds_are_5min_and_1h_on_the_oldest() {
        let t = thresholds::<PreparedTxns>(None, None);
        let at = |age: f64| {
            judge::<PreparedTxns>(&measured(vec![prepared("x", age)]), &options(&[]), &t, 0).status
        };
        assert_eq!(at(300.0), Status::Ok);
        assert_eq!(at(301.0), Status::Warning);
        assert_eq!(at(3601.0), Status::Critical);
        // A count applies to how many.
        let t = thresholds::<PreparedTxns>(Some("1h,1"), None);
        let two = measured(vec![prepared("a", 10.0), prepared("b", 5.0)]);
        assert_eq!(
            judge::<PreparedTxns>(&two, &options(&[]), &t, 0).status,
            Status::Warning
        );
    }

    #[test]
    fn none_prepared_says_whether_any_can_be() {
        let t = thresholds::<PreparedTxns>(None, None);
        let r = judge::<PreparedTxns>(&Measured::default(), &options(&[]), &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.summary,
            "no prepared transaction (max_prepared_transactions is 0: none can be)"
        );
        assert_eq!(
            perf(&r),
            ["prepared=0;;;0", "oldest_prepared=0s;300;3600;0"]
        );
        let r = judge::<PreparedTxns>(&measured(vec![]), &options(&[]), &t, 0);
        assert_eq!(
            r.summary,
            "no prepared transaction (max_prepared_transactions 100)"
        );
    }

    #[test]
    fn a_forgotten_one_is_named_with_what_resolves_it() {
        let t = thresholds::<PreparedTxns>(None, None);
        let m = measured(vec![prepared("xa:42'7", 900.0), prepared("xa:43", 60.0)]);
        let r = reported::<PreparedTxns>(judge::<PreparedTxns>(&m, &options(&[]), &t, 0));
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "2 prepared transactions, oldest 15 min 0 s ago: 'xa:42''7' (app@shop, 1200 transactions behind); max_prepared_transactions 100"
        );
        assert_eq!(
            r.details,
            [
                "'xa:42''7' prepared 15 min 0 s ago by app in shop, 1200 transactions behind",
                "'xa:43' prepared 1 min 0 s ago by app in shop, 1200 transactions behind"
            ]
        );
        assert!(r.hint.as_deref().unwrap().contains("COMMIT PREPARED 'gid'"));
        assert_eq!(perf(&r)[0], "prepared=2;;;0;100");
    }
}
