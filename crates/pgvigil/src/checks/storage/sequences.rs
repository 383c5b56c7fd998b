//! check_pg_sequences: how much of its range each sequence has used. The
//! day an `integer` serial passes 2^31 every INSERT into its table fails,
//! and the fix (`ALTER COLUMN … TYPE bigint`) rewrites the table: the limit
//! that counts is the owning column's type as much as the sequence's own
//! maxvalue, and the warning has to come weeks ahead.

use crate::check::{Check, Context, Judging};
use crate::checks::common::forecast::{self, ForecastArgs};
use crate::checks::common::visit::{qualified, Wording};
use crate::session::databases::{self, DatabaseArgs, Visit};
use crate::session::get;
use crate::session::relations::RelationArgs;
use crate::session::Session;
use pgvigil_kit::forecast::Forecast;
use pgvigil_kit::judge::worst_first;
use pgvigil_kit::state::StateArgs;
use pgvigil_kit::units::round_to;
use pgvigil_kit::words::{count, percent_text};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Sequences;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub databases: DatabaseArgs,
    #[command(flatten)]
    pub relations: RelationArgs,
    #[command(flatten)]
    pub forecast: ForecastArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

/// A day: nextval follows the day's business, which a day averages.
const WINDOW: f64 = 86400.0;

// pg_sequences would null the value of a sequence the role may not read,
// the same as one never used: a naive check then reports 0% everywhere. So
// the privilege is read apart, and pg_sequence_last_value() (which raises
// without it) is called only where it is held. The owning column (serial:
// an 'a' dependency, identity: 'i') brings its type, the other limit.
const SQL: &str = "
SELECT current_user::text AS role,
       n.nspname::text AS schema, c.relname::text AS name,
       s.seqmin AS min_value, s.seqmax AS max_value, s.seqincrement AS increment,
       s.seqcycle AS cycle, s.seqstart AS start_value,
       has_sequence_privilege(c.oid, 'SELECT,USAGE') AS readable,
       CASE WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE')
            THEN pg_sequence_last_value(c.oid) END AS last_value,
       tn.nspname::text AS table_schema, t.relname::text AS table_name,
       a.attname::text AS column_name, a.atttypid::regtype::text AS column_type
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class t ON t.oid = d.refobjid
LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE NOT pg_is_other_temp_schema(n.oid)
ORDER BY n.nspname, c.relname";

/// What one run reads: the sequences of each database visited.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub role: String,
    pub visit: Visit<Vec<Sequence>>,
    /// Why there is no forecast, or why its history restarted.
    pub notes: Vec<String>,
}

/// One sequence as the catalog describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sequence {
    pub schema: String,
    pub name: String,
    pub min_value: i64,
    pub max_value: i64,
    pub increment: i64,
    pub cycle: bool,
    /// Where nextval() starts: the value a sequence never called sits at.
    pub start: i64,
    /// False when the role may not read its value.
    pub readable: bool,
    /// None when nextval() was never called (or the value is unreadable).
    pub last_value: Option<i64>,
    /// `schema.table.column` and its type, when a column owns it.
    pub owner: Option<(String, String)>,
    /// When it reaches its limit at the rate nextval() is called; None
    /// without a history (or for one that cycles or cannot be read).
    pub forecast: Option<Forecast>,
}

/// How far a sequence has gone toward the end it runs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub percent: f64,
    /// nextval() calls left before it fails.
    pub calls_left: i128,
    /// The end it runs to, and what sets it.
    pub limit: i128,
    pub limited_by: String,
}

impl Sequence {
    /// The share of its range used, toward maxvalue (or minvalue when it
    /// descends), or the owning column type's bound when that comes first.
    pub fn usage(&self) -> Usage {
        let step = i128::from(self.increment);
        let (low, high) = (i128::from(self.min_value), i128::from(self.max_value));
        let column = self.owner.as_ref().and_then(|(_, t)| type_bounds(t));
        let ascending = step > 0;
        let (limit, limited_by) = match column {
            Some((_, tmax)) if ascending && tmax <= high => (tmax, self.owner_type()),
            Some((tmin, _)) if !ascending && tmin >= low => (tmin, self.owner_type()),
            _ if ascending => (high, "maxvalue".to_string()),
            _ => (low, "minvalue".to_string()),
        };
        // The end it starts from: where a fresh sequence stands.
        let origin = if ascending { low } else { high };
        let at = self.last_value.map(i128::from);
        let (used, span) = if ascending {
            (at.map_or(0, |v| v - origin), limit - origin)
        } else {
            (at.map_or(0, |v| origin - v), origin - limit)
        };
        let percent = if span > 0 {
            (used.max(0) as f64 / span as f64 * 100.0).min(100.0)
        } else {
            100.0
        };
        let left = match at {
            Some(v) => (limit - v) / step,
            None => (limit - i128::from(self.start)) / step + 1,
        };
        Usage {
            percent,
            calls_left: left.max(0),
            limit,
            limited_by,
        }
    }

