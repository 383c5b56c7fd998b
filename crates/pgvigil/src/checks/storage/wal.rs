//! check_pg_wal: how much WAL pg_wal holds, against what the settings let
//! it hold, and what holds the rest. A stuck archiver, a forgotten slot or
//! checkpoints falling behind grow pg_wal until PostgreSQL PANICs; on a
//! large or shared filesystem the disk percentage moves too late and never
//! says that WAL is what grows.

use crate::check::{Check, Context};
use crate::rates::{self, Interval, Rates};
use crate::session::get;
use crate::session::Session;
use crate::state::{Snapshot, StateArgs};
use crate::units::{pretty_bytes, pretty_duration, round_to};
use crate::words::{count, percent_text};
use crate::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

pub struct Wal;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub state: StateArgs,
}

// pg_ls_waldir() and pg_ls_archive_statusdir() need pg_monitor. The
// position is the one WAL is written (primary) or received (standby) at,
// so the rate and the slots' retention are measured from it. wal_keep_size
// is 13+ (before: wal_keep_segments), max_slot_wal_keep_size 13+ too.
const SQL: &str = "
WITH pos AS (
  SELECT CASE WHEN pg_is_in_recovery()
              THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
              ELSE pg_current_wal_lsn() END AS lsn
)
SELECT extract(epoch FROM now())::float8 AS now,
       pg_is_in_recovery() AS in_recovery,
       (SELECT system_identifier::text FROM pg_control_system()) AS system_id,
       (pos.lsn - '0/0')::float8 AS position,
       w.files, w.size,
       pg_size_bytes(current_setting('max_wal_size'))::float8 AS max_wal_size,
       coalesce(pg_size_bytes(current_setting('wal_keep_size', true)),
                current_setting('wal_keep_segments', true)::int8
                  * pg_size_bytes(current_setting('wal_segment_size')))::float8 AS wal_keep_size,
       CASE WHEN coalesce(current_setting('max_slot_wal_keep_size', true), '-1') = '-1' THEN NULL
            ELSE pg_size_bytes(current_setting('max_slot_wal_keep_size')) END::float8 AS max_slot_keep,
       pg_size_bytes(current_setting('wal_segment_size'))::float8 AS segment_size,
       a.ready, coalesce(a.oldest_ready, 0)::float8 AS oldest_ready,
       (pos.lsn - c.redo_lsn)::float8 AS checkpoint_distance,
       s.slot_name, s.active, s.retained
FROM pos
CROSS JOIN (SELECT count(*)::int8 AS files, coalesce(sum(size), 0)::float8 AS size
              FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$') w
CROSS JOIN (SELECT count(*)::int8 AS ready,
                   extract(epoch FROM now() - min(modification)) AS oldest_ready
              FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready') a
CROSS JOIN pg_control_checkpoint() c
LEFT JOIN LATERAL (
  SELECT slot_name::text AS slot_name, active, (pos.lsn - restart_lsn)::float8 AS retained
    FROM pg_replication_slots WHERE restart_lsn IS NOT NULL
   ORDER BY restart_lsn LIMIT 1) s ON true";

/// What one run reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub in_recovery: bool,
    /// WAL segment files in pg_wal, and their total size.
    pub files: i64,
    pub size: f64,
    pub settings: Settings,
    /// Segments waiting for archive_command, and the oldest one's age.
    pub ready: i64,
    pub oldest_ready: f64,
    /// Bytes written since the last checkpoint's redo point.
    pub checkpoint_distance: f64,
    /// The slot that holds WAL back the furthest.
    pub oldest_slot: Option<Slot>,
    /// WAL written (received, on a standby) per second since the previous run.
    pub rates: Rates,
}

/// What the settings let pg_wal hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub max_wal_size: f64,
    pub wal_keep_size: f64,
    /// None: slots may retain without bound (-1, the default).
    pub max_slot_keep: Option<f64>,
    pub segment_size: f64,
}

