//! check_pg_relation_size: the largest tables, indexes and TOAST tables, each
//! against size thresholds and its growth per day. An audit or queue table
//! nobody purges grows to hundreds of GB; a database-size threshold fires
//! late and does not say which table it is.

use crate::check::{Check, Context, Judging};
use crate::checks::common::forecast::{self, ForecastArgs};
use crate::checks::common::visit::Wording;
use crate::locked_relations;
use crate::session::databases::{self, DatabaseArgs, Visit};
use crate::session::get;
use crate::session::locked::{holders, skipped_note, Locked};
use crate::session::relations::RelationArgs;
use crate::session::Session;
use pgvigil_kit::forecast::Forecast;
use pgvigil_kit::judge::{worst, worst_first};
use pgvigil_kit::rates::{self, Rates};
use pgvigil_kit::state::{Snapshot, StateArgs};
use pgvigil_kit::units::pretty_bytes;
use pgvigil_kit::words::count;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};
use postgres::types::Type;

use crate::checks::common::growth::{growth_text, interval_note, per_day, GrowthArgs};

pub struct RelationSize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    /// A table or materialized view, by its total size (heap, TOAST, indexes)
    Table,
    /// An index, by its own size
    Index,
    /// A table's TOAST table (out-of-line values) with its index
    Toast,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::Index => "index",
            Kind::Toast => "toast",
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Relations")]
pub struct Args {
    /// Kinds of relation judged (repeatable) [default: table, index, toast]
    #[arg(long, value_enum, value_name = "KIND")]
    pub kind: Vec<Kind>,
    /// How many of the largest are listed with -v, and kept for growth
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub top: u32,
    /// Relations smaller than SIZE are left out (neither judged nor counted)
    #[arg(long, value_name = "SIZE", default_value = "1MB", value_parser = pgvigil_kit::units::parse_size_option)]
    pub min_size: u64,
    /// Sizes from pg_class.relpages, as of each relation's last VACUUM, ANALYZE or CREATE INDEX, instead of the files: no relation is opened, so 100,000 relations take milliseconds instead of seconds and a locked one is not skipped; growth since then is not seen
    #[arg(long)]
    pub estimate: bool,
    #[command(flatten)]
    pub databases: DatabaseArgs,
    #[command(flatten)]
    pub relations: RelationArgs,
    #[command(flatten)]
    pub growth: GrowthArgs,
    /// The size no relation may reach (what a partition, a disk or a table's design allows): the time left before each of the --top largest does is forecast
    #[arg(long, value_name = "SIZE", value_parser = pgvigil_kit::units::parse_size_option, help_heading = "Forecast")]
    pub limit: Option<u64>,
    #[command(flatten)]
    pub forecast: ForecastArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

/// A day: relation growth follows the day's business, which a day averages.
const WINDOW: f64 = 86400.0;
/// A relation that shrinks by more than 5% at once (VACUUM FULL, TRUNCATE,
/// REINDEX) starts a new trend.
const DROP_TOLERANCE: f64 = 0.05;

// One row per table, its TOAST table and each of its indexes of at least
// $1 bytes and of the kinds in $2, each with the server's clock (one row
// without a relation when there is none). Each relation is sized once (a
// table's total adds up its heap, TOAST and index sizes rather than sizing
// them again: half the work on 10,000 tables). A table that another session
// holds in ACCESS EXCLUSIVE mode (itself, its TOAST table or an index) is
// not opened: its rows come back without a size, to be named as skipped.
// With $3 (--estimate) sizes are pg_class.relpages blocks and nothing is
// opened: sizing opens every relation, about 20 us each on a cold session.
const SQL: &str = concat!(
    "
WITH locked AS (SELECT ",
    locked_relations!(),
    " AS oids), t AS (
  SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name, c.reltoastrelid, c.relpages,
         (NOT $3 AND (c.oid = ANY(l.oids) OR c.reltoastrelid = ANY(l.oids)
          OR EXISTS (SELECT 1 FROM pg_index i
                      WHERE i.indrelid = c.oid AND i.indexrelid = ANY(l.oids)))) AS locked
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN locked l
   WHERE c.relkind IN ('r', 'm')
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
), i AS (
  SELECT t.oid AS table_oid, ic.relname::text AS name,
         CASE WHEN $3 THEN ic.relpages * current_setting('block_size')::float8
              WHEN NOT t.locked THEN pg_table_size(ic.oid) END::float8 AS size
    FROM t JOIN pg_index x ON x.indrelid = t.oid JOIN pg_class ic ON ic.oid = x.indexrelid
), per_table AS (
  SELECT table_oid, sum(size) AS size FROM i GROUP BY table_oid
), s AS (
  SELECT t.*,
         CASE WHEN $3 THEN relpages * current_setting('block_size')::float8
              WHEN NOT locked THEN pg_relation_size(oid, 'main') + pg_relation_size(oid, 'fsm')
                                 + pg_relation_size(oid, 'vm') + pg_relation_size(oid, 'init') END::float8 AS heap,
         CASE WHEN reltoastrelid = 0 THEN NULL
              WHEN $3 THEN ((SELECT x.relpages FROM pg_class x WHERE x.oid = t.reltoastrelid)
                            + coalesce((SELECT sum(x.relpages) FROM pg_index ti JOIN pg_class x ON x.oid = ti.indexrelid
                                         WHERE ti.indrelid = t.reltoastrelid), 0))
                           * current_setting('block_size')::float8
              WHEN NOT locked THEN pg_total_relation_size(reltoastrelid) END::float8 AS toast
    FROM t
), r AS (
  SELECT 'table' AS kind, s.schema, s.name, NULL::text AS on_table, s.oid, s.locked,
         s.heap + coalesce(s.toast, 0) + coalesce(p.size, 0) AS size
    FROM s LEFT JOIN per_table p ON p.table_oid = s.oid
  UNION ALL
  SELECT 'toast', schema, name, name, oid, locked, toast FROM s WHERE reltoastrelid <> 0
  UNION ALL
  SELECT 'index', s.schema, i.name, s.name, s.oid, s.locked, i.size
    FROM i JOIN s ON s.oid = i.table_oid
)
SELECT extract(epoch FROM now())::float8 AS now, r.*
FROM (SELECT 1) one
LEFT JOIN r ON r.kind = ANY($2::text[]) AND (r.locked OR r.size >= $1)"
);

/// What one run reads: the relations of each database visited, sized or
/// skipped because another session held them.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub visit: Visit<Vec<Relation>>,
    pub locked: Vec<Locked>,
    pub rates: Rates,
    /// With --limit, when each of the --top largest reaches it, by key.
    pub forecasts: Vec<(String, Forecast)>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub database: String,
    pub kind: Kind,
    pub schema: String,
    pub name: String,
    /// The table an index or TOAST table belongs to.
    pub on_table: Option<String>,
    pub size: f64,
}

