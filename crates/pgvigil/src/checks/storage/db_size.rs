//! check_pg_db_size: the size of every database (what a daily size
//! report lists), and how fast each grows per day, from the previous run's sizes.

use crate::range::Range;
use crate::rates::{self, Interval};
use crate::session::get;
use crate::state::{Snapshot, StateArgs};
use crate::units::{pretty_bytes, round_to};
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

pub struct DbSize;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Growth")]
pub struct Args {
    /// WARNING when a database's growth per day (a size, e.g. 1GB) is outside this range
    #[arg(long, value_name = "RANGE", value_parser = parse_growth, allow_hyphen_values = true)]
    pub growth: Option<Range>,
    /// CRITICAL when a database's growth per day is outside this range
    #[arg(long, value_name = "RANGE", value_parser = parse_growth, allow_hyphen_values = true)]
    pub growth_critical: Option<Range>,
    /// Shortest interval growth is measured over: sizes from a more recent run are not compared
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::units::parse_duration_option)]
    pub growth_interval: f64,
    #[command(flatten)]
    pub state: StateArgs,
}

fn parse_growth(text: &str) -> Result<Range, String> {
    let range = Range::parse(text)?;
    match range.unit {
        None | Some(Unit::Bytes) => Ok(range),
        Some(_) => Err(format!(
            "'{text}' is not a size per day (B, kB, MB, GB, TB)"
        )),
    }
}

const SQL: &str = "
SELECT extract(epoch FROM now())::float8 AS now, datname::text AS datname,
       pg_database_size(oid)::float8 AS size
FROM pg_database ORDER BY size DESC, datname";

const TABLES: &str = "
SELECT n.nspname::text || '.' || c.relname::text AS name, pg_total_relation_size(c.oid)::float8 AS size
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY size DESC LIMIT 10";

struct Database {
    name: String,
    size: f64,
    per_day: Option<f64>,
    status: Status,
}

impl Check for DbSize {
    const DISPLAY: &'static str = "DB_SIZE";
    const ABOUT: &'static str = "Size of every database, and its growth per day since the previous run (sizes kept in a state file).";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Bytes],
        bare: Some(Unit::Bytes),
        labels: &[],
    };
    const HINT: &'static str = "find what grew: the largest relations (pg_total_relation_size), bloat (check_pg_bloat), and whether old data can be archived or partitions dropped; check disk headroom (check_pg_disk)";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to each database's size; --growth and --growth-critical to its
  growth per day (a size; negative when it shrank), worked out over the real
  interval since the previous run, once --growth-interval (default 1h) has
  passed. No default.";
    type Args = Args;

    fn run(args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        // Query
        let rows = db.query(SQL)?;
        let first = rows
            .first()
            .ok_or_else(|| Error::Query("no database".into()))?;
        let mut snapshot = Snapshot {
            taken_at: get(first, "now")?,
            ..Snapshot::default()
        };
        let mut databases = Vec::new();
        for row in &rows {
            let name: String = get(row, "datname")?;
            let size: f64 = get(row, "size")?;
            snapshot.gauges.insert(name.clone(), size);
            databases.push(Database {
                name,
                size,
                per_day: None,
                status: Status::Ok,
            });
        }
        let store = ctx.state_store(&args.state)?;
        let rates = rates::advance_after(&store, snapshot, args.growth_interval)?;

        // Measure and compare, database by database
        let t = &ctx.thresholds;
        for d in &mut databases {
            if let Interval::Measured { seconds, previous } = &rates.interval {
                d.per_day = previous
                    .gauges
                    .get(&d.name)
                    .map(|before| (d.size - before) / seconds * 86400.0);
            }
            d.status = t.status(&[(Unit::Bytes, d.size)]);
            if let Some(growth) = d.per_day {
                if args
                    .growth_critical
                    .as_ref()
                    .is_some_and(|r| r.alerts(growth))
                {
                    d.status = Status::Critical;
                } else if args.growth.as_ref().is_some_and(|r| r.alerts(growth)) {
                    d.status = d.status.worst(Status::Warning);
                }
            }
        }
        let status = databases.iter().fold(Status::Ok, |s, d| s.worst(d.status));

        // Report: the worst database first, then the largest
        databases.sort_by(|a, b| {
            b.status
                .rank()
                .cmp(&a.status.rank())
                .then(b.size.total_cmp(&a.size))
        });
        let total: f64 = databases.iter().map(|d| d.size).sum();
        let first = &databases[0];
        let mut summary = format!(
            "{} {}{}; {} databases, {} in all",
            first.name,
            pretty_bytes(first.size),
            growth_text(first.per_day),
            databases.len(),
            pretty_bytes(total)
        );
        match &rates.interval {
            Interval::Baseline { why } => summary.push_str(&format!("; growth: {why}")),
            Interval::TooSoon { seconds, needed } => summary.push_str(&format!(
                "; growth: baseline from {} ago, measured once {} have passed",
                crate::units::pretty_duration(*seconds),
                crate::units::pretty_duration(*needed)
            )),
            Interval::Measured { .. } => {
                summary.push_str(&format!("; growth measured {}", rates.over()))
            }
        }
        let growth_range = |r: &Option<Range>| r.as_ref().map(|r| r.to_perfdata());
        let mut perf = vec![PerfData::new("total_size", total, Unit::Bytes).min(0.0)];
        for d in &databases {
            perf.push(
                PerfData::new(format!("{} size", d.name), d.size, Unit::Bytes)
                    .thresholds(t)
                    .min(0.0),
            );
            if let Some(growth) = d.per_day {
                let mut p = PerfData::new(
                    format!("{} growth_per_day", d.name),
                    round_to(growth, 0),
                    Unit::Bytes,
                );
                p.warning = growth_range(&args.growth);
                p.critical = growth_range(&args.growth_critical);
                perf.push(p);
            }
        }
        let mut details: Vec<String> = databases
            .iter()
            .take(10)
            .map(|d| {
                format!(
                    "{} {}: {}{}",
                    d.status,
                    d.name,
                    pretty_bytes(d.size),
                    growth_text(d.per_day)
                )
            })
            .collect();
        if ctx.verbose > 0 {
            for row in db.query(TABLES)? {
                details.push(format!(
                    "table {}: {}",
                    get::<String>(&row, "name")?,
                    pretty_bytes(get(&row, "size")?)
                ));
            }
        }
        Ok(CheckResult::new(status, summary)
            .perf(perf)
            .details(details))
    }
}

/// ` (+120 MB per day)` when the growth is known.
fn growth_text(per_day: Option<f64>) -> String {
    match per_day {
        Some(g) if g < 0.0 => format!(" (-{} per day)", pretty_bytes(-g)),
        Some(g) => format!(" (+{} per day)", pretty_bytes(g)),
        None => String::new(),
    }
}
