//! check_pg_db_size: the size of every database (what a daily size
//! report lists), and how fast each grows per day, from the previous run's sizes.

use crate::check::{Check, Context, Judging};
use crate::checks::common::forecast::{self, ForecastArgs};
use crate::checks::common::growth::{growth_text, interval_note, per_day, GrowthArgs};
use crate::locked_relations;
use crate::session::get;
use crate::session::locked::{holders, Locked};
use crate::session::Session;
use pgvigil_kit::forecast::Forecast;
use pgvigil_kit::judge::{worst, worst_first};
use pgvigil_kit::rates::{self, Rates};
use pgvigil_kit::state::{Snapshot, StateArgs};
use pgvigil_kit::units::pretty_bytes;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

pub struct DbSize;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub growth: GrowthArgs,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub forecast: ForecastArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Forecast")]
pub struct Limits {
    /// The size no database may reach (a quota, the disk it shares): each one's time left before it does is forecast
    #[arg(long, value_name = "SIZE", value_parser = pgvigil_kit::units::parse_size_option)]
    pub limit: Option<u64>,
    /// The size all databases together may not reach: their time left before they do is forecast
    #[arg(long, value_name = "SIZE", value_parser = pgvigil_kit::units::parse_size_option)]
    pub total_limit: Option<u64>,
}

/// A day: database growth follows the day's business, which a day averages.
const WINDOW: f64 = 86400.0;
/// A database that shrinks by more than 5% at once (VACUUM FULL, TRUNCATE,
/// a dropped table) starts a new trend.
const DROP_TOLERANCE: f64 = 0.05;
/// The history's name for all databases together.
const TOTAL: &str = "all databases";

const SQL: &str = "
SELECT extract(epoch FROM now())::float8 AS now, datname::text AS datname,
       pg_database_size(oid)::float8 AS size
FROM pg_database ORDER BY size DESC, datname";

// The ten largest tables. Sizing opens a relation, about 20 us each on a
// fresh session (2 s on 100,000 relations), so the twenty largest by
// pg_class.relpages (as of the last VACUUM or ANALYZE) are sized exactly
// and the ten largest of those listed. A table that another session holds
// in ACCESS EXCLUSIVE mode (itself, its TOAST table or an index) is not
// opened but listed apart, with its oid, to be named as skipped.
const TABLES: &str = concat!(
    "
WITH locked AS (SELECT ",
    locked_relations!(),
    " AS oids), t AS (
  SELECT n.nspname::text || '.' || c.relname::text AS name, c.oid,
         c.oid = ANY(l.oids) OR c.reltoastrelid = ANY(l.oids)
           OR EXISTS (SELECT 1 FROM pg_index i
                       WHERE i.indrelid = c.oid AND i.indexrelid = ANY(l.oids)) AS locked,
         c.relpages + coalesce((SELECT x.relpages FROM pg_class x WHERE x.oid = c.reltoastrelid), 0)
           + coalesce((SELECT sum(x.relpages) FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
                        WHERE i.indrelid = c.oid), 0) AS pages
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN locked l
   WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
), candidates AS (
  SELECT name, oid FROM t WHERE NOT locked ORDER BY pages DESC, name LIMIT 20
)
(SELECT name, pg_total_relation_size(oid)::float8 AS size, NULL::oid AS locked
   FROM candidates ORDER BY size DESC, name LIMIT 10)
UNION ALL
SELECT name, NULL, oid FROM t WHERE locked"
);

/// What one run measures: every database's size, largest first, the
/// interval since the sizes the previous run kept, and with -v the largest
/// tables of the connected database.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub databases: Vec<(String, f64)>,
    /// When each database reaches --limit, by name; empty without it.
    pub forecasts: Vec<(String, Forecast)>,
    /// When all of them together reach --total-limit.
    pub total_forecast: Option<Forecast>,
    pub notes: Vec<String>,
    pub rates: Rates,
    pub largest_tables: Vec<(String, f64)>,
    /// With -v, the tables another session held: not measured.
    pub locked_tables: Vec<Locked>,
}

/// One database as judged.
struct Database<'a> {
    name: &'a str,
    size: f64,
    per_day: Option<f64>,
    forecast: Option<&'a Forecast>,
    status: Status,
}