impl Relation {
    /// `db.schema.name kind`: the state key of its size.
    fn key(&self) -> String {
        format!(
            "{}.{}.{} {}",
            self.database,
            self.schema,
            self.name,
            self.kind.name()
        )
    }

    /// `table public.audit`, `index public.audit_pkey on public.audit`,
    /// `TOAST of public.audit`; the database first when several were visited.
    fn label(&self, many: bool) -> String {
        let db = if many {
            format!("{}.", self.database)
        } else {
            String::new()
        };
        let on = self.on_table.as_deref().unwrap_or_default();
        match self.kind {
            Kind::Table => format!("table {db}{}.{}", self.schema, self.name),
            Kind::Index => format!(
                "index {db}{}.{} on {}.{on}",
                self.schema, self.name, self.schema
            ),
            Kind::Toast => format!("TOAST of {db}{}.{on}", self.schema),
        }
    }
}

impl Check for RelationSize {
    const INTERVAL: u32 = 3600;
    const UNITS: UnitSpec =
        UnitSpec::of(&[Unit::Bytes, Unit::Seconds], Some(Unit::Bytes)).with_time_left();
    const HINT: &'static str = "see what fills it: rows nobody purges (an audit, log or queue table), bloat (check_pg_bloat), an unused index (check_pg_indexes); archive or delete old rows in batches, partition by time to drop old data, and check disk headroom (check_pg_disk)";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A size applies to each relation: a table's total size (heap, TOAST and
  indexes), an index's own size, a TOAST table's with its index; --growth
  and --growth-critical to its growth per day, measured over the real
  interval since the previous run once --growth-interval has passed, for
  the --top largest. Relations under --min-size (1MB) are left out. A
  duration applies to the time left before one of the --top largest
  reaches --limit, as a lower bound (--limit 200GB -w 30d: -c 7d:). No
  default.

FORECAST
  With --limit, each run keeps the --top largest relations' sizes in a
  history (a state file); the rate over --forecast-window (default 1d; the
  median of the slopes between samples) gives the time left before each
  reaches the limit. The first forecast comes after an eighth of the
  window; a fall of more than 5% (VACUUM FULL, TRUNCATE) restarts the
  history. perfdata time_left is the least, in seconds.";
    type Args = Args;
    type Measured = Measured;