impl Settings {
    /// What pg_wal holds at most while nothing is stuck: max_wal_size
    /// between checkpoints, plus what is kept for standbys, wal_keep_size
    /// or, when it is bounded and larger, what slots may retain.
    pub fn budget(&self) -> f64 {
        self.max_wal_size + self.wal_keep_size.max(self.max_slot_keep.unwrap_or(0.0))
    }

    /// `max_wal_size 1024 MB + wal_keep_size 512 MB`, naming what counts.
    fn describe(&self) -> String {
        let max = format!("max_wal_size {}", pretty_bytes(self.max_wal_size));
        match self.max_slot_keep {
            Some(keep) if keep > self.wal_keep_size => {
                format!("{max} + max_slot_wal_keep_size {}", pretty_bytes(keep))
            }
            _ if self.wal_keep_size > 0.0 => {
                format!("{max} + wal_keep_size {}", pretty_bytes(self.wal_keep_size))
            }
            _ => max,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub name: String,
    pub active: bool,
    pub retained: f64,
}

impl Check for Wal {
    const DISPLAY: &'static str = "WAL";
    const ABOUT: &'static str = "How much WAL pg_wal holds, against what max_wal_size and wal_keep_size let it hold, WAL written per second, and what holds the rest: the archiver's backlog, the oldest slot, the checkpoint distance.";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Percent, Unit::Bytes, Unit::Count],
        bare: Some(Unit::Count),
        labels: &["rate"],
        time_left: false,
    };
    const HINT: &'static str = "find what holds WAL (the long output): fix a failing archive_command (check_pg_archiver), drop or reconnect the slot that retains it (pg_replication_slots; set max_slot_wal_keep_size to bound it), or see why checkpoints fall behind (check_pg_checkpoints); never delete files from pg_wal by hand";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A percentage applies to pg_wal's size against what the settings let it
  hold while nothing is stuck: max_wal_size plus wal_keep_size (or
  max_slot_wal_keep_size when it is set and larger); above 100% something
  holds WAL back. A size applies to pg_wal's size, a plain number to its
  WAL files. rate=SIZE applies to WAL written per second since the previous
  run (received, on a standby): -w 100%,rate=64MB.
  Default: -w 100% -c 150%.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("100%", "150%"));
    type Args = Args;

    fn run(args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        let measured = fetch(args, db, ctx)?;
        Ok(judge(&measured, &ctx.thresholds, ctx.verbose))
    }
}

fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Measured, Error> {
    let row = db.query_one(SQL)?;
    let mut snapshot = Snapshot {
        taken_at: get(&row, "now")?,
        ..Snapshot::default()
    };
    // A restored or re-initialised cluster starts another WAL stream.
    snapshot
        .markers
        .insert("system identifier".into(), get(&row, "system_id")?);
    snapshot
        .counters
        .insert("position".into(), get(&row, "position")?);
    let rates = rates::advance(&ctx.state_store(&args.state)?, snapshot)?;
    let oldest_slot = match get::<Option<String>>(&row, "slot_name")? {
        Some(name) => Some(Slot {
            name,
            active: get(&row, "active")?,
            retained: get::<Option<f64>>(&row, "retained")?
                .unwrap_or(0.0)
                .max(0.0),
        }),
        None => None,
    };
    Ok(Measured {
        in_recovery: get(&row, "in_recovery")?,
        files: get(&row, "files")?,
        size: get(&row, "size")?,
        settings: Settings {
            max_wal_size: get(&row, "max_wal_size")?,
            wal_keep_size: get::<Option<f64>>(&row, "wal_keep_size")?.unwrap_or(0.0),
            max_slot_keep: get(&row, "max_slot_keep")?,
            segment_size: get(&row, "segment_size")?,
        },
        ready: get(&row, "ready")?,
        oldest_ready: get::<Option<f64>>(&row, "oldest_ready")?.unwrap_or(0.0),
        checkpoint_distance: get::<Option<f64>>(&row, "checkpoint_distance")?
            .unwrap_or(0.0)
            .max(0.0),
        oldest_slot,
        rates,
    })
}

