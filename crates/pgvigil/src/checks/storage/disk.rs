//! check_pg_disk: how full each filesystem holding the cluster is: the data
//! directory, pg_wal when it is elsewhere, and every tablespace.

use std::path::{Path, PathBuf};

use crate::check::{Check, Context};
use crate::filesystem::{self, Usage};
use crate::judge::worst;
use crate::session::get;
use crate::session::Session;
use crate::units::{pretty_bytes, round_to};
use crate::words::{count, percent_text};
use crate::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

pub struct Disk;

#[derive(Debug, clap::Args)]
pub struct Args {}

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
}

impl Check for Disk {
    const DISPLAY: &'static str = "DISK";
    const ABOUT: &'static str = "Usage of every filesystem holding the data directory, pg_wal and the tablespaces. Runs on the database host.";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Percent, Unit::Bytes],
        bare: Some(Unit::Percent),
        labels: &[],
    };
    const HINT: &'static str = "find what fills the disk: pg_wal (archiving or a replication slot holding WAL: check_pg_archiver, check_pg_replication_slots), server logs, old backups, or table growth; never delete files under pg_wal by hand";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to each filesystem: a percentage (or bare number) to the share
  used, a size to the bytes used. Default: -w 80% -c 90%.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("80%", "90%"));
    type Args = Args;

    fn run(_args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        let measured = fetch(db, ctx)?;
        Ok(judge(&measured, &ctx.thresholds))
    }
}

fn fetch(db: &mut Session, ctx: &Context) -> Result<Measured, Error> {
    // statvfs sees this machine's filesystems only.
    let remote = ctx
        .conn
        .hosts
        .iter()
        .find(|h| !filesystem::is_local_host(h));
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
        });
    }
    Ok(measured)
}

/// Each filesystem's share used (a percentage) and bytes used (a size)
/// against `-w`/`-c`; the summary names the offenders, or the fullest when
/// all is well.
pub fn judge(m: &Measured, t: &Thresholds) -> CheckResult {
    let judged: Vec<Status> = m
        .filesystems
        .iter()
        .map(|fs| {
            t.status(&[
                (Unit::Percent, fs.usage.percent_used()),
                (Unit::Bytes, fs.usage.used),
            ])
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
    let offenders: Vec<String> = m
        .filesystems
        .iter()
        .zip(&judged)
        .filter(|(_, s)| **s != Status::Ok)
        .map(|(fs, _)| describe(fs))
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
                "{}, fullest {}",
                count(m.filesystems.len(), "filesystem"),
                describe(fullest)
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
        details.push(format!(
            "{state}: {} holds {}",
            describe(fs),
            fs.holds.join(", ")
        ));
    }
    details.extend(m.notes.iter().cloned());
    CheckResult::new(status, summary)
        .perf(perf)
        .details(details)
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
    use crate::checks::testing::{perf, reported, thresholds};

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
            judge(
                &measured(vec![fs("/", used, 100.0 - used, &["data directory"])]),
                &t,
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
            judge(
                &measured(vec![fs("/", used, free, &["data directory"])]),
                &t,
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
        let r = reported::<Disk>(judge(&measured(two.clone()), &t));
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
        let calm = judge(&measured(vec![two[0].clone()]), &t);
        assert_eq!(
            calm.summary,
            "1 filesystem, fullest / 50% used (50 GB free of 100 GB)"
        );
    }

    #[test]
    fn empty_filesystems_and_notes() {
        let t = thresholds::<Disk>(None, None);
        let mut m = measured(vec![fs("/", 0.0, 0.0, &["data directory"])]);
        m.notes
            .push("pg_wal not inspected (denied); it is counted with the data directory".into());
        let r = judge(&m, &t);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.details.last().unwrap(),
            "pg_wal not inspected (denied); it is counted with the data directory"
        );
        assert_eq!(
            judge(&Measured::default(), &t).summary,
            "no filesystem measured"
        );
    }
}