    /// A time left needs a limit to reach.
    fn validate(args: &Args, thresholds: &Thresholds) -> Result<(), Error> {
        if thresholds.uses(Unit::Seconds) && args.limit.is_none() {
            return Err(Error::Usage(
                "a duration in -w/-c is the time left before --limit: give it".into(),
            ));
        }
        Ok(())
    }

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let mut measured = measure(args, db, ctx)?;
        forecast_largest(&mut measured, args, ctx)?;
        Ok(measured)
    }

    /// Each relation's size against `-w`/`-c`, and the growth per day of those
    /// kept from the previous run against `--growth`/`--growth-critical`; the
    /// worst first, then the largest. A skipped (locked) relation is named,
    /// and a database that could not be visited makes it at least WARNING.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, args, verbose) = (judging.thresholds, judging.args, judging.verbose);
        let many = m.visit.checked.len() > 1;
        let mut judged: Vec<Judged> = m
            .visit
            .results()
            .flat_map(|(_, relations)| relations.iter())
            .map(|relation| {
                let per_day = per_day(&m.rates, &relation.key(), relation.size);
                let key = relation.key();
                let forecast = m.forecasts.iter().find(|(k, _)| *k == key).map(|(_, f)| f);
                let mut measured = vec![(Unit::Bytes, relation.size)];
                measured.extend(
                    forecast
                        .and_then(forecast::seconds_left)
                        .map(|left| (Unit::Seconds, left)),
                );
                Judged {
                    relation,
                    per_day,
                    forecast,
                    status: args.growth.judge(per_day, t.status(&measured)),
                }
            })
            .collect();
        judged.sort_by(|a, b| b.relation.size.total_cmp(&a.relation.size));
        worst_first(&mut judged, |j| j.status);
        let status = m.visit.floor(worst(judged.iter().map(|j| j.status)));
        let alerting = judged.iter().filter(|j| j.status != Status::Ok).count();
        let scope = if many {
            format!(" in {} databases", m.visit.checked.len())
        } else {
            String::new()
        };
        let mut summary = match judged.first() {
            Some(j) => format!(
                "{}; {} checked{scope}",
                j.describe(many, args.limit),
                count(judged.len(), "relation")
            ),
            None => format!(
                "no relation of {} or more{scope}",
                pretty_bytes(args.min_size as f64)
            ),
        };
        if alerting > 1 {
            summary.push_str(&format!(", {alerting} alerting"));
        }
        if args.estimate {
            summary.push_str(", sizes estimated from pg_class.relpages");
        }
        summary.push_str(&skipped_note(m.locked.len()));
        summary.push_str(&interval_note(&m.rates));
        summary.push_str(&m.visit.unreachable_note());

        let largest = judged.iter().map(|j| j.relation.size).fold(0.0, f64::max);
        let mut perf = vec![
            PerfData::new("largest", largest, Unit::Bytes)
                .thresholds(t)
                .min(0.0),
            PerfData::new("relations", judged.len() as f64, Unit::Count).min(0.0),
            PerfData::new("alerting", alerting as f64, Unit::Count).min(0.0),
            PerfData::new("skipped", m.locked.len() as f64, Unit::Count).min(0.0),
        ];
        // The least time left, absent while every history is too short.
        let outlook = forecast::least(m.forecasts.iter().map(|(_, f)| f));
        if let Some(f) = &outlook {
            perf.extend(forecast::perf("time_left".into(), f, t));
        }
        let fastest = judged.iter().filter_map(|j| j.per_day).reduce(f64::max);
        if let Some(growth) = fastest {
            perf.push(args.growth.perf("max_growth_per_day".into(), growth));
        }
        let mut details = m.visit.unreachable_details();
        details.extend(m.locked.iter().map(|l| l.describe(many)));
        let shown = judged
            .iter()
            .enumerate()
            .filter(|(i, j)| j.status != Status::Ok || (verbose > 0 && *i < args.top as usize));
        details
            .extend(shown.map(|(_, j)| format!("{} {}", j.status, j.describe(many, args.limit))));
        if let Some(f @ Forecast::Gathering { .. }) = &outlook {
            details.push(forecast::describe(f, "", |_| String::new()));
        }
        details.extend(m.notes.iter().cloned());
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

