//! check_pg_wal: how much WAL pg_wal holds, against what the settings let
//! it hold, and what holds the rest. A stuck archiver, a forgotten slot or
//! checkpoints falling behind grow pg_wal until PostgreSQL PANICs; on a
//! large or shared filesystem the disk percentage moves too late and never
//! says that WAL is what grows.

use std::path::PathBuf;

use crate::check::{Check, Context, Judging};
use crate::checks::common::forecast::{self, ForecastArgs};
use crate::filesystem::{self, Usage};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::forecast::Forecast;
use pgvigil_kit::rates::{self, Interval, Rates};
use pgvigil_kit::state::{Snapshot, StateArgs};
use pgvigil_kit::units::{pretty_bytes, pretty_duration, round_to};
use pgvigil_kit::words::{count, percent_text};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Wal;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub forecast: ForecastArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

/// One hour: a failing archive_command or a forgotten slot fills pg_wal in
/// hours, so the first forecast comes after 7.5 minutes, while a batch
/// job's burst of WAL does not set the rate alone.
const WINDOW: f64 = 3600.0;
/// A checkpoint removes or recycles old segments, so pg_wal falls a little
/// at each one; a fall of more than a fifth is the archiver catching up or
/// a slot dropped, which starts a new trend.
const DROP_TOLERANCE: f64 = 0.2;

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
       current_setting('data_directory') AS data_directory,
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
    /// The filesystem holding pg_wal, when this machine is the server's.
    pub filesystem: Option<WalFilesystem>,
    /// Why pg_wal's filesystem was not measured.
    pub unmeasured: Option<String>,
    /// When pg_wal's size reaches the budget; None without a history.
    pub to_budget: Option<Forecast>,
    /// Why something was not measured or a history restarted.
    pub notes: Vec<String>,
}