    /// nextval() calls made since it started.
    fn calls_made(&self) -> i128 {
        match self.last_value {
            Some(v) if self.increment != 0 => {
                (i128::from(v) - i128::from(self.start)) / i128::from(self.increment) + 1
            }
            _ => 0,
        }
    }

    fn owner_type(&self) -> String {
        let column_type = self.owner.as_ref().map_or("", |(_, t)| t.as_str());
        format!("column type {column_type}")
    }

    /// `public.orders.id (sequence public.orders_id_seq)`, or the sequence.
    fn label(&self, database: &str, many: bool) -> String {
        let sequence = qualified(database, &self.schema, &self.name, many);
        match &self.owner {
            Some((column, _)) if many => format!("{database}.{column} (sequence {sequence})"),
            Some((column, _)) => format!("{column} (sequence {sequence})"),
            None => format!("sequence {sequence}"),
        }
    }
}

/// The values an integer column can hold; None for types without a bound
/// the sequence could pass (numeric, or anything else).
fn type_bounds(column_type: &str) -> Option<(i128, i128)> {
    match column_type {
        "smallint" => Some((i128::from(i16::MIN), i128::from(i16::MAX))),
        "integer" => Some((i128::from(i32::MIN), i128::from(i32::MAX))),
        "bigint" => Some((i128::from(i64::MIN), i128::from(i64::MAX))),
        _ => None,
    }
}

impl Check for Sequences {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Percent, Unit::Seconds], None).with_time_left();
    const HINT: &'static str = "a sequence at its limit makes every INSERT fail (nextval: reached maximum value): plan ALTER TABLE … ALTER COLUMN … TYPE bigint (it rewrites the table) and ALTER SEQUENCE … AS bigint MAXVALUE …, or archive and restart the range; long before, so the rewrite fits a maintenance window";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A percentage applies to each sequence's share of its range used: from
  minvalue up to the owning column type's bound or maxvalue, whichever comes
  first (from maxvalue down, when it descends). A cycling sequence wraps
  instead of failing: it is listed apart and not judged. A sequence whose
  value the role may not read makes the result UNKNOWN, naming the grant.
  A duration applies to the time left before a sequence runs out, as a
  lower bound (-w 75%,30d: -c 90%,7d:). Default: {defaults}.

