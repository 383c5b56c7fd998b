//! check_pg_log: the server log's analysis as a plugin. Each run reads only
//! what the server logged since the previous run (stderr, csvlog or
//! jsonlog), follows rotation, and turns errors, failed logins, deadlocks,
//! slow statements, lock waits, temporary files and checkpoint warnings into
//! counts with thresholds.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::check::{Check, Context, Judging};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::logs::files::{self, Mark, Marks};
use pgvigil_kit::logs::stderr::Prefix;
use pgvigil_kit::logs::tally::{Tally, LABELS};
use pgvigil_kit::logs::Format;
use pgvigil_kit::state::{Loaded, Snapshot, StateArgs, Store};
use pgvigil_kit::units::{parse_duration_option, pretty_bytes};
use pgvigil_kit::words::plural;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Log;

/// Debian's default `log_line_prefix`.
const DEFAULT_PREFIX: &str = "%m [%p] %q%u@%d ";

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Log")]
pub struct Args {
    /// Log file, directory or pattern (`*`, `?` in the file name); repeatable [default: where the server logs]
    #[arg(long = "log", value_name = "PATH")]
    pub logs: Vec<PathBuf>,
    /// Log format [default: by file extension: .csv csvlog, .json jsonlog, else stderr]
    #[arg(long = "log-format", value_enum)]
    pub log_format: Option<Format>,
    /// log_line_prefix of stderr logs [default: the server's, else '%m [%p] %q%u@%d ']
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Count `duration:` entries from this long on [default: every one the server wrote]
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_duration_option)]
    pub slow: f64,
    /// On the first run read the logs from their start (by default it starts at their end)
    #[arg(long)]
    pub from_start: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

const SETTINGS: &str = "
SELECT current_setting('log_destination') AS destination,
       current_setting('logging_collector') = 'on' AS collector,
       current_setting('log_directory') AS directory,
       current_setting('data_directory') AS data_directory,
       current_setting('log_line_prefix') AS prefix";

/// Where the server logs, and in which format, from its settings.
struct ServerLog {
    dir: PathBuf,
    format: Format,
    prefix: String,
}

fn server_log(db: &mut Session, format: Option<Format>) -> Result<ServerLog, Error> {
    let row = db.query_one(SETTINGS)?;
    let destination: String = get(&row, "destination")?;
    let collector: bool = get(&row, "collector")?;
    let directory: String = get(&row, "directory")?;
    let data: String = get(&row, "data_directory")?;
    if !collector {
        return Err(Error::CannotMeasure(
            "logging_collector is off, so the server's log goes wherever its stderr does: give --log".into(),
        ));
    }
    let dir = PathBuf::from(&data).join(&directory);
    let has = |d: &str| destination.split(',').any(|x| x.trim() == d);
    let format = match format {
        Some(f) => f,
        None if has("jsonlog") => Format::Jsonlog,
        None if has("csvlog") => Format::Csvlog,
        None if has("stderr") => Format::Stderr,
        None => {
            return Err(Error::CannotMeasure(format!(
                "log_destination is '{destination}': no file log to read"
            )))
        }
    };
    Ok(ServerLog {
        dir,
        format,
        prefix: get(&row, "prefix")?,
    })
}

fn marks_from(snapshot: &Snapshot) -> Marks {
    let mut marks = Marks::new();
    for (name, value) in &snapshot.markers {
        let Some((dev, ino)) = name.split_once(':') else {
            continue;
        };
        let fields: Vec<u64> = value.split(' ').filter_map(|v| v.parse().ok()).collect();
        if let (&[offset, len, fingerprint], Ok(dev), Ok(ino)) =
            (&fields[..], dev.parse(), ino.parse())
        {
            marks.insert(
                (dev, ino),
                Mark {
                    offset,
                    fingerprint_len: len,
                    fingerprint,
                },
            );
        }
    }
    marks
}

fn snapshot_of(marks: &Marks) -> Snapshot {
    let mut s = Snapshot {
        taken_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        ..Snapshot::default()
    };
    for ((dev, ino), m) in marks {
        s.markers.insert(
            format!("{dev}:{ino}"),
            format!("{} {} {}", m.offset, m.fingerprint_len, m.fingerprint),
        );
    }
    s
}

