//! check_pg_bloat: space tables and B-tree indexes take beyond what their
//! live rows need. The estimate compares each relation's pages with the
//! pages its row count and the columns' average widths (pg_stats) would
//! fill. pg_stats shows only columns the role may read, so a relation whose
//! statistics are hidden is measured with pgstattuple when that extension is
//! there, and otherwise the check says what to grant: never a silent zero.

use postgres::types::Type;

use crate::check::{Check, Context, Judging};
use crate::checks::common::visit::{self, Wording};
use crate::locked_relations;
use crate::session::databases::{self, DatabaseArgs, Visit};
use crate::session::get;
use crate::session::locked::{holders, skipped_note, Locked};
use crate::session::relations::RelationArgs;
use crate::session::Session;
use pgvigil_kit::judge::{worst, worst_first};
use pgvigil_kit::units::{parse_size_option, pretty_bytes, round_to};
use pgvigil_kit::words::{percent_text, plural};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Bloat;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Bloat")]
pub struct Args {
    /// Relations smaller than this are left out
    #[arg(long, value_name = "SIZE", default_value = "10MB", value_parser = parse_size_option)]
    pub min_size: u64,
    #[command(flatten)]
    pub databases: DatabaseArgs,
    #[command(flatten)]
    pub relations: RelationArgs,
}

