//! check_pg_disk: how full each filesystem holding the cluster is: the data
//! directory, pg_wal when it is elsewhere, and every tablespace.

use std::path::{Path, PathBuf};

use crate::check::{Check, Context, Judging};
use crate::checks::common::forecast::{self, ForecastArgs};
use crate::filesystem::{self, Usage};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::forecast::Forecast;
use pgvigil_kit::judge::worst;
use pgvigil_kit::state::StateArgs;
use pgvigil_kit::units::{pretty_bytes, round_to};
use pgvigil_kit::words::{count, percent_text};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Disk;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub forecast: ForecastArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Six hours: one burst (a bulk load, a sort spilling to disk, a backup
/// written then shipped) does not set the rate, and a new steady growth is
/// seen within the first 45 minutes.
const WINDOW: f64 = 6.0 * 3600.0;
/// Used space falls when files go (old WAL recycled, temporary files): a
/// fall of more than 5% is a clean-up that starts a new trend.
const DROP_TOLERANCE: f64 = 0.05;

// data_directory needs pg_read_all_settings, which pg_monitor includes.
const SQL: &str = "
SELECT 'data directory' AS role, current_setting('data_directory') AS path
UNION ALL
SELECT 'tablespace ' || spcname, pg_tablespace_location(oid)
FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')";

/// What one run measures: each filesystem the cluster uses, in the order
/// the data directory, pg_wal and the tablespaces come, and notes on what
/// could not be looked at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub filesystems: Vec<Filesystem>,
    pub notes: Vec<String>,
}

/// One filesystem and what of the cluster it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Filesystem {
    pub device: u64,
    pub mount: PathBuf,
    pub holds: Vec<String>,
    pub usage: Usage,
    /// When the space free to PostgreSQL runs out; None without a history.
    pub forecast: Option<Forecast>,
}

impl Check for Disk {
    const UNITS: UnitSpec = UnitSpec::of(
        &[Unit::Percent, Unit::Bytes, Unit::Seconds],
        Some(Unit::Percent),
    )
    .with_time_left();
    const HINT: &'static str = "find what fills the disk: pg_wal (archiving or a replication slot holding WAL: check_pg_archiver, check_pg_replication_slots), server logs, old backups, or table growth; never delete files under pg_wal by hand";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to each filesystem: a percentage (or bare number) to the share
  used, a size to the bytes used, a duration to the time left before it is
  full, as a lower bound: -w 80%,7d: -c 90%,1d: alerts at 80% used or when
  full within 7 days. Default: {defaults}.

FORECAST
  Each run keeps the bytes used of every filesystem in a history (a state
  file); the rate is the median of the slopes between its samples over
  --forecast-window (default 6h, so that one burst does not set it), and the
  time left is the space still free at that rate. The first forecast comes
  after an eighth of the window (45 min); until then the output says how
  much more history it needs, which never alerts. A fall of more than 5%
  (files removed) restarts the history. perfdata '<mount> time_left' is in
  seconds, 315360000 (ten years) when not growing.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("80%", "90%"));
    type Args = Args;
    type Measured = Measured;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let mut measured = measure(db, ctx)?;
        forecast_each(&mut measured, args, ctx)?;
        Ok(measured)
    }

    /// Each filesystem's share used (a percentage) and bytes used (a size)
    /// against `-w`/`-c`; the summary names the offenders, or the fullest when
    /// all is well.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let t = judging.thresholds;
        let judged: Vec<Status> = m
            .filesystems
            .iter()
            .map(|fs| {
                let mut measured = vec![
                    (Unit::Percent, fs.usage.percent_used()),
                    (Unit::Bytes, fs.usage.used),
                ];
                measured.extend(
                    fs.forecast
                        .as_ref()
                        .and_then(forecast::seconds_left)
                        .map(|left| (Unit::Seconds, left)),
                );
                t.status(&measured)
            })
            .collect();
        let status = worst(judged.iter().copied());
        let describe = |fs: &Filesystem| {
            format!(
                "{} {} used ({} free of {})",
                fs.mount.display(),
                percent_text(fs.usage.percent_used()),
                pretty_bytes(fs.usage.available),
                pretty_bytes(fs.usage.total)
            )
        };
        let outlook = |fs: &Filesystem| {
            fs.forecast
                .as_ref()
                .map(|f| format!("; {}", forecast::describe(f, "full", pretty_bytes)))
                .unwrap_or_default()
        };
        // In the status line only a time left: the rest waits in the details.
        let time_left =
            |fs: &Filesystem| forecast::time_left_text(fs.forecast.as_ref(), "full", pretty_bytes);
        let offenders: Vec<String> = m
            .filesystems
            .iter()
            .zip(&judged)
            .filter(|(_, s)| **s != Status::Ok)
            .map(|(fs, _)| format!("{}{}", describe(fs), time_left(fs)))
            .collect();
        let summary = if !offenders.is_empty() {
            offenders.join("; ")
        } else {
            match m
                .filesystems
                .iter()
                .max_by(|a, b| a.usage.percent_used().total_cmp(&b.usage.percent_used()))
            {
                Some(fullest) => format!(
                    "{}, fullest {}{}",
                    count(m.filesystems.len(), "filesystem"),
                    describe(fullest),
                    time_left(fullest)
                ),
                None => "no filesystem measured".to_string(),
            }
        };
        let mut perf = Vec::new();
        let mut details = Vec::new();
        for (fs, state) in m.filesystems.iter().zip(&judged) {
            let mount = fs.mount.display();
            perf.push(
                PerfData::new(format!("{mount} used"), fs.usage.used, Unit::Bytes)
                    .thresholds(t)
                    .min(0.0)
                    .max(fs.usage.total),
            );
            perf.push(
                PerfData::new(
                    format!("{mount} used_pct"),
                    round_to(fs.usage.percent_used(), 2),
                    Unit::Percent,
                )
                .thresholds(t)
                .min(0.0)
                .max(100.0),
            );
            if let Some(f) = &fs.forecast {
                perf.extend(forecast::perf(format!("{mount} time_left"), f, t));
            }
            details.push(format!(
                "{state}: {} holds {}{}",
                describe(fs),
                fs.holds.join(", "),
                outlook(fs)
            ));
        }
        details.extend(m.notes.iter().cloned());
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

