//! check_pg_subscriptions: logical replication as the subscriber sees it.
//! A subscription fails quietly: on a unique violation or a column missing
//! after DDL its apply worker dies and restarts on the same change forever,
//! or `disable_on_error` turns it off; the subscriber drifts while the
//! publisher's slot keeps WAL until its disk fills. So every subscription is
//! judged on whether it is enabled, its apply worker runs, it hears from the
//! publisher, its tables are synchronized and it had errors since the
//! previous run.

use crate::check::{Check, Context, Judging};
use crate::session::databases::parse_regex;
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::judge::{worst, worst_first};
use pgvigil_kit::state::{Snapshot, StateArgs};
use pgvigil_kit::units::pretty_duration;
use pgvigil_kit::words::{count, plural};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

pub struct Subscriptions;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Subscriptions")]
pub struct Args {
    /// Only subscriptions whose name matches REGEX
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub include: Option<regex::Regex>,
    /// Skip subscriptions whose name matches REGEX (one disabled on purpose)
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub exclude: Option<regex::Regex>,
    /// The apply and sync errors are counted since the previous run.
    #[command(flatten)]
    pub state: StateArgs,
}

const VERSION: &str = "SELECT current_setting('server_version_num')::int AS version, pg_is_in_recovery() AS in_recovery";

// pg_subscription is shared by the whole cluster, so every subscription is
// seen from any database; pg_subscription_rel is per database, so its tables
// are counted only for the subscriptions of the database connected to.
// Only the columns granted to PUBLIC are read (subconninfo is not). The
// apply worker is the row without a table and without a leader (parallel
// apply workers, 16+, have one); a row with a NULL pid means none runs.
macro_rules! subscriptions_sql {
    ($id:literal, $id_join:literal, $stats_columns:literal, $stats_join:literal) => {
        concat!(
            "
SELECT extract(epoch FROM now())::float8 AS now,
       ",
            $id,
            "::int8 AS oid, s.subname::text AS name, s.subenabled AS enabled,
       d.datname::text AS database, d.datname = current_database() AS local,
       w.pid IS NOT NULL AS apply_running,
       extract(epoch FROM now() - w.last_msg_receipt_time)::float8 AS receipt_age,
       (SELECT count(*) FROM pg_stat_subscription x
        WHERE x.subid = ",
            $id,
            " AND x.relid IS NOT NULL AND x.pid IS NOT NULL)::int8 AS sync_workers,
       CASE WHEN d.datname = current_database() THEN
         (SELECT coalesce(array_agg(format('%I.%I %s', n.nspname, c.relname, r.srsubstate)
                                    ORDER BY n.nspname, c.relname), '{}')
          FROM pg_subscription_rel r JOIN pg_class c ON c.oid = r.srrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE r.srsubid = ",
            $id,
            " AND r.srsubstate <> 'r')
       END AS not_ready,",
            $stats_columns,
            "
FROM pg_subscription s
JOIN pg_database d ON d.oid = s.subdbid",
            $id_join,
            "
LEFT JOIN pg_stat_subscription w ON w.subid = ",
            $id,
            " AND w.relid IS NULL
     AND (to_jsonb(w) ->> 'leader_pid') IS NULL",
            $stats_join,
            "
ORDER BY s.subname"
        )
    };
}

/// 15+: disable_on_error and the error counters.
const FROM_15: &str = subscriptions_sql!(
    "s.oid",
    "",
    "
       s.subdisableonerr AS disable_on_error,
       st.apply_error_count::float8 AS apply_errors, st.sync_error_count::float8 AS sync_errors,
       coalesce(st.stats_reset::text, '') AS stats_reset",
    "
LEFT JOIN pg_stat_subscription_stats st ON st.subid = s.oid"
);

// Before 15 (at least on 12) pg_subscription.oid is not granted to PUBLIC:
// the oid comes from pg_stat_subscription, a view that lists every
// subscription by name. Two subscriptions of one name in two databases
// would be told apart from 15 only.
const UP_TO_14: &str = subscriptions_sql!(
    "k.subid",
    "
LEFT JOIN (SELECT DISTINCT subid, subname FROM pg_stat_subscription) k ON k.subname = s.subname",
    "
       false AS disable_on_error,
       NULL::float8 AS apply_errors, NULL::float8 AS sync_errors, '' AS stats_reset",
    ""
);

/// One subscription as one run reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subscription {
    pub name: String,
    /// The database it replicates into.
    pub database: String,
    pub enabled: bool,
    /// 15+: an error disables it rather than retrying.
    pub disable_on_error: bool,
    pub apply_running: bool,
    /// Seconds since the apply worker last heard from the publisher.
    pub receipt_age: Option<f64>,
    pub sync_workers: i64,
    /// Tables not yet ready, `schema.table state`; None for a subscription
    /// of another database (its tables are listed there only).
    pub not_ready: Option<Vec<String>>,
    /// Apply and sync errors since the previous run (15+); None on a
    /// baseline run and before 15.
    pub new_errors: Option<(f64, f64)>,
}

/// What one run reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub subscriptions: Vec<Subscription>,
    /// The server counts errors (15+).
    pub counts_errors: bool,
    /// `in the last 5 min`, or why errors are not judged this run.
    pub interval: String,
    /// A standby keeps the subscriptions in its catalog, but only the
    /// primary runs them.
    pub standby: bool,
}

