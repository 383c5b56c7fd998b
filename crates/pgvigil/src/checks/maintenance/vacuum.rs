//! check_pg_vacuum: tables that need VACUUM or ANALYZE, by these rules:
//! more than --min-dead dead tuples making up a large share of the table;
//! statistics that have gone stale while the table kept changing; and
//! tables on which autovacuum was switched off. A table autovacuum visited
//! in the last three naptimes is in its hands: dead tuples it still holds
//! are ones that vacuum could not remove yet (an old snapshot, a prepared
//! transaction or a slot holds them, which their own checks report) or
//! that came since, and another VACUUM would not help.

use crate::check::{Check, Context, Judging};
use crate::checks::common::visit::{self, Wording};
use crate::session::databases::{self, DatabaseArgs, Visit};
use crate::session::get;
use crate::session::relations::RelationArgs;
use crate::session::Session;
use pgvigil_kit::judge::{worst, worst_first};
use pgvigil_kit::units::{pretty_duration, round_to};
use pgvigil_kit::words::{percent_text, plural};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

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
// least that long. `reltuples` stands in for the live count after a
// statistics reset (see live_rows). One row without a table when none has
// anything to say.
macro_rules! tables {
    () => {
        "SELECT since.since_stats, since.naptime, t.*
FROM (SELECT extract(epoch FROM now() - greatest(pg_stat_get_db_stat_reset_time(d.oid),
                                                 pg_postmaster_start_time()))::float8 AS since_stats,
             extract(epoch FROM current_setting('autovacuum_naptime')::interval)::float8 AS naptime
        FROM pg_database d WHERE d.datname = current_database()) since
LEFT JOIN (
  SELECT n.nspname::text AS schema, c.relname::text AS name,
         pg_stat_get_live_tuples(c.oid) AS n_live_tup, c.reltuples::int8 AS reltuples,
         f.dead AS n_dead_tup, f.changed AS n_mod_since_analyze,
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
) t ON true"
    };
}

// Autovacuum and its workers are the server's, the same from any database:
// read once, over the check's own session (in a fresh session
// pg_stat_activity costs about 4 ms, 4 s over 1,000 databases).
macro_rules! server {
    () => {
        "SELECT current_setting('autovacuum') = 'on' AS autovacuum_on,
       current_setting('autovacuum_max_workers')::int4 AS max_workers,
       count(*)::int4 AS busy_workers,
       max(extract(epoch FROM now() - xact_start))::float8 AS longest_worker,
       (array_agg(left(query, 100) ORDER BY xact_start))[1] AS longest_worker_query
  FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
    };
}

/// Another database's tables.
const TABLES: &str = tables!();
/// The server's autovacuum alone, when the check's own database is not visited.
const SERVER: &str = server!();
/// The check's own database and the server's autovacuum, in one statement.
const OWN: &str = concat!(
    "SELECT s.*, x.* FROM (",
    server!(),
    ") s CROSS JOIN (",
    tables!(),
    ") x"
);

const WORKERS: &str = "
SELECT p.pid, p.datname::text AS datname,
       CASE WHEN p.datname = current_database() THEN p.relid::regclass::text ELSE p.relid::text END AS relation,
       p.phase, p.heap_blks_scanned, p.heap_blks_total
FROM pg_stat_progress_vacuum p ORDER BY p.pid";

/// What one run reads: the tables with something to say in each database
/// visited, whether autovacuum is on, and with -v the vacuums running.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub visit: Visit<Vec<Table>>,
    pub autovacuum_on: bool,
    pub workers: Workers,
    pub running: Vec<Running>,
}

/// The autovacuum workers busy now, against how many may run: all of them
/// busy for hours on big tables leaves every other table waiting, those
/// heading for wraparound too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Workers {
    pub max: i32,
    pub busy: i32,
    /// Seconds the longest-running worker has been at its table.
    pub longest: f64,
    /// Its query: `autovacuum: VACUUM public.big`.
    pub longest_query: Option<String>,
}

impl Workers {
    fn busy_pct(&self) -> f64 {
        if self.max > 0 {
            f64::from(self.busy) / f64::from(self.max) * 100.0
        } else {
            0.0
        }
    }
}