/// Adds this run's usage to each filesystem's history and forecasts from it.
fn forecast_each(m: &mut Measured, args: &Args, ctx: &Context) -> Result<(), Error> {
    let policy = args.forecast.policy(WINDOW, DROP_TOLERANCE);
    let now = forecast::local_now();
    let filesystems = &mut m.filesystems;
    let notes = forecast::update(ctx, &args.state, now, |histories| {
        for fs in filesystems.iter_mut() {
            let used = fs.usage.used;
            let (series, _) = histories.add(&fs.mount.to_string_lossy(), now, used, &policy);
            fs.forecast = Some(series.forecast(used, used + fs.usage.available, &policy));
        }
    })?;
    m.notes.extend(notes);
    Ok(())
}

fn measure(db: &mut Session, ctx: &Context) -> Result<Measured, Error> {
    // statvfs sees this machine's filesystems only.
    let hosts = ctx.conn.hosts();
    let remote = hosts.iter().find(|h| !filesystem::is_local_host(h));
    if let Some(host) = remote {
        return Err(Error::CannotMeasure(format!(
            "{host} is not this machine: run check_pg_disk on the database host (NRPE, Icinga agent) and connect through the local socket"
        )));
    }
    // Where the server keeps its files.
    let mut places: Vec<(String, PathBuf)> = Vec::new();
    for row in db.query(SQL)? {
        places.push((
            get(&row, "role")?,
            PathBuf::from(get::<String>(&row, "path")?),
        ));
    }
    let mut measured = Measured::default();
    let data_dir = places[0].1.clone();
    match std::fs::canonicalize(data_dir.join("pg_wal")) {
        Ok(wal) => places.insert(1, ("pg_wal".into(), wal)),
        Err(e) => measured.notes.push(format!(
            "pg_wal not inspected ({e}); it is counted with the data directory"
        )),
    }
    // One entry per filesystem.
    for (role, path) in places {
        let device = filesystem::device(&path).map_err(|e| not_visible(&role, &path, e))?;
        if let Some(fs) = measured.filesystems.iter_mut().find(|f| f.device == device) {
            fs.holds.push(role);
            continue;
        }
        let usage = filesystem::usage(&path).map_err(|e| not_visible(&role, &path, e))?;
        measured.filesystems.push(Filesystem {
            device,
            mount: filesystem::mount_point(&path),
            holds: vec![role],
            usage,
            forecast: None,
        });
    }
    Ok(measured)
}