// Tables, materialized views and valid B-tree indexes over --min-size
// (partitioned parents hold no data and have no size; other sessions'
// temporary tables cannot be read). pg_relation_size opens each relation,
// which a new backend pays for dearly on 10,000 tables, so the size the last
// VACUUM or ANALYZE recorded (relpages, which the estimate works from anyway)
// rules out the small ones first; a relation with no pages recorded (never
// vacuumed nor analyzed) is opened only if rows were ever written to it. The
// outer join keeps one row, with the pgstattuple schema, when no relation
// qualifies. A relation another session holds in ACCESS EXCLUSIVE mode is
// not opened: its size comes back NULL, and it is named as skipped.
const CANDIDATES: &str = concat!(
    "
SELECT current_setting('block_size')::float8 AS block_size,
       (SELECT quote_ident(e.extnamespace::regnamespace::text) FROM pg_extension e
         WHERE e.extname = 'pgstattuple') AS pgstattuple_schema,
       r.*
FROM (SELECT 1) one CROSS JOIN ",
    locked_relations!(),
    " AS locked(oids) LEFT JOIN LATERAL (
  SELECT * FROM (
    SELECT c.oid, c.relkind = 'i' AS is_index, n.nspname::text AS schema, c.relname::text AS name,
           coalesce(t.relname::text, '') AS table_name,
           CASE WHEN c.oid = ANY(locked.oids) THEN NULL
                ELSE pg_relation_size(c.oid)::int8 END AS size,
           c.relpages::float8 AS relpages, c.reltuples::float8 AS reltuples,
           coalesce((SELECT o.option_value::int FROM pg_options_to_table(c.reloptions) o
                      WHERE o.option_name = 'fillfactor'),
                    CASE WHEN c.relkind = 'i' THEN 90 ELSE 100 END) AS fillfactor,
           has_table_privilege(coalesce(i.indrelid, c.oid), 'SELECT') AS readable
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_index i ON i.indexrelid = c.oid
      LEFT JOIN pg_class t ON t.oid = i.indrelid
     WHERE (c.relkind IN ('r', 'm')
            OR (c.relkind = 'i' AND c.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')))
       AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_toast'
       AND c.relpersistence <> 't' AND coalesce(i.indisvalid, true)
       AND CASE WHEN c.relpages > 0
                THEN c.relpages::float8 * current_setting('block_size')::float8 >= $1
                ELSE pg_stat_get_tuples_inserted(c.oid) > 0 END
  ) sized WHERE size >= $1 OR size IS NULL
) r ON true"
);

// What the estimate needs of the candidates, run only when there are some:
// the columns' null share and average width, from the table's statistics
// for a plain column and from the index's own for an expression. Looked up
// relation by relation (LATERAL), so the lookups reach pg_statistic's index
// instead of reading the whole pg_stats view once per join.
const ESTIMATE: &str = "
WITH rel AS (
  SELECT c.oid, c.relkind = 'i' AS is_index, n.nspname AS schema, c.relname AS name,
         coalesce(t.relname, '') AS table_name
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_index i ON i.indexrelid = c.oid
    LEFT JOIN pg_class t ON t.oid = i.indrelid
   WHERE c.oid = ANY($1)
), cols AS (
  SELECT r.oid, s.null_frac, s.avg_width, s.avg_width IS NOT NULL AS has_stats
    FROM rel r
    JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN LATERAL (SELECT null_frac, avg_width FROM pg_stats
                        WHERE schemaname = r.schema AND tablename = r.name
                          AND attname = a.attname AND NOT inherited) s ON true
   WHERE NOT r.is_index
  UNION ALL
  SELECT r.oid, s.null_frac, s.avg_width, s.avg_width IS NOT NULL
    FROM rel r
    JOIN pg_index i ON i.indexrelid = r.oid
    JOIN pg_attribute ia ON ia.attrelid = r.oid AND ia.attnum > 0
    LEFT JOIN pg_attribute ta ON ta.attrelid = i.indrelid AND ta.attnum = i.indkey[ia.attnum - 1]
                             AND i.indkey[ia.attnum - 1] <> 0
    LEFT JOIN LATERAL (SELECT null_frac, avg_width FROM pg_stats
                        WHERE schemaname = r.schema AND NOT inherited
                          AND tablename = CASE WHEN ta.attname IS NULL THEN r.name ELSE r.table_name END
                          AND attname = coalesce(ta.attname, ia.attname)) s ON true
   WHERE r.is_index
)
SELECT oid, bool_and(has_stats) AS has_stats, count(*)::float8 AS columns,
       max(coalesce(null_frac, 0)) > 0 AS has_nulls,
       sum((1 - coalesce(null_frac, 0)) * coalesce(avg_width, 0))::float8 AS data_width
  FROM cols GROUP BY oid";

// pgstattuple_approx reads the visibility map and only the pages not all
// visible; pgstatindex reads the whole index, so only indexes that cannot be
// estimated from statistics come here. `%s` is the extension's schema, as
// the catalog spells it.
const MEASURE: &str = "
SELECT r.oid, false AS is_index, a.table_len::float8 AS size,
       (a.dead_tuple_len + a.approx_free_space)::float8 AS free, 0::float8 AS density
  FROM unnest($1::oid[]) r(oid), LATERAL %s.pgstattuple_approx(r.oid::regclass) a
UNION ALL
SELECT r.oid, true, x.index_size::float8,
       ((x.deleted_pages + x.empty_pages) * current_setting('block_size')::int8)::float8,
       CASE WHEN x.avg_leaf_density = 'NaN' THEN 0 ELSE x.avg_leaf_density END::float8
  FROM unnest($2::oid[]) r(oid), LATERAL %s.pgstatindex(r.oid::regclass) x";

/// How a relation's waste was found.
/// How a relation's waste was found.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Method {
    #[default]
    Statistics,
    Pgstattuple,
}

/// A table or B-tree index over --min-size and its wasted bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Relation {
    pub database: String,
    pub oid: u32,
    pub is_index: bool,
    pub schema: String,
    pub name: String,
    /// The table of an index; "" for a table.
    pub table: String,
    pub size: f64,
    pub fillfactor: f64,
    pub wasted: f64,
    pub method: Method,
}

impl Relation {
    fn wasted_pct(&self) -> f64 {
        if self.size > 0.0 {
            self.wasted / self.size * 100.0
        } else {
            0.0
        }
    }
}

/// What one database gave: relations measured, relations skipped for want
/// of statistics, relations whose statistics the role may not read.
/// What one database gave: the relations measured, those never analyzed
/// (no statistics yet), and those whose statistics the role may not read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    pub measured: Vec<Relation>,
    pub unanalyzed: Vec<String>,
    pub hidden: Vec<String>,
    /// Relations another session held; not read.
    pub locked: Vec<Locked>,
}

