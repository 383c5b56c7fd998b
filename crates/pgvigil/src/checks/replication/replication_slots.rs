//! check_pg_replication_slots: WAL each slot keeps from being removed. A
//! forgotten slot fills pg_wal until the server stops; a slot whose WAL was
//! removed (`max_slot_wal_keep_size`) is broken for good.

use crate::session::get;
use crate::units::{pretty_bytes, pretty_duration};
use crate::words::plural;
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

pub struct ReplicationSlots;

#[derive(Debug, clap::Args)]
pub struct Args {}

// to_jsonb reads wal_status and safe_wal_size (13+) and inactive_since (17+)
// by name, so one statement serves every major. On a standby the WAL kept is
// measured from what it has received.
const SQL: &str = "
SELECT s.slot_name::text AS slot_name, s.slot_type, s.active,
       coalesce(s.database::text, '') AS database,
       pg_wal_lsn_diff(
         CASE WHEN pg_is_in_recovery()
              THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
              ELSE pg_current_wal_lsn() END,
         s.restart_lsn)::float8 AS retained_bytes,
       j->>'wal_status' AS wal_status,
       (j->>'safe_wal_size')::float8 AS safe_wal_size,
       extract(epoch FROM now() - (j->>'inactive_since')::timestamptz)::float8 AS inactive_seconds
FROM pg_replication_slots s, to_jsonb(s) j
ORDER BY s.slot_name";

struct Slot {
    name: String,
    kind: String,
    active: bool,
    database: String,
    retained: f64,
    wal_status: Option<String>,
    safe_wal_size: Option<f64>,
    inactive_for: Option<f64>,
    status: Status,
}

impl Check for ReplicationSlots {
    const DISPLAY: &'static str = "REPLICATION_SLOTS";
    const ABOUT: &'static str = "Replication slots: WAL each slot retains, wal_status (lost is CRITICAL, unreserved at least WARNING) and how long inactive slots have been inactive.";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Bytes, Unit::Seconds],
        bare: None,
        labels: &[],
    };
    const HINT: &'static str = "an inactive slot keeps WAL forever: find its consumer (pg_replication_slots.active_pid, the standby or subscriber) and bring it back, or drop the slot with pg_drop_replication_slot() once it is no longer needed; set max_slot_wal_keep_size";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A size applies to the WAL each slot retains (from its restart_lsn), a
  duration to how long an inactive slot has been inactive (PostgreSQL 17+,
  which records inactive_since). wal_status lost (WAL the slot needs was
  removed) is CRITICAL and unreserved (past max_slot_wal_keep_size) at least
  WARNING, whatever the thresholds.";
    type Args = Args;

    fn run(_args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        // Query
        let rows = db.query(SQL)?;
        let t = &ctx.thresholds;

        // Measure and compare, slot by slot
        let mut slots = Vec::new();
        for row in &rows {
            let active: bool = get(row, "active")?;
            let mut slot = Slot {
                name: get(row, "slot_name")?,
                kind: get(row, "slot_type")?,
                active,
                database: get(row, "database")?,
                retained: get::<Option<f64>>(row, "retained_bytes")?
                    .unwrap_or(0.0)
                    .max(0.0),
                wal_status: get(row, "wal_status")?,
                safe_wal_size: get(row, "safe_wal_size")?,
                inactive_for: if active {
                    None
                } else {
                    get::<Option<f64>>(row, "inactive_seconds")?.map(|s| s.max(0.0))
                },
                status: Status::Ok,
            };
            let mut measured = vec![(Unit::Bytes, slot.retained)];
            if let Some(inactive) = slot.inactive_for {
                measured.push((Unit::Seconds, inactive));
            }
            slot.status = t.status(&measured);
            match slot.wal_status.as_deref() {
                Some("lost") => slot.status = Status::Critical,
                Some("unreserved") => slot.status = slot.status.worst(Status::Warning),
                _ => {}
            }
            slots.push(slot);
        }
        let status = slots
            .iter()
            .fold(Status::Ok, |s, slot| s.worst(slot.status));

        // Report: the worst slot by state, then by WAL retained, names the summary.
        let worst = slots.iter().max_by(|a, b| {
            a.status
                .rank()
                .cmp(&b.status.rank())
                .then(a.retained.total_cmp(&b.retained))
        });
        let inactive = slots.iter().filter(|s| !s.active).count();
        let summary = match worst {
            None => "no replication slots".to_string(),
            Some(w) => format!(
                "slot {} {}; {} slot{}, {inactive} inactive",
                w.name,
                describe(w),
                slots.len(),
                plural(slots.len() as i64)
            ),
        };
        let mut perf = vec![
            PerfData::new("slots", slots.len() as f64, Unit::Count).min(0.0),
            PerfData::new("inactive", inactive as f64, Unit::Count).min(0.0),
        ];
        for s in &slots {
            perf.push(
                PerfData::new(format!("{} retained", s.name), s.retained, Unit::Bytes)
                    .thresholds(t)
                    .min(0.0),
            );
            if let Some(inactive) = s.inactive_for {
                perf.push(
                    PerfData::new(
                        format!("{} inactive_for", s.name),
                        inactive.round(),
                        Unit::Seconds,
                    )
                    .thresholds(t)
                    .min(0.0),
                );
            }
        }
        let mut ordered: Vec<&Slot> = slots.iter().collect();
        ordered.sort_by(|a, b| {
            b.status
                .rank()
                .cmp(&a.status.rank())
                .then(b.retained.total_cmp(&a.retained))
        });
        let details = ordered
            .iter()
            .filter(|s| status != Status::Ok || ctx.verbose > 0 || s.status != Status::Ok)
            .map(|s| {
                let database = if s.database.is_empty() {
                    String::new()
                } else {
                    format!(" on {}", s.database)
                };
                let safe = s
                    .safe_wal_size
                    .map(|b| format!(", {} more before it is lost", pretty_bytes(b.max(0.0))))
                    .unwrap_or_default();
                format!("{} {} {}{database}{safe}", s.status, s.name, describe(s))
            })
            .collect::<Vec<_>>();
        Ok(CheckResult::new(status, summary)
            .perf(perf)
            .details(details))
    }
}

/// `(physical, inactive for 2 h) retains 48 MB, wal_status lost`.
fn describe(s: &Slot) -> String {
    let activity = match (s.active, s.inactive_for) {
        (true, _) => "active".to_string(),
        (false, Some(secs)) => format!("inactive for {}", pretty_duration(secs)),
        (false, None) => "inactive".to_string(),
    };
    let wal_status = s
        .wal_status
        .as_deref()
        .map(|w| format!(", wal_status {w}"))
        .unwrap_or_default();
    format!(
        "({}, {activity}) retains {}{wal_status}",
        s.kind,
        pretty_bytes(s.retained)
    )
}