impl Check for Log {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Count], Some(Unit::Count)).with_labels(&LABELS);
    const HINT: &'static str = "read the matching log lines (rerun with -v for samples) and start from the most frequent message; FATAL and PANIC lines come first";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  Ranges name the count they apply to, a bare range applies to errors:
    -w errors=50,auth_failures=3 -c errors=500,auth_failures=20
  Counts: lines errors fatals panics warnings auth_failures slow_statements
  deadlocks lock_waits temp_files checkpoint_warnings, over the entries
  logged since the previous run. Any PANIC is CRITICAL. The first run starts
  at the end of the existing logs (--from-start reads them whole).";
    type Args = Args;
    type Measured = Measured;

    /// `--log` with `--prefix`, or a csvlog or jsonlog, needs nothing of
    /// the server: the run reads the files and never connects (a log host).
    fn fetch_local(args: &Args, ctx: &Context) -> Option<Result<Self::Measured, Error>> {
        let self_contained = args.prefix.is_some()
            || matches!(args.log_format, Some(Format::Csvlog | Format::Jsonlog));
        if args.logs.is_empty() || !self_contained {
            return None;
        }
        let location = Location {
            inputs: args.logs.clone(),
            format: args.log_format,
            prefix: args.prefix.clone(),
        };
        Some(read(args, ctx, &location, None))
    }

    /// The server down or crash-looping is when its log matters most: the
    /// logs given, else those the last successful run found, are read all
    /// the same, and the run says the server was unreachable.
    fn fetch_unreachable(
        args: &Args,
        ctx: &Context,
        error: &Error,
    ) -> Option<Result<Self::Measured, Error>> {
        let remembered = location_store(args, ctx)
            .ok()
            .and_then(|store| recall(&store));
        let (location, source) = if args.logs.is_empty() {
            (remembered?, "the last successful run")
        } else {
            let location = Location {
                inputs: args.logs.clone(),
                format: args.log_format,
                prefix: args
                    .prefix
                    .clone()
                    .or_else(|| remembered.and_then(|r| r.prefix)),
            };
            (location, "--log")
        };
        let why = format!("server unreachable ({error}); log location from {source}");
        Some(read(args, ctx, &location, Some(why)))
    }

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        // Where: the given logs, or the server's
        let location = if args.logs.is_empty() {
            let server = server_log(db, args.log_format)?;
            Location {
                inputs: vec![server.dir],
                format: Some(server.format),
                prefix: Some(args.prefix.clone().unwrap_or(server.prefix)),
            }
        } else {
            let prefix = args.prefix.clone().or_else(|| {
                db.query_one("SELECT current_setting('log_line_prefix') AS prefix")
                    .ok()
                    .and_then(|row| get(&row, "prefix").ok())
            });
            Location {
                inputs: args.logs.clone(),
                format: args.log_format,
                prefix,
            }
        };
        // Kept for the runs that find the server down; written only when it
        // moved, not on every run.
        let store = location_store(args, ctx)?;
        if recall(&store).as_ref() != Some(&location) {
            store.save(&remember(&location))?;
        }
        read(args, ctx, &location, None)
    }
    /// Each count against the ranges that name it (a bare range applies to
    /// errors); any PANIC is CRITICAL.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (tally, read, t, verbose) = (&m.tally, &m.read, judging.thresholds, judging.verbose);
        let named: Vec<(&str, f64)> = LABELS.iter().map(|l| (*l, tally.count(l) as f64)).collect();
        let mut status = t.status_labeled(&[(Unit::Count, tally.count("errors") as f64)], &named);
        if tally.count("panics") > 0 {
            status = Status::Critical;
        }
        let mut summary = format!(
            "{} new entr{} in {} of {} file{} ({})",
            tally.count("lines"),
            if tally.count("lines") == 1 {
                "y"
            } else {
                "ies"
            },
            read.files_read,
            read.files,
            plural(read.files as i64),
            pretty_bytes(read.bytes as f64)
        );
        let noted: Vec<String> = LABELS[1..]
            .iter()
            .filter(|l| tally.count(l) > 0)
            .map(|l| {
                let n = tally.count(l);
                let name = l.replace('_', " ");
                // "1 deadlock", "2 deadlocks": every label is a plural.
                let name = if n == 1 {
                    name.trim_end_matches('s').to_string()
                } else {
                    name
                };
                format!("{n} {name}")
            })
            .collect();
        if !noted.is_empty() {
            summary.push_str(&format!(": {}", noted.join(", ")));
        }
        if let Some(note) = &read.note {
            summary.push_str(&format!("; {note}"));
        }
        if read.unreachable.is_some() {
            summary.push_str("; server unreachable, log read all the same");
        }
        let perf = LABELS.iter().map(|label| {
            let mut p = PerfData::new(*label, tally.count(label) as f64, Unit::Count).min(0.0);
            let bare = |r: Option<&pgvigil_kit::range::Range>| r.map(|r| r.to_perfdata());
            p.warning = bare(t.warning_for(label)).or_else(|| {
                (*label == "errors")
                    .then(|| bare(t.warning(Unit::Count)))
                    .flatten()
            });
            p.critical = bare(t.critical_for(label)).or_else(|| {
                (*label == "errors")
                    .then(|| bare(t.critical(Unit::Count)))
                    .flatten()
            });
            p
        });
        let mut lines: Vec<String> = read.unreachable.iter().cloned().collect();
        lines.extend(details(tally, verbose));
        CheckResult::new(status, summary).perf(perf).details(lines)
    }
}

