//! check_pg_replication_lag: on a primary, every standby's lag; on a standby,
//! WAL received but not yet replayed and the age of what was replayed last.

use crate::check::require_stats_visibility;
use crate::session::get;
use crate::units::{pretty_bytes, pretty_duration, round_to};
use crate::words::plural;
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

pub struct ReplicationLag;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Replication")]
pub struct Args {
    /// On a primary: CRITICAL when fewer standbys than this are streaming
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub min_standbys: u32,
}

// One statement for both roles. On a standby the time lag counts only while
// WAL waits to be replayed, so an idle primary never looks like lag.
// pg_stat_replication is pg_stat_get_wal_senders() joined to every session
// in pg_stat_get_activity(NULL) and to pg_authid; asking pg_stat_get_activity
// for the walsenders' pids alone gives the same rows for ~0.9 ms less server
// time in a new backend, and the same on every version from 12.
const SQL: &str = "
WITH node AS (
  SELECT pg_is_in_recovery() AS in_recovery,
         pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all
)
SELECT node.*,
  CASE WHEN in_recovery THEN
    coalesce(greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0), 0)::float8
  END AS standby_lag_bytes,
  CASE WHEN in_recovery THEN
    CASE WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
         ELSE greatest(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
    END::float8
  END AS standby_lag_seconds,
  CASE WHEN in_recovery THEN pg_is_wal_replay_paused() END AS replay_paused,
  CASE WHEN in_recovery THEN (SELECT status FROM pg_stat_wal_receiver) END AS receiver_status,
  a.application_name AS name, host(a.client_addr) AS addr, w.state, w.sync_state,
  CASE WHEN NOT in_recovery THEN
    pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(w.replay_lsn, w.flush_lsn, w.write_lsn, w.sent_lsn))::float8
  END AS lag_bytes,
  coalesce(extract(epoch FROM w.replay_lag), 0)::float8 AS lag_seconds
FROM node
LEFT JOIN (pg_stat_get_wal_senders() w CROSS JOIN LATERAL pg_stat_get_activity(w.pid) a)
  ON NOT node.in_recovery AND w.state <> 'backup'
ORDER BY a.application_name, w.pid";

struct Standby {
    label: String,
    addr: String,
    state: String,
    sync_state: String,
    bytes: f64,
    seconds: f64,
}

impl Check for ReplicationLag {
    const DISPLAY: &'static str = "REPLICATION_LAG";
    const ABOUT: &'static str = "Replication lag, on a primary (each standby in pg_stat_replication) or on a standby (WAL received but not replayed).";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Bytes, Unit::Seconds],
        bare: None,
        labels: &[],
    };
    const HINT: &'static str = "on the standby: is the WAL receiver streaming (pg_stat_wal_receiver) and is replay paused or slowed by conflicts (pg_last_xact_replay_timestamp, the standby's log)? on the primary: pg_stat_replication's write, flush and replay lag, and the network";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  The unit decides what a range applies to: a size to the lag in bytes, a
  duration to the lag in time; give both separated by a comma.
  Examples: -w 16MB -c 1GB   -w 30s -c 5min   -w 16MB,30s -c 1GB,5min
  On a primary add --min-standbys 1 so that a lost standby is CRITICAL.";
    type Args = Args;

    fn run(args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        let rows = db.query(SQL)?;
        let first = rows.first().ok_or_else(|| Error::Query("no row".into()))?;
        require_stats_visibility(get(first, "sees_all")?, &ctx.conn.user)?;
        if get::<bool>(first, "in_recovery")? {
            standby_side(first, ctx)
        } else {
            primary_side(&rows, args, ctx)
        }
    }
}

fn standby_side(row: &postgres::Row, ctx: &Context) -> Result<CheckResult, Error> {
    // Measure
    let bytes: f64 = get::<Option<f64>>(row, "standby_lag_bytes")?.unwrap_or(0.0);
    let seconds = round_to(
        get::<Option<f64>>(row, "standby_lag_seconds")?.unwrap_or(0.0),
        3,
    );
    let paused = get::<Option<bool>>(row, "replay_paused")?.unwrap_or(false);
    let receiver: Option<String> = get(row, "receiver_status")?;

    // Compare: a standby that does not stream cannot know it is behind.
    let t = &ctx.thresholds;
    let mut status = t.status(&[(Unit::Bytes, bytes), (Unit::Seconds, seconds)]);
    let streaming = receiver.as_deref() == Some("streaming");
    if !streaming {
        status = status.worst(Status::Warning);
    }

    // Report
    let mut summary = format!(
        "standby {} behind in replay ({} not replayed)",
        pretty_duration(seconds),
        pretty_bytes(bytes)
    );
    if paused {
        summary.push_str("; replay is paused");
    }
    if !streaming {
        summary.push_str(&format!(
            "; not streaming from the primary (WAL receiver {})",
            receiver.as_deref().unwrap_or("not running")
        ));
    }
    let perf = [
        PerfData::new("lag_bytes", bytes, Unit::Bytes)
            .thresholds(t)
            .min(0.0),
        PerfData::new("lag_seconds", seconds, Unit::Seconds)
            .thresholds(t)
            .min(0.0),
    ];
    Ok(CheckResult::new(status, summary).perf(perf))
}