/// One table's vacuum and analyze state as read (the first fields), and as
/// judged (`dead_pct` on): ages in seconds, None for never.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub database: String,
    pub schema: String,
    pub name: String,
    pub live: i64,
    pub dead: i64,
    pub changes: i64,
    pub vacuum_age: Option<f64>,
    pub analyze_age: Option<f64>,
    pub autovacuum_off: bool,
    /// How far the statistics go back: a table never vacuumed has not been
    /// for at least that long.
    pub since_stats: f64,
    /// autovacuum_naptime, in seconds: how often autovacuum visits.
    pub naptime: f64,
    dead_pct: Option<f64>,
    /// Over --min-dead though vacuumed within three naptimes.
    held: bool,
    stale_for: f64,
    needs_vacuum: bool,
    needs_analyze: bool,
    status: Status,
}

/// A vacuum in progress (pg_stat_progress_vacuum).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Running {
    pub pid: i32,
    pub database: String,
    pub relation: String,
    pub phase: String,
    pub scanned: i64,
    pub total: i64,
}

impl Check for Vacuum {
    const INTERVAL: u32 = 900;
    const UNITS: UnitSpec =
        UnitSpec::of(&[Unit::Percent, Unit::Seconds], None).with_labels(&["workers", "worker_age"]);
    const HINT: &'static str = "see whether autovacuum runs on those tables (pg_stat_progress_vacuum, the log with log_autovacuum_min_duration), whether a long transaction holds back cleanup, and run VACUUM (VERBOSE, ANALYZE) on the worst ones";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A percentage applies to the worst dead-tuple share (dead / live) among tables
  with more than --min-dead dead tuples, but for those autovacuum visited in the
  last three autovacuum_naptimes: what a vacuum left, an old snapshot holds (the
  summary names the table; check_pg_long_running the snapshot's holder), and
  another VACUUM would not help. A duration applies to the oldest stale VACUUM
  (of such a table) or ANALYZE (of a table with more than --min-changes rows
  changed since). A table with autovacuum disabled is at least WARNING, and so
  is autovacuum = off. workers=PCT applies to the autovacuum workers busy, as
  a share of autovacuum_max_workers, and worker_age=DURATION to how long the
  longest-running one has been at its table: all of them busy for hours
  leaves every other table waiting (-w 10%,1d,workers=99%,worker_age=6h).
  Default: {defaults}.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("10%,1d", "50%,7d"));
    type Args = Args;
    type Measured = Measured;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        measure(args, db, ctx)
    }

    /// Each table against the rules and `-w`/`-c` (the dead share as a
    /// percentage, the oldest stale VACUUM or ANALYZE as a duration);
    /// autovacuum off, for a table or the server, is at least WARNING, and so
    /// is a database that could not be visited. Worst first.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, args, verbose) = (judging.thresholds, judging.args, judging.verbose);
        let visited = m.visit.checked.len();
        let mut tables: Vec<Table> = m
            .visit
            .results()
            .flat_map(|(_, tables)| tables.iter().cloned())
            .map(|table| assess(args, t, table))
            .collect();
        let mut status = worst(tables.iter().map(|t| t.status));
        if !m.autovacuum_on {
            status = status.worst(Status::Warning);
        }
        let busy_pct = m.workers.busy_pct();
        let workers_status = t.status_labeled(
            &[],
            &[("workers", busy_pct), ("worker_age", m.workers.longest)],
        );
        status = m.visit.floor(status.worst(workers_status));
        tables.sort_by(|a, b| {
            (b.dead_pct.unwrap_or(0.0))
                .total_cmp(&a.dead_pct.unwrap_or(0.0))
                .then(b.stale_for.total_cmp(&a.stale_for))
        });
        worst_first(&mut tables, |t| t.status);
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
        let held: Vec<&Table> = tables.iter().filter(|t| t.held).collect();
        if let Some(h) = held.iter().max_by_key(|t| t.dead) {
            let others = held.len() - 1;
            summary.push_str(&format!(
                "; {} keeps {} dead tuples though vacuumed {} ago (an old snapshot holds them, or they came since){}",
                qualified(h, many),
                h.dead,
                pretty_duration(h.vacuum_age.unwrap_or(0.0).max(0.0)),
                if others > 0 {
                    format!(", and {others} other table{}", plural(others as i64))
                } else {
                    String::new()
                }
            ));
        }
        if !m.autovacuum_on {
            summary.push_str("; autovacuum is off for the server");
        }
        if workers_status != Status::Ok {
            summary.push_str(&format!(
                "; autovacuum workers {} of {} busy, the longest for {}",
                m.workers.busy,
                m.workers.max,
                pretty_duration(m.workers.longest)
            ));
        }
        summary.push_str(&m.visit.unreachable_note());

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
            PerfData::new("autovacuum_busy", round_to(busy_pct, 2), Unit::Percent)
                .min(0.0)
                .max(100.0)
                .thresholds_of(t, "workers"),
            PerfData::new(
                "autovacuum_longest",
                round_to(m.workers.longest, 0),
                Unit::Seconds,
            )
            .min(0.0)
            .thresholds_of(t, "worker_age"),
        ];
        let mut details = m.visit.unreachable_details();
        if status != Status::Ok || verbose > 0 {
            details.extend(
                flagged
                    .iter()
                    .map(|t| format!("{} {}: {}", t.status, qualified(t, many), describe(t))),
            );
        }
        if workers_status != Status::Ok || verbose > 0 {
            if let Some(query) = &m.workers.longest_query {
                details.push(format!(
                    "{workers_status} autovacuum: {} of {} workers busy; the longest for {}: {}",
                    m.workers.busy,
                    m.workers.max,
                    pretty_duration(m.workers.longest),
                    pgvigil_kit::output::one_line(query)
                ));
            }
        }
        for w in &m.running {
            details.push(format!(
                "vacuum running: pid {} on {}.{} ({}, {} of {} heap blocks scanned)",
                w.pid, w.database, w.relation, w.phase, w.scanned, w.total
            ));
        }
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

