//! check_pg_vacuum: tables that need VACUUM or ANALYZE, by these rules:
//! more than --min-dead dead tuples making up a large share of the table;
//! statistics that have gone stale while the table kept changing; and
//! tables on which autovacuum was switched off.

use crate::session::databases::{self, DatabaseArgs};
use crate::session::get;
use crate::session::relations::RelationArgs;
use crate::units::{pretty_duration, round_to};
use crate::words::{percent_text, plural};
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

pub struct Vacuum;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Vacuum")]
pub struct Args {
    /// Dead tuples a table must have before its dead share counts
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub min_dead: i64,
    /// Rows changed since the last ANALYZE before its age counts
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub min_changes: i64,
    #[command(flatten)]
    pub databases: DatabaseArgs,
    #[command(flatten)]
    pub relations: RelationArgs,
}

// Only tables with something to say come back. The statistics functions
// are called directly rather than through pg_stat_user_tables, which calls
// twenty of them for every table: on 10,000 tables two per table, and the
// rest for the few that have dead tuples or changes. `since_stats` is how
// long the statistics go back: a table never vacuumed has not been for at
// least that long.
const SQL: &str = "
SELECT current_setting('autovacuum') = 'on' AS autovacuum_on,
       (SELECT extract(epoch FROM now() - greatest(stats_reset, pg_postmaster_start_time()))
          FROM pg_stat_database WHERE datname = current_database())::float8 AS since_stats,
       t.*
FROM (SELECT 1) one LEFT JOIN (
  SELECT n.nspname::text AS schema, c.relname::text AS name,
         pg_stat_get_live_tuples(c.oid) AS n_live_tup, f.dead AS n_dead_tup, f.changed AS n_mod_since_analyze,
         extract(epoch FROM now() - greatest(pg_stat_get_last_vacuum_time(c.oid),
                                             pg_stat_get_last_autovacuum_time(c.oid)))::float8 AS vacuum_age,
         extract(epoch FROM now() - greatest(pg_stat_get_last_analyze_time(c.oid),
                                             pg_stat_get_last_autoanalyze_time(c.oid)))::float8 AS analyze_age,
         coalesce(array_to_string(c.reloptions, ',')
           ~* '(^|,)autovacuum_enabled=(f|fa|fal|fals|false|of|off|n|no|0)(,|$)', false) AS autovacuum_off
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL (SELECT pg_stat_get_dead_tuples(c.oid) AS dead,
                               pg_stat_get_mod_since_analyze(c.oid) AS changed OFFSET 0) f
   WHERE c.relkind IN ('r', 'm')
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
     AND (f.dead > 0 OR f.changed > 0 OR c.reloptions IS NOT NULL)
) t ON true";

const WORKERS: &str = "
SELECT p.pid, p.datname::text AS datname,
       CASE WHEN p.datname = current_database() THEN p.relid::regclass::text ELSE p.relid::text END AS relation,
       p.phase, p.heap_blks_scanned, p.heap_blks_total
FROM pg_stat_progress_vacuum p ORDER BY p.pid";

/// One table's vacuum and analyze state, and the verdict on it.
struct Table {
    database: String,
    schema: String,
    name: String,
    live: i64,
    dead: i64,
    dead_pct: Option<f64>,
    changes: i64,
    vacuum_age: Option<f64>,
    analyze_age: Option<f64>,
    stale_for: f64,
    needs_vacuum: bool,
    needs_analyze: bool,
    autovacuum_off: bool,
    status: Status,
}