impl Check for Bloat {
    const INTERVAL: u32 = 3600;
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Bytes, Unit::Percent], None);
    const HINT: &'static str = "VACUUM (VERBOSE) the bloated tables and REINDEX CONCURRENTLY the bloated indexes; for heavy bloat plan pg_repack or VACUUM FULL in a maintenance window, and look at why autovacuum falls behind (check_pg_vacuum)";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A size applies to a relation's wasted bytes, a percentage to its wasted
  share. Relations under --min-size are left out. Default: {defaults}.
  The estimate needs the columns' statistics, which pg_stats shows only to a
  role that may read the table: grant pg_read_all_data (PostgreSQL 14+) or
  SELECT, or CREATE EXTENSION pgstattuple in each database (pg_monitor may
  call it). Without either the check is UNKNOWN naming what is missing.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("50%", "80%"));
    type Args = Args;
    type Measured = Visit<Found>;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let min_size = i64::try_from(args.min_size).unwrap_or(i64::MAX);
        let visit = databases::visit(
            &args.databases,
            db,
            &ctx.conn,
            ctx.timeout,
            |database, session| measure_database(args, database, session, min_size),
        )?;
        // Never a silent zero: what the role cannot see is named, with the grant.
        let hidden: Vec<(String, Vec<String>)> = visit
            .results()
            .filter(|(_, found)| !found.hidden.is_empty())
            .map(|(database, found)| (database.to_string(), found.hidden.clone()))
            .collect();
        if !hidden.is_empty() {
            return Err(hidden_statistics(&hidden, &ctx.conn.user));
        }
        Ok(visit)
    }

    /// Each relation's wasted bytes (a size) and share (a percentage) against
    /// `-w`/`-c`, worst and largest first; a database that could not be visited
    /// is at least WARNING.
    fn judge(visit: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, min_size, verbose) = (judging.thresholds, judging.args.min_size, judging.verbose);
        let visited = visit.checked.len();
        let mut relations: Vec<(&Relation, Status)> = visit
            .results()
            .flat_map(|(_, found)| &found.measured)
            .map(|r| {
                let status = t.status(&[(Unit::Bytes, r.wasted), (Unit::Percent, r.wasted_pct())]);
                (r, status)
            })
            .collect();
        let unanalyzed: Vec<&String> = visit
            .results()
            .flat_map(|(_, found)| &found.unanalyzed)
            .collect();
        let locked: Vec<&Locked> = visit
            .results()
            .flat_map(|(_, found)| &found.locked)
            .collect();
        let mut status = visit.floor(worst(relations.iter().map(|(_, s)| *s)));
        // Skipped relations leave the rest judged; only with nothing read at
        // all is there no verdict.
        if relations.is_empty() && unanalyzed.is_empty() && !locked.is_empty() {
            status = Status::Unknown;
        }
        relations.sort_by(|(a, _), (b, _)| b.wasted.total_cmp(&a.wasted));
        worst_first(&mut relations, |(_, state)| *state);
        let many = visited > 1;
        let total = relations.iter().fold(0.0, |sum, (r, _)| sum + r.wasted);
        let mut summary = match relations.first() {
            Some((r, _)) => format!(
                "{} {} wasted of {} ({}); {} relation{} over {} checked, {} wasted in all",
                name(r, many),
                pretty_bytes(r.wasted),
                pretty_bytes(r.size),
                percent_text(r.wasted_pct()),
                relations.len(),
                plural(relations.len() as i64),
                pretty_bytes(min_size as f64),
                pretty_bytes(total)
            ),
            None => format!(
                "no table or B-tree index over {} to check",
                pretty_bytes(min_size as f64)
            ),
        };
        if !unanalyzed.is_empty() {
            summary.push_str(&format!(
                "; {} not estimated (never analyzed)",
                unanalyzed.len()
            ));
        }
        summary.push_str(&skipped_note(locked.len()));
        summary.push_str(&visit.unreachable_note());
        let max_pct = relations
            .iter()
            .map(|(r, _)| r.wasted_pct())
            .fold(0.0, f64::max);
        let max_wasted = relations.iter().map(|(r, _)| r.wasted).fold(0.0, f64::max);
        let perf = [
            PerfData::new("max_wasted", max_wasted.round(), Unit::Bytes)
                .thresholds(t)
                .min(0.0),
            PerfData::new("max_wasted_pct", round_to(max_pct, 2), Unit::Percent)
                .thresholds(t)
                .min(0.0)
                .max(100.0),
            PerfData::new("total_wasted", total.round(), Unit::Bytes).min(0.0),
            PerfData::new("relations", relations.len() as f64, Unit::Count).min(0.0),
            PerfData::new("not_estimated", unanalyzed.len() as f64, Unit::Count).min(0.0),
            PerfData::new("skipped", locked.len() as f64, Unit::Count).min(0.0),
        ];
        let mut details = visit.unreachable_details();
        for (r, state) in relations
            .iter()
            .filter(|(_, state)| *state != Status::Ok || verbose > 0)
        {
            details.push(format!(
                "{} {}: {} of {} wasted ({}), {}",
                state,
                name(r, many),
                pretty_bytes(r.wasted),
                pretty_bytes(r.size),
                percent_text(r.wasted_pct()),
                match r.method {
                    Method::Statistics => "estimated from statistics",
                    Method::Pgstattuple if r.is_index => "measured by pgstatindex",
                    Method::Pgstattuple => "measured by pgstattuple_approx",
                }
            ));
        }
        for name in &unanalyzed {
            details.push(format!(
                "{name}: not estimated, no statistics yet (ANALYZE it)"
            ));
        }
        details.extend(locked.iter().map(|l| l.describe(many)));
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