/// Where a run reads: the paths, their format (None: by extension), and
/// the `log_line_prefix` of stderr logs (None: Debian's default).
#[derive(Debug, Clone, PartialEq)]
struct Location {
    inputs: Vec<PathBuf>,
    format: Option<Format>,
    prefix: Option<String>,
}

/// The state that remembers the last location found, per server.
fn location_store(args: &Args, ctx: &Context) -> Result<Store, Error> {
    let key = format!("{} {} log location", ctx.plugin, ctx.conn.target());
    Store::open(&args.state, &key, &|k| std::env::var(k).ok())
}

fn remember(location: &Location) -> Snapshot {
    let mut s = Snapshot::default();
    for (i, input) in location.inputs.iter().enumerate() {
        s.markers
            .insert(format!("input {i}"), input.display().to_string());
    }
    if let Some(format) = location.format.and_then(|f| f.to_possible_value()) {
        s.markers.insert("format".into(), format.get_name().into());
    }
    if let Some(prefix) = &location.prefix {
        s.markers.insert("prefix".into(), prefix.clone());
    }
    s
}

fn recall(store: &Store) -> Option<Location> {
    let Loaded::Found(s) = store.load() else {
        return None;
    };
    let mut inputs: Vec<(usize, PathBuf)> = s
        .markers
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("input ")?.parse().ok()?, PathBuf::from(v))))
        .collect();
    inputs.sort();
    let format = s
        .markers
        .get("format")
        .and_then(|f| Format::from_str(f, false).ok());
    (!inputs.is_empty()).then(|| Location {
        inputs: inputs.into_iter().map(|(_, p)| p).collect(),
        format,
        prefix: s.markers.get("prefix").cloned(),
    })
}

/// Reads what was logged at `location` since the previous run and judges
/// it; `unreachable` says why the server could not tell where it logs.
fn read(
    args: &Args,
    ctx: &Context,
    location: &Location,
    unreachable: Option<String>,
) -> Result<Measured, Error> {
    let Location {
        inputs,
        format,
        prefix,
    } = location;
    let prefix = Prefix::new(prefix.as_deref().unwrap_or(DEFAULT_PREFIX));
    let files = files::discover(inputs, *format)?;
    let key_inputs: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let key = format!(
        "{} {} {} {:?}",
        ctx.plugin,
        ctx.conn.target(),
        key_inputs.join(" "),
        format
    );
    let store = Store::open(&args.state, &key, &|k| std::env::var(k).ok())?;
    let (previous, note) = match store.load() {
        Loaded::Found(s) => (Some(marks_from(&s)), None),
        Loaded::Missing if args.from_start => {
            (None, Some("first run, read from the start".to_string()))
        }
        Loaded::Missing => (
            None,
            Some(
                "first run: reading starts at the end of the logs (--from-start reads them whole)"
                    .to_string(),
            ),
        ),
        Loaded::Unusable(why) => (
            None,
            Some(format!(
                "state file {} was unusable ({why}): reading starts at the end of the logs",
                store.file.display()
            )),
        ),
    };

    let mut tally = Tally::new(args.slow * 1000.0);
    let progress = files::read_new(&files, previous.as_ref(), args.from_start, &mut |e| {
        tally.add(&e, &prefix)
    })?;
    store.save(&snapshot_of(&progress.marks))?;
    let read = Read {
        files: files.len(),
        files_read: progress.files,
        bytes: progress.bytes,
        note,
        unreachable,
    };
    Ok(Measured { tally, read })
}

/// What a run counted, and how much it read.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub tally: Tally,
    pub read: Read,
}

/// How much of the logs this run read, and a note on where it started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Read {
    pub files: usize,
    pub files_read: usize,
    pub bytes: u64,
    pub note: Option<String>,
    /// Why the server could not be asked, and where the logs were found.
    pub unreachable: Option<String>,
}

