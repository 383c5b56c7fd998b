//! The state store: what a plugin remembers between two runs, one small file
//! per check and target on the node that runs the check.
//!
//! A file is written whole to a temporary name and renamed over the old one,
//! so concurrent runs of the same service never leave a torn or interleaved
//! file: the last writer wins. A file that cannot be read back for any reason
//! is a first run with a note, never an UNKNOWN that repeats forever.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;

const MAGIC: &str = "pgvigil-state 1";
const SYSTEM_DIR: &str = "/var/lib/pgvigil";

#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "State between runs")]
pub struct StateArgs {
    /// Directory for the state kept between runs [default: PGVIGIL_STATE_DIR, else NAGIOS_PLUGIN_STATE_DIRECTORY, else /var/lib/pgvigil when writable, else ~/.local/state/pgvigil]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// What one run leaves for the next: when it measured (server clock), what
/// identifies the statistics it read (server start, stats_reset), and the
/// counters themselves.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub key: String,
    pub taken_at: f64,
    pub markers: BTreeMap<String, String>,
    pub counters: BTreeMap<String, f64>,
    /// Values that may go down as well as up (sizes): never a reset sign.
    pub gauges: BTreeMap<String, f64>,
}

/// Where a check's state lives.
#[derive(Debug, Clone)]
pub struct Store {
    pub dir: PathBuf,
    pub file: PathBuf,
    key: String,
}

/// The previous snapshot, or why there is none to use.
#[derive(Debug, PartialEq)]
pub enum Loaded {
    Found(Snapshot),
    Missing,
    /// Unreadable, truncated, corrupt, another version or another target.
    Unusable(String),
}

impl Store {
    /// The store for `key` (check, server, database and the options that
    /// change what is counted), in the directory the options and environment
    /// name. A directory named explicitly that cannot be used is an error.
    pub fn open(
        args: &StateArgs,
        key: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Store, Error> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let named = args
            .state_dir
            .clone()
            .or_else(|| env("PGVIGIL_STATE_DIR").map(PathBuf::from))
            .or_else(|| env("NAGIOS_PLUGIN_STATE_DIRECTORY").map(PathBuf::from));
        let dir = match named {
            Some(dir) => {
                ensure_writable(&dir)?;
                dir
            }
            None => {
                let system = PathBuf::from(SYSTEM_DIR);
                if ensure_writable(&system).is_ok() {
                    system
                } else {
                    let user = match env("XDG_STATE_HOME") {
                        Some(dir) => PathBuf::from(dir).join("pgvigil"),
                        None => match env("HOME") {
                            Some(home) => PathBuf::from(home).join(".local/state/pgvigil"),
                            None => {
                                return Err(Error::State(format!(
                                    "{SYSTEM_DIR} is not writable and there is no HOME: give --state-dir"
                                )))
                            }
                        },
                    };
                    ensure_writable(&user)?;
                    user
                }
            }
        };
        let file = dir.join(file_name(key));
        Ok(Store {
            dir,
            file,
            key: key.to_string(),
        })
    }

    /// The previous run's snapshot for this key.
    pub fn load(&self) -> Loaded {
        let text = match fs::read(&self.file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
            Err(e) => return Loaded::Unusable(format!("cannot read it: {e}")),
        };
        let Ok(text) = String::from_utf8(text) else {
            return Loaded::Unusable("it is not text".into());
        };
        match parse(&text) {
            Ok(snapshot) if snapshot.key == self.key => Loaded::Found(snapshot),
            Ok(_) => Loaded::Unusable("it belongs to another check or server".into()),
            Err(why) => Loaded::Unusable(why),
        }
    }