impl Check for Vacuum {
    const DISPLAY: &'static str = "VACUUM";
    const ABOUT: &'static str = "Tables that need VACUUM or ANALYZE: dead tuple share, statistics gone stale while the table changed, autovacuum disabled.";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Percent, Unit::Seconds],
        bare: None,
        labels: &[],
    };
    const HINT: &'static str = "see whether autovacuum runs on those tables (pg_stat_progress_vacuum, the log with log_autovacuum_min_duration), whether a long transaction holds back cleanup, and run VACUUM (VERBOSE, ANALYZE) on the worst ones";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A percentage applies to the worst dead-tuple share (dead / live) among tables
  with more than --min-dead dead tuples; a duration to the oldest stale VACUUM
  (of such a table) or ANALYZE (of a table with more than --min-changes rows
  changed since). A table with autovacuum disabled is at least WARNING, and so
  is autovacuum = off. Default: -w 10%,1d -c 50%,7d.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("10%,1d", "50%,7d"));
    type Args = Args;

    fn run(args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        // Query, database by database
        let mut autovacuum_on = true;
        let mut visit = databases::visit(&args.databases, db, ctx, |database, session| {
            let rows = session.query(SQL)?;
            let mut tables = Vec::new();
            for row in &rows {
                autovacuum_on &= get::<bool>(row, "autovacuum_on")?;
                let Some(name) = get::<Option<String>>(row, "name")? else {
                    continue;
                };
                let schema: String = get(row, "schema")?;
                if !args.relations.keeps(&schema, &name) {
                    continue;
                }
                let since_stats = get::<Option<f64>>(row, "since_stats")?.unwrap_or(0.0);
                tables.push(measure(
                    args,
                    ctx,
                    Table {
                        database: database.to_string(),
                        schema,
                        name,
                        live: get(row, "n_live_tup")?,
                        dead: get(row, "n_dead_tup")?,
                        dead_pct: None,
                        changes: get(row, "n_mod_since_analyze")?,
                        vacuum_age: get(row, "vacuum_age")?,
                        analyze_age: get(row, "analyze_age")?,
                        stale_for: 0.0,
                        needs_vacuum: false,
                        needs_analyze: false,
                        autovacuum_off: get(row, "autovacuum_off")?,
                        status: Status::Ok,
                    },
                    since_stats,
                ));
            }
            Ok(tables)
        })?;
        let visited = visit.checked.len();
        let mut tables: Vec<Table> = std::mem::take(&mut visit.checked)
            .into_iter()
            .flat_map(|(_, t)| t)
            .collect();

        // Compare
        let mut status = tables.iter().fold(Status::Ok, |s, t| s.worst(t.status));
        if !autovacuum_on {
            status = status.worst(Status::Warning);
        }
        status = visit.floor(status);

        // Report: worst first
        tables.sort_by(|a, b| {
            b.status
                .rank()
                .cmp(&a.status.rank())
                .then(
                    b.dead_pct
                        .unwrap_or(0.0)
                        .total_cmp(&a.dead_pct.unwrap_or(0.0)),
                )
                .then(b.stale_for.total_cmp(&a.stale_for))
        });
        let flagged: Vec<&Table> = tables
            .iter()
            .filter(|t| t.needs_vacuum || t.needs_analyze || t.autovacuum_off)
            .collect();
        let need_vacuum = tables.iter().filter(|t| t.needs_vacuum).count();
        let need_analyze = tables.iter().filter(|t| t.needs_analyze).count();
        let autovacuum_off = tables.iter().filter(|t| t.autovacuum_off).count();
        let worst_pct = tables.iter().filter_map(|t| t.dead_pct).fold(0.0, f64::max);
        let oldest_stale = tables.iter().map(|t| t.stale_for).fold(0.0, f64::max);

        let many = visited > 1;
        let scope = if many {
            format!(" in {visited} databases")
        } else {
            String::new()
        };
        let mut summary = match flagged.first() {
            Some(t) => format!(
                "{}: {}; {need_vacuum} table{} to VACUUM, {need_analyze} to ANALYZE, {autovacuum_off} with autovacuum disabled{scope}",
                qualified(t, many),
                describe(t),
                plural(need_vacuum as i64),
            ),
            None => format!("no table needs VACUUM or ANALYZE{scope}"),
        };
        if !autovacuum_on {
            summary.push_str("; autovacuum is off for the server");
        }
        summary.push_str(&visit.unreachable_note());

        let t = &ctx.thresholds;
        let perf = [
            PerfData::new("max_dead_pct", round_to(worst_pct, 2), Unit::Percent)
                .thresholds(t)
                .min(0.0),
            PerfData::new("oldest_stale", oldest_stale.round(), Unit::Seconds)
                .thresholds(t)
                .min(0.0),
            PerfData::new("need_vacuum", need_vacuum as f64, Unit::Count).min(0.0),
            PerfData::new("need_analyze", need_analyze as f64, Unit::Count).min(0.0),
            PerfData::new("autovacuum_disabled", autovacuum_off as f64, Unit::Count).min(0.0),
        ];
        let mut details = visit.unreachable_details();
        if status != Status::Ok || ctx.verbose > 0 {
            details.extend(
                flagged
                    .iter()
                    .map(|t| format!("{} {}: {}", t.status, qualified(t, many), describe(t))),
            );
        }
        if ctx.verbose > 0 {
            for w in db.query(WORKERS)? {
                let scanned: i64 = get(&w, "heap_blks_scanned")?;
                let total: i64 = get(&w, "heap_blks_total")?;
                details.push(format!(
                    "vacuum running: pid {} on {}.{} ({}, {scanned} of {total} heap blocks scanned)",
                    get::<i32>(&w, "pid")?,
                    get::<String>(&w, "datname")?,
                    get::<String>(&w, "relation")?,
                    get::<String>(&w, "phase")?,
                ));
            }
        }
        Ok(CheckResult::new(status, summary)
            .perf(perf)
            .details(details))
    }
}