fn name(r: &Relation, with_database: bool) -> String {
    let qualified = visit::qualified(&r.database, &r.schema, &r.name, with_database);
    if r.is_index {
        format!("index {qualified} on {}", r.table)
    } else {
        format!("table {qualified}")
    }
}

fn measure_database(
    args: &Args,
    database: &str,
    session: &mut Session,
    min_size: i64,
) -> Result<Found, Error> {
    let rows = session.query_with(CANDIDATES, &[(&min_size, Type::INT8)])?;
    let mut found = Found::default();
    let mut pgstattuple_schema = None;
    let mut candidates: Vec<(Relation, Shape, bool)> = Vec::new();
    let mut locked = Vec::new();
    for row in &rows {
        pgstattuple_schema = get::<Option<String>>(row, "pgstattuple_schema")?;
        let Some(oid) = get::<Option<u32>>(row, "oid")? else {
            continue;
        };
        let schema: String = get(row, "schema")?;
        let rel_name: String = get(row, "name")?;
        let table: String = get(row, "table_name")?;
        let is_index: bool = get(row, "is_index")?;
        let kept_by = if is_index { &table } else { &rel_name };
        if !args.relations.keeps(&schema, kept_by) && !args.relations.keeps(&schema, &rel_name) {
            continue;
        }
        let Some(size) = get::<Option<i64>>(row, "size")? else {
            locked.push(oid);
            continue;
        };
        let shape = Shape {
            block_size: get(row, "block_size")?,
            relpages: get(row, "relpages")?,
            reltuples: get(row, "reltuples")?,
            fillfactor: f64::from(get::<i32>(row, "fillfactor")?),
            columns: 0.0,
            has_nulls: false,
            data_width: 0.0,
            is_index,
        };
        let relation = Relation {
            database: database.to_string(),
            oid,
            is_index,
            schema,
            name: rel_name,
            table,
            size: size as f64,
            fillfactor: shape.fillfactor,
            wasted: 0.0,
            method: Method::Statistics,
        };
        candidates.push((relation, shape, get(row, "readable")?));
    }
    found.locked = holders(session, database, &locked)?;
    if candidates.is_empty() {
        return Ok(found);
    }

    // The columns' statistics, where the role may read them.
    let oids: Vec<u32> = candidates.iter().map(|(r, _, _)| r.oid).collect();
    let mut stats = std::collections::HashMap::new();
    for row in session.query_with(ESTIMATE, &[(&oids, Type::OID_ARRAY)])? {
        let oid: u32 = get(&row, "oid")?;
        stats.insert(
            oid,
            (
                get::<bool>(&row, "has_stats")?,
                get::<f64>(&row, "columns")?,
                get::<bool>(&row, "has_nulls")?,
                get::<f64>(&row, "data_width")?,
            ),
        );
    }
    let mut to_measure: Vec<Relation> = Vec::new();
    for (mut relation, mut shape, readable) in candidates {
        let (has_stats, columns, has_nulls, data_width) = stats
            .get(&relation.oid)
            .copied()
            .unwrap_or((false, 0.0, false, 0.0));
        shape.columns = columns;
        shape.has_nulls = has_nulls;
        shape.data_width = data_width;
        if has_stats && shape.analyzed() {
            relation.wasted = relation.size * shape.wasted_share();
            found.measured.push(relation);
        } else if pgstattuple_schema.is_some() {
            to_measure.push(relation);
        } else if readable {
            found
                .unanalyzed
                .push(format!("{database}.{}.{}", relation.schema, relation.name));
        } else {
            found
                .hidden
                .push(format!("{}.{}", relation.schema, relation.name));
        }
    }
    if let (Some(schema), false) = (pgstattuple_schema, to_measure.is_empty()) {
        let oids = |index: bool| -> Vec<u32> {
            to_measure
                .iter()
                .filter(|r| r.is_index == index)
                .map(|r| r.oid)
                .collect()
        };
        let sql = MEASURE.replace("%s", &schema);
        let rows = session.query_with(
            &sql,
            &[
                (&oids(false), Type::OID_ARRAY),
                (&oids(true), Type::OID_ARRAY),
            ],
        )?;
        for row in &rows {
            let oid: u32 = get(row, "oid")?;
            let Some(mut relation) = to_measure.iter().find(|r| r.oid == oid).cloned() else {
                continue;
            };
            let size: f64 = get(row, "size")?;
            let free: f64 = get(row, "free")?;
            let density: f64 = get(row, "density")?;
            relation.size = size;
            relation.wasted = if relation.is_index {
                measured_index_waste(size, free, density, relation.fillfactor)
            } else {
                measured_table_waste(size, free, relation.fillfactor)
            };
            relation.method = Method::Pgstattuple;
            found.measured.push(relation);
        }
    }
    Ok(found)
}