    /// Replaces the stored snapshot atomically: a temporary file of this
    /// process, mode 0600, renamed over the old one.
    pub fn save(&self, snapshot: &Snapshot) -> Result<(), Error> {
        let mut snapshot = snapshot.clone();
        snapshot.key = self.key.clone();
        let text = render(&snapshot);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let temp = self.dir.join(format!(
            ".{}.{}.{nanos}.tmp",
            self.file.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let failed = |e: std::io::Error| {
            let _ = fs::remove_file(&temp);
            Error::State(format!(
                "cannot write state file {}: {e}",
                self.file.display()
            ))
        };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(failed)?;
        // No fsync: it cost every stateful run about 0.6 ms of waiting on
        // the disk, and what a crash of the machine can cost instead (an
        // older or unreadable file) is a first run with a note.
        file.write_all(text.as_bytes()).map_err(failed)?;
        drop(file);
        fs::rename(&temp, &self.file).map_err(failed)
    }
}

/// Creates `dir` (mode 0700) if needed and proves it writable by creating a
/// file in it: permission bits alone do not tell (read-only mounts, ACLs).
/// A directory others may write to is refused: anyone could plant or swap
/// the files a check trusts for its rates.
fn ensure_writable(dir: &Path) -> Result<(), Error> {
    let bad = |e: std::io::Error| {
        Error::State(format!(
            "state directory {} is not usable: {e}",
            dir.display()
        ))
    };
    if !dir.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(bad)?;
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(dir).map_err(bad)?.permissions().mode();
    if mode & 0o002 != 0 {
        return Err(Error::State(format!(
            "state directory {} is writable by every user (mode {:o}): give a directory of the monitoring user's own (mode 0700)",
            dir.display(),
            mode & 0o7777
        )));
    }
    let probe = dir.join(format!(".probe.{}", std::process::id()));
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&probe)
        .map_err(bad)?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// `check_pg_deadlocks-socket_tmp_5432-postgres-1f2e3d4c5b6a7988.state`: the
/// readable part for people, the hash of the whole key against collisions.
fn file_name(key: &str) -> String {
    let readable: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let readable: String = readable.chars().take(80).collect();
    format!("{readable}-{:016x}.state", fnv1a(key.as_bytes()))
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn render(s: &Snapshot) -> String {
    let mut text = format!("{MAGIC}\nkey\t{}\nat\t{}\n", escape(&s.key), s.taken_at);
    for (name, value) in &s.markers {
        text.push_str(&format!("marker\t{}\t{}\n", escape(name), escape(value)));
    }
    for (name, value) in &s.counters {
        text.push_str(&format!("counter\t{}\t{value}\n", escape(name)));
    }
    for (name, value) in &s.gauges {
        text.push_str(&format!("gauge\t{}\t{value}\n", escape(name)));
    }
    text.push_str("end\n");
    text
}

/// Reads a rendered snapshot back; anything unexpected is a reason, never a panic.
pub fn parse(text: &str) -> Result<Snapshot, String> {
    let mut lines = text.split('\n');
    match lines.next() {
        Some(MAGIC) => {}
        Some(l) if l.starts_with("pgvigil-state ") => {
            return Err(format!("it has another format version ({l})"))
        }
        _ => return Err("it is not a pgvigil state file".into()),
    }
    let mut snapshot = Snapshot::default();
    let (mut has_key, mut has_at, mut ended) = (false, false, false);
    for (number, line) in lines.enumerate() {
        if ended {
            if line.is_empty() {
                continue;
            }
            return Err(format!("it has data after its end (line {})", number + 2));
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let bad = || format!("line {} is malformed", number + 2);
        match fields.as_slice() {
            ["key", key] => {
                snapshot.key = unescape(key);
                has_key = true;
            }
            ["at", at] => {
                snapshot.taken_at = at
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite())
                    .ok_or_else(bad)?;
                has_at = true;
            }
            ["marker", name, value] => {
                snapshot.markers.insert(unescape(name), unescape(value));
            }
            [kind @ ("counter" | "gauge"), name, value] => {
                let value: f64 = value
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite())
                    .ok_or_else(bad)?;
                let map = if *kind == "counter" {
                    &mut snapshot.counters
                } else {
                    &mut snapshot.gauges
                };
                map.insert(unescape(name), value);
            }
            ["end"] => ended = true,
            _ => return Err(bad()),
        }
    }
    if !ended {
        return Err("it is truncated".into());
    }
    if !has_key || !has_at {
        return Err("it lacks its key or time".into());
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let mut s = Snapshot {
            key: "check_pg_deadlocks\tsocket /tmp\n5432".into(),
            taken_at: 1764111111.25,
            ..Snapshot::default()
        };
        s.markers
            .insert("postmaster".into(), "2026-11-25 10:00:00+00".into());
        s.markers.insert("reset db\\1".into(), "".into());
        s.counters.insert("app/deadlocks".into(), 3.0);
        s.counters.insert("big".into(), 9.007199254740991e15);
        s.gauges.insert("app/size".into(), 8192.0);
        s
    }

    #[test]
    fn a_snapshot_round_trips() {
        let s = snapshot();
        assert_eq!(parse(&render(&s)), Ok(s));
    }

    #[test]
    fn truncated_corrupt_and_foreign_files_are_reasons() {
        let text = render(&snapshot());
        for cut in 0..text.len() - 1 {
            assert!(parse(&text[..cut]).is_err(), "accepted a cut at {cut}");
        }
        assert_eq!(
            parse("pgvigil-state 9\n"),
            Err("it has another format version (pgvigil-state 9)".into())
        );
        assert!(parse("garbage").is_err());
        let bad = text.replace("\t3\n", "\tthree\n");
        assert!(parse(&bad).unwrap_err().contains("malformed"), "{bad}");
        assert!(parse(&text.replace("\t3\n", "\tNaN\n")).is_err());
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        let a = file_name("check_pg_deadlocks /tmp/../etc 5432 postgres");
        let b = file_name("check_pg_deadlocks /tmp/../etc 5432 postgres2");
        assert!(!a.contains('/') && !a.contains(".."), "{a}");
        assert_ne!(a, b);
        assert!(
            a.starts_with("check_pg_deadlocks-tmp-etc-5432-postgres-"),
            "{a}"
        );
    }

    #[test]
    fn save_then_load_in_a_fresh_directory() {
        let dir = std::env::temp_dir().join(format!("pgvigil-state-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let args = StateArgs {
            state_dir: Some(dir.join("nested")),
        };
        let store = Store::open(&args, "k", &|_| None).unwrap();
        assert_eq!(store.load(), Loaded::Missing);
        let mut s = snapshot();
        store.save(&s).unwrap();
        s.key = "k".into();
        assert_eq!(store.load(), Loaded::Found(s));
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&store.file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = Store::open(&args, "other", &|_| None).unwrap();
        fs::copy(&store.file, &other.file).unwrap();
        assert!(matches!(other.load(), Loaded::Unusable(_)));
        fs::remove_dir_all(&dir).unwrap();
    }
}
