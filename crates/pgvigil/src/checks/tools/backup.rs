//! check_pg_backup: backups are fresh. Either the newest dump in a
//! directory (a daily pg_dump), its age and its size against the
//! one before; or a pgBackRest stanza's newest backup of each type, from
//! `pgbackrest info`, with the archive's last WAL against the server's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde_json::Value;

use crate::check::{Check, Context, Judging};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::logs::files::glob_match;
use pgvigil_kit::units::{pretty_bytes, pretty_duration};
use pgvigil_kit::words::{count, percent_text};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

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
    /// WARNING when the stanza keeps fewer good full backups than this (retention set too low, or fulls failing)
    #[arg(long, value_name = "N", requires = "pgbackrest")]
    pub min_full: Option<usize>,
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
    const INTERVAL: u32 = 3600;
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Seconds], None);
    const HINT: &'static str = "look at the backup job's own log (cron mail, systemd journal, pgbackrest's log-path) and run it by hand as its user; check the target's free space, and that the newest backup restores";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the age of the newest backup (any type for pgBackRest).
  Default: {defaults} (a daily backup, with an hour of slack). No dump, an
  empty newest dump, or pgBackRest reporting no valid backup is CRITICAL; a
  dump smaller than the one before by more than --max-shrink is WARNING (the
  one before of the same name but for its digits: app-20261207.sql.gz follows
  app-20261206.sql.gz, whatever other databases were dumped between).";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("25h", "49h"));
    type Args = Args;
    type Measured = Measured;

    fn fetch_local(args: &Args, _ctx: &Context) -> Option<Result<Self::Measured, Error>> {
        let dir = args.dump_dir.as_ref()?;
        Some(fetch_dumps(dir, &args.pattern).map(Measured::Dumps))
    }

    fn fetch(args: &Args, db: &mut Session, _ctx: &Context) -> Result<Self::Measured, Error> {
        let stanza = args.pgbackrest.as_deref().unwrap_or_default();
        // The server's WAL position, then the repository's view.
        let row = db.query_one(WAL_SQL)?;
        let server = ServerWal {
            current: get(&row, "current_wal")?,
            segment_size: get(&row, "segment_size")?,
        };
        let info = pgbackrest_info(stanza, args.pgbackrest_config.as_deref())?;
        let repository = read_stanza(&info, SystemTime::now());
        Ok(Measured::PgBackRest { repository, server })
    }

    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (args, t) = (judging.args, judging.thresholds);
        match m {
            Measured::Dumps(found) => {
                let dir = args.dump_dir.as_deref().unwrap_or(Path::new("."));
                judge_dumps(found, dir, args, t, judging.verbose)
            }
            Measured::PgBackRest { repository, server } => {
                let stanza = args.pgbackrest.as_deref().unwrap_or_default();
                judge_pgbackrest(stanza, repository, server, args.min_full, t)
            }
        }
    }
}

/// The dumps found, or the pgBackRest repository with the server's WAL
/// position.
#[derive(Debug, Clone)]
pub enum Measured {
    Dumps(Vec<Dump>),
    PgBackRest {
        repository: Repository,
        server: ServerWal,
    },
}

/// One dump file.
#[derive(Debug, Clone, PartialEq)]
pub struct Dump {
    pub path: PathBuf,
    pub size: u64,
    /// Seconds since it was last written.
    pub age: f64,
}

/// The dump files in `dir` matching `pattern`, newest first.
fn fetch_dumps(dir: &Path, pattern: &str) -> Result<Vec<Dump>, Error> {
    let cannot = |e: std::io::Error| {
        Error::CannotMeasure(format!("cannot read dump directory {}: {e}", dir.display()))
    };
    let now = SystemTime::now();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(cannot)? {
        let entry = entry.map_err(cannot)?;
        let name = entry.file_name();
        if !glob_match(pattern.as_bytes(), name.as_encoded_bytes()) {
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
    Ok(found)
}

/// Which dump a file is a copy of: its name without digits, so that
/// app-20261207.sql.gz follows app-20261206.sql.gz and not the dump of
/// another database written to the same directory a minute before.
fn series(path: &Path) -> String {
    path.file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect()
        })
        .unwrap_or_default()
}