fn hidden_statistics(hidden: &[(String, Vec<String>)], user: &str) -> Error {
    let mut parts = Vec::new();
    for (database, names) in hidden {
        let shown: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
        let more = if names.len() > 3 {
            format!(" and {} more", names.len() - 3)
        } else {
            String::new()
        };
        parts.push(format!(
            "{} relation{} in database {database} ({}{more})",
            names.len(),
            plural(names.len() as i64),
            shown.join(", ")
        ));
    }
    Error::Privilege(format!(
        "cannot estimate bloat of {}: role \"{user}\" may not read their statistics in pg_stats; \
         GRANT pg_read_all_data TO \"{user}\" (PostgreSQL 14+) or SELECT on them, \
         or CREATE EXTENSION pgstattuple in that database (pg_monitor may call it)",
        parts.join(", ")
    ))
}

/// What the estimate knows of a relation: its pages and rows as of the last
/// VACUUM or ANALYZE, and its columns' average widths.
#[derive(Debug, Clone, Copy)]
struct Shape {
    block_size: f64,
    relpages: f64,
    reltuples: f64,
    fillfactor: f64,
    columns: f64,
    has_nulls: bool,
    data_width: f64,
    is_index: bool,
}

/// Tuples are stored MAXALIGNed (8 bytes on every platform we ship for).
fn align(bytes: f64) -> f64 {
    (bytes / 8.0).ceil() * 8.0
}

impl Shape {
    /// Until the first VACUUM or ANALYZE relpages is 0 and reltuples 0 (or -1, 14+).
    fn analyzed(&self) -> bool {
        self.relpages > 0.0 && self.reltuples >= 0.0
    }

    /// Pages the live rows would fill when packed to the fillfactor.
    fn expected_pages(&self) -> f64 {
        // Heap tuple header 23 bytes (+ null bitmap); index tuple header 8
        // (+ 4-byte null bitmap); 4-byte line pointer each. Page header 24,
        // B-tree special space 16, and a B-tree metapage.
        let (header, special, extra_pages) = if self.is_index {
            (if self.has_nulls { 12.0 } else { 8.0 }, 16.0, 1.0)
        } else {
            let bitmap = if self.has_nulls {
                ((self.columns + 7.0) / 8.0).floor()
            } else {
                0.0
            };
            (23.0 + bitmap, 0.0, 0.0)
        };
        let tuple = align(align(header) + self.data_width) + 4.0;
        let usable = (self.block_size - 24.0 - special) * self.fillfactor / 100.0;
        let per_page = (usable / tuple).floor().max(1.0);
        (self.reltuples / per_page).ceil() + extra_pages
    }

