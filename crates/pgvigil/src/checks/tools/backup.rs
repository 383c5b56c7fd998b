//! check_pg_backup: backups are fresh. Either the newest dump in a
//! directory (a daily pg_dump), its age and its size against the
//! one before; or a pgBackRest stanza's newest backup of each type, from
//! `pgbackrest info`, with the archive's last WAL against the server's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde_json::Value;

use crate::logs::files::glob_match;
use crate::session::get;
use crate::units::{pretty_bytes, pretty_duration};
use crate::words::{count, percent_text};
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Status, Unit, UnitSpec};

pub struct Backup;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Backups")]
#[command(group(clap::ArgGroup::new("source").required(true).multiple(false)))]
pub struct Args {
    /// Directory the dumps are written to; the newest matching file is judged (runs on that host, needs no server)
    #[arg(long, value_name = "DIR", group = "source")]
    pub dump_dir: Option<PathBuf>,
    /// Which files in --dump-dir are dumps (`*` and `?`)
    #[arg(long, value_name = "GLOB", default_value = "*")]
    pub pattern: String,
    /// WARNING when the newest dump is smaller than the one before by more than this share
    #[arg(long, value_name = "PERCENT", default_value = "50%", value_parser = parse_share)]
    pub max_shrink: f64,
    /// pgBackRest stanza whose backups are judged, from `pgbackrest info`
    #[arg(long, value_name = "STANZA", group = "source")]
    pub pgbackrest: Option<String>,
    /// pgBackRest configuration file [default: pgBackRest's own]
    #[arg(long, value_name = "FILE")]
    pub pgbackrest_config: Option<PathBuf>,
}

fn parse_share(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("'{text}' is not a share between 0% and 100%")),
    }
}

/// The server's current WAL file and its segment size, to compare with the
/// archive's newest. A standby names the last replayed one.
const WAL_SQL: &str = "
SELECT CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_walfile_name(pg_current_wal_lsn()) END AS current_wal,
       current_setting('wal_segment_size') AS segment_size";

impl Check for Backup {
    const DISPLAY: &'static str = "BACKUP";
    const ABOUT: &'static str = "Freshness of backups: the newest pg_dump file in a directory (age, and size against the previous one), or a pgBackRest stanza's newest backups (age per type, the archive's last WAL).";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Seconds],
        bare: None,
        labels: &[],
    };
    const HINT: &'static str = "look at the backup job's own log (cron mail, systemd journal, pgbackrest's log-path) and run it by hand as its user; check the target's free space, and that the newest backup restores";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the age of the newest backup (any type for pgBackRest).
  Default: -w 25h -c 49h (a daily backup, with an hour of slack). No dump, an
  empty newest dump, or pgBackRest reporting no valid backup is CRITICAL; a
  dump smaller than the one before by more than --max-shrink is WARNING.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("25h", "49h"));
    type Args = Args;

    fn without_server(args: &Args, ctx: &Context) -> Option<Result<CheckResult, Error>> {
        let dir = args.dump_dir.as_ref()?;
        Some(dumps(dir, args, ctx))
    }

    fn run(args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        let stanza = args.pgbackrest.as_deref().unwrap_or_default();
        // Query: the server's WAL position, then the repository's view.
        let row = db.query_one(WAL_SQL)?;
        let current_wal: Option<String> = get(&row, "current_wal")?;
        let segment_size: String = get(&row, "segment_size")?;
        let info = pgbackrest_info(stanza, args.pgbackrest_config.as_deref())?;
        pgbackrest(stanza, &info, current_wal, &segment_size, ctx)
    }
}

/// One dump file.
struct Dump {
    path: PathBuf,
    size: u64,
    age: f64,
}