FORECAST
  Each run keeps every sequence's nextval() calls in a history (a state
  file); their rate over --forecast-window (default 1d, the day's business
  averaged; the median of the slopes between samples) gives the time left
  before the values left are used. The first forecast comes after an
  eighth of the window; a sequence set back (setval, RESTART) restarts its
  history. perfdata time_left is the least time left, in seconds.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("75%", "90%"));
    type Args = Args;
    type Measured = Measured;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let mut measured = measure(args, db, ctx)?;
        forecast_each(&mut measured, args, ctx)?;
        Ok(measured)
    }

    /// Each readable sequence that does not cycle against `-w`/`-c`, the worst
    /// first; any sequence whose value the role may not read makes the result
    /// at least UNKNOWN, naming the grant, so that no share is ever a silent 0%.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, verbose) = (judging.thresholds, judging.verbose);
        let many = m.visit.checked.len() > 1;
        let mut judged = Vec::new();
        let mut cycling = Vec::new();
        let mut unreadable = Vec::new();
        for (database, sequences) in m.visit.results() {
            for s in sequences {
                let label = s.label(database, many);
                if !s.readable {
                    unreadable.push((database, s, label));
                } else if s.cycle {
                    cycling.push(label);
                } else {
                    let usage = s.usage();
                    let mut measured = vec![(Unit::Percent, usage.percent)];
                    let left = s.forecast.as_ref().and_then(forecast::seconds_left);
                    measured.extend(left.map(|l| (Unit::Seconds, l)));
                    let status = t.status(&measured);
                    judged.push(Judged {
                        label,
                        usage,
                        forecast: s.forecast,
                        status,
                    });
                }
            }
        }
        judged.sort_by(|a, b| b.usage.percent.total_cmp(&a.usage.percent));
        worst_first(&mut judged, |j| j.status);
        // With none judged, the empty maximum still meets the thresholds (an
        // inverted range may alert on it).
        let mut status = judged
            .first()
            .map_or_else(|| t.status(&[(Unit::Percent, 0.0)]), |j| j.status);
        let worst_pct = judged.first().map_or(0.0, |j| j.usage.percent);

        // The least time left, absent while every history is too short.
        let outlook = forecast::least(judged.iter().filter_map(|j| j.forecast.as_ref()));
        let scope = if many {
            format!(" in {} databases", m.visit.checked.len())
        } else {
            String::new()
        };
        let mut summary = match judged.first() {
            Some(j) => format!(
                "{}; {} checked{scope}",
                j.describe(),
                count(judged.len(), "sequence")
            ),
            None => format!("no sequence to check{scope}"),
        };
        if !cycling.is_empty() {
            summary.push_str(&format!(", {} cycling (not judged)", cycling.len()));
        }

        if let Some((database, first, _)) = unreadable.first() {
            status = status.worst(Status::Unknown);
            summary = format!(
                "{} unreadable by role \"{}\" (e.g. {}): GRANT pg_read_all_data TO \"{}\" (PostgreSQL 14+) or GRANT SELECT ON ALL SEQUENCES IN SCHEMA {} TO \"{}\"; {summary}",
                count(unreadable.len(), "sequence"),
                m.role,
                qualified(database, &first.schema, &first.name, many),
                m.role,
                first.schema,
                m.role
            );
        }
        status = m.visit.floor(status);
        summary.push_str(&m.visit.unreachable_note());

        let mut perf = vec![
            PerfData::new("max_used", round_to(worst_pct, 2), Unit::Percent)
                .thresholds(t)
                .min(0.0)
                .max(100.0),
            PerfData::new("sequences", judged.len() as f64, Unit::Count).min(0.0),
            PerfData::new(
                "over_warning",
                judged.iter().filter(|j| j.status != Status::Ok).count() as f64,
                Unit::Count,
            )
            .min(0.0),
            PerfData::new("cycling", cycling.len() as f64, Unit::Count).min(0.0),
            PerfData::new("unreadable", unreadable.len() as f64, Unit::Count).min(0.0),
        ];
        if let Some(f) = &outlook {
            perf.extend(forecast::perf("time_left".into(), f, t));
        }
        let mut details = m.visit.unreachable_details();
        details.extend(
            unreadable
                .iter()
                .map(|(_, _, label)| format!("UNKNOWN {label}: value not readable")),
        );
        let shown = judged
            .iter()
            .filter(|j| verbose > 0 || j.status != Status::Ok);
        details.extend(shown.map(|j| format!("{} {}", j.status, j.describe())));
        if verbose > 0 {
            details.extend(
                cycling
                    .iter()
                    .map(|label| format!("{label}: cycles, not judged")),
            );
            details.extend(judged.iter().filter_map(|j| match &j.forecast {
                Some(f @ (Forecast::Gathering { .. } | Forecast::NotGrowing { .. })) => Some(
                    format!("{}: {}", j.label, forecast::describe(f, "runs out", values)),
                ),
                _ => None,
            }));
        }
        if let Some(f @ Forecast::Gathering { .. }) = &outlook {
            details.push(forecast::describe(f, "", |_| String::new()));
        }
        details.extend(m.notes.iter().cloned());
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

/// Adds each judged sequence's calls to its history and forecasts from it.
fn forecast_each(m: &mut Measured, args: &Args, ctx: &Context) -> Result<(), Error> {
    // Calls made only grow: a fall is a setval or RESTART.
    let policy = args.forecast.policy(WINDOW, 0.0);
    let now = forecast::local_now();
    let checked = &mut m.visit.checked;
    let notes = forecast::update(ctx, &args.state, now, |histories| {
        for (database, sequences) in checked.iter_mut() {
            for s in sequences.iter_mut().filter(|s| s.readable && !s.cycle) {
                let made = s.calls_made() as f64;
                let left = s.usage().calls_left as f64;
                let name = format!("{database}.{}.{}", s.schema, s.name);
                let (series, _) = histories.add(&name, now, made, &policy);
                s.forecast = Some(series.forecast(made, made + left, &policy));
            }
        }
    })?;
    m.notes.extend(notes);
    Ok(())
}