/// pg_wal's filesystem, and when it is full at the rate of its history.
#[derive(Debug, Clone, PartialEq)]
pub struct WalFilesystem {
    pub mount: PathBuf,
    pub usage: Usage,
    pub forecast: Option<Forecast>,
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
    const UNITS: UnitSpec = UnitSpec::of(
        &[Unit::Percent, Unit::Bytes, Unit::Count, Unit::Seconds],
        Some(Unit::Count),
    )
    .with_labels(&["rate"])
    .with_time_left();
    const HINT: &'static str = "find what holds WAL (the long output): fix a failing archive_command (check_pg_archiver), drop or reconnect the slot that retains it (pg_replication_slots; set max_slot_wal_keep_size to bound it), or see why checkpoints fall behind (check_pg_checkpoints); never delete files from pg_wal by hand";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A percentage applies to pg_wal's size against what the settings let it
  hold while nothing is stuck: max_wal_size plus wal_keep_size (or
  max_slot_wal_keep_size when it is set and larger); above 100% something
  holds WAL back. A size applies to pg_wal's size, a plain number to its
  WAL files. rate=SIZE applies to WAL written per second since the previous
  run (received, on a standby): -w 100%,rate=64MB. A duration applies to
  the time left before pg_wal's filesystem is full, as a lower bound:
  -w 100%,6h: -c 150%,1h:. Default: {defaults}.

FORECAST
  Each run keeps the bytes used of pg_wal's filesystem and pg_wal's size in
  a history (a state file); the rate is the median of the slopes between
  its samples over --forecast-window (default 1h), and the time left is the
  space still free at that rate, or for the budget, what is left of it.
  The filesystem is measured where the plugin runs, so only on the
  database host (connecting through the local socket or a local address);
  elsewhere the long output says so and a duration threshold is an error.
  The first forecast comes after an eighth of the window (7.5 min); until
  then the output says how much more history it needs, which never
  alerts. A fall of more than a fifth (the archiver catching up, a slot
  dropped) restarts the history. perfdata time_left (the filesystem) and
  budget_time_left are in seconds, 315360000 (ten years) when not
  growing.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("100%", "150%"));
    type Args = Args;
    type Measured = Measured;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let (mut measured, data_directory, now) = measure(args, db, ctx)?;
        match measure_filesystem(&data_directory, ctx) {
            Ok(fs) => measured.filesystem = Some(fs),
            Err(why) => measured.unmeasured = Some(why),
        }
        forecast_both(&mut measured, now, args, ctx)?;
        Ok(measured)
    }

    /// pg_wal's size against `-w`/`-c` (as a share of the budget, a size or a
    /// file count), and WAL per second against `rate=`; the long output names
    /// what holds WAL, largest first.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, verbose) = (judging.thresholds, judging.verbose);
        if let Some(why) = &m.unmeasured {
            // Only the database host sees pg_wal's filesystem.
            if t.uses(Unit::Seconds) {
                return CheckResult::cannot_measure(format!(
                    "{why}: the time left before pg_wal's filesystem is full is measured on the database host (NRPE, Icinga agent), connecting through the local socket"
                ));
            }
        }
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
        let fs_forecast = m.filesystem.as_ref().and_then(|fs| fs.forecast.as_ref());
        let mut measured = vec![
            (Unit::Percent, percent),
            (Unit::Bytes, m.size),
            (Unit::Count, m.files as f64),
        ];
        measured.extend(
            fs_forecast
                .and_then(forecast::seconds_left)
                .map(|left| (Unit::Seconds, left)),
        );
        let status = t.status_labeled(&measured, &named);
        let held = holders(m);
        let mut summary = format!(
            "pg_wal {} in {}, {} of {}{}",
            pretty_bytes(m.size),
            count(m.files as usize, "file"),
            percent_text(percent),
            m.settings.describe(),
            forecast::time_left_text(fs_forecast, "its filesystem full", pretty_bytes)
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
        if let Some(f) = fs_forecast {
            perf.extend(forecast::perf("time_left".into(), f, t));
        }
        if let Some(f) = &m.to_budget {
            perf.extend(forecast::perf_plain("budget_time_left".into(), f));
        }
        let mut details: Vec<String> = if status != Status::Ok || verbose > 0 {
            held.into_iter().map(|(_, what)| what).collect()
        } else {
            Vec::new()
        };
        if let Some(fs) = &m.filesystem {
            details.push(format!(
                "pg_wal's filesystem {} {} used ({} free of {}){}",
                fs.mount.display(),
                percent_text(fs.usage.percent_used()),
                pretty_bytes(fs.usage.available),
                pretty_bytes(fs.usage.total),
                fs.forecast
                    .as_ref()
                    .map(|f| format!(": {}", forecast::describe(f, "full", pretty_bytes)))
                    .unwrap_or_default()
            ));
        }
        if let Some(f) = &m.to_budget {
            details.push(format!(
                "budget ({}): {}",
                m.settings.describe(),
                forecast::describe(f, "reached", pretty_bytes)
            ));
        }
        if let Some(why) = &m.unmeasured {
            details.push(format!("pg_wal's filesystem not measured: {why}"));
        }
        details.extend(m.notes.iter().cloned());
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

/// statvfs of pg_wal, which only the database host can see; elsewhere why
/// not.
fn measure_filesystem(data_directory: &str, ctx: &Context) -> Result<WalFilesystem, String> {
    let hosts = ctx.conn.hosts();
    if let Some(host) = hosts.iter().find(|h| !filesystem::is_local_host(h)) {
        return Err(format!("{host} is not this machine"));
    }
    let wal = PathBuf::from(data_directory).join("pg_wal");
    std::fs::canonicalize(&wal)
        .and_then(|path| Ok((filesystem::usage(&path)?, path)))
        .map(|(usage, path)| WalFilesystem {
            mount: filesystem::mount_point(&path),
            usage,
            forecast: None,
        })
        .map_err(|e| format!("{} is not visible here ({e})", wal.display()))
}

/// Adds this run's filesystem usage (on this machine's clock) and pg_wal's
/// size (on the server's) to their histories, and forecasts from them.
fn forecast_both(m: &mut Measured, now: f64, args: &Args, ctx: &Context) -> Result<(), Error> {
    let policy = args.forecast.policy(WINDOW, DROP_TOLERANCE);
    let here = forecast::local_now();
    let (size, budget) = (m.size, m.settings.budget());
    let filesystem = &mut m.filesystem;
    let to_budget = &mut m.to_budget;
    let notes = forecast::update(ctx, &args.state, here, |histories| {
        if let Some(fs) = filesystem {
            let used = fs.usage.used;
            let (series, _) = histories.add("filesystem", here, used, &policy);
            fs.forecast = Some(series.forecast(used, used + fs.usage.available, &policy));
        }
        let (series, _) = histories.add("pg_wal", now, size, &policy);
        *to_budget = Some(series.forecast(size, budget, &policy));
    })?;
    m.notes.extend(notes);
    Ok(())
}

fn measure(args: &Args, db: &mut Session, ctx: &Context) -> Result<(Measured, String, f64), Error> {
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
    let measured = Measured {
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
        filesystem: None,
        unmeasured: None,
        to_budget: None,
        notes: Vec::new(),
    };
    Ok((measured, get(&row, "data_directory")?, get(&row, "now")?))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};

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
            filesystem: None,
            unmeasured: None,
            to_budget: None,
            notes: Vec::new(),
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
        let r = reported::<Wal>(judge::<Wal>(&m, &options(&[]), &t, 0));
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
        assert_eq!(
            judge::<Wal>(&measured(1600.0), &options(&[]), &t, 0).status,
            Status::Critical
        );
        assert_eq!(
            judge::<Wal>(&measured(500.0), &options(&[]), &t, 0).status,
            Status::Ok
        );
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
        let r = judge::<Wal>(&m, &options(&[]), &t, 0);
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

    #[test]
    fn the_filesystem_time_left_alerts_below_its_bounds() {
        let t = thresholds::<Wal>(Some("100%,6h:"), Some("150%,1h:"));
        let with = |left_h: Option<f64>| {
            let mut m = measured(500.0);
            m.filesystem = Some(WalFilesystem {
                mount: PathBuf::from("/wal"),
                usage: Usage {
                    total: 10240.0 * MB,
                    used: 7168.0 * MB,
                    available: 3072.0 * MB,
                },
                forecast: Some(match left_h {
                    Some(h) => Forecast::Left {
                        left: h * 3600.0,
                        rate: 3072.0 * MB / (h * 3600.0),
                        span: 3600.0,
                    },
                    None => Forecast::Gathering { more: 300.0 },
                }),
            });
            m.to_budget = Some(Forecast::NotGrowing {
                rate: 0.0,
                span: 3600.0,
            });
            reported::<Wal>(judge::<Wal>(&m, &options(&[]), &t, 0))
        };
        assert_eq!(with(Some(8.0)).status, Status::Ok);
        let w = with(Some(3.0));
        assert_eq!(w.status, Status::Warning);
        assert_eq!(
            w.summary,
            "pg_wal 500 MB in 31 files, 48.8% of max_wal_size 1024 MB, its filesystem full in 3 h 0 min at 1024 MB per hour over the last 1 h 0 min; most held by checkpoint distance: 100 MB written since the last checkpoint's redo point (max_wal_size 1024 MB); rate: first run, baseline saved"
        );
        assert_eq!(perf(&w)[6], "time_left=10800s;21600:;3600:;0");
        assert_eq!(perf(&w)[7], "budget_time_left=315360000s;;;0");
        assert!(w.details.contains(
            &"pg_wal's filesystem /wal 70% used (3072 MB free of 10 GB): full in 3 h 0 min at 1024 MB per hour over the last 1 h 0 min".to_string()
        ));
        assert_eq!(with(Some(0.5)).status, Status::Critical);
        // Gathering never alerts and gives no time_left.
        let g = with(None);
        assert_eq!(g.status, Status::Ok);
        assert!(!perf(&g).iter().any(|p| p.starts_with("time_left=")));
        assert!(g.details[0].ends_with("forecast after 5 min 0 s more of history"));
    }
}
