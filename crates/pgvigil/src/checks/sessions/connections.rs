//! check_pg_connections: client connections against the slots max_connections
//! leaves to ordinary roles.

use std::collections::BTreeMap;

use crate::check::{database_names, require_stats_visibility};
use crate::session::get;
use crate::units::round_to;
use crate::words::{percent_text, plural};
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

pub struct Connections;

#[derive(Debug, clap::Args)]
pub struct Args {}

// One row per client backend (our own session guarantees at least one), with
// the settings on each; counted here rather than grouped by the server, since
// a new backend pays for every catalog entry a statement touches: this costs
// ~0.4 ms of server time where the view with GROUP BY cost ~2 ms.
// Grouped on the server: a few rows instead of one per session, and the
// user name looked up once per group.
const SQL: &str = "
SELECT current_setting('max_connections') AS max_connections,
       current_setting('superuser_reserved_connections') AS superuser_reserved,
       current_setting('reserved_connections', true) AS reserved,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all,
       g.datid, pg_get_userbyid(g.usesysid)::text AS usename, g.state, g.waiting, g.sessions
FROM (SELECT s.datid, s.usesysid, s.state, s.wait_event_type = 'Lock' AS waiting,
             count(*) AS sessions
      FROM pg_stat_get_activity(NULL) s
      WHERE s.backend_type = 'client backend'
      GROUP BY 1, 2, 3, 4) g";

impl Check for Connections {
    const DISPLAY: &'static str = "CONNECTIONS";
    const ABOUT: &'static str =
        "Client connections against max_connections, less the slots reserved for superusers.";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Count, Unit::Percent],
        bare: Some(Unit::Count),
        labels: &[],
    };
    const HINT: &'static str = "look at pg_stat_activity grouped by state: idle-in-transaction sessions hold slots (set idle_in_transaction_session_timeout), idle ones call for a pooler such as PgBouncer; terminate with pg_terminate_backend(pid) only after review";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the number of client connections (a plain number) or to the
  share of usable slots (with %). Default: -w 80% -c 90%.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("80%", "90%"));
    type Args = Args;

    fn run(_args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        // Query
        let rows = db.query(SQL)?;
        let first = rows
            .first()
            .ok_or_else(|| Error::Query("no session listed, not even this one".into()))?;
        require_stats_visibility(get(first, "sees_all")?, &ctx.conn.user)?;
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

        // Measure
        let mut total = 0;
        let mut by_state: BTreeMap<String, i64> = BTreeMap::new();
        let mut waiting = 0;
        let mut by_db: BTreeMap<Option<u32>, i64> = BTreeMap::new();
        let mut by_user: BTreeMap<String, i64> = BTreeMap::new();
        for row in &rows {
            let sessions: i64 = get(row, "sessions")?;
            total += sessions;
            let state: Option<String> = get(row, "state")?;
            *by_state.entry(state.unwrap_or_default()).or_default() += sessions;
            if get::<Option<bool>>(row, "waiting")? == Some(true) {
                waiting += sessions;
            }
            *by_db.entry(get(row, "datid")?).or_default() += sessions;
            let usename: Option<String> = get(row, "usename")?;
            *by_user.entry(usename.unwrap_or_default()).or_default() += sessions;
        }
        let state = |name: &str| by_state.get(name).copied().unwrap_or(0);
        let pct = if usable > 0 {
            total as f64 * 100.0 / usable as f64
        } else {
            100.0
        };

        // Compare
        let t = &ctx.thresholds;
        let status = t.status(&[(Unit::Count, total as f64), (Unit::Percent, pct)]);

        // Report
        let summary = format!(
            "{total} of {usable} connection{} used ({}): {} active, {} idle, {} idle in transaction, {waiting} waiting on a lock",
            plural(usable),
            percent_text(pct),
            state("active"),
            state("idle"),
            state("idle in transaction") + state("idle in transaction (aborted)"),
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
            count("active", state("active")),
            count("idle", state("idle")),
            count("idle_in_transaction", state("idle in transaction")),
            count(
                "idle_in_transaction_aborted",
                state("idle in transaction (aborted)"),
            ),
            count("waiting", waiting),
        ];
        let mut details = Vec::new();
        if status != Status::Ok || ctx.verbose > 0 {
            let names = database_names(db)?;
            let mut by_name: BTreeMap<String, i64> = BTreeMap::new();
            for (oid, n) in by_db {
                let name = oid.and_then(|o| names.get(&o)).cloned().unwrap_or_default();
                *by_name.entry(name).or_default() += n;
            }
            details.extend(ranked("database", by_name));
            details.extend(ranked("user", by_user));
        }
        Ok(CheckResult::new(status, summary)
            .perf(perf)
            .details(details))
    }
}

/// `database app: 40 connections`, most first.
fn ranked(kind: &str, counts: BTreeMap<String, i64>) -> Vec<String> {
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
        .into_iter()
        .map(|(name, n)| format!("{kind} {name}: {n} connection{}", plural(n)))
        .collect()
}