fn measure(args: &Args, db: &mut Session, ctx: &Context) -> Result<Measured, Error> {
    let visit = databases::visit(&args.databases, db, &ctx.conn, ctx.timeout, |_, session| {
        let mut role = None;
        let mut sequences = Vec::new();
        for row in &session.query(SQL)? {
            role = Some(get::<String>(row, "role")?);
            let schema: String = get(row, "schema")?;
            let name: String = get(row, "name")?;
            if !args.relations.keeps(&schema, &name) {
                continue;
            }
            let owner = match (
                get::<Option<String>>(row, "table_schema")?,
                get::<Option<String>>(row, "table_name")?,
                get::<Option<String>>(row, "column_name")?,
                get::<Option<String>>(row, "column_type")?,
            ) {
                (Some(s), Some(t), Some(c), Some(ty)) => Some((format!("{s}.{t}.{c}"), ty)),
                _ => None,
            };
            sequences.push(Sequence {
                schema,
                name,
                min_value: get(row, "min_value")?,
                max_value: get(row, "max_value")?,
                increment: get(row, "increment")?,
                cycle: get(row, "cycle")?,
                start: get(row, "start_value")?,
                readable: get(row, "readable")?,
                last_value: get(row, "last_value")?,
                owner,
                forecast: None,
            });
        }
        Ok((role, sequences))
    })?;
    // The role is the session's: the same in every database with a sequence.
    let mut role = String::new();
    let visit = visit.map(|(seen, sequences)| {
        if let Some(seen) = seen {
            role = seen;
        }
        sequences
    });
    Ok(Measured {
        role,
        visit,
        notes: Vec::new(),
    })
}

/// `1200 values`, for a rate.
fn values(n: f64) -> String {
    format!("{} values", n.round())
}

/// One sequence as judged.
struct Judged {
    label: String,
    usage: Usage,
    forecast: Option<Forecast>,
    status: Status,
}