fn measure(args: &Args, db: &mut Session, ctx: &Context) -> Result<Measured, Error> {
    let kinds = kinds(args);
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let min_size = i64::try_from(args.min_size).unwrap_or(i64::MAX);
    let visit = databases::visit(
        &args.databases,
        db,
        &ctx.conn,
        ctx.timeout,
        |database, session| {
            let mut now = 0.0;
            let mut relations = Vec::new();
            let mut skipped = Vec::new();
            let rows = session.query_with(
                SQL,
                &[
                    (&min_size, Type::INT8),
                    (&names, Type::TEXT_ARRAY),
                    (&args.estimate, Type::BOOL),
                ],
            )?;
            for row in &rows {
                now = get(row, "now")?;
                let kind = match get::<Option<String>>(row, "kind")?.as_deref() {
                    None => continue,
                    Some("table") => Kind::Table,
                    Some("index") => Kind::Index,
                    Some(_) => Kind::Toast,
                };
                let schema: String = get(row, "schema")?;
                let on_table: Option<String> = get(row, "on_table")?;
                // The filters see the table's name for its TOAST table.
                let name: String = get(row, "name")?;
                if !args.relations.keeps(&schema, &name) {
                    continue;
                }
                match get::<Option<f64>>(row, "size")? {
                    Some(size) => relations.push(Relation {
                        database: database.to_string(),
                        kind,
                        schema,
                        name,
                        on_table,
                        size,
                    }),
                    None => {
                        let oid: u32 = get(row, "oid")?;
                        if !skipped.contains(&oid) {
                            skipped.push(oid);
                        }
                    }
                }
            }
            let locked = holders(session, database, &skipped)?;
            Ok((relations, locked, now))
        },
    )?;
    let mut locked = Vec::new();
    let mut now: f64 = 0.0;
    let visit = visit.map(|(relations, held, at)| {
        locked.extend(held);
        now = now.max(at);
        relations
    });
    let mut largest: Vec<&Relation> = visit.results().flat_map(|(_, r)| r.iter()).collect();
    largest.sort_by(|a, b| b.size.total_cmp(&a.size));
    let mut snapshot = Snapshot {
        taken_at: now,
        ..Snapshot::default()
    };
    for r in largest.iter().take(args.top as usize) {
        snapshot.gauges.insert(r.key(), r.size);
    }
    let rates = rates::advance_after(
        &ctx.state_store(&args.state)?,
        snapshot,
        args.growth.growth_interval,
    )?;
    Ok(Measured {
        visit,
        locked,
        rates,
        forecasts: Vec::new(),
        notes: Vec::new(),
    })
}

/// With --limit, adds the --top largest to their histories and forecasts.
fn forecast_largest(m: &mut Measured, args: &Args, ctx: &Context) -> Result<(), Error> {
    let Some(limit) = args.limit else {
        return Ok(());
    };
    let policy = args.forecast.policy(WINDOW, DROP_TOLERANCE);
    let now = m.rates.current.taken_at;
    let mut largest: Vec<&Relation> = m.visit.results().flat_map(|(_, r)| r.iter()).collect();
    largest.sort_by(|a, b| b.size.total_cmp(&a.size));
    let mut forecasts = Vec::new();
    let notes = forecast::update(ctx, &args.state, now, |histories| {
        for r in largest.into_iter().take(args.top as usize) {
            let (series, _) = histories.add(&r.key(), now, r.size, &policy);
            forecasts.push((r.key(), series.forecast(r.size, limit as f64, &policy)));
        }
    })?;
    m.forecasts = forecasts;
    m.notes.extend(notes);
    Ok(())
}