fn dumps(dir: &Path, args: &Args, ctx: &Context) -> Result<CheckResult, Error> {
    // Measure: the matching files, newest first.
    let cannot = |e: std::io::Error| {
        Error::CannotMeasure(format!("cannot read dump directory {}: {e}", dir.display()))
    };
    let now = SystemTime::now();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(cannot)? {
        let entry = entry.map_err(cannot)?;
        let name = entry.file_name();
        if !glob_match(args.pattern.as_bytes(), name.as_encoded_bytes()) {
            continue;
        }
        let meta = entry.metadata().map_err(cannot)?;
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().map_err(cannot)?;
        let age = now
            .duration_since(modified)
            .map_or(0.0, |d| d.as_secs_f64());
        found.push(Dump {
            path: entry.path(),
            size: meta.len(),
            age,
        });
    }
    found.sort_by(|a, b| a.age.total_cmp(&b.age));
    let Some(newest) = found.first() else {
        return Ok(CheckResult::new(
            Status::Critical,
            format!("no dump in {} matching '{}'", dir.display(), args.pattern),
        )
        .perf([PerfData::new("dumps", 0.0, Unit::Count).min(0.0)]));
    };
    let previous = found.get(1);
    let shrink = previous
        .filter(|p| p.size > 0)
        .map(|p| (1.0 - newest.size as f64 / p.size as f64) * 100.0);

    // Compare
    let t = &ctx.thresholds;
    let mut status = t.status(&[(Unit::Seconds, newest.age)]);
    let empty = newest.size == 0;
    let shrank = shrink.is_some_and(|s| s > args.max_shrink);
    if shrank {
        status = status.worst(Status::Warning);
    }
    if empty {
        status = Status::Critical;
    }

    // Report
    let name = newest
        .path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    let mut summary = format!(
        "newest dump {name} is {} old, {}",
        pretty_duration(newest.age),
        pretty_bytes(newest.size as f64)
    );
    if empty {
        summary.push_str(" (empty: the dump failed)");
    }
    if let (Some(previous), Some(shrink)) = (previous, shrink) {
        if shrank {
            summary.push_str(&format!(
                "; {} smaller than the one before ({})",
                percent_text(shrink),
                pretty_bytes(previous.size as f64)
            ));
        }
    }
    summary.push_str(&format!(
        "; {} in {}",
        count(found.len(), "dump"),
        dir.display()
    ));
    let details = found
        .iter()
        .take(if ctx.verbose > 0 { 20 } else { 0 })
        .map(|d| {
            format!(
                "{}: {}, {} old",
                d.path.display(),
                pretty_bytes(d.size as f64),
                pretty_duration(d.age)
            )
        });
    let mut perfdata = vec![
        PerfData::new("age", newest.age.round(), Unit::Seconds)
            .thresholds(t)
            .min(0.0),
        PerfData::new("size", newest.size as f64, Unit::Bytes).min(0.0),
        PerfData::new("dumps", found.len() as f64, Unit::Count).min(0.0),
    ];
    if let Some(previous) = previous {
        perfdata.push(PerfData::new("previous_size", previous.size as f64, Unit::Bytes).min(0.0));
    }
    Ok(CheckResult::new(status, summary)
        .perf(perfdata)
        .details(details))
}