impl Check for DbSize {
    const INTERVAL: u32 = 3600;
    const UNITS: UnitSpec =
        UnitSpec::of(&[Unit::Bytes, Unit::Seconds], Some(Unit::Bytes)).with_time_left();
    const HINT: &'static str = "find what grew: the largest relations (pg_total_relation_size), bloat (check_pg_bloat), and whether old data can be archived or partitions dropped; check disk headroom (check_pg_disk)";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to each database's size; --growth and --growth-critical to its
  growth per day (a size; negative when it shrank), worked out over the real
  interval since the previous run, once --growth-interval (default 1h) has
  passed; a duration to the time left before a database reaches --limit, or
  all of them --total-limit, as a lower bound (--limit 500GB -w 30d: -c 7d:).
  No default.

FORECAST
  Each run keeps the sizes in a history (a state file); the rate over
  --forecast-window (default 1d, the day's business averaged; the median of
  the slopes between samples) gives the time left before --limit or
  --total-limit. The first forecast comes after an eighth of the window; a
  fall of more than 5% (VACUUM FULL, TRUNCATE, a dropped table) restarts the
  history. perfdata '<database> time_left' and 'total time_left' are in
  seconds.";
    type Args = Args;
    type Measured = Measured;

    /// A time left needs a limit to reach.
    fn validate(args: &Args, thresholds: &Thresholds) -> Result<(), Error> {
        if thresholds.uses(Unit::Seconds)
            && args.limits.limit.is_none()
            && args.limits.total_limit.is_none()
        {
            return Err(Error::Usage(
                "a duration in -w/-c is the time left before --limit or --total-limit: give one of them".into(),
            ));
        }
        Ok(())
    }

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let mut measured = measure(db, ctx, args)?;
        forecast_sizes(&mut measured, args, ctx)?;
        Ok(measured)
    }

    /// Each database's size against `-w`/`-c`, and its growth per day against
    /// `--growth` (WARNING) and `--growth-critical`; the worst database first,
    /// then the largest.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, args) = (judging.thresholds, judging.args);
        let mut databases: Vec<Database> = m
            .databases
            .iter()
            .map(|(name, size)| {
                let per_day = per_day(&m.rates, name, *size);
                let forecast = m.forecasts.iter().find(|(n, _)| n == name).map(|(_, f)| f);
                let mut measured = vec![(Unit::Bytes, *size)];
                measured.extend(
                    forecast
                        .and_then(forecast::seconds_left)
                        .map(|left| (Unit::Seconds, left)),
                );
                let status = args.growth.judge(per_day, t.status(&measured));
                Database {
                    name,
                    size: *size,
                    per_day,
                    forecast,
                    status,
                }
            })
            .collect();
        let total_left = m.total_forecast.as_ref().and_then(forecast::seconds_left);
        let total_status = total_left.map_or(Status::Ok, |left| t.status(&[(Unit::Seconds, left)]));
        let status = worst(databases.iter().map(|d| d.status)).worst(total_status);
        databases.sort_by(|a, b| b.size.total_cmp(&a.size));
        worst_first(&mut databases, |d| d.status);
        let total: f64 = databases.iter().map(|d| d.size).sum();
        let limit = args.limits.limit;
        let total_limit = args.limits.total_limit;
        let mut summary = match databases.first() {
            Some(first) => format!(
                "{} {}{}{}; {} databases, {} in all{}",
                first.name,
                pretty_bytes(first.size),
                growth_text(first.per_day),
                outlook(first.forecast, limit),
                databases.len(),
                pretty_bytes(total),
                outlook(m.total_forecast.as_ref(), total_limit)
            ),
            None => "no database".to_string(),
        };
        summary.push_str(&interval_note(&m.rates));
        let mut perf = vec![PerfData::new("total_size", total, Unit::Bytes).min(0.0)];
        if let Some(f) = &m.total_forecast {
            perf.extend(forecast::perf("total time_left".into(), f, t));
        }
        for d in &databases {
            perf.push(
                PerfData::new(format!("{} size", d.name), d.size, Unit::Bytes)
                    .thresholds(t)
                    .min(0.0),
            );
            if let Some(growth) = d.per_day {
                perf.push(
                    args.growth
                        .perf(format!("{} growth_per_day", d.name), growth),
                );
            }
            if let Some(f) = d.forecast {
                perf.extend(forecast::perf(format!("{} time_left", d.name), f, t));
            }
        }
        let mut details: Vec<String> = databases
            .iter()
            .take(10)
            .map(|d| {
                let forecast = match (d.forecast, limit) {
                    (Some(f), Some(limit)) => format!(
                        "; {}",
                        forecast::describe(
                            f,
                            &format!("reaches {}", pretty_bytes(limit as f64)),
                            pretty_bytes
                        )
                    ),
                    _ => String::new(),
                };
                format!(
                    "{} {}: {}{}{forecast}",
                    d.status,
                    d.name,
                    pretty_bytes(d.size),
                    growth_text(d.per_day)
                )
            })
            .collect();
        if let (Some(f), Some(limit)) = (&m.total_forecast, total_limit) {
            details.push(format!(
                "{total_status} all databases: {}; {}",
                pretty_bytes(total),
                forecast::describe(
                    f,
                    &format!("reach {}", pretty_bytes(limit as f64)),
                    pretty_bytes
                )
            ));
        }
        for (name, size) in &m.largest_tables {
            details.push(format!("table {name}: {}", pretty_bytes(*size)));
        }
        details.extend(
            m.locked_tables
                .iter()
                .map(|l| format!("table {}", l.describe(false))),
        );
        details.extend(m.notes.iter().cloned());
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