impl Judged {
    fn describe(&self) -> String {
        let outlook = forecast::time_left_text(self.forecast.as_ref(), "runs out", values);
        format!(
            "{}: {} used, {} left before {} ({}){outlook}",
            self.label,
            percent_text(self.usage.percent),
            count(
                usize::try_from(self.usage.calls_left).unwrap_or(usize::MAX),
                "value"
            ),
            self.usage.limit,
            self.usage.limited_by
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};

    fn serial(column_type: &str, last: Option<i64>) -> Sequence {
        Sequence {
            schema: "public".into(),
            name: "orders_id_seq".into(),
            min_value: 1,
            max_value: i64::MAX,
            increment: 1,
            start: 1,
            readable: true,
            last_value: last,
            owner: Some(("public.orders.id".into(), column_type.into())),
            ..Sequence::default()
        }
    }

    fn measured(sequences: Vec<Sequence>) -> Measured {
        Measured {
            role: "monitor".into(),
            visit: Visit {
                checked: vec![("shop".into(), sequences)],
                unreachable: Vec::new(),
            },
            notes: Vec::new(),
        }
    }

    #[test]
    fn the_time_left_alerts_below_its_bounds() {
        let t = thresholds::<Sequences>(Some("75%,30d:"), Some("90%,7d:"));
        let with = |f: Option<Forecast>| {
            let mut s = serial("integer", Some(1_000_000));
            s.forecast = f;
            reported::<Sequences>(judge::<Sequences>(&measured(vec![s]), &options(&[]), &t, 0))
        };
        let left = |days: f64| Forecast::Left {
            left: days * 86400.0,
            rate: 10.0,
            span: 86400.0,
        };
        assert_eq!(with(Some(left(60.0))).status, Status::Ok);
        let w = with(Some(left(20.0)));
        assert_eq!(w.status, Status::Warning);
        assert!(
            w.summary.starts_with("public.orders.id (sequence public.orders_id_seq): 0% used, 2146483647 values left before 2147483647 (column type integer), runs out in 20 d 0 h at 36000 values per hour over the last 1 d 0 h"),
            "{}",
            w.summary
        );
        assert!(perf(&w).contains(&"time_left=1728000s;2592000:;604800:;0".to_string()));
        assert_eq!(with(Some(left(3.0))).status, Status::Critical);
        let g = with(Some(Forecast::Gathering { more: 600.0 }));
        assert_eq!(g.status, Status::Ok);
        assert_eq!(g.details, ["forecast after 10 min 0 s more of history"]);
        assert!(!perf(&g).iter().any(|p| p.starts_with("time_left")));
        let flat = with(Some(Forecast::NotGrowing {
            rate: 0.0,
            span: 86400.0,
        }));
        assert!(perf(&flat).contains(&"time_left=315360000s;2592000:;604800:;0".to_string()));
    }

    #[test]
    fn an_integer_serial_counts_against_its_column_type() {
        let u = serial("integer", Some(2_000_000_000)).usage();
        assert_eq!(u.limit, i128::from(i32::MAX));
        assert_eq!(u.limited_by, "column type integer");
        assert_eq!(u.calls_left, 147_483_647);
        assert!((u.percent - 93.13).abs() < 0.01, "{}", u.percent);
        // A smallint serial, the same.
        let u = serial("smallint", Some(30_000)).usage();
        assert_eq!((u.limit, u.calls_left), (32767, 2767));
        // A bigint column leaves the sequence's maxvalue as the limit.
        let mut s = serial("bigint", Some(900));
        s.max_value = 1000;
        let u = s.usage();
        assert_eq!((u.limit, u.limited_by.as_str()), (1000, "maxvalue"));
        assert_eq!(u.calls_left, 100);
    }

    #[test]
    fn a_descending_sequence_counts_toward_minvalue() {
        let s = Sequence {
            schema: "public".into(),
            name: "down".into(),
            min_value: -1000,
            max_value: -1,
            increment: -1,
            start: -1,
            readable: true,
            last_value: Some(-901),
            ..Sequence::default()
        };
        let u = s.usage();
        assert_eq!((u.limit, u.limited_by.as_str()), (-1000, "minvalue"));
        assert_eq!(u.calls_left, 99);
        assert!((u.percent - 90.09).abs() < 0.01, "{}", u.percent);
    }

    #[test]
    fn a_fresh_sequence_has_used_nothing() {
        let u = serial("integer", None).usage();
        assert_eq!(u.percent, 0.0);
        assert_eq!(u.calls_left, i128::from(i32::MAX));
        // Increments larger than one leave fewer calls.
        let mut s = serial("integer", Some(1));
        s.increment = 1000;
        assert_eq!(s.usage().calls_left, 2_147_483);
    }

    #[test]
    fn the_worst_is_named_and_cycling_ones_are_apart() {
        let t = thresholds::<Sequences>(None, None);
        let mut cycling = serial("integer", Some(2_100_000_000));
        cycling.name = "ring".into();
        cycling.owner = None;
        cycling.cycle = true;
        let m = measured(vec![serial("integer", Some(2_000_000_000)), cycling]);
        let r = reported::<Sequences>(judge::<Sequences>(&m, &options(&[]), &t, 0));
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "public.orders.id (sequence public.orders_id_seq): 93.1% used, 147483647 values left before 2147483647 (column type integer); 1 sequence checked, 1 cycling (not judged)"
        );
        assert_eq!(
            perf(&r),
            [
                "max_used=93.13%;75;90;0;100",
                "sequences=1;;;0",
                "over_warning=1;;;0",
                "cycling=1;;;0",
                "unreadable=0;;;0"
            ]
        );
        assert!(r.hint.as_deref().unwrap().contains("TYPE bigint"));
    }

    #[test]
    fn an_unreadable_value_is_unknown_naming_the_grant_never_zero() {
        let t = thresholds::<Sequences>(None, None);
        let mut hidden = serial("integer", None);
        hidden.readable = false;
        let r = judge::<Sequences>(&measured(vec![hidden]), &options(&[]), &t, 0);
        assert_eq!(r.status, Status::Unknown);
        assert!(
            r.summary.starts_with("1 sequence unreadable by role \"monitor\" (e.g. public.orders_id_seq): GRANT pg_read_all_data TO \"monitor\" (PostgreSQL 14+) or GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO \"monitor\"; no sequence to check"),
            "{}",
            r.summary
        );
        // A critical one stays critical.
        let mut hidden = serial("integer", None);
        hidden.readable = false;
        let r = judge::<Sequences>(
            &measured(vec![hidden, serial("integer", Some(2_100_000_000))]),
            &options(&[]),
            &t,
            0,
        );
        assert_eq!(r.status, Status::Critical);
    }
}
