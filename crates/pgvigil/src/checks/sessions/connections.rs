//! check_pg_connections: client connections against the slots max_connections
//! leaves to ordinary roles.

use std::collections::BTreeMap;

use crate::check::{Check, Context, Judging};
use crate::checks::common::catalog::{database_names, name_databases, require_stats_visibility};
use crate::checks::common::filter::{database_name, SessionFilter, Verdict, Who};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::units::round_to;
use pgvigil_kit::words::{percent_text, plural};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

pub struct Connections;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The filters choose the sessions counted; -w/-c apply to those.
    #[command(flatten)]
    pub filter: SessionFilter,
}

// Grouped on the server by database, user, application, backend type, state
// and lock wait: a few rows instead of one per session (our own guarantees
// at least one), the settings on each, and the user name looked up once per
// group. The filters apply here to the groups. The database names are read
// only for a database filter or the long output (see database_names).
const SQL: &str = "
SELECT current_setting('max_connections') AS max_connections,
       current_setting('superuser_reserved_connections') AS superuser_reserved,
       current_setting('reserved_connections', true) AS reserved,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all,
       g.datid, pg_get_userbyid(g.usesysid)::text AS usename, g.application_name,
       g.backend_type, g.state, g.waiting, g.sessions
FROM (SELECT s.datid, s.usesysid, s.application_name, s.backend_type, s.state,
             s.wait_event_type = 'Lock' AS waiting, count(*) AS sessions
      FROM pg_stat_get_activity(NULL) s
      GROUP BY 1, 2, 3, 4, 5, 6) g";

impl Check for Connections {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Count, Unit::Percent], Some(Unit::Count));
    const HINT: &'static str = "look at pg_stat_activity grouped by state: idle-in-transaction sessions hold slots (set idle_in_transaction_session_timeout), idle ones call for a pooler such as PgBouncer; terminate with pg_terminate_backend(pid) only after review";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the number of client connections (a plain number) or to the
  share of usable slots (with %). Default: {defaults}.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("80%", "90%"));
    type Args = Args;
    type Measured = Measured;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let (usable, groups) = measure(db, &ctx.conn.user)?;
        let mut names = BTreeMap::new();
        if args.filter.reads_databases() {
            names = database_names(db)?;
        }
        Ok(count(usable, &groups, names, &args.filter))
    }

    /// The databases are named only where the long output lists them: an
    /// alert, or `-v`.
    fn look_closer(
        m: &mut Measured,
        first: &CheckResult,
        judging: &Judging<Args>,
        db: &mut Session,
        _ctx: &Context,
    ) -> Result<bool, Error> {
        name_databases(&mut m.database_names, first, judging.verbose, db)
    }

    /// The verdict; when not OK (or with -v) the connections per database and
    /// per user, most first; always how many the filters left out.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (filter, t, verbose) = (&judging.args.filter, judging.thresholds, judging.verbose);
        let (total, usable, pct) = (m.total(), m.usable, m.percent());
        let status = status(m, t);
        let summary = format!(
            "{total} of {usable} connection{} used ({}): {} active, {} idle, {} idle in transaction, {} waiting on a lock",
            plural(usable),
            percent_text(pct),
            m.state("active"),
            m.state("idle"),
            m.state("idle in transaction") + m.state("idle in transaction (aborted)"),
            m.waiting,
        );
        let max = usable as f64;
        let mut connections = PerfData::new("connections", total as f64, Unit::Count)
            .thresholds(t)
            .min(0.0)
            .max(max);
        // Percent thresholds also shown on the count, so graphs draw one line.
        let to_count = max / 100.0;
        if connections.warning.is_none() {
            connections.warning = t
                .warning(Unit::Percent)
                .map(|r| r.to_perfdata_scaled(to_count));
        }
        if connections.critical.is_none() {
            connections.critical = t
                .critical(Unit::Percent)
                .map(|r| r.to_perfdata_scaled(to_count));
        }
        let count = |label: &str, n: i64| {
            PerfData::new(label, n as f64, Unit::Count)
                .min(0.0)
                .max(max)
        };
        let perf = vec![
            connections,
            PerfData::new("connections_pct", round_to(pct, 2), Unit::Percent)
                .thresholds(t)
                .min(0.0)
                .max(100.0),
            count("active", m.state("active")),
            count("idle", m.state("idle")),
            count("idle_in_transaction", m.state("idle in transaction")),
            count(
                "idle_in_transaction_aborted",
                m.state("idle in transaction (aborted)"),
            ),
            count("waiting", m.waiting),
        ];
        let mut details = Vec::new();
        if status != Status::Ok || verbose > 0 {
            let mut by_name: BTreeMap<String, i64> = BTreeMap::new();
            for (oid, n) in &m.by_database {
                let name = oid
                    .and_then(|o| m.database_names.get(&o))
                    .cloned()
                    .unwrap_or_default();
                *by_name.entry(name).or_default() += n;
            }
            details.extend(ranked("database", &by_name));
            details.extend(ranked("user", &m.by_user));
        }
        details.extend(filter.excluded_line(m.excluded));
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