/// What holds WAL back, largest first: each with the bytes it keeps.
pub fn holders(m: &Measured) -> Vec<(f64, String)> {
    let mut held = Vec::new();
    if m.ready > 0 {
        held.push((
            m.ready as f64 * m.settings.segment_size,
            format!(
                "archiver: {} waiting for archive_command ({}), the oldest for {}",
                count(m.ready as usize, "segment"),
                pretty_bytes(m.ready as f64 * m.settings.segment_size),
                pretty_duration(m.oldest_ready)
            ),
        ));
    }
    if let Some(slot) = &m.oldest_slot {
        held.push((
            slot.retained,
            format!(
                "slot {} ({}) retains {}",
                slot.name,
                if slot.active { "active" } else { "inactive" },
                pretty_bytes(slot.retained)
            ),
        ));
    }
    held.push((
        m.checkpoint_distance,
        format!(
            "checkpoint distance: {} written since the last checkpoint's redo point (max_wal_size {})",
            pretty_bytes(m.checkpoint_distance),
            pretty_bytes(m.settings.max_wal_size)
        ),
    ));
    held.sort_by(|a, b| b.0.total_cmp(&a.0));
    held
}

/// pg_wal's size against `-w`/`-c` (as a share of the budget, a size or a
/// file count), and WAL per second against `rate=`; the long output names
/// what holds WAL, largest first.
pub fn judge(m: &Measured, t: &Thresholds, verbose: u8) -> CheckResult {
    let budget = m.settings.budget();
    let percent = if budget > 0.0 {
        m.size / budget * 100.0
    } else {
        0.0
    };
    let rate = match &m.rates.interval {
        Interval::Measured { seconds, .. } if *seconds > 0.0 => {
            m.rates.delta("position").map(|d| d / seconds)
        }
        _ => None,
    };
    let named: Vec<(&str, f64)> = rate.map(|r| ("rate", r)).into_iter().collect();
    let status = t.status_labeled(
        &[
            (Unit::Percent, percent),
            (Unit::Bytes, m.size),
            (Unit::Count, m.files as f64),
        ],
        &named,
    );
    let held = holders(m);
    let mut summary = format!(
        "pg_wal {} in {}, {} of {}",
        pretty_bytes(m.size),
        count(m.files as usize, "file"),
        percent_text(percent),
        m.settings.describe()
    );
    if status != Status::Ok {
        if let Some((_, what)) = held.first() {
            summary.push_str(&format!("; most held by {what}"));
        }
    }
    match (&m.rates.interval, rate) {
        (_, Some(r)) => summary.push_str(&format!(
            "; {} {} per second {}",
            if m.in_recovery { "received" } else { "written" },
            pretty_bytes(r),
            m.rates.over()
        )),
        (Interval::Baseline { why }, None) => summary.push_str(&format!("; rate: {why}")),
        _ => {}
    }
    if m.in_recovery {
        summary.push_str(" (standby)");
    }

    let mut perf = vec![
        PerfData::new("wal_size", m.size.round(), Unit::Bytes)
            .thresholds(t)
            .min(0.0),
        PerfData::new("wal_files", m.files as f64, Unit::Count)
            .thresholds(t)
            .min(0.0),
        PerfData::new("wal_used", round_to(percent, 2), Unit::Percent)
            .thresholds(t)
            .min(0.0),
        PerfData::new("ready", m.ready as f64, Unit::Count).min(0.0),
        PerfData::new(
            "slot_retained",
            m.oldest_slot.as_ref().map_or(0.0, |s| s.retained).round(),
            Unit::Bytes,
        )
        .min(0.0),
        PerfData::new(
            "checkpoint_distance",
            m.checkpoint_distance.round(),
            Unit::Bytes,
        )
        .min(0.0),
    ];
    if let Some(r) = rate {
        perf.push(
            PerfData::new("wal_rate", round_to(r, 0), Unit::Bytes)
                .min(0.0)
                .thresholds_of(t, "rate"),
        );
    }
    let details = if status != Status::Ok || verbose > 0 {
        held.into_iter().map(|(_, what)| what).collect()
    } else {
        Vec::new()
    };
    CheckResult::new(status, summary)
        .perf(perf)
        .details(details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{perf, reported, thresholds};

    const MB: f64 = 1024.0 * 1024.0;

    fn measured(size_mb: f64) -> Measured {
        Measured {
            in_recovery: false,
            files: (size_mb / 16.0) as i64,
            size: size_mb * MB,
            settings: Settings {
                max_wal_size: 1024.0 * MB,
                wal_keep_size: 0.0,
                max_slot_keep: None,
                segment_size: 16.0 * MB,
            },
            ready: 0,
            oldest_ready: 0.0,
            checkpoint_distance: 100.0 * MB,
            oldest_slot: None,
            rates: Rates {
                current: Snapshot::default(),
                interval: Interval::Baseline {
                    why: "first run, baseline saved".into(),
                },
            },
        }
    }

    #[test]
    fn the_budget_is_max_wal_size_and_what_is_kept_for_standbys() {
        let mut s = measured(0.0).settings;
        assert_eq!(s.budget(), 1024.0 * MB);
        s.wal_keep_size = 512.0 * MB;
        assert_eq!(s.budget(), 1536.0 * MB);
        // A bounded slot retention larger than wal_keep_size counts instead.
        s.max_slot_keep = Some(2048.0 * MB);
        assert_eq!(s.budget(), 3072.0 * MB);
        assert_eq!(
            s.describe(),
            "max_wal_size 1024 MB + max_slot_wal_keep_size 2048 MB"
        );
    }

    #[test]
    fn an_inactive_slot_is_named_as_what_holds_wal() {
        let t = thresholds::<Wal>(None, None);
        let mut m = measured(1200.0);
        m.oldest_slot = Some(Slot {
            name: "kept".into(),
            active: false,
            retained: 1100.0 * MB,
        });
        let r = reported::<Wal>(judge(&m, &t, 0));
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "pg_wal 1200 MB in 75 files, 117.2% of max_wal_size 1024 MB; most held by slot kept (inactive) retains 1100 MB; rate: first run, baseline saved"
        );
        assert_eq!(r.details[0], "slot kept (inactive) retains 1100 MB");
        assert_eq!(
            perf(&r)[..3],
            [
                "wal_size=1258291200B;;;0",
                "wal_files=75;;;0",
                "wal_used=117.19%;100;150;0"
            ]
        );
        assert_eq!(judge(&measured(1600.0), &t, 0).status, Status::Critical);
        assert_eq!(judge(&measured(500.0), &t, 0).status, Status::Ok);
    }

    #[test]
    fn the_archiver_backlog_and_the_rate() {
        let t = thresholds::<Wal>(Some("1GB,rate=10MB"), Some("2GB"));
        let mut m = measured(900.0);
        m.ready = 40;
        m.oldest_ready = 600.0;
        let mut previous = Snapshot::default();
        previous.counters.insert("position".into(), 0.0);
        m.rates
            .current
            .counters
            .insert("position".into(), 6000.0 * MB);
        m.rates.interval = Interval::Measured {
            seconds: 300.0,
            previous,
        };
        let r = judge(&m, &t, 0);
        assert_eq!(r.status, Status::Warning);
        assert!(
            r.summary.ends_with(
                "most held by archiver: 40 segments waiting for archive_command (640 MB), the oldest for 10 min 0 s; written 20 MB per second in the last 5 min 0 s"
            ),
            "{}",
            r.summary
        );
        assert_eq!(perf(&r)[6], "wal_rate=20971520B;10485760;;0");
    }
}