fn primary_side(rows: &[postgres::Row], args: &Args, ctx: &Context) -> Result<CheckResult, Error> {
    // Measure
    let mut standbys = Vec::new();
    for row in rows {
        let Some(state) = get::<Option<String>>(row, "state")? else {
            continue;
        };
        let name: Option<String> = get(row, "name")?;
        standbys.push(Standby {
            label: name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "standby".into()),
            addr: get::<Option<String>>(row, "addr")?.unwrap_or_else(|| "local socket".into()),
            state,
            sync_state: get::<Option<String>>(row, "sync_state")?.unwrap_or_default(),
            bytes: get::<Option<f64>>(row, "lag_bytes")?
                .unwrap_or(0.0)
                .max(0.0),
            seconds: round_to(get(row, "lag_seconds")?, 3),
        });
    }
    disambiguate(&mut standbys);
    let streaming = standbys.iter().filter(|s| s.state == "streaming").count() as u32;
    let max_bytes = standbys.iter().map(|s| s.bytes).fold(0.0, f64::max);
    let max_seconds = standbys.iter().map(|s| s.seconds).fold(0.0, f64::max);

    // Compare
    let t = &ctx.thresholds;
    let judged: Vec<Status> = standbys
        .iter()
        .map(|s| t.status(&[(Unit::Bytes, s.bytes), (Unit::Seconds, s.seconds)]))
        .collect();
    let mut status: Status = judged.iter().copied().collect();
    let too_few = streaming < args.min_standbys;
    if too_few {
        status = Status::Critical;
    }

    // Report
    let summary = if standbys.is_empty() {
        if args.min_standbys > 0 {
            format!("no standby connected, {} expected", args.min_standbys)
        } else {
            "primary with no standby connected".to_string()
        }
    } else {
        let worst = standbys
            .iter()
            .max_by(|a, b| {
                (a.bytes, a.seconds)
                    .partial_cmp(&(b.bytes, b.seconds))
                    .unwrap()
            })
            .expect("not empty");
        let mut text = format!(
            "{streaming} of {} standby{} streaming",
            standbys.len(),
            plural(standbys.len() as i64)
        );
        if too_few {
            text.push_str(&format!(", {} expected", args.min_standbys));
        }
        text.push_str(&format!(
            "; largest lag {} / {} ({})",
            pretty_bytes(max_bytes),
            pretty_duration(max_seconds),
            worst.label
        ));
        text
    };
    let mut perf = vec![
        PerfData::new("standbys", f64::from(streaming), Unit::Count).min(0.0),
        PerfData::new("max_lag_bytes", max_bytes, Unit::Bytes)
            .thresholds(t)
            .min(0.0),
        PerfData::new("max_lag_seconds", max_seconds, Unit::Seconds)
            .thresholds(t)
            .min(0.0),
    ];
    let mut details = Vec::new();
    for (standby, state) in standbys.iter().zip(&judged) {
        perf.push(
            PerfData::new(
                format!("{} lag_bytes", standby.label),
                standby.bytes,
                Unit::Bytes,
            )
            .thresholds(t)
            .min(0.0),
        );
        perf.push(
            PerfData::new(
                format!("{} lag_seconds", standby.label),
                standby.seconds,
                Unit::Seconds,
            )
            .thresholds(t)
            .min(0.0),
        );
        details.push(format!(
            "{}: {} from {} ({}, {}), lag {} / {}",
            standby.label,
            state,
            standby.addr,
            standby.state,
            standby.sync_state,
            pretty_bytes(standby.bytes),
            pretty_duration(standby.seconds)
        ));
    }
    Ok(CheckResult::new(status, summary)
        .perf(perf)
        .details(details))
}

/// Standbys left at the default application_name all say `walreceiver`;
/// numbering the repeats keeps their perfdata labels apart.
fn disambiguate(standbys: &mut [Standby]) {
    let names: Vec<String> = standbys.iter().map(|s| s.label.clone()).collect();
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for (standby, name) in standbys.iter_mut().zip(&names) {
        if names.iter().filter(|n| *n == name).count() > 1 {
            let n = seen.entry(name.clone()).or_insert(0);
            *n += 1;
            standby.label = format!("{name}#{n}");
        }
    }
}