/// Alike sessions, counted together on the server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub datid: Option<u32>,
    pub usename: String,
    pub application_name: String,
    pub backend_type: String,
    /// `active`, `idle`, …; "" when unknown.
    pub state: String,
    pub waiting: bool,
    pub sessions: i64,
}

/// What one run counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// max_connections less the slots reserved for superusers and for
    /// pg_use_reserved_connections (16+).
    pub usable: i64,
    /// Client sessions by state (`active`, `idle`, …; "" when unknown).
    pub by_state: BTreeMap<String, i64>,
    /// Sessions waiting on a lock.
    pub waiting: i64,
    /// Sessions by database oid (None: not bound to a database).
    pub by_database: BTreeMap<Option<u32>, i64>,
    pub by_user: BTreeMap<String, i64>,
    /// Sessions of a counted type the name filters left out.
    pub excluded: i64,
    /// Database names by oid, read when a filter or the long output needs
    /// them.
    pub database_names: BTreeMap<u32, String>,
}

impl Measured {
    fn total(&self) -> i64 {
        self.by_state.values().sum()
    }

    fn state(&self, name: &str) -> i64 {
        self.by_state.get(name).copied().unwrap_or(0)
    }

    /// The share of usable slots taken; a server with none usable is full.
    fn percent(&self) -> f64 {
        if self.usable > 0 {
            self.total() as f64 * 100.0 / self.usable as f64
        } else {
            100.0
        }
    }
}

/// The slots usable by ordinary roles, and the sessions in groups.
fn measure(db: &mut Session, user: &str) -> Result<(i64, Vec<Group>), Error> {
    let rows = db.query(SQL)?;
    let first = rows
        .first()
        .ok_or_else(|| Error::Query("no session listed, not even this one".into()))?;
    require_stats_visibility(get(first, "sees_all")?, user)?;
    let setting = |name: &str| -> Result<i64, Error> {
        // reserved_connections is new in PostgreSQL 16: NULL before.
        let text: Option<String> = get(first, name)?;
        let text = text.unwrap_or_default();
        if text.is_empty() {
            return Ok(0);
        }
        text.parse()
            .map_err(|_| Error::Query(format!("setting {name} is not a number: {text}")))
    };
    let usable =
        setting("max_connections")? - setting("superuser_reserved")? - setting("reserved")?;
    let mut groups = Vec::new();
    for row in &rows {
        let text = |column: &str| -> Result<String, Error> {
            Ok(get::<Option<String>>(row, column)?.unwrap_or_default())
        };
        groups.push(Group {
            datid: get(row, "datid")?,
            usename: text("usename")?,
            application_name: text("application_name")?,
            backend_type: text("backend_type")?,
            state: text("state")?,
            waiting: get::<Option<bool>>(row, "waiting")? == Some(true),
            sessions: get(row, "sessions")?,
        });
    }
    Ok((usable, groups))
}

/// The sessions the filters count, by state, database and user; those of a
/// counted type the name filters left out are counted apart.
pub fn count(
    usable: i64,
    groups: &[Group],
    names: BTreeMap<u32, String>,
    filter: &SessionFilter,
) -> Measured {
    let mut m = Measured {
        usable,
        database_names: names,
        ..Measured::default()
    };
    for g in groups {
        let who = Who {
            user: &g.usename,
            database: database_name(&m.database_names, g.datid),
            app: &g.application_name,
            backend_type: &g.backend_type,
        };
        match filter.verdict(&who) {
            Verdict::Judged => {}
            Verdict::Excluded => {
                m.excluded += g.sessions;
                continue;
            }
            Verdict::OtherType => continue,
        }
        *m.by_state.entry(g.state.clone()).or_default() += g.sessions;
        if g.waiting {
            m.waiting += g.sessions;
        }
        *m.by_database.entry(g.datid).or_default() += g.sessions;
        *m.by_user.entry(g.usename.clone()).or_default() += g.sessions;
    }
    m
}

/// The count (a plain number) and the share of usable slots (%) against `-w`/`-c`.
pub fn status(m: &Measured, t: &Thresholds) -> Status {
    t.status(&[
        (Unit::Count, m.total() as f64),
        (Unit::Percent, m.percent()),
    ])
}