fn measure(args: &Args, db: &mut Session, ctx: &Context) -> Result<Measured, Error> {
    let visit = databases::visit(
        &args.databases,
        db,
        &ctx.conn,
        ctx.timeout,
        |database, session| {
            let own = database == ctx.conn.dbname;
            let mut server = None;
            let mut tables = Vec::new();
            for row in &session.query(if own { OWN } else { TABLES })? {
                if own && server.is_none() {
                    server = Some(read_server(row)?);
                }
                let Some(name) = get::<Option<String>>(row, "name")? else {
                    continue;
                };
                let schema: String = get(row, "schema")?;
                if !args.relations.keeps(&schema, &name) {
                    continue;
                }
                let vacuum_age = get(row, "vacuum_age")?;
                let analyze_age = get(row, "analyze_age")?;
                tables.push(Table {
                    database: database.to_string(),
                    schema,
                    name,
                    live: live_rows(
                        get(row, "n_live_tup")?,
                        get(row, "reltuples")?,
                        vacuum_age,
                        analyze_age,
                    ),
                    dead: get(row, "n_dead_tup")?,
                    changes: get(row, "n_mod_since_analyze")?,
                    vacuum_age,
                    analyze_age,
                    autovacuum_off: get(row, "autovacuum_off")?,
                    since_stats: get::<Option<f64>>(row, "since_stats")?.unwrap_or(0.0),
                    naptime: get::<Option<f64>>(row, "naptime")?.unwrap_or(60.0),
                    ..Table::default()
                });
            }
            Ok((tables, server))
        },
    )?;
    let mut server = None;
    let visit = visit.map(|(tables, seen)| {
        server = server.take().or(seen);
        tables
    });
    // The check's own database was left out by the filters.
    let (autovacuum_on, workers) = match server {
        Some(found) => found,
        None => read_server(&db.query_one(SERVER)?)?,
    };
    let mut running = Vec::new();
    if ctx.verbose > 0 {
        for w in db.query(WORKERS)? {
            running.push(Running {
                pid: get(&w, "pid")?,
                database: get(&w, "datname")?,
                relation: get(&w, "relation")?,
                phase: get(&w, "phase")?,
                scanned: get(&w, "heap_blks_scanned")?,
                total: get(&w, "heap_blks_total")?,
            });
        }
    }
    Ok(Measured {
        visit,
        autovacuum_on,
        workers,
        running,
    })
}

/// Whether autovacuum is on, and its workers, from a row of SERVER or OWN.
fn read_server(row: &postgres::Row) -> Result<(bool, Workers), Error> {
    Ok((
        get(row, "autovacuum_on")?,
        Workers {
            max: get(row, "max_workers")?,
            busy: get(row, "busy_workers")?,
            longest: get::<Option<f64>>(row, "longest_worker")?.unwrap_or(0.0),
            longest_query: get(row, "longest_worker_query")?,
        },
    ))
}

