//! check_pg_replication_slots: WAL each slot keeps from being removed. A
//! forgotten slot fills pg_wal until the server stops; a slot whose WAL was
//! removed (`max_slot_wal_keep_size`) is broken for good. A logical slot
//! that decodes a transaction larger than logical_decoding_work_mem spills
//! it into pg_replslot (or streams it, 14+): gigabytes of disk for one big
//! UPDATE, so the bytes spilled and streamed since the previous run count too.

use crate::check::{Check, Context, Judging};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::judge::{worst, worst_first};
use pgvigil_kit::state::{Loaded, Snapshot, StateArgs};
use pgvigil_kit::units::{pretty_bytes, pretty_duration};
use pgvigil_kit::words::plural;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

pub struct ReplicationSlots;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Before PostgreSQL 17, how long a slot has been inactive is counted
    /// from the first run that saw it inactive, kept in a state file; the
    /// logical slots' spilled and streamed bytes (14+) are counted since
    /// the previous run, kept there too.
    #[command(flatten)]
    pub state: StateArgs,
}

// to_jsonb reads wal_status and safe_wal_size (13+) and inactive_since (17+)
// by name, so one statement serves every major. On a standby the WAL kept is
// measured from what it has received.
const SQL: &str = "
SELECT extract(epoch FROM now())::float8 AS now,
       current_setting('server_version_num')::int4 AS version,
       s.slot_name::text AS slot_name, s.slot_type, s.active,
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

// 14+, read only when the server has logical slots.
const DECODING: &str = "
SELECT slot_name::text AS slot_name, spill_bytes::float8 AS spill_bytes,
       stream_bytes::float8 AS stream_bytes, coalesce(stats_reset::text, '') AS stats_reset
FROM pg_stat_replication_slots";

/// One replication slot as one run reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slot {
    pub name: String,
    /// physical or logical.
    pub kind: String,
    pub active: bool,
    /// The database of a logical slot; "" for a physical one.
    pub database: String,
    /// WAL kept from its restart_lsn, in bytes.
    pub retained: f64,
    /// 13+: reserved, extended, unreserved or lost.
    pub wal_status: Option<String>,
    pub safe_wal_size: Option<f64>,
    /// How long an inactive slot has been inactive, in seconds: from
    /// inactive_since on 17+, else since the first run that saw it so.
    pub inactive_for: Option<f64>,
    /// The inactive time is counted from earlier runs (before 17): at least
    /// that long.
    pub counted_by_runs: bool,
    /// A logical slot's bytes spilled to disk and streamed to the
    /// subscriber since the previous run (14+); None on the first run.
    pub decoded: Option<Decoded>,
}

/// Transactions larger than logical_decoding_work_mem, since the previous run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Decoded {
    pub spill_bytes: f64,
    pub stream_bytes: f64,
    pub seconds: f64,
}

