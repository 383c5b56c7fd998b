//! check_pg_wraparound: how close the oldest database is to transaction ID
//! (and multixact ID) wraparound, which stops a server that never freezes
//! its tables. pg_database holds every database's horizon, so one session
//! sees them all; what holds the horizon back is read only when it matters.

use crate::check::require_stats_visibility;
use crate::output::one_line;
use crate::session::get;
use crate::units::round_to;
use crate::words::percent_text;
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

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

/// One database's horizons.
struct Database {
    name: String,
    xid_age: i64,
    mxid_age: i64,
}

impl Check for Wraparound {
    const DISPLAY: &'static str = "WRAPAROUND";
    const ABOUT: &'static str = "Transaction ID and multixact ID age of the oldest database, against the 2^31 wraparound limit, naming what holds the xmin horizon back.";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Count, Unit::Percent],
        bare: Some(Unit::Count),
        labels: &[],
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
        // Query
        let rows = db.query(SQL)?;
        let mut databases = Vec::new();
        for row in &rows {
            databases.push(Database {
                name: get(row, "datname")?,
                xid_age: get(row, "xid_age")?,
                mxid_age: get(row, "mxid_age")?,
            });
        }
        let first = rows
            .first()
            .ok_or_else(|| Error::Query("no database".into()))?;
        let sees_all: bool = get(first, "sees_all")?;

        // Measure
        let oldest = &databases[0];
        let oldest_multi = databases
            .iter()
            .max_by_key(|d| d.mxid_age)
            .expect("at least one database");
        let xid_pct = oldest.xid_age as f64 / WRAP_LIMIT * 100.0;
        let mxid_pct = oldest_multi.mxid_age as f64 / WRAP_LIMIT * 100.0;
        let pct = xid_pct.max(mxid_pct);

        // Compare
        let t = &ctx.thresholds;
        let status = t.status(&[(Unit::Count, oldest.xid_age as f64), (Unit::Percent, pct)]);

        // Report
        let mut summary = format!(
            "oldest XID age {} in database {} ({} of wraparound)",
            oldest.xid_age,
            oldest.name,
            percent_text(xid_pct)
        );
        summary.push_str(&format!(
            ", oldest multixact age {} in {} ({})",
            oldest_multi.mxid_age,
            oldest_multi.name,
            percent_text(mxid_pct)
        ));
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
        for d in &databases {
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
        let mut details = Vec::new();
        if status != Status::Ok || ctx.verbose > 0 {
            // Without pg_read_all_stats other roles' snapshots are invisible,
            // and the list would wrongly look complete.
            require_stats_visibility(sees_all, &ctx.conn.user)?;
            let holders = db.query(HOLDERS)?;
            if holders.is_empty() {
                details.push("nothing holds the xmin horizon back: VACUUM (FREEZE) the oldest database's oldest tables".to_string());
            }
            for (i, h) in holders.iter().enumerate() {
                let kind: String = get(h, "kind")?;
                let what: String = get(h, "what")?;
                let age = get::<Option<i64>>(h, "age")?.unwrap_or(0);
                if i == 0 {
                    // Where the on-call person should look first.
                    let name = what.split(" (").next().unwrap_or_default();
                    summary.push_str(&format!("; oldest xmin held by {kind} {name} (age {age})"));
                }
                details.push(format!(
                    "xmin horizon held by {kind} {}: age {age}",
                    one_line(&what)
                ));
            }
            for d in &databases {
                details.push(format!(
                    "database {}: XID age {}, multixact age {}",
                    d.name, d.xid_age, d.mxid_age
                ));
            }
        }
        Ok(CheckResult::new(status, summary)
            .perf(perf)
            .details(details))
    }
}
