//! check_pg_disk: how full each filesystem holding the cluster is: the data
//! directory, pg_wal when it is elsewhere, and every tablespace.

use std::path::{Path, PathBuf};

use crate::filesystem::{self, Usage};
use crate::session::get;
use crate::units::{pretty_bytes, round_to};
use crate::words::percent_text;
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

pub struct Disk;

#[derive(Debug, clap::Args)]
pub struct Args {}

// data_directory needs pg_read_all_settings, which pg_monitor includes.
const SQL: &str = "
SELECT 'data directory' AS role, current_setting('data_directory') AS path
UNION ALL
SELECT 'tablespace ' || spcname, pg_tablespace_location(oid)
FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')";

/// One filesystem and what of the cluster it holds.
struct Filesystem {
    device: u64,
    mount: PathBuf,
    holds: Vec<String>,
    usage: Usage,
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
        // Query: where the server keeps its files.
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
        let mut places: Vec<(String, PathBuf)> = Vec::new();
        for row in db.query(SQL)? {
            places.push((
                get(&row, "role")?,
                PathBuf::from(get::<String>(&row, "path")?),
            ));
        }
        let mut notes = Vec::new();
        let data_dir = places[0].1.clone();
        match std::fs::canonicalize(data_dir.join("pg_wal")) {
            Ok(wal) => places.insert(1, ("pg_wal".into(), wal)),
            Err(e) => notes.push(format!(
                "pg_wal not inspected ({e}); it is counted with the data directory"
            )),
        }

        // Measure: one entry per filesystem.
        let mut filesystems: Vec<Filesystem> = Vec::new();
        for (role, path) in places {
            let device = filesystem::device(&path).map_err(|e| not_visible(&role, &path, e))?;
            if let Some(fs) = filesystems.iter_mut().find(|f| f.device == device) {
                fs.holds.push(role);
                continue;
            }
            let usage = filesystem::usage(&path).map_err(|e| not_visible(&role, &path, e))?;
            filesystems.push(Filesystem {
                device,
                mount: filesystem::mount_point(&path),
                holds: vec![role],
                usage,
            });
        }

        // Compare
        let t = &ctx.thresholds;
        let judged: Vec<Status> = filesystems
            .iter()
            .map(|fs| {
                t.status(&[
                    (Unit::Percent, fs.usage.percent_used()),
                    (Unit::Bytes, fs.usage.used),
                ])
            })
            .collect();
        let status: Status = judged.iter().copied().collect();

        // Report: the offenders, or the fullest when all is well.
        let describe = |fs: &Filesystem| {
            format!(
                "{} {} used ({} free of {})",
                fs.mount.display(),
                percent_text(fs.usage.percent_used()),
                pretty_bytes(fs.usage.available),
                pretty_bytes(fs.usage.total)
            )
        };
        let offenders: Vec<String> = filesystems
            .iter()
            .zip(&judged)
            .filter(|(_, s)| **s != Status::Ok)
            .map(|(fs, _)| describe(fs))
            .collect();
        let summary = if offenders.is_empty() {
            let fullest = filesystems
                .iter()
                .max_by(|a, b| a.usage.percent_used().total_cmp(&b.usage.percent_used()))
                .expect("the data directory is always measured");
            format!(
                "{} filesystem{}, fullest {}",
                filesystems.len(),
                if filesystems.len() == 1 { "" } else { "s" },
                describe(fullest)
            )
        } else {
            offenders.join("; ")
        };
        let mut perf = Vec::new();
        let mut details = Vec::new();
        for (fs, state) in filesystems.iter().zip(&judged) {
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
        details.extend(notes);
        Ok(CheckResult::new(status, summary)
            .perf(perf)
            .details(details))
    }
}

fn not_visible(role: &str, path: &Path, e: std::io::Error) -> Error {
    Error::CannotMeasure(format!(
        "{role} {} is not visible here ({e}): check_pg_disk must run on the database host as a user that can see it",
        path.display()
    ))
}