/// With a limit, adds the sizes to their histories and forecasts from them.
fn forecast_sizes(m: &mut Measured, args: &Args, ctx: &Context) -> Result<(), Error> {
    let Limits { limit, total_limit } = args.limits;
    if limit.is_none() && total_limit.is_none() {
        return Ok(());
    }
    let policy = args.forecast.policy(WINDOW, DROP_TOLERANCE);
    let now = m.rates.current.taken_at;
    let (databases, forecasts) = (&m.databases, &mut m.forecasts);
    let mut total_forecast = None;
    let notes = forecast::update(ctx, &args.state, now, |histories| {
        if let Some(limit) = limit {
            for (name, size) in databases {
                let (series, _) = histories.add(name, now, *size, &policy);
                forecasts.push((name.clone(), series.forecast(*size, limit as f64, &policy)));
            }
        }
        if let Some(limit) = total_limit {
            let total: f64 = databases.iter().map(|(_, size)| size).sum();
            let (series, _) = histories.add(TOTAL, now, total, &policy);
            total_forecast = Some(series.forecast(total, limit as f64, &policy));
        }
    })?;
    m.total_forecast = total_forecast;
    m.notes.extend(notes);
    Ok(())
}

/// `, reaches 500 GB in 12 d 3 h at …` for a forecast with a time left.
fn outlook(f: Option<&Forecast>, limit: Option<u64>) -> String {
    limit.map_or_else(String::new, |limit| {
        forecast::time_left_text(
            f,
            &format!("reaches {}", pretty_bytes(limit as f64)),
            pretty_bytes,
        )
    })
}