/// Failed logins, the most frequent errors, the slowest statements; with -v
/// the busiest clients.
fn details(tally: &Tally, verbose: u8) -> Vec<String> {
    fn top<K: Clone + Ord>(map: &std::collections::HashMap<K, u64>, n: usize) -> Vec<(K, u64)> {
        let mut items: Vec<(K, u64)> = map.iter().map(|(k, v)| (k.clone(), *v)).collect();
        items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        items.truncate(n);
        items
    }
    let mut lines = Vec::new();
    for ((user, client), n) in top(&tally.logins, 5) {
        lines.push(format!("failed login: user {user} from {client}: {n}"));
    }
    for (message, n) in top(&tally.messages, 5) {
        lines.push(format!("{n} × {message}"));
    }
    for (ms, statement) in tally.slowest.iter().take(5) {
        lines.push(format!("slow: {ms} ms: {statement}"));
    }
    if verbose > 0 {
        for (client, n) in top(&tally.clients, 5) {
            lines.push(format!("client {client}: {n} connections"));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};
    use pgvigil_kit::Thresholds;

    fn judged(tally: &Tally, read: &Read, t: &Thresholds, verbose: u8) -> CheckResult {
        let m = Measured {
            tally: tally.clone(),
            read: read.clone(),
        };
        judge::<Log>(&m, &options(&[]), t, verbose)
    }

    /// A tally of these stderr lines, as the server writes them.
    fn tally(text: &str) -> Tally {
        let prefix = Prefix::new(DEFAULT_PREFIX);
        let mut tally = Tally::new(0.0);
        Format::Stderr.parse(text.as_bytes(), &mut |e| tally.add(&e, &prefix));
        tally
    }

    const ERRORS: &str = "\
2026-11-29 10:00:00.000 UTC [101] app@shop ERROR:  relation \"nope\" does not exist at character 15
2026-11-29 10:00:01.000 UTC [101] app@shop ERROR:  relation \"nope\" does not exist at character 15
2026-11-29 10:00:02.000 UTC [102] app@shop ERROR:  deadlock detected
2026-11-29 10:00:03.000 UTC [103] victim@shop FATAL:  password authentication failed for user \"victim\"
";

    fn read() -> Read {
        Read {
            files: 2,
            files_read: 1,
            bytes: 2048,
            note: None,
            unreachable: None,
        }
    }

    #[test]
    fn an_unreachable_server_is_said_and_the_entries_judged_as_ever() {
        let counted = tally(ERRORS);
        let down = Read {
            unreachable: Some(
                "server unreachable (cannot connect to /tmp:5432: no such file); log location from the last successful run".into(),
            ),
            ..read()
        };
        let t = thresholds::<Log>(Some("fatals=0"), None);
        let r = judged(&counted, &down, &t, 0);
        assert_eq!(r.status, Status::Warning);
        assert!(
            r.summary
                .ends_with("; server unreachable, log read all the same"),
            "{}",
            r.summary
        );
        assert!(r.details[0].starts_with("server unreachable (cannot connect to /tmp:5432"));
    }

    #[test]
    fn named_ranges_apply_to_their_count_and_bare_ones_to_errors() {
        let counted = tally(ERRORS);
        assert_eq!(counted.count("errors"), 3);
        let t = thresholds::<Log>(Some("3"), None);
        assert_eq!(judged(&counted, &read(), &t, 0).status, Status::Ok);
        let t = thresholds::<Log>(Some("errors=2"), None);
        assert_eq!(judged(&counted, &read(), &t, 0).status, Status::Warning);
        let t = thresholds::<Log>(Some("errors=50,auth_failures=0"), Some("deadlocks=0"));
        let r = reported::<Log>(judged(&counted, &read(), &t, 0));
        assert_eq!(r.status, Status::Critical);
        assert!(r.hint.unwrap().starts_with("read the matching log lines"));
        // No thresholds: counting only.
        assert_eq!(
            judged(&counted, &read(), &thresholds::<Log>(None, None), 0).status,
            Status::Ok
        );
    }

    #[test]
    fn the_line_counts_what_was_read_and_names_each_count() {
        let r = judged(
            &tally(ERRORS),
            &read(),
            &thresholds::<Log>(Some("errors=5"), None),
            0,
        );
        assert!(
            r.summary
                .starts_with("4 new entries in 1 of 2 files (2048 bytes): 3 errors, 1 fatal,"),
            "{}",
            r.summary
        );
        assert!(r.summary.contains("1 deadlock"), "{}", r.summary);
        assert!(
            perf(&r).contains(&"errors=3;5;;0".to_string()),
            "{:?}",
            perf(&r)
        );
        assert!(
            r.details.iter().any(|l| l.starts_with("2 × ")),
            "{:?}",
            r.details
        );
    }

    #[test]
    fn a_panic_is_critical_and_nothing_new_is_ok() {
        let panic = tally("2026-11-29 10:00:00.000 UTC [1] PANIC:  could not write to file \"pg_wal/xlogtemp.1\": No space left on device\n");
        let t = thresholds::<Log>(Some("errors=100"), Some("errors=1000"));
        assert_eq!(judged(&panic, &read(), &t, 0).status, Status::Critical);
        let first = Read {
            note: Some("first run, read from the start".into()),
            ..Read::default()
        };
        let r = judged(&tally(""), &first, &t, 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.summary,
            "0 new entries in 0 of 0 files (0 bytes); first run, read from the start"
        );
    }
}