/// The table's live rows. pg_stat_reset() sets the live count to 0 while
/// the table keeps its rows: until a VACUUM or ANALYZE counts them again
/// (neither has run since, so both ages are unknown), they are
/// pg_class.reltuples (what autovacuum's own threshold is based on) plus
/// the rows inserted since.
fn live_rows(
    counted: i64,
    reltuples: i64,
    vacuum_age: Option<f64>,
    analyze_age: Option<f64>,
) -> i64 {
    if reltuples > 0 && vacuum_age.is_none() && analyze_age.is_none() {
        reltuples + counted
    } else {
        counted
    }
}

/// Applies the rules to one table.
fn assess(args: &Args, thresholds: &Thresholds, mut t: Table) -> Table {
    let mut measured = Vec::new();
    let recent = t.vacuum_age.is_some_and(|age| age < 3.0 * t.naptime);
    if t.dead > args.min_dead && recent {
        t.held = true;
    } else if t.dead > args.min_dead {
        t.needs_vacuum = true;
        let pct = t.dead as f64 / t.live.max(1) as f64 * 100.0;
        t.dead_pct = Some(pct);
        measured.push((Unit::Percent, pct));
        t.stale_for = t.vacuum_age.unwrap_or(t.since_stats).max(0.0);
    }
    if t.changes > args.min_changes {
        t.needs_analyze = true;
        t.stale_for = t
            .stale_for
            .max(t.analyze_age.unwrap_or(t.since_stats).max(0.0));
    }
    measured.push((Unit::Seconds, t.stale_for));
    t.status = thresholds.status(&measured);
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
    visit::qualified(&t.database, &t.schema, &t.name, with_database)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, perf, reported, thresholds};
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args() -> Args {
        Cli::parse_from(["check_pg_vacuum"]).args
    }

    fn table(name: &str, live: i64, dead: i64, vacuum_age: Option<f64>) -> Table {
        Table {
            database: "app".into(),
            schema: "public".into(),
            name: name.into(),
            live,
            dead,
            vacuum_age,
            analyze_age: Some(60.0),
            since_stats: 30.0 * 86400.0,
            naptime: 60.0,
            ..Table::default()
        }
    }

    fn measured(tables: Vec<Table>) -> Measured {
        Measured {
            visit: Visit {
                checked: vec![("app".into(), tables)],
                unreachable: vec![],
            },
            autovacuum_on: true,
            workers: Workers {
                max: 3,
                ..Workers::default()
            },
            running: vec![],
        }
    }

    #[test]
    fn default_thresholds_are_10_and_50_percent_dead_and_1_and_7_days_stale() {
        let t = thresholds::<Vacuum>(None, None);
        let at = |dead: i64, age: f64| {
            judge::<Vacuum>(
                &measured(vec![table("t", 100_000, dead, Some(age))]),
                &args(),
                &t,
                0,
            )
            .status
        };
        assert_eq!(at(10_000, 600.0), Status::Ok);
        assert_eq!(at(10_001, 600.0), Status::Warning);
        assert_eq!(at(50_001, 600.0), Status::Critical);
        assert_eq!(at(2000, 86401.0), Status::Warning);
        assert_eq!(at(2000, 7.0 * 86400.0 + 1.0), Status::Critical);
        // Under --min-dead (1000) neither share nor age counts.
        assert_eq!(at(1000, 30.0 * 86400.0), Status::Ok);
    }

    #[test]
    fn dead_tuples_a_recent_vacuum_left_are_not_the_vacuums_to_fix() {
        // A 10-row table updated 50 times a second while a 2-minute query
        // holds its snapshot: autovacuum visits every minute and can remove
        // nothing; another VACUUM would not help either.
        let t = thresholds::<Vacuum>(None, None);
        let hot = |age: f64| table("pgbench_branches", 10, 6000, Some(age));
        let r = judge::<Vacuum>(
            &measured(vec![hot(40.0), table("tellers", 100, 2000, Some(50.0))]),
            &args(),
            &t,
            0,
        );
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.summary,
            "no table needs VACUUM or ANALYZE; public.pgbench_branches keeps 6000 dead tuples though vacuumed 40 s ago (an old snapshot holds them, or they came since), and 1 other table"
        );
        assert_eq!(perf(&r)[0], "max_dead_pct=0%;10;50;0");
        // Past three naptimes autovacuum has not come back: the share counts.
        assert_eq!(
            judge::<Vacuum>(&measured(vec![hot(181.0)]), &args(), &t, 0).status,
            Status::Critical
        );
    }

    #[test]
    fn never_vacuumed_is_stale_since_the_statistics_began() {
        let t = thresholds::<Vacuum>(None, None);
        let r = reported::<Vacuum>(judge::<Vacuum>(
            &measured(vec![table("t", 100_000, 5000, None)]),
            &args(),
            &t,
            0,
        ));
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "public.t: 5000 dead tuples of 100000 live (5%), last vacuum never; 0 rows changed since last analyze 1 min 0 s ago; 1 table to VACUUM, 0 to ANALYZE, 0 with autovacuum disabled"
        );
        assert_eq!(perf(&r)[1], "oldest_stale=2592000s;86400;604800;0");
        assert!(r.hint.unwrap().starts_with("see whether autovacuum runs"));
    }

    #[test]
    fn autovacuum_off_warns_for_a_table_and_for_the_server() {
        let t = thresholds::<Vacuum>(None, None);
        let mut off = table("quiet", 10, 0, Some(60.0));
        off.autovacuum_off = true;
        let r = judge::<Vacuum>(
            &measured(vec![off, table("fine", 10, 0, Some(1.0))]),
            &args(),
            &t,
            0,
        );
        assert_eq!(r.status, Status::Warning);
        assert!(
            r.summary
                .ends_with("0 tables to VACUUM, 0 to ANALYZE, 1 with autovacuum disabled"),
            "{}",
            r.summary
        );
        assert_eq!(r.details.len(), 1);
        let mut m = measured(vec![]);
        m.autovacuum_on = false;
        let r = judge::<Vacuum>(&m, &args(), &t, 0);
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "no table needs VACUUM or ANALYZE; autovacuum is off for the server"
        );
    }

    #[test]
    fn busy_autovacuum_workers_have_their_own_ranges() {
        let t = thresholds::<Vacuum>(Some("10%,1d,workers=99%,worker_age=1h"), None);
        let mut m = measured(vec![]);
        m.workers = Workers {
            max: 3,
            busy: 3,
            longest: 7200.0,
            longest_query: Some("autovacuum: VACUUM public.big".into()),
        };
        let r = judge::<Vacuum>(&m, &args(), &t, 0);
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "no table needs VACUUM or ANALYZE; autovacuum workers 3 of 3 busy, the longest for 2 h 0 min"
        );
        assert_eq!(
            r.details,
            ["WARNING autovacuum: 3 of 3 workers busy; the longest for 2 h 0 min: autovacuum: VACUUM public.big"]
        );
        assert_eq!(
            perf(&r)[5..],
            [
                "autovacuum_busy=100%;99;;0;100",
                "autovacuum_longest=7200s;3600;;0"
            ]
        );
        m.workers.busy = 2;
        m.workers.longest = 60.0;
        assert_eq!(judge::<Vacuum>(&m, &args(), &t, 0).status, Status::Ok);
    }

    #[test]
    fn several_databases_are_named_and_unreachable_ones_warn() {
        let t = thresholds::<Vacuum>(None, None);
        let m = Measured {
            visit: Visit {
                checked: vec![
                    ("app".into(), vec![table("t", 100_000, 20_000, Some(600.0))]),
                    (
                        "shop".into(),
                        vec![table("u", 100_000, 60_000, Some(600.0))],
                    ),
                ],
                unreachable: vec![("old".into(), "database is not accepting connections".into())],
            },
            autovacuum_on: true,
            workers: Workers::default(),
            running: vec![Running {
                pid: 7,
                database: "app".into(),
                relation: "public.t".into(),
                phase: "scanning heap".into(),
                scanned: 5,
                total: 10,
            }],
        };
        let r = judge::<Vacuum>(&m, &args(), &t, 1);
        assert_eq!(r.status, Status::Critical);
        assert!(
            r.summary.starts_with("app.public.u: 60000 dead tuples"),
            "{}",
            r.summary
        );
        assert!(
            r.summary
                .ends_with("in 2 databases; 1 database unreachable (old)"),
            "{}",
            r.summary
        );
        assert_eq!(
            r.details[0],
            "database old not checked: database is not accepting connections"
        );
        assert!(r.details[1].starts_with("CRITICAL app.public.u"));
        assert!(r.details[2].starts_with("WARNING app.public.t"));
        assert_eq!(
            r.details[3],
            "vacuum running: pid 7 on app.public.t (scanning heap, 5 of 10 heap blocks scanned)"
        );
        let mut unreachable_only = m.clone();
        unreachable_only.visit.checked.clear();
        assert_eq!(
            judge::<Vacuum>(&unreachable_only, &args(), &t, 0).status,
            Status::Warning
        );
    }
}