fn not_visible(role: &str, path: &Path, e: std::io::Error) -> Error {
    Error::CannotMeasure(format!(
        "{role} {} is not visible here ({e}): check_pg_disk must run on the database host as a user that can see it",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};

    const GB: f64 = 1073741824.0;

    fn fs(mount: &str, used_gb: f64, free_gb: f64, holds: &[&str]) -> Filesystem {
        Filesystem {
            device: mount.len() as u64,
            mount: PathBuf::from(mount),
            holds: holds.iter().map(|h| h.to_string()).collect(),
            usage: Usage {
                total: (used_gb + free_gb) * GB,
                used: used_gb * GB,
                available: free_gb * GB,
            },
            forecast: None,
        }
    }

    fn measured(filesystems: Vec<Filesystem>) -> Measured {
        Measured {
            filesystems,
            notes: vec![],
        }
    }

    #[test]
    fn default_thresholds_are_80_and_90_percent_inclusive() {
        let t = thresholds::<Disk>(None, None);
        let at = |used: f64| {
            judge::<Disk>(
                &measured(vec![fs("/", used, 100.0 - used, &["data directory"])]),
                &options(&[]),
                &t,
                0,
            )
            .status
        };
        assert_eq!(at(80.0), Status::Ok);
        assert_eq!(at(80.5), Status::Warning);
        assert_eq!(at(90.0), Status::Warning);
        assert_eq!(at(90.5), Status::Critical);
    }

    #[test]
    fn sizes_apply_to_bytes_used_and_bare_numbers_are_percent() {
        let t = thresholds::<Disk>(Some("85,400GB"), Some("95,450GB"));
        let one = |used: f64, free: f64| {
            judge::<Disk>(
                &measured(vec![fs("/", used, free, &["data directory"])]),
                &options(&[]),
                &t,
                0,
            )
            .status
        };
        assert_eq!(one(400.0, 600.0), Status::Ok);
        assert_eq!(one(401.0, 600.0), Status::Warning);
        assert_eq!(one(451.0, 600.0), Status::Critical);
        assert_eq!(one(86.0, 14.0), Status::Warning);
    }

    #[test]
    fn the_summary_names_offenders_or_the_fullest() {
        let t = thresholds::<Disk>(None, None);
        let two = vec![
            fs("/", 50.0, 50.0, &["data directory"]),
            fs("/wal", 95.0, 5.0, &["pg_wal", "tablespace fast"]),
        ];
        let r = reported::<Disk>(judge::<Disk>(&measured(two.clone()), &options(&[]), &t, 0));
        assert_eq!(r.status, Status::Critical);
        assert_eq!(r.summary, "/wal 95% used (5120 MB free of 100 GB)");
        assert_eq!(
            r.details,
            [
                "OK: / 50% used (50 GB free of 100 GB) holds data directory",
                "CRITICAL: /wal 95% used (5120 MB free of 100 GB) holds pg_wal, tablespace fast"
            ]
        );
        assert!(r
            .hint
            .as_ref()
            .unwrap()
            .starts_with("find what fills the disk"));
        assert_eq!(perf(&r)[1], "'/ used_pct'=50%;80;90;0;100");
        let calm = judge::<Disk>(&measured(vec![two[0].clone()]), &options(&[]), &t, 0);
        assert_eq!(
            calm.summary,
            "1 filesystem, fullest / 50% used (50 GB free of 100 GB)"
        );
    }

    #[test]
    fn the_time_left_alerts_below_its_bounds() {
        let t = thresholds::<Disk>(Some("80%,7d:"), Some("90%,1d:"));
        let with = |f: Option<Forecast>| {
            let mut one = fs("/", 50.0, 50.0, &["data directory"]);
            one.forecast = f;
            reported::<Disk>(judge::<Disk>(&measured(vec![one]), &options(&[]), &t, 0))
        };
        let left = |days: f64| {
            Some(Forecast::Left {
                left: days * 86400.0,
                rate: 50.0 * GB / (days * 86400.0),
                span: 6.0 * 3600.0,
            })
        };
        assert_eq!(with(left(8.0)).status, Status::Ok);
        let w = with(left(2.0));
        assert_eq!(w.status, Status::Warning);
        assert_eq!(
            w.summary,
            "/ 50% used (50 GB free of 100 GB), full in 2 d 0 h at 1067 MB per hour over the last 6 h 0 min"
        );
        assert_eq!(perf(&w)[2], "'/ time_left'=172800s;604800:;86400:;0");
        assert_eq!(with(left(0.5)).status, Status::Critical);
        // Too little history: never an alert, no time_left, said in the details.
        let g = with(Some(Forecast::Gathering { more: 1800.0 }));
        assert_eq!(g.status, Status::Ok);
        assert_eq!(perf(&g).len(), 2);
        assert!(g.details[0].ends_with("forecast after 30 min 0 s more of history"));
        // Flat: OK, and the time left at its ten-year cap.
        let flat = with(Some(Forecast::NotGrowing {
            rate: 0.0,
            span: 6.0 * 3600.0,
        }));
        assert_eq!(flat.status, Status::Ok);
        assert_eq!(perf(&flat)[2], "'/ time_left'=315360000s;604800:;86400:;0");
        assert_eq!(
            flat.summary,
            "1 filesystem, fullest / 50% used (50 GB free of 100 GB)"
        );
    }

    #[test]
    fn empty_filesystems_and_notes() {
        let t = thresholds::<Disk>(None, None);
        let mut m = measured(vec![fs("/", 0.0, 0.0, &["data directory"])]);
        m.notes
            .push("pg_wal not inspected (denied); it is counted with the data directory".into());
        let r = judge::<Disk>(&m, &options(&[]), &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.details.last().unwrap(),
            "pg_wal not inspected (denied); it is counted with the data directory"
        );
        assert_eq!(
            judge::<Disk>(&Measured::default(), &options(&[]), &t, 0).summary,
            "no filesystem measured"
        );
    }
}