/// Applies the rules to one table.
fn measure(args: &Args, ctx: &Context, mut t: Table, since_stats: f64) -> Table {
    let mut measured = Vec::new();
    if t.dead > args.min_dead {
        t.needs_vacuum = true;
        let pct = t.dead as f64 / t.live.max(1) as f64 * 100.0;
        t.dead_pct = Some(pct);
        measured.push((Unit::Percent, pct));
        t.stale_for = t.vacuum_age.unwrap_or(since_stats).max(0.0);
    }
    if t.changes > args.min_changes {
        t.needs_analyze = true;
        t.stale_for = t
            .stale_for
            .max(t.analyze_age.unwrap_or(since_stats).max(0.0));
    }
    measured.push((Unit::Seconds, t.stale_for));
    t.status = ctx.thresholds.status(&measured);
    // Over --min-* alone is normal between autovacuum runs: flag it only
    // when a threshold says so.
    if t.status == Status::Ok {
        t.needs_vacuum = false;
        t.needs_analyze = false;
    }
    if t.autovacuum_off {
        t.status = t.status.worst(Status::Warning);
    }
    t
}

fn qualified(t: &Table, with_database: bool) -> String {
    databases::qualified(&t.database, &t.schema, &t.name, with_database)
}

/// `5000 dead tuples of 10000 live (50%), last vacuum 3 h ago; 2000 changes since ANALYZE never`.
fn describe(t: &Table) -> String {
    let ago = |age: Option<f64>| match age {
        Some(a) => format!("{} ago", pretty_duration(a.max(0.0))),
        None => "never".to_string(),
    };
    let mut parts = vec![format!(
        "{} dead tuples of {} live{}, last vacuum {}",
        t.dead,
        t.live,
        t.dead_pct
            .map(|p| format!(" ({})", percent_text(p)))
            .unwrap_or_default(),
        ago(t.vacuum_age)
    )];
    parts.push(format!(
        "{} rows changed since last analyze {}",
        t.changes,
        ago(t.analyze_age)
    ));
    if t.autovacuum_off {
        parts.push("autovacuum disabled".to_string());
    }
    parts.join("; ")
}