/// `pgbackrest info --output=json` for the stanza, parsed.
fn pgbackrest_info(stanza: &str, config: Option<&Path>) -> Result<Value, Error> {
    let mut command = Command::new("pgbackrest");
    if let Some(config) = config {
        command.arg(format!("--config={}", config.display()));
    }
    command.args([&format!("--stanza={stanza}"), "--output=json", "info"]);
    let out = command.output().map_err(|e| {
        Error::CannotMeasure(format!(
            "cannot run pgbackrest: {e} (is pgBackRest installed on this host?)"
        ))
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = format!("{} {}", stderr.trim(), stdout.trim());
        return Err(Error::CannotMeasure(format!(
            "pgbackrest info failed ({}): {}",
            out.status,
            crate::output::one_line(said.trim())
        )));
    }
    let parsed: Value = serde_json::from_str(&stdout)
        .map_err(|e| Error::Query(format!("pgbackrest info printed no JSON ({e})")))?;
    parsed
        .as_array()
        .and_then(|stanzas| {
            stanzas
                .iter()
                .find(|s| s["name"].as_str() == Some(stanza))
                .cloned()
        })
        .ok_or_else(|| Error::Query(format!("pgbackrest info does not list stanza {stanza}")))
}

/// The stanza's verdict: its status, the newest backup of each type, the archive.
fn pgbackrest(
    stanza: &str,
    info: &Value,
    current_wal: Option<String>,
    segment_size: &str,
    ctx: &Context,
) -> Result<CheckResult, Error> {
    // Measure
    let code = info["status"]["code"].as_i64().unwrap_or(99);
    let message = info["status"]["message"].as_str().unwrap_or("no status");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let empty = Vec::new();
    let backups = info["backup"].as_array().unwrap_or(&empty);
    let mut newest: Vec<(&str, f64, &str, f64)> = Vec::new();
    for kind in ["full", "diff", "incr"] {
        let latest = backups
            .iter()
            .filter(|b| b["type"].as_str() == Some(kind))
            .filter(|b| b["error"].as_bool() != Some(true))
            .filter_map(|b| {
                Some((
                    b["timestamp"]["stop"].as_f64()?,
                    b["label"].as_str().unwrap_or(""),
                    b["info"]["size"].as_f64().unwrap_or(0.0),
                ))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((stop, label, size)) = latest {
            newest.push((kind, (now - stop).max(0.0), label, size));
        }
    }
    let archive_max = info["archive"]
        .as_array()
        .and_then(|a| a.iter().filter_map(|x| x["max"].as_str()).max())
        .map(String::from);

    // Compare
    let t = &ctx.thresholds;
    let freshest = newest
        .iter()
        .map(|n| n.1)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
    let mut status = match (code, freshest) {
        (0, Some(age)) => t.status(&[(Unit::Seconds, age)]),
        _ => Status::Critical,
    };
    if code != 0 && freshest.is_some() {
        status = Status::Critical;
    }

    // Report
    let mut parts = Vec::new();
    if code != 0 {
        parts.push(format!("stanza {stanza}: {message} (status {code})"));
    }
    for (kind, age, label, _) in &newest {
        parts.push(format!(
            "newest {kind} {label} is {} old",
            pretty_duration(*age)
        ));
    }
    if newest.is_empty() && code == 0 {
        parts.push(format!("stanza {stanza} has no backup"));
    }
    let behind = match (&archive_max, &current_wal) {
        (Some(max), Some(current)) => segments_between(max, current, segment_size),
        _ => None,
    };
    match (&archive_max, behind) {
        (Some(max), Some(behind)) => parts.push(format!(
            "archive up to {max} ({} not archived yet)",
            count(behind as usize, "completed WAL file")
        )),
        (Some(max), None) => parts.push(format!("archive up to {max}")),
        (None, _) => parts.push("no WAL archived".into()),
    }
    let mut perfdata = Vec::new();
    if let Some(age) = freshest {
        perfdata.push(
            PerfData::new("age", age.round(), Unit::Seconds)
                .thresholds(t)
                .min(0.0),
        );
    }
    for (kind, age, _, size) in &newest {
        perfdata.push(PerfData::new(format!("{kind}_age"), age.round(), Unit::Seconds).min(0.0));
        perfdata.push(PerfData::new(format!("{kind}_size"), *size, Unit::Bytes).min(0.0));
    }
    perfdata.push(PerfData::new("backups", backups.len() as f64, Unit::Count).min(0.0));
    if let Some(behind) = behind {
        perfdata.push(PerfData::new("archive_behind", behind as f64, Unit::Count).min(0.0));
    }
    Ok(CheckResult::new(status, parts.join("; ")).perf(perfdata))
}

/// Completed WAL files the archive does not hold yet, from the archive's
/// newest to the server's current one: ...03 archived, ...05 current is 1.
fn segments_between(archived: &str, current: &str, segment_size: &str) -> Option<i64> {
    let size = crate::units::parse_size_option(segment_size).ok()?;
    let per_log = 0x1_0000_0000u64 / size.max(1);
    let position = |name: &str| -> Option<u64> {
        if name.len() != 24 {
            return None;
        }
        let log = u64::from_str_radix(&name[8..16], 16).ok()?;
        let seg = u64::from_str_radix(&name[16..24], 16).ok()?;
        Some(log * per_log + seg)
    };
    // The server's current file is still being written: not yet archivable.
    Some((position(current)? as i64 - position(archived)? as i64 - 1).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_files_apart() {
        assert_eq!(
            segments_between(
                "000000010000000000000003",
                "000000010000000000000005",
                "16MB"
            ),
            Some(1)
        );
        assert_eq!(
            segments_between(
                "0000000100000000000000FF",
                "000000010000000100000001",
                "16MB"
            ),
            Some(1)
        );
        assert_eq!(
            segments_between("junk", "000000010000000000000005", "16MB"),
            None
        );
    }

    #[test]
    fn shares_are_percentages() {
        assert_eq!(parse_share("50%"), Ok(50.0));
        assert_eq!(parse_share("12.5"), Ok(12.5));
        assert!(parse_share("150%").is_err());
        assert!(parse_share("half").is_err());
    }
}