    /// The share of the relation's pages its rows do not need; deduplicated
    /// B-tree indexes (13+) can be smaller than the estimate: that is no waste.
    fn wasted_share(&self) -> f64 {
        if self.relpages <= 0.0 {
            return 0.0;
        }
        (1.0 - self.expected_pages() / self.relpages).clamp(0.0, 1.0)
    }
}

/// Free and dead space beyond what the fillfactor leaves free on purpose.
fn measured_table_waste(size: f64, free: f64, fillfactor: f64) -> f64 {
    let reserved = size * (100.0 - fillfactor) / 100.0;
    (free - reserved).clamp(0.0, size)
}

/// Empty and deleted pages, plus leaf space below the fillfactor's density.
fn measured_index_waste(size: f64, empty: f64, density: f64, fillfactor: f64) -> f64 {
    let leaf = (size - empty).max(0.0);
    let sparse = if density > 0.0 {
        leaf * (1.0 - density / fillfactor).max(0.0)
    } else {
        0.0
    };
    (empty + sparse).clamp(0.0, size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};

    fn with_min_size(min_size: u64) -> Args {
        Args {
            min_size,
            ..options(&[])
        }
    }

    const MB: f64 = 1048576.0;

    fn relation(name: &str, size_mb: f64, wasted_mb: f64) -> Relation {
        Relation {
            database: "app".into(),
            schema: "public".into(),
            name: name.into(),
            size: size_mb * MB,
            fillfactor: 100.0,
            wasted: wasted_mb * MB,
            ..Relation::default()
        }
    }

    fn visit(measured: Vec<Relation>, unanalyzed: Vec<String>) -> Visit<Found> {
        Visit {
            checked: vec![(
                "app".into(),
                Found {
                    measured,
                    unanalyzed,
                    ..Found::default()
                },
            )],
            unreachable: vec![],
        }
    }

    #[test]
    fn default_thresholds_are_50_and_80_percent_wasted() {
        let t = thresholds::<Bloat>(None, None);
        let at = |wasted: f64| {
            judge::<Bloat>(
                &visit(vec![relation("t", 100.0, wasted)], vec![]),
                &with_min_size(10 << 20),
                &t,
                0,
            )
            .status
        };
        assert_eq!(at(50.0), Status::Ok);
        assert_eq!(at(50.5), Status::Warning);
        assert_eq!(at(80.0), Status::Warning);
        assert_eq!(at(80.5), Status::Critical);
        let sized = thresholds::<Bloat>(Some("1GB,50%"), Some("10GB,80%"));
        let big = visit(vec![relation("big", 100_000.0, 2000.0)], vec![]);
        assert_eq!(
            judge::<Bloat>(&big, &with_min_size(10 << 20), &sized, 0).status,
            Status::Warning
        );
    }

    #[test]
    fn worst_and_largest_first_with_the_method() {
        let t = thresholds::<Bloat>(None, None);
        let mut index = relation("t_pkey", 40.0, 36.0);
        index.is_index = true;
        index.table = "t".into();
        index.method = Method::Pgstattuple;
        let v = visit(
            vec![
                relation("small", 20.0, 12.0),
                index,
                relation("large", 200.0, 150.0),
            ],
            vec!["app.public.fresh".into()],
        );
        let r = reported::<Bloat>(judge::<Bloat>(&v, &with_min_size(10 << 20), &t, 0));
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "index public.t_pkey on t 36 MB wasted of 40 MB (90%); 3 relations over 10 MB checked, 198 MB wasted in all; 1 not estimated (never analyzed)"
        );
        assert_eq!(
            r.details,
            [
                "CRITICAL index public.t_pkey on t: 36 MB of 40 MB wasted (90%), measured by pgstatindex",
                "WARNING table public.large: 150 MB of 200 MB wasted (75%), estimated from statistics",
                "WARNING table public.small: 12 MB of 20 MB wasted (60%), estimated from statistics",
                "app.public.fresh: not estimated, no statistics yet (ANALYZE it)"
            ]
        );
        assert_eq!(perf(&r)[4], "not_estimated=1;;;0");
        assert!(r
            .hint
            .unwrap()
            .starts_with("VACUUM (VERBOSE) the bloated tables"));
    }

    #[test]
    fn nothing_to_check_is_ok_and_says_the_floor() {
        let r = judge::<Bloat>(
            &visit(vec![], vec![]),
            &with_min_size(10 << 20),
            &thresholds::<Bloat>(None, None),
            0,
        );
        assert_eq!(
            (r.status, r.summary.as_str()),
            (Status::Ok, "no table or B-tree index over 10 MB to check")
        );
        assert_eq!(relation("empty", 0.0, 0.0).wasted_pct(), 0.0);
    }

    fn table(relpages: f64, reltuples: f64) -> Shape {
        Shape {
            block_size: 8192.0,
            relpages,
            reltuples,
            fillfactor: 100.0,
            columns: 2.0,
            has_nulls: false,
            data_width: 12.0,
            is_index: false,
        }
    }

    #[test]
    fn a_packed_table_wastes_nothing() {
        // 24 + 12 -> 40 byte tuples + 4 line pointer: 185 per page.
        let t = table(100.0, 18_500.0);
        assert_eq!(t.expected_pages(), 100.0);
        assert_eq!(t.wasted_share(), 0.0);
    }

    #[test]
    fn a_table_with_four_fifths_deleted_wastes_four_fifths() {
        let t = table(100.0, 3_700.0);
        assert_eq!(t.expected_pages(), 20.0);
        assert!((t.wasted_share() - 0.8).abs() < 1e-9);
    }

    #[test]
    fn fillfactor_space_is_not_waste() {
        let mut t = table(100.0, 9_250.0);
        t.fillfactor = 50.0;
        assert_eq!(t.wasted_share(), 0.0);
        assert_eq!(measured_table_waste(1000.0, 500.0, 50.0), 0.0);
        assert_eq!(measured_table_waste(1000.0, 700.0, 50.0), 200.0);
    }

    #[test]
    fn a_deduplicated_index_smaller_than_the_estimate_is_not_negative() {
        let mut i = table(10.0, 100_000.0);
        i.is_index = true;
        assert!(i.expected_pages() > 10.0);
        assert_eq!(i.wasted_share(), 0.0);
    }

    #[test]
    fn unanalyzed_relations_are_not_estimated() {
        assert!(!table(100.0, -1.0).analyzed());
        assert!(!table(0.0, 0.0).analyzed());
        assert!(table(100.0, 5.0).analyzed());
    }

    #[test]
    fn index_waste_from_pgstatindex_stays_within_the_size() {
        assert_eq!(measured_index_waste(1000.0, 0.0, 90.0, 90.0), 0.0);
        assert_eq!(measured_index_waste(1000.0, 0.0, 45.0, 90.0), 500.0);
        assert_eq!(measured_index_waste(1000.0, 2000.0, 0.0, 90.0), 1000.0);
    }

    #[test]
    fn a_locked_relation_is_skipped_and_the_rest_judged() {
        use crate::session::locked::Holder;
        let t = thresholds::<Bloat>(None, None);
        let mut v = visit(vec![relation("orders", 100.0, 90.0)], vec![]);
        v.checked[0].1.locked = vec![Locked {
            database: "app".into(),
            relation: "public.big".into(),
            holder: Some(Holder {
                pid: 7,
                granted: true,
                query: "VACUUM FULL big".into(),
                seconds: 65.0,
            }),
        }];
        let r = judge::<Bloat>(&v, &with_min_size(10 * 1024 * 1024), &t, 0);
        assert_eq!(r.status, Status::Critical);
        assert!(
            r.summary
                .ends_with("; 1 relation skipped (locked by another session)"),
            "{}",
            r.summary
        );
        assert_eq!(
            r.details.last().unwrap(),
            "public.big skipped: pid 7 holds ACCESS EXCLUSIVE on it, its transaction open 1 min 5 s (VACUUM FULL big)"
        );
        assert!(perf(&r).contains(&"skipped=1;;;0".to_string()));
        // Nothing else to read: no verdict.
        v.checked[0].1.measured.clear();
        assert_eq!(
            judge::<Bloat>(&v, &with_min_size(0), &t, 0).status,
            Status::Unknown
        );
    }
}