fn kinds(args: &Args) -> Vec<Kind> {
    if args.kind.is_empty() {
        vec![Kind::Table, Kind::Index, Kind::Toast]
    } else {
        args.kind.clone()
    }
}

/// One relation as judged.
struct Judged<'a> {
    relation: &'a Relation,
    per_day: Option<f64>,
    forecast: Option<&'a Forecast>,
    status: Status,
}

impl Judged<'_> {
    fn describe(&self, many: bool, limit: Option<u64>) -> String {
        let outlook = limit.map_or_else(String::new, |limit| {
            forecast::time_left_text(
                self.forecast,
                &format!("reaches {}", pretty_bytes(limit as f64)),
                pretty_bytes,
            )
        });
        format!(
            "{} {}{}{outlook}",
            self.relation.label(many),
            pretty_bytes(self.relation.size),
            growth_text(self.per_day)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, perf, reported, thresholds};
    use pgvigil_kit::rates::Interval;

    const GB: f64 = 1073741824.0;

    fn args(argv: &[&str]) -> Args {
        crate::checks::testing::options(argv)
    }

    fn relation(kind: Kind, name: &str, on: Option<&str>, gb: f64) -> Relation {
        Relation {
            database: "shop".into(),
            kind,
            schema: "public".into(),
            name: name.into(),
            on_table: on.map(str::to_string),
            size: gb * GB,
        }
    }

    fn measured(relations: Vec<Relation>, previous: Option<Snapshot>) -> Measured {
        Measured {
            visit: Visit {
                checked: vec![("shop".into(), relations)],
                unreachable: Vec::new(),
            },
            locked: Vec::new(),
            forecasts: Vec::new(),
            notes: Vec::new(),
            rates: Rates {
                current: Snapshot::default(),
                interval: match previous {
                    Some(previous) => Interval::Measured {
                        seconds: 86400.0,
                        previous,
                    },
                    None => Interval::Baseline {
                        why: "first run, baseline saved".into(),
                    },
                },
            },
        }
    }

    #[test]
    fn the_largest_relation_over_a_size_is_named() {
        let t = thresholds::<RelationSize>(Some("10GB"), Some("100GB"));
        let m = measured(
            vec![
                relation(Kind::Table, "audit", None, 40.0),
                relation(Kind::Index, "audit_pkey", Some("audit"), 12.0),
                relation(Kind::Toast, "audit", Some("audit"), 2.0),
                relation(Kind::Table, "orders", None, 1.0),
            ],
            None,
        );
        let r = reported::<RelationSize>(judge::<RelationSize>(&m, &args(&[]), &t, 0));
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "table public.audit 40 GB; 4 relations checked, 2 alerting; growth: first run, baseline saved"
        );
        assert_eq!(
            r.details,
            [
                "WARNING table public.audit 40 GB",
                "WARNING index public.audit_pkey on public.audit 12 GB"
            ]
        );
        assert_eq!(
            perf(&r),
            [
                "largest=42949672960B;10737418240;107374182400;0",
                "relations=4;;;0",
                "alerting=2;;;0",
                "skipped=0;;;0"
            ]
        );
        assert!(r.hint.as_deref().unwrap().contains("partition by time"));
    }

    #[test]
    fn growth_per_day_has_its_own_ranges() {
        let t = thresholds::<RelationSize>(None, None);
        let mut previous = Snapshot::default();
        previous
            .gauges
            .insert("shop.public.queue table".into(), 10.0 * GB);
        let m = measured(
            vec![relation(Kind::Table, "queue", None, 15.0)],
            Some(previous),
        );
        let a = args(&["--growth", "1GB", "--growth-critical", "4GB"]);
        let r = judge::<RelationSize>(&m, &a, &t, 0);
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "table public.queue 15 GB (+5120 MB per day); 1 relation checked; growth measured in the last 1 d 0 h"
        );
        assert_eq!(
            perf(&r)[4],
            "max_growth_per_day=5368709120B;1073741824;4294967296"
        );
    }

    #[test]
    fn kinds_default_to_all_three() {
        assert_eq!(kinds(&args(&[])), [Kind::Table, Kind::Index, Kind::Toast]);
        assert_eq!(kinds(&args(&["--kind", "index"])), [Kind::Index]);
    }
}