/// The newest dump's age against `-w`/`-c`; none, or an empty newest one,
/// is CRITICAL; one smaller than the one before of the same series by
/// more than --max-shrink is at least WARNING.
fn judge_dumps(
    found: &[Dump],
    dir: &Path,
    args: &Args,
    t: &Thresholds,
    verbose: u8,
) -> CheckResult {
    let Some(newest) = found.first() else {
        return CheckResult::new(
            Status::Critical,
            format!("no dump in {} matching '{}'", dir.display(), args.pattern),
        )
        .perf([PerfData::new("dumps", 0.0, Unit::Count).min(0.0)]);
    };
    let previous = found[1..]
        .iter()
        .find(|d| series(&d.path) == series(&newest.path));
    let shrink = previous
        .filter(|p| p.size > 0)
        .map(|p| (1.0 - newest.size as f64 / p.size as f64) * 100.0);

    let mut status = t.status(&[(Unit::Seconds, newest.age)]);
    let empty = newest.size == 0;
    let shrank = shrink.is_some_and(|s| s > args.max_shrink);
    if shrank {
        status = status.worst(Status::Warning);
    }
    if empty {
        status = Status::Critical;
    }

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
        .take(if verbose > 0 { 20 } else { 0 })
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
    CheckResult::new(status, summary)
        .perf(perfdata)
        .details(details)
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
            pgvigil_kit::output::one_line(said.trim())
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

/// The server's WAL position: its current file (None on a standby) and
/// the segment size, as `SHOW wal_segment_size` prints it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerWal {
    pub current: Option<String>,
    pub segment_size: String,
}

/// What `pgbackrest info` says of a stanza.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Repository {
    /// pgBackRest's status code (0 is ok) and message.
    pub code: i64,
    pub message: String,
    /// The newest good backup of each type (full, diff, incr) present.
    pub newest: Vec<Newest>,
    pub backups: usize,
    /// The newest WAL file in the archive.
    pub archive_max: Option<String>,
    /// Full backups without an error.
    pub full_backups: usize,
    /// The newest backup of any type, when pgBackRest marked it `error`
    /// (page checksum failures, 2.36+): its label and type.
    pub newest_failed: Option<(String, String)>,
}

/// A stanza's newest good backup of one type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Newest {
    pub kind: String,
    /// Seconds since it stopped.
    pub age: f64,
    pub label: String,
    pub size: f64,
}

/// The plain facts of `pgbackrest info`'s JSON, ages taken at `now`.
pub fn read_stanza(info: &Value, now: SystemTime) -> Repository {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let empty = Vec::new();
    let backups = info["backup"].as_array().unwrap_or(&empty);
    let mut newest = Vec::new();
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
            newest.push(Newest {
                kind: kind.to_string(),
                age: (now - stop).max(0.0),
                label: label.to_string(),
                size,
            });
        }
    }
    let failed = |b: &Value| b["error"].as_bool() == Some(true);
    let newest_failed = backups
        .iter()
        .filter_map(|b| Some((b["timestamp"]["stop"].as_f64()?, b)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(_, b)| failed(b))
        .map(|(_, b)| {
            (
                b["label"].as_str().unwrap_or("?").to_string(),
                b["type"].as_str().unwrap_or("?").to_string(),
            )
        });
    Repository {
        full_backups: backups
            .iter()
            .filter(|b| b["type"].as_str() == Some("full") && !failed(b))
            .count(),
        newest_failed,
        code: info["status"]["code"].as_i64().unwrap_or(99),
        message: info["status"]["message"]
            .as_str()
            .unwrap_or("no status")
            .to_string(),
        newest,
        backups: backups.len(),
        archive_max: info["archive"]
            .as_array()
            .and_then(|a| a.iter().filter_map(|x| x["max"].as_str()).max())
            .map(String::from),
    }
}