impl Check for Subscriptions {
    const UNITS: UnitSpec =
        UnitSpec::of(&[Unit::Seconds, Unit::Count], Some(Unit::Count)).with_labels(&["not_ready"]);
    const HINT: &'static str = "read the subscriber's log for the apply worker's error (a unique violation or a missing column is fixed on the subscriber, or skipped with ALTER SUBSCRIPTION … SKIP), then ALTER SUBSCRIPTION … ENABLE; meanwhile the publisher's slot keeps WAL (check_pg_replication_slots there)";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A duration applies to the time since each subscription's apply worker last
  heard from the publisher (an idle publisher still answers every
  wal_receiver_timeout / 2), a bare number to its apply and sync errors since
  the previous run (PostgreSQL 15+), and not_ready=N to its tables not yet
  synchronized. A disabled subscription, or an enabled one whose apply worker
  does not run, is CRITICAL whatever the thresholds: exclude one disabled on
  purpose with --exclude. Default: {defaults}.
  Examples: -w 0,2min,not_ready=0 -c 3,10min";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("0,1min", "5min"));
    type Args = Args;
    type Measured = Measured;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        measure(args, db, ctx)
    }

    /// The worst subscription names the summary; every one listed, worst first,
    /// when not OK (or with -v).
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, verbose) = (judging.thresholds, judging.verbose);
        if m.standby {
            // Under Patroni the service runs on every node; whichever is the
            // primary is judged.
            return CheckResult::new(
                Status::Ok,
                format!(
                    "a standby: its {} appl{} on the primary only",
                    count(m.subscriptions.len(), "subscription"),
                    if m.subscriptions.len() == 1 {
                        "ies"
                    } else {
                        "y"
                    }
                ),
            )
            .perf([PerfData::new(
                "subscriptions",
                m.subscriptions.len() as f64,
                Unit::Count,
            )
            .min(0.0)]);
        }
        let mut judged: Vec<(&Subscription, Status, Vec<String>)> = m
            .subscriptions
            .iter()
            .map(|s| {
                let (status, problems) = judge_one(s, t);
                (s, status, problems)
            })
            .collect();
        worst_first(&mut judged, |(_, status, _)| *status);
        let status = worst(judged.iter().map(|(_, status, _)| *status));
        let disabled = m.subscriptions.iter().filter(|s| !s.enabled).count();
        let stopped = m
            .subscriptions
            .iter()
            .filter(|s| s.enabled && !s.apply_running)
            .count();
        let not_ready: usize = m
            .subscriptions
            .iter()
            .filter_map(|s| s.not_ready.as_ref())
            .map(Vec::len)
            .sum();
        let errors: f64 = m
            .subscriptions
            .iter()
            .filter_map(|s| s.new_errors)
            .map(|(a, s)| a + s)
            .sum();
        let mut summary = match judged.first() {
            None => "no subscriptions".to_string(),
            Some((s, state, problems)) if *state != Status::Ok => {
                format!("subscription {}: {}", s.name, problems.join(", "))
            }
            Some(_) => format!("{} streaming", count(m.subscriptions.len(), "subscription")),
        };
        if !m.subscriptions.is_empty() {
            summary.push_str(&format!(
                "; {} disabled, {stopped} without apply worker, {} not ready",
                disabled,
                count(not_ready, "table")
            ));
            if !m.counts_errors {
                summary.push_str("; errors are counted from PostgreSQL 15");
            } else if m.subscriptions.iter().all(|s| s.new_errors.is_none()) {
                summary.push_str(&format!("; {}", m.interval));
            } else {
                summary.push_str(&format!(", {errors} errors {}", m.interval));
            }
        }
        let mut perf = vec![
            PerfData::new("subscriptions", m.subscriptions.len() as f64, Unit::Count).min(0.0),
            PerfData::new("disabled", disabled as f64, Unit::Count).min(0.0),
            PerfData::new("not_running", stopped as f64, Unit::Count).min(0.0),
        ];
        for s in &m.subscriptions {
            if let Some(age) = s.receipt_age {
                perf.push(
                    PerfData::new(
                        format!("{} receipt_age", s.name),
                        age.round(),
                        Unit::Seconds,
                    )
                    .thresholds(t)
                    .min(0.0),
                );
            }
            if let Some(tables) = &s.not_ready {
                perf.push(
                    PerfData::new(
                        format!("{} not_ready", s.name),
                        tables.len() as f64,
                        Unit::Count,
                    )
                    .thresholds_of(t, "not_ready")
                    .min(0.0),
                );
            }
            if let Some((apply, sync)) = s.new_errors {
                perf.push(
                    PerfData::new(format!("{} errors", s.name), apply + sync, Unit::Count)
                        .thresholds(t)
                        .min(0.0),
                );
            }
        }
        let details = if status != Status::Ok || verbose > 0 {
            judged
                .iter()
                .map(|(s, state, problems)| {
                    let running = if s.apply_running {
                        ", apply worker running"
                    } else {
                        ""
                    };
                    format!(
                        "{state} {} (database {}, {}{running}): {}",
                        s.name,
                        s.database,
                        if s.enabled { "enabled" } else { "disabled" },
                        problems.join(", ")
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

fn measure(args: &Args, db: &mut Session, ctx: &Context) -> Result<Measured, Error> {
    let server = db.query_one(VERSION)?;
    let version: i32 = get(&server, "version")?;
    let standby: bool = get(&server, "in_recovery")?;
    let rows = db.query(if version >= 150000 { FROM_15 } else { UP_TO_14 })?;
    let mut snapshot = Snapshot::default();
    let mut subscriptions = Vec::new();
    // Counters keyed by oid: a subscription dropped and created again under
    // the same name starts from zero.
    let mut keys = Vec::new();
    for row in &rows {
        snapshot.taken_at = get(row, "now")?;
        let name: String = get(row, "name")?;
        let included = args.include.as_ref().is_none_or(|r| r.is_match(&name));
        let excluded = args.exclude.as_ref().is_some_and(|r| r.is_match(&name));
        if !included || excluded {
            continue;
        }
        let oid: i64 = get(row, "oid")?;
        let apply: Option<f64> = get(row, "apply_errors")?;
        let sync: Option<f64> = get(row, "sync_errors")?;
        if let (Some(apply), Some(sync)) = (apply, sync) {
            snapshot.counters.insert(format!("{oid} apply"), apply);
            snapshot.counters.insert(format!("{oid} sync"), sync);
            snapshot
                .markers
                .insert(format!("{oid} stats_reset"), get(row, "stats_reset")?);
            keys.push((subscriptions.len(), oid, apply, sync));
        }
        let local: bool = get(row, "local")?;
        subscriptions.push(Subscription {
            name,
            database: get(row, "database")?,
            enabled: get(row, "enabled")?,
            disable_on_error: get(row, "disable_on_error")?,
            apply_running: get(row, "apply_running")?,
            receipt_age: get::<Option<f64>>(row, "receipt_age")?.map(|a| a.max(0.0)),
            sync_workers: get(row, "sync_workers")?,
            not_ready: if local {
                get::<Option<Vec<String>>>(row, "not_ready")?
            } else {
                None
            },
            new_errors: None,
        });
    }
    let counts_errors = version >= 150000;
    let mut interval = String::new();
    if counts_errors && !standby && !subscriptions.is_empty() {
        let store = ctx.state_store(&args.state)?;
        let rates = pgvigil_kit::rates::advance(&store, snapshot)?;
        match &rates.interval {
            pgvigil_kit::rates::Interval::Baseline { why } => interval = why.clone(),
            _ => {
                interval = rates.over();
                for (at, oid, apply, sync) in keys {
                    // A subscription created since the previous run: all
                    // its errors are new.
                    let apply = rates.delta(&format!("{oid} apply")).unwrap_or(apply);
                    let sync = rates.delta(&format!("{oid} sync")).unwrap_or(sync);
                    subscriptions[at].new_errors = Some((apply, sync));
                }
            }
        }
    }
    Ok(Measured {
        subscriptions,
        counts_errors,
        interval,
        standby,
    })
}

/// One subscription's state and what it says of it.
fn judge_one(s: &Subscription, t: &Thresholds) -> (Status, Vec<String>) {
    let mut problems = Vec::new();
    let mut measured = Vec::new();
    let mut status = Status::Ok;
    if !s.enabled {
        status = Status::Critical;
        problems.push(if s.disable_on_error {
            "disabled (disable_on_error: an error turned it off)".to_string()
        } else {
            "disabled".to_string()
        });
    } else if !s.apply_running {
        status = Status::Critical;
        problems.push("apply worker not running".to_string());
    }
    if let Some(age) = s.receipt_age {
        measured.push((Unit::Seconds, age));
        problems.push(format!(
            "last message from the publisher {} ago",
            pretty_duration(age)
        ));
    }
    if let Some((apply, sync)) = s.new_errors {
        measured.push((Unit::Count, apply + sync));
        if apply + sync > 0.0 {
            problems.push(format!(
                "{apply} apply and {sync} sync error{} since the previous run",
                plural((apply + sync) as i64)
            ));
        }
    }
    let mut named = Vec::new();
    match &s.not_ready {
        Some(tables) => {
            named.push(("not_ready", tables.len() as f64));
            if !tables.is_empty() {
                let shown: Vec<String> = tables.iter().take(5).map(|t| table_state(t)).collect();
                let more = if tables.len() > 5 {
                    format!(", {} more", tables.len() - 5)
                } else {
                    String::new()
                };
                problems.push(format!(
                    "{} not ready ({}{more}), {} sync worker{} running",
                    count(tables.len(), "table"),
                    shown.join(", "),
                    s.sync_workers,
                    plural(s.sync_workers)
                ));
            }
        }
        None => problems.push(format!(
            "tables not counted: they are listed in database {} (-d {})",
            s.database, s.database
        )),
    }
    (status.worst(t.status_labeled(&measured, &named)), problems)
}

/// `public.t1 d` as `public.t1 (copying data)`.
fn table_state(entry: &str) -> String {
    let (table, state) = entry.rsplit_once(' ').unwrap_or((entry, ""));
    let state = match state {
        "i" => "waiting for its initial copy",
        "d" => "copying data",
        "f" => "copy finished",
        "s" => "synchronized, not yet ready",
        other => other,
    };
    format!("{table} {state}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};

    fn streaming(name: &str) -> Subscription {
        Subscription {
            name: name.into(),
            database: "app".into(),
            enabled: true,
            apply_running: true,
            receipt_age: Some(3.0),
            not_ready: Some(Vec::new()),
            new_errors: Some((0.0, 0.0)),
            ..Subscription::default()
        }
    }

    fn measured(subscriptions: Vec<Subscription>) -> Measured {
        Measured {
            subscriptions,
            counts_errors: true,
            interval: "in the last 5 min".into(),
            standby: false,
        }
    }

    #[test]
    fn none_is_ok() {
        let t = thresholds::<Subscriptions>(None, None);
        let r = judge::<Subscriptions>(&measured(Vec::new()), &options(&[]), &t, 0);
        assert_eq!(
            (r.status, r.summary.as_str()),
            (Status::Ok, "no subscriptions")
        );
        assert_eq!(
            perf(&r),
            ["subscriptions=0;;;0", "disabled=0;;;0", "not_running=0;;;0"]
        );
    }

    #[test]
    fn a_healthy_subscription_is_ok_and_quiet() {
        let t = thresholds::<Subscriptions>(None, None);
        let r = judge::<Subscriptions>(&measured(vec![streaming("orders")]), &options(&[]), &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.summary,
            "1 subscription streaming; 0 disabled, 0 without apply worker, 0 tables not ready, 0 errors in the last 5 min"
        );
        assert!(r.details.is_empty());
        assert_eq!(
            perf(&r)[3..],
            [
                "'orders receipt_age'=3s;60;300;0",
                "'orders not_ready'=0;;;0",
                "'orders errors'=0;0;;0"
            ]
        );
    }

    #[test]
    fn disabled_or_without_apply_worker_is_critical() {
        let t = thresholds::<Subscriptions>(None, None);
        let mut off = streaming("off");
        off.enabled = false;
        off.disable_on_error = true;
        off.apply_running = false;
        off.receipt_age = None;
        let mut dead = streaming("dead");
        dead.apply_running = false;
        dead.receipt_age = None;
        let r = reported::<Subscriptions>(judge::<Subscriptions>(
            &measured(vec![streaming("fine"), dead, off]),
            &options(&[]),
            &t,
            0,
        ));
        assert_eq!(r.status, Status::Critical);
        assert!(
            r.summary.starts_with(
                "subscription dead: apply worker not running; 1 disabled, 1 without apply worker"
            ),
            "{}",
            r.summary
        );
        assert_eq!(
            r.details[..2],
            [
                "CRITICAL dead (database app, enabled): apply worker not running",
                "CRITICAL off (database app, disabled): disabled (disable_on_error: an error turned it off)"
            ]
        );
        assert!(r.hint.unwrap().starts_with("read the subscriber's log"));
    }

    #[test]
    fn errors_since_the_previous_run_and_silence_against_thresholds() {
        let t = thresholds::<Subscriptions>(None, None);
        let mut failing = streaming("orders");
        failing.new_errors = Some((4.0, 0.0));
        let r = judge::<Subscriptions>(&measured(vec![failing]), &options(&[]), &t, 0);
        assert_eq!(r.status, Status::Warning);
        assert!(r
            .summary
            .starts_with("subscription orders: last message from the publisher 3 s ago, 4 apply and 0 sync errors since the previous run"));
        let mut silent = streaming("orders");
        silent.receipt_age = Some(400.0);
        assert_eq!(
            judge::<Subscriptions>(&measured(vec![silent.clone()]), &options(&[]), &t, 0).status,
            Status::Critical
        );
        silent.receipt_age = Some(90.0);
        assert_eq!(
            judge::<Subscriptions>(&measured(vec![silent]), &options(&[]), &t, 0).status,
            Status::Warning
        );
    }

    #[test]
    fn tables_not_ready_are_named_and_judged_by_label() {
        let mut syncing = streaming("orders");
        syncing.not_ready = Some(vec!["public.t1 d".into(), "public.t2 i".into()]);
        syncing.sync_workers = 1;
        let default = thresholds::<Subscriptions>(None, None);
        let r =
            judge::<Subscriptions>(&measured(vec![syncing.clone()]), &options(&[]), &default, 1);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.details,
            ["OK orders (database app, enabled, apply worker running): last message from the publisher 3 s ago, 2 tables not ready (public.t1 copying data, public.t2 waiting for its initial copy), 1 sync worker running"]
        );
        let strict = thresholds::<Subscriptions>(Some("not_ready=0"), None);
        assert_eq!(
            judge::<Subscriptions>(&measured(vec![syncing]), &options(&[]), &strict, 0).status,
            Status::Warning
        );
    }

    #[test]
    fn another_databases_tables_are_not_a_silent_zero() {
        let t = thresholds::<Subscriptions>(None, None);
        let mut elsewhere = streaming("orders");
        elsewhere.not_ready = None;
        let r = judge::<Subscriptions>(&measured(vec![elsewhere]), &options(&[]), &t, 1);
        assert!(
            r.details[0].ends_with("tables not counted: they are listed in database app (-d app)")
        );
        assert!(!perf(&r).iter().any(|p| p.contains("not_ready'")));
    }

    #[test]
    fn before_15_errors_are_not_counted_and_it_says_so() {
        let t = thresholds::<Subscriptions>(None, None);
        let mut old = streaming("orders");
        old.new_errors = None;
        let mut m = measured(vec![old]);
        m.counts_errors = false;
        let r = judge::<Subscriptions>(&m, &options(&[]), &t, 0);
        assert!(
            r.summary
                .ends_with("; errors are counted from PostgreSQL 15"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn a_standby_leaves_them_to_the_primary() {
        let t = thresholds::<Subscriptions>(None, None);
        let mut stopped = streaming("orders");
        stopped.apply_running = false;
        let mut m = measured(vec![stopped]);
        m.standby = true;
        let r = judge::<Subscriptions>(&m, &options(&[]), &t, 0);
        assert_eq!(
            (r.status, r.summary.as_str()),
            (
                Status::Ok,
                "a standby: its 1 subscription applies on the primary only"
            )
        );
    }
}