fn measure(db: &mut Session, ctx: &Context, args: &Args) -> Result<Measured, Error> {
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
        databases.push((name, size));
    }
    let store = ctx.state_store(&args.state)?;
    let rates = rates::advance_after(&store, snapshot, args.growth.growth_interval)?;
    let mut largest_tables = Vec::new();
    let mut locked = Vec::new();
    if ctx.verbose > 0 {
        for row in db.query(TABLES)? {
            match get::<Option<f64>>(&row, "size")? {
                Some(size) => largest_tables.push((get(&row, "name")?, size)),
                None => locked.extend(get::<Option<u32>>(&row, "locked")?),
            }
        }
    }
    let locked_tables = holders(db, &ctx.conn.dbname, &locked)?;
    Ok(Measured {
        databases,
        forecasts: Vec::new(),
        total_forecast: None,
        notes: Vec::new(),
        rates,
        largest_tables,
        locked_tables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::growth::parse_growth;
    use crate::checks::testing::{judge, perf, reported, thresholds};
    use pgvigil_kit::rates::Interval;

    const GB: f64 = 1073741824.0;

    fn args(growth: Option<&str>, critical: Option<&str>) -> Args {
        Args {
            growth: GrowthArgs {
                growth: growth.map(|g| parse_growth(g).unwrap()),
                growth_critical: critical.map(|g| parse_growth(g).unwrap()),
                growth_interval: 3600.0,
            },
            limits: Limits::default(),
            forecast: ForecastArgs::default(),
            state: StateArgs::default(),
        }
    }

    /// app grew from `before` to `now` GB in a day; postgres stayed at 8 MB.
    fn measured(before: f64, now: f64) -> Measured {
        let mut previous = Snapshot::default();
        previous.gauges.insert("app".into(), before * GB);
        previous.gauges.insert("postgres".into(), 8388608.0);
        Measured {
            databases: vec![("app".into(), now * GB), ("postgres".into(), 8388608.0)],
            rates: Rates {
                current: Snapshot::default(),
                interval: Interval::Measured {
                    seconds: 86400.0,
                    previous,
                },
            },
            largest_tables: vec![],
            locked_tables: vec![],
            forecasts: vec![],
            total_forecast: None,
            notes: vec![],
        }
    }

    #[test]
    fn sizes_meet_w_and_c_no_default() {
        let none = args(None, None);
        assert_eq!(
            judge::<DbSize>(
                &measured(1.0, 500.0),
                &none,
                &thresholds::<DbSize>(None, None),
                0
            )
            .status,
            Status::Ok
        );
        let t = thresholds::<DbSize>(Some("100GB"), Some("200GB"));
        assert_eq!(
            judge::<DbSize>(&measured(1.0, 100.0), &none, &t, 0).status,
            Status::Ok
        );
        assert_eq!(
            judge::<DbSize>(&measured(1.0, 100.5), &none, &t, 0).status,
            Status::Warning
        );
        assert_eq!(
            judge::<DbSize>(&measured(1.0, 201.0), &none, &t, 0).status,
            Status::Critical
        );
    }

    #[test]
    fn growth_per_day_has_its_own_ranges() {
        let t = thresholds::<DbSize>(None, None);
        let a = args(Some("5GB"), Some("20GB"));
        assert_eq!(
            judge::<DbSize>(&measured(10.0, 15.0), &a, &t, 0).status,
            Status::Ok
        );
        assert_eq!(
            judge::<DbSize>(&measured(10.0, 16.0), &a, &t, 0).status,
            Status::Warning
        );
        let r = reported::<DbSize>(judge::<DbSize>(&measured(10.0, 31.0), &a, &t, 0));
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "app 31 GB (+21 GB per day); 2 databases, 31 GB in all; growth measured in the last 1 d 0 h"
        );
        assert_eq!(
            r.details,
            [
                "CRITICAL app: 31 GB (+21 GB per day)",
                "OK postgres: 8192 kB (+0 bytes per day)"
            ]
        );
        assert_eq!(
            perf(&r)[2],
            "'app growth_per_day'=22548578304B;5368709120;21474836480"
        );
        assert!(r.hint.is_some());
        // Shrinking reads as negative growth.
        assert!(judge::<DbSize>(&measured(10.0, 9.0), &a, &t, 0)
            .summary
            .contains("(-1024 MB per day)"));
    }

    #[test]
    fn the_time_left_before_a_limit_alerts_below_its_bounds() {
        let t = thresholds::<DbSize>(Some("30d:"), Some("7d:"));
        let mut a = args(None, None);
        a.limits.limit = Some((100.0 * GB) as u64);
        a.limits.total_limit = Some((120.0 * GB) as u64);
        let with = |days: f64| {
            let mut m = measured(50.0, 50.0);
            let f = Forecast::Left {
                left: days * 86400.0,
                rate: 50.0 * GB / (days * 86400.0),
                span: 86400.0,
            };
            m.forecasts = vec![("app".into(), f)];
            m.total_forecast = Some(Forecast::NotGrowing {
                rate: 0.0,
                span: 86400.0,
            });
            reported::<DbSize>(judge::<DbSize>(&m, &a, &t, 0))
        };
        assert_eq!(with(40.0).status, Status::Ok);
        let w = with(20.0);
        assert_eq!(w.status, Status::Warning);
        assert_eq!(
            w.summary,
            "app 50 GB (+0 bytes per day), reaches 100 GB in 20 d 0 h at 107 MB per hour over the last 1 d 0 h; 2 databases, 50 GB in all; growth measured in the last 1 d 0 h"
        );
        assert!(perf(&w).contains(&"'app time_left'=1728000s;2592000:;604800:;0".to_string()));
        assert!(perf(&w).contains(&"'total time_left'=315360000s;2592000:;604800:;0".to_string()));
        assert_eq!(
            w.details.last().unwrap(),
            "OK all databases: 50 GB; not growing over the last 1 d 0 h"
        );
        assert_eq!(with(3.0).status, Status::Critical);
    }

    #[test]
    fn before_an_interval_growth_is_not_judged() {
        let t = thresholds::<DbSize>(None, None);
        let a = args(Some("0"), None);
        let mut m = measured(1.0, 50.0);
        m.rates.interval = Interval::TooSoon {
            seconds: 60.0,
            needed: 3600.0,
        };
        m.largest_tables = vec![("public.orders".into(), GB)];
        let r = judge::<DbSize>(&m, &a, &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert!(r.summary.ends_with(
            "; growth: baseline from 1 min 0 s ago, measured once 1 h 0 min have passed"
        ));
        assert_eq!(r.details.last().unwrap(), "table public.orders: 1024 MB");
        m.databases.clear();
        assert!(judge::<DbSize>(&m, &a, &t, 0)
            .summary
            .starts_with("no database"));
    }
}