/// `database app: 40 connections`, most first.
fn ranked(kind: &str, counts: &BTreeMap<String, i64>) -> Vec<String> {
    let mut counts: Vec<_> = counts.iter().collect();
    counts.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    counts
        .into_iter()
        .map(|(name, n)| format!("{kind} {name}: {n} connection{}", plural(*n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::filter::tests::filter;
    use crate::checks::testing::{judge, perf, reported, thresholds};

    fn judged(m: &Measured, t: &Thresholds, verbose: u8) -> CheckResult {
        judge::<Connections>(
            m,
            &Args {
                filter: SessionFilter::default().clone(),
            },
            t,
            verbose,
        )
    }

    fn measured(active: i64, idle: i64, usable: i64) -> Measured {
        Measured {
            usable,
            by_state: [("active".to_string(), active), ("idle".to_string(), idle)]
                .into_iter()
                .collect(),
            by_database: [(Some(5), active), (Some(16384), idle)]
                .into_iter()
                .collect(),
            by_user: [("app".to_string(), idle), ("nagios".to_string(), active)]
                .into_iter()
                .collect(),
            database_names: [(5, "postgres".to_string()), (16384, "shop".to_string())]
                .into_iter()
                .collect(),
            ..Measured::default()
        }
    }

    #[test]
    fn default_thresholds_are_80_and_90_percent_of_usable_slots() {
        let t = thresholds::<Connections>(None, None);
        assert_eq!(judged(&measured(1, 79, 100), &t, 0).status, Status::Ok);
        assert_eq!(judged(&measured(1, 80, 100), &t, 0).status, Status::Warning);
        assert_eq!(judged(&measured(1, 89, 100), &t, 0).status, Status::Warning);
        assert_eq!(
            judged(&measured(1, 90, 100), &t, 0).status,
            Status::Critical
        );
    }

    #[test]
    fn a_plain_number_is_a_count_and_percent_thresholds_show_on_the_count() {
        let t = thresholds::<Connections>(Some("50"), Some("60"));
        let r = judged(&measured(1, 50, 97), &t, 0);
        assert_eq!(r.status, Status::Warning);
        let t = thresholds::<Connections>(None, None);
        let r = judged(&measured(1, 8, 97), &t, 0);
        assert_eq!(
            r.summary,
            "9 of 97 connections used (9.3%): 1 active, 8 idle, 0 idle in transaction, 0 waiting on a lock"
        );
        assert_eq!(
            perf(&r)[..2],
            [
                "connections=9;77.6;87.3;0;97",
                "connections_pct=9.28%;80;90;0;100"
            ]
        );
    }

    #[test]
    fn no_usable_slot_is_full() {
        let m = Measured {
            usable: 0,
            ..Measured::default()
        };
        let r = judged(&m, &thresholds::<Connections>(None, None), 0);
        assert_eq!(r.status, Status::Critical);
        assert!(r.summary.starts_with("0 of 0 connections used (100%)"));
    }

    #[test]
    fn alerts_list_databases_then_users_most_first() {
        let t = thresholds::<Connections>(Some("5"), None);
        let r = reported::<Connections>(judged(&measured(2, 8, 100), &t, 0));
        assert_eq!(
            r.details,
            [
                "database shop: 8 connections",
                "database postgres: 2 connections",
                "user app: 8 connections",
                "user nagios: 2 connections"
            ]
        );
        assert!(r
            .hint
            .unwrap()
            .starts_with("look at pg_stat_activity grouped by state"));
        // OK stays quiet unless -v; an unknown database oid reads as "".
        assert!(judged(&measured(1, 1, 100), &t, 0).details.is_empty());
        let mut m = measured(1, 1, 100);
        m.database_names.clear();
        assert_eq!(judged(&m, &t, 1).details[0], "database : 2 connections");
    }

    #[test]
    fn filters_choose_the_sessions_counted() {
        let group = |user: &str, app: &str, backend_type: &str, sessions: i64| Group {
            datid: Some(16384),
            usename: user.into(),
            application_name: app.into(),
            backend_type: backend_type.into(),
            state: "idle".into(),
            waiting: false,
            sessions,
        };
        let groups = [
            group("app", "web", "client backend", 70),
            group("report", "metabase", "client backend", 15),
            group("", "", "autovacuum worker", 3),
            group("repl", "walreceiver", "walsender", 2),
        ];
        let names: BTreeMap<u32, String> = [(16384, "shop".to_string())].into_iter().collect();
        let t = thresholds::<Connections>(None, None);
        let all = count(100, &groups, names.clone(), &SessionFilter::default());
        assert_eq!(all.excluded, 0);
        let r = judge::<Connections>(
            &all,
            &Args {
                filter: SessionFilter::default().clone(),
            },
            &t,
            0,
        );
        assert_eq!(r.status, Status::Warning);
        assert!(r.summary.starts_with("85 of 100 connections used (85%)"));

        let f = filter(&[("exclude-user", "^report$")]);
        let m = count(100, &groups, names.clone(), &f);
        let r = judge::<Connections>(&m, &Args { filter: f.clone() }, &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert!(r.summary.starts_with("70 of 100"), "{}", r.summary);
        assert_eq!(
            r.details,
            ["15 sessions excluded by filters (user !~ ^report$)"]
        );

        let f = filter(&[("include-db", "^shop$"), ("backend-type", "walsender")]);
        let m = count(100, &groups, names, &f);
        assert_eq!((m.total(), m.excluded), (2, 0));
    }
}