impl Check for ReplicationSlots {
    const UNITS: UnitSpec =
        UnitSpec::of(&[Unit::Bytes, Unit::Seconds], None).with_labels(&["spill", "stream"]);
    const HINT: &'static str = "an inactive slot keeps WAL forever: find its consumer (pg_replication_slots.active_pid, the standby or subscriber) and bring it back, or drop the slot with pg_drop_replication_slot() once it is no longer needed; set max_slot_wal_keep_size. A logical slot that spills: raise logical_decoding_work_mem, or have the subscription stream large transactions (ALTER SUBSCRIPTION … SET (streaming = on))";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A size applies to the WAL each slot retains (from its restart_lsn), a
  duration to how long an inactive slot has been inactive: inactive_since on
  PostgreSQL 17+, before that the time since the first run that saw it
  inactive (kept in a state file, so at least that long). wal_status lost (WAL the slot needs was
  removed) is CRITICAL and unreserved (past max_slot_wal_keep_size) at least
  WARNING, whatever the thresholds. spill=SIZE and stream=SIZE apply to what
  each logical slot spilled to pg_replslot and streamed since the previous
  run (PostgreSQL 14+): decoded transactions larger than
  logical_decoding_work_mem.
  Examples: -w 1GB,1h,spill=1GB -c 10GB,1d";
    type Args = Args;
    type Measured = Vec<Slot>;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let (now, version, mut slots) = measure(db)?;
        let decoding = if version >= 140000 && slots.iter().any(|s| s.kind == "logical") {
            decoding_counters(db)?
        } else {
            Vec::new()
        };
        // Before 17 the server does not say since when a slot is inactive;
        // the runs count it, and forget a slot once a run sees it active.
        let counts_inactive = version < 170000;
        if (counts_inactive || !decoding.is_empty()) && !slots.is_empty() {
            let store = ctx.state_store(&args.state)?;
            let previous = match store.load() {
                Loaded::Found(snapshot) => Some(snapshot),
                _ => None,
            };
            let mut seen = if counts_inactive {
                inactive_by_runs(&mut slots, previous.as_ref(), now)
            } else {
                Snapshot {
                    taken_at: now,
                    ..Snapshot::default()
                }
            };
            decoded_since(&mut slots, &decoding, previous.as_ref(), &mut seen);
            store.save(&seen)?;
        }
        Ok(slots)
    }

    /// The worst slot's state; every slot listed, worst and largest first,
    /// when not OK (or with -v).
    fn judge(slots: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, verbose) = (judging.thresholds, judging.verbose);
        // Worst first, then by WAL retained; the first names the summary.
        let mut ordered: Vec<(&Slot, Status)> =
            slots.iter().map(|s| (s, slot_status(s, t))).collect();
        ordered.sort_by(|a, b| b.0.retained.total_cmp(&a.0.retained));
        worst_first(&mut ordered, |(_, state)| *state);
        let status = worst(ordered.iter().map(|(_, state)| *state));
        let lines: Vec<String> = ordered.iter().map(|(s, state)| line(s, *state)).collect();
        let worst = ordered.first();
        let inactive = slots.iter().filter(|s| !s.active).count();
        let summary = match worst {
            None => "no replication slots".to_string(),
            Some((w, _)) => format!(
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
        for s in slots {
            perf.push(
                PerfData::new(format!("{} retained", s.name), s.retained, Unit::Bytes)
                    .thresholds(t)
                    .min(0.0),
            );
            if let Some(d) = s.decoded {
                perf.push(
                    PerfData::new(format!("{} spill", s.name), d.spill_bytes, Unit::Bytes)
                        .thresholds_of(t, "spill")
                        .min(0.0),
                );
                perf.push(
                    PerfData::new(format!("{} stream", s.name), d.stream_bytes, Unit::Bytes)
                        .thresholds_of(t, "stream")
                        .min(0.0),
                );
            }
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
        let details = if status != Status::Ok || verbose > 0 {
            lines
        } else {
            Vec::new()
        };
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

/// For inactive slots the server gives no inactive_since for, how long
/// since the first run that saw each inactive (this run for a new one); the
/// snapshot to keep holds those first sightings, by the server's clock.
pub fn inactive_by_runs(slots: &mut [Slot], previous: Option<&Snapshot>, now: f64) -> Snapshot {
    let mut seen = Snapshot {
        taken_at: now,
        ..Snapshot::default()
    };
    for s in slots
        .iter_mut()
        .filter(|s| !s.active && s.inactive_for.is_none())
    {
        let key = format!("inactive since {}", s.name);
        let since = previous
            .and_then(|p| p.markers.get(&key))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|since| *since <= now)
            .unwrap_or(now);
        s.inactive_for = Some(now - since);
        s.counted_by_runs = true;
        seen.markers.insert(key, since.to_string());
    }
    seen
}

/// Per slot: spill_bytes, stream_bytes and since when they count.
type DecodingRow = (String, f64, f64, String);

fn decoding_counters(db: &mut Session) -> Result<Vec<DecodingRow>, Error> {
    db.query(DECODING)?
        .iter()
        .map(|r| {
            Ok((
                get(r, "slot_name")?,
                get::<Option<f64>>(r, "spill_bytes")?.unwrap_or(0.0),
                get::<Option<f64>>(r, "stream_bytes")?.unwrap_or(0.0),
                get(r, "stats_reset")?,
            ))
        })
        .collect()
}

/// Each logical slot's bytes spilled and streamed since the previous run,
/// kept in `seen` for the next; a slot new since then, or whose statistics
/// were reset, starts a new count.
pub fn decoded_since(
    slots: &mut [Slot],
    counters: &[DecodingRow],
    previous: Option<&Snapshot>,
    seen: &mut Snapshot,
) {
    for (name, spill, stream, reset) in counters {
        let spill_key = format!("{name} spill_bytes");
        let stream_key = format!("{name} stream_bytes");
        let reset_key = format!("{name} stats_reset");
        seen.counters.insert(spill_key.clone(), *spill);
        seen.counters.insert(stream_key.clone(), *stream);
        seen.markers.insert(reset_key.clone(), reset.clone());
        let Some(previous) = previous else { continue };
        let (Some(spill_before), Some(stream_before)) = (
            previous.counters.get(&spill_key),
            previous.counters.get(&stream_key),
        ) else {
            continue;
        };
        if previous.markers.get(&reset_key) != Some(reset)
            || spill < spill_before
            || stream < stream_before
        {
            continue;
        }
        if let Some(slot) = slots.iter_mut().find(|s| &s.name == name) {
            slot.decoded = Some(Decoded {
                spill_bytes: spill - spill_before,
                stream_bytes: stream - stream_before,
                seconds: seen.taken_at - previous.taken_at,
            });
        }
    }
}

/// The server's clock, its version, the slots.
fn measure(db: &mut Session) -> Result<(f64, i32, Vec<Slot>), Error> {
    let mut slots = Vec::new();
    let (mut now, mut version) = (0.0, 0);
    for row in db.query(SQL)? {
        now = get(&row, "now")?;
        version = get(&row, "version")?;
        let active: bool = get(&row, "active")?;
        slots.push(Slot {
            name: get(&row, "slot_name")?,
            kind: get(&row, "slot_type")?,
            active,
            database: get(&row, "database")?,
            retained: get::<Option<f64>>(&row, "retained_bytes")?
                .unwrap_or(0.0)
                .max(0.0),
            wal_status: get(&row, "wal_status")?,
            safe_wal_size: get(&row, "safe_wal_size")?,
            inactive_for: if active {
                None
            } else {
                get::<Option<f64>>(&row, "inactive_seconds")?.map(|s| s.max(0.0))
            },
            counted_by_runs: false,
            decoded: None,
        });
    }
    Ok((now, version, slots))
}

/// One slot's state: the WAL it retains (a size) and how long it has been
/// inactive (a duration) against `-w`/`-c`; wal_status lost is CRITICAL,
/// unreserved at least WARNING.
fn slot_status(s: &Slot, t: &Thresholds) -> Status {
    let mut measured = vec![(Unit::Bytes, s.retained)];
    if let Some(inactive) = s.inactive_for {
        measured.push((Unit::Seconds, inactive));
    }
    let named: Vec<(&str, f64)> = s
        .decoded
        .map(|d| vec![("spill", d.spill_bytes), ("stream", d.stream_bytes)])
        .unwrap_or_default();
    let status = t.status_labeled(&measured, &named);
    match s.wal_status.as_deref() {
        Some("lost") => Status::Critical,
        Some("unreserved") => status.worst(Status::Warning),
        _ => status,
    }
}

/// `WARNING standby1 (physical, inactive for 2 h) retains 48 MB on app, 1 GB more before it is lost`.
fn line(s: &Slot, state: Status) -> String {
    let database = if s.database.is_empty() {
        String::new()
    } else {
        format!(" on {}", s.database)
    };
    let safe = s
        .safe_wal_size
        .map(|b| format!(", {} more before it is lost", pretty_bytes(b.max(0.0))))
        .unwrap_or_default();
    format!("{state} {} {}{database}{safe}", s.name, describe(s))
}
/// `(physical, inactive for 2 h) retains 48 MB, wal_status lost`.
fn describe(s: &Slot) -> String {
    let activity = match (s.active, s.inactive_for) {
        (true, _) => "active".to_string(),
        (false, Some(secs)) if s.counted_by_runs => {
            format!("inactive for at least {}", pretty_duration(secs))
        }
        (false, Some(secs)) => format!("inactive for {}", pretty_duration(secs)),
        (false, None) => "inactive".to_string(),
    };
    let wal_status = s
        .wal_status
        .as_deref()
        .map(|w| format!(", wal_status {w}"))
        .unwrap_or_default();
    let decoded = s
        .decoded
        .filter(|d| d.spill_bytes > 0.0 || d.stream_bytes > 0.0)
        .map(|d| {
            format!(
                ", spilled {} and streamed {} in the last {}",
                pretty_bytes(d.spill_bytes),
                pretty_bytes(d.stream_bytes),
                pretty_duration(d.seconds)
            )
        })
        .unwrap_or_default();
    format!(
        "({}, {activity}) retains {}{wal_status}{decoded}",
        s.kind,
        pretty_bytes(s.retained)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};

    fn slot(name: &str, active: bool, retained: f64) -> Slot {
        Slot {
            name: name.into(),
            kind: "physical".into(),
            active,
            retained,
            wal_status: Some("reserved".into()),
            inactive_for: (!active).then_some(7200.0),
            ..Slot::default()
        }
    }

    #[test]
    fn no_slot_is_ok_and_no_default_thresholds() {
        let t = thresholds::<ReplicationSlots>(None, None);
        let r = judge::<ReplicationSlots>(&vec![], &options(&[]), &t, 0);
        assert_eq!(
            (r.status, r.summary.as_str()),
            (Status::Ok, "no replication slots")
        );
        assert_eq!(perf(&r), ["slots=0;;;0", "inactive=0;;;0"]);
        assert_eq!(
            judge::<ReplicationSlots>(&vec![slot("a", false, 1e12)], &options(&[]), &t, 0).status,
            Status::Ok
        );
    }

    #[test]
    fn sizes_to_wal_retained_durations_to_inactive_time() {
        let t = thresholds::<ReplicationSlots>(Some("1GB,1h"), Some("10GB,1d"));
        let gb = 1073741824.0;
        assert_eq!(
            judge::<ReplicationSlots>(&vec![slot("a", true, gb)], &options(&[]), &t, 0).status,
            Status::Ok
        );
        assert_eq!(
            judge::<ReplicationSlots>(&vec![slot("a", true, gb + 1.0)], &options(&[]), &t, 0)
                .status,
            Status::Warning
        );
        assert_eq!(
            judge::<ReplicationSlots>(
                &vec![slot("a", true, 10.0 * gb + 1.0)],
                &options(&[]),
                &t,
                0
            )
            .status,
            Status::Critical
        );
        // Inactive for 2 h: over 1 h.
        assert_eq!(
            judge::<ReplicationSlots>(&vec![slot("a", false, 0.0)], &options(&[]), &t, 0).status,
            Status::Warning
        );
    }

    #[test]
    fn lost_is_critical_and_unreserved_warns_whatever_the_thresholds() {
        let t = thresholds::<ReplicationSlots>(None, None);
        let mut lost = slot("gone", true, 5.0);
        lost.wal_status = Some("lost".into());
        let mut unreserved = slot("tight", true, 100.0);
        unreserved.wal_status = Some("unreserved".into());
        unreserved.safe_wal_size = Some(-5.0);
        let r = reported::<ReplicationSlots>(judge::<ReplicationSlots>(
            &vec![slot("fine", true, 9e9), unreserved, lost],
            &options(&[]),
            &t,
            0,
        ));
        assert_eq!(r.status, Status::Critical);
        assert!(r.summary.starts_with("slot gone (physical, active) retains 5 bytes, wal_status lost; 3 slots, 0 inactive"), "{}", r.summary);
        // Worst first, then by WAL retained.
        assert_eq!(
            r.details,
            [
                "CRITICAL gone (physical, active) retains 5 bytes, wal_status lost",
                "WARNING tight (physical, active) retains 100 bytes, wal_status unreserved, 0 bytes more before it is lost",
                "OK fine (physical, active) retains 8583 MB, wal_status reserved"
            ]
        );
        assert!(r
            .hint
            .unwrap()
            .starts_with("an inactive slot keeps WAL forever"));
    }

    #[test]
    fn quiet_when_ok_unless_verbose() {
        let t = thresholds::<ReplicationSlots>(None, None);
        let mut logical = slot("sub", false, 0.0);
        logical.kind = "logical".into();
        logical.database = "app".into();
        logical.inactive_for = None;
        assert!(
            judge::<ReplicationSlots>(&vec![logical.clone()], &options(&[]), &t, 0)
                .details
                .is_empty()
        );
        assert_eq!(
            judge::<ReplicationSlots>(&vec![logical], &options(&[]), &t, 1).details,
            ["OK sub (logical, inactive) retains 0 bytes, wal_status reserved on app"]
        );
    }

    #[test]
    fn before_17_runs_count_how_long_a_slot_has_been_inactive() {
        let mut slots = vec![slot("gone", false, 1e6), slot("live", true, 1e3)];
        slots[0].inactive_for = None;
        // The first run to see it inactive starts the count.
        let first = inactive_by_runs(&mut slots, None, 1000.0);
        assert_eq!(slots[0].inactive_for, Some(0.0));
        assert_eq!(first.markers["inactive since gone"], "1000");
        assert_eq!(first.markers.len(), 1);
        // An hour later it is judged as on 17+, "at least".
        slots[0].inactive_for = None;
        let later = inactive_by_runs(&mut slots, Some(&first), 4600.0);
        assert_eq!(slots[0].inactive_for, Some(3600.0));
        assert_eq!(later.markers["inactive since gone"], "1000");
        let t = thresholds::<ReplicationSlots>(Some("30min"), Some("2h"));
        let r = judge::<ReplicationSlots>(&slots, &options(&[]), &t, 0);
        assert_eq!(r.status, Status::Warning);
        assert!(
            r.summary
                .starts_with("slot gone (physical, inactive for at least 1 h 0 min)"),
            "{}",
            r.summary
        );
        // Back in use, then inactive again: counted afresh.
        let mut again = vec![slot("gone", false, 1e6)];
        again[0].inactive_for = None;
        let none = Snapshot::default();
        inactive_by_runs(&mut again, Some(&none), 9000.0);
        assert_eq!(again[0].inactive_for, Some(0.0));
    }

    #[test]
    fn logical_slots_spill_and_stream_since_the_previous_run() {
        let mut slots = vec![slot("cdc", true, 1e6)];
        slots[0].kind = "logical".into();
        let row = |spill: f64, stream: f64, reset: &str| {
            vec![("cdc".to_string(), spill, stream, reset.to_string())]
        };
        // The first run keeps the counters and judges nothing.
        let mut first = Snapshot {
            taken_at: 1000.0,
            ..Snapshot::default()
        };
        decoded_since(&mut slots, &row(5e6, 0.0, ""), None, &mut first);
        assert_eq!(slots[0].decoded, None);
        assert_eq!(first.counters["cdc spill_bytes"], 5e6);
        // Five minutes later, 2 GB more spilled.
        let mut later = Snapshot {
            taken_at: 1300.0,
            ..Snapshot::default()
        };
        decoded_since(
            &mut slots,
            &row(5e6 + 2147483648.0, 1024.0, ""),
            Some(&first),
            &mut later,
        );
        assert_eq!(
            slots[0].decoded,
            Some(Decoded {
                spill_bytes: 2147483648.0,
                stream_bytes: 1024.0,
                seconds: 300.0
            })
        );
        let t = thresholds::<ReplicationSlots>(Some("spill=1GB"), Some("spill=10GB"));
        let r = judge::<ReplicationSlots>(&slots, &options(&[]), &t, 0);
        assert_eq!(r.status, Status::Warning);
        assert!(
            r.summary.starts_with("slot cdc (logical, active) retains 977 kB, wal_status reserved, spilled 2048 MB and streamed 1024 bytes in the last 5 min 0 s;"),
            "{}",
            r.summary
        );
        assert!(perf(&r).contains(&"'cdc spill'=2147483648B;1073741824;10737418240;0".to_string()));
        // Statistics reset since: a new count, nothing judged.
        slots[0].decoded = None;
        let mut reset = Snapshot::default();
        decoded_since(
            &mut slots,
            &row(10.0, 0.0, "2026-11-29"),
            Some(&later),
            &mut reset,
        );
        assert_eq!(slots[0].decoded, None);
    }
}