/// The stanza's verdict: a status other than ok, or no backup, is CRITICAL;
/// otherwise the freshest backup's age against `-w`/`-c`; the archive's
/// newest WAL against the server's.
fn judge_pgbackrest(
    stanza: &str,
    r: &Repository,
    server: &ServerWal,
    min_full: Option<usize>,
    t: &Thresholds,
) -> CheckResult {
    let freshest = r
        .newest
        .iter()
        .map(|n| n.age)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
    let mut status = match (r.code, freshest) {
        (0, Some(age)) => t.status(&[(Unit::Seconds, age)]),
        _ => Status::Critical,
    };
    let mut parts = Vec::new();
    if r.code != 0 {
        parts.push(format!(
            "stanza {stanza}: {} (status {})",
            r.message, r.code
        ));
    }
    // Trouble the age alone does not show leads the line.
    if let Some((label, kind)) = &r.newest_failed {
        status = status.worst(Status::Warning);
        parts.push(format!(
            "newest backup {label} ({kind}) has errors (pgbackrest info --set={label} names the files)"
        ));
    }
    if let Some(min) = min_full.filter(|&min| r.full_backups < min) {
        status = status.worst(Status::Warning);
        parts.push(format!(
            "{} kept, fewer than --min-full {min} (repo1-retention-full?)",
            count(r.full_backups, "good full backup")
        ));
    }
    for n in &r.newest {
        parts.push(format!(
            "newest {} {} is {} old",
            n.kind,
            n.label,
            pretty_duration(n.age)
        ));
    }
    if r.newest.is_empty() && r.code == 0 {
        parts.push(format!("stanza {stanza} has no backup"));
    }
    let behind = match (&r.archive_max, &server.current) {
        (Some(max), Some(current)) => segments_between(max, current, &server.segment_size),
        _ => None,
    };
    match (&r.archive_max, behind) {
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
    for n in &r.newest {
        perfdata
            .push(PerfData::new(format!("{}_age", n.kind), n.age.round(), Unit::Seconds).min(0.0));
        perfdata.push(PerfData::new(format!("{}_size", n.kind), n.size, Unit::Bytes).min(0.0));
    }
    perfdata.push(PerfData::new("backups", r.backups as f64, Unit::Count).min(0.0));
    let mut fulls = PerfData::new("full_backups", r.full_backups as f64, Unit::Count).min(0.0);
    if let Some(min) = min_full {
        // Fewer than min warns: the range min: in the guidelines' grammar.
        fulls.warning = Some(format!("{min}:"));
    }
    perfdata.push(fulls);
    if let Some(behind) = behind {
        perfdata.push(PerfData::new("archive_behind", behind as f64, Unit::Count).min(0.0));
    }
    CheckResult::new(status, parts.join("; ")).perf(perfdata)
}

/// Completed WAL files the archive does not hold yet, from the archive's
/// newest to the server's current one: ...03 archived, ...05 current is 1.
fn segments_between(archived: &str, current: &str, segment_size: &str) -> Option<i64> {
    let size = pgvigil_kit::units::parse_size_option(segment_size).ok()?;
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

    use crate::checks::testing::{perf, reported, thresholds};

    fn args(max_shrink: f64) -> Args {
        Args {
            dump_dir: Some("/backups".into()),
            pattern: "*.sql".into(),
            max_shrink,
            pgbackrest: None,
            pgbackrest_config: None,
            min_full: None,
        }
    }

    fn dump(name: &str, size: u64, hours: f64) -> Dump {
        Dump {
            path: PathBuf::from("/backups").join(name),
            size,
            age: hours * 3600.0,
        }
    }

    #[test]
    fn default_thresholds_are_25h_and_49h() {
        let t = thresholds::<Backup>(None, None);
        let at = |h: f64| {
            judge_dumps(
                &[dump("a.sql", 10, h)],
                Path::new("/backups"),
                &args(50.0),
                &t,
                0,
            )
            .status
        };
        assert_eq!(at(25.0), Status::Ok);
        assert_eq!(at(25.1), Status::Warning);
        assert_eq!(at(49.1), Status::Critical);
    }

    #[test]
    fn none_empty_or_shrunk_dumps() {
        let t = thresholds::<Backup>(None, None);
        let dir = Path::new("/backups");
        let r = reported::<Backup>(judge_dumps(&[], dir, &args(50.0), &t, 0));
        assert_eq!(
            (r.status, r.summary.as_str()),
            (Status::Critical, "no dump in /backups matching '*.sql'")
        );
        assert!(r
            .hint
            .unwrap()
            .starts_with("look at the backup job's own log"));
        let r = judge_dumps(
            &[dump("b.sql", 0, 1.0), dump("a.sql", 100, 25.0)],
            dir,
            &args(50.0),
            &t,
            0,
        );
        assert_eq!(r.status, Status::Critical);
        assert!(r.summary.contains("(empty: the dump failed)"));
        let shrunk = [dump("app-2.sql", 40, 1.0), dump("app-1.sql", 100, 25.0)];
        let r = judge_dumps(&shrunk, dir, &args(50.0), &t, 1);
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "newest dump app-2.sql is 1 h 0 min old, 40 bytes; 60% smaller than the one before (100 bytes); 2 dumps in /backups"
        );
        assert_eq!(r.details.len(), 2);
        assert_eq!(
            perf(&r),
            [
                "age=3600s;90000;176400;0",
                "size=40B;;;0",
                "dumps=2;;;0",
                "previous_size=100B;;;0"
            ]
        );
        assert_eq!(
            judge_dumps(&shrunk, dir, &args(60.0), &t, 0).status,
            Status::Ok
        );
        // Every database dumped to one directory: the small one written
        // last follows its own dump of the night before, not the big one.
        let nightly = [
            dump("postgres-20261207.sql", 10, 1.0),
            dump("app-20261207.sql", 100, 1.1),
            dump("postgres-20261206.sql", 10, 25.0),
        ];
        let r = judge_dumps(&nightly, dir, &args(50.0), &t, 0);
        assert_eq!(r.status, Status::Ok, "{}", r.summary);
        assert_eq!(perf(&r)[3], "previous_size=10B;;;0");
    }

    fn info(code: i64, backups: serde_json::Value) -> Value {
        serde_json::json!({
            "name": "main",
            "status": {"code": code, "message": if code == 0 { "ok" } else { "missing stanza path" }},
            "backup": backups,
            "archive": [{"max": "000000010000000000000003"}]
        })
    }

    #[test]
    fn pgbackrest_freshest_backup_and_the_archive() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let backups = serde_json::json!([
            {"type": "full", "label": "F1", "timestamp": {"stop": 1_000_000 - 7 * 86400}, "info": {"size": 1000}},
            {"type": "full", "label": "F0", "timestamp": {"stop": 1_000_000 - 14 * 86400}, "info": {"size": 900}},
            {"type": "incr", "label": "I1", "timestamp": {"stop": 1_000_000 - 3600}, "info": {"size": 10}},
            {"type": "diff", "label": "D1", "error": true, "timestamp": {"stop": 1_000_000 - 86400}, "info": {"size": 10}}
        ]);
        let repo = read_stanza(&info(0, backups), now);
        assert_eq!(repo.newest.len(), 2);
        assert_eq!(
            (repo.newest[0].label.as_str(), repo.newest[0].age),
            ("F1", 7.0 * 86400.0)
        );
        let server = ServerWal {
            current: Some("000000010000000000000005".into()),
            segment_size: "16MB".into(),
        };
        let t = thresholds::<Backup>(None, None);
        let r = judge_pgbackrest("main", &repo, &server, None, &t);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.summary,
            "newest full F1 is 7 d 0 h old; newest incr I1 is 1 h 0 min old; archive up to 000000010000000000000003 (1 completed WAL file not archived yet)"
        );
        assert_eq!(perf(&r).last().unwrap(), "archive_behind=1;;;0");
        let t = thresholds::<Backup>(Some("30min"), None);
        assert_eq!(
            judge_pgbackrest("main", &repo, &server, None, &t).status,
            Status::Warning
        );
    }

    #[test]
    fn a_failed_newest_backup_and_too_few_fulls_warn() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let backups = serde_json::json!([
            {"type": "full", "label": "F1", "timestamp": {"stop": 1_000_000 - 7200}, "info": {"size": 1000}},
            {"type": "full", "label": "F2", "error": true, "timestamp": {"stop": 1_000_000 - 60}, "info": {"size": 1000}}
        ]);
        let repo = read_stanza(&info(0, backups), now);
        assert_eq!(repo.full_backups, 1);
        assert_eq!(repo.newest_failed, Some(("F2".into(), "full".into())));
        let server = ServerWal::default();
        let t = thresholds::<Backup>(None, None);
        let r = judge_pgbackrest("main", &repo, &server, Some(2), &t);
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "newest backup F2 (full) has errors (pgbackrest info --set=F2 names the files); 1 good full backup kept, fewer than --min-full 2 (repo1-retention-full?); newest full F1 is 2 h 0 min old; archive up to 000000010000000000000003"
        );
        assert!(perf(&r).contains(&"full_backups=1;2:;;0".to_string()));
        // An older failure is history once a good backup follows it.
        let backups = serde_json::json!([
            {"type": "full", "label": "F1", "error": true, "timestamp": {"stop": 1_000_000 - 7200}},
            {"type": "full", "label": "F2", "timestamp": {"stop": 1_000_000 - 60}}
        ]);
        let repo = read_stanza(&info(0, backups), now);
        assert_eq!(repo.newest_failed, None);
        let r = judge_pgbackrest("main", &repo, &server, Some(1), &t);
        assert_eq!(r.status, Status::Ok);
    }

    #[test]
    fn pgbackrest_trouble_is_critical() {
        let now = SystemTime::UNIX_EPOCH;
        let t = thresholds::<Backup>(None, None);
        let standby = ServerWal::default();
        let r = judge_pgbackrest(
            "main",
            &read_stanza(&info(0, serde_json::json!([])), now),
            &standby,
            None,
            &t,
        );
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "stanza main has no backup; archive up to 000000010000000000000003"
        );
        let r = judge_pgbackrest(
            "main",
            &read_stanza(&info(103, serde_json::json!([])), now),
            &standby,
            None,
            &t,
        );
        assert_eq!(r.status, Status::Critical);
        assert!(r
            .summary
            .starts_with("stanza main: missing stanza path (status 103)"));
        let r = judge_pgbackrest(
            "main",
            &read_stanza(&serde_json::json!({}), now),
            &standby,
            None,
            &t,
        );
        assert_eq!(
            r.summary,
            "stanza main: no status (status 99); no WAL archived"
        );
    }
}
