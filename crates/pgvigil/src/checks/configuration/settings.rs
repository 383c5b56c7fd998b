//! check_pg_settings: the server's configuration as the operator expects it:
//! settings waiting for a restart, settings that differ from `--expect`,
//! settings that put data at risk, and with `--changed` what changed since
//! the previous run.

use std::collections::BTreeMap;

use crate::check::{Check, Context, Judging};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::judge::Findings;
use pgvigil_kit::state::{Loaded, Snapshot, StateArgs};
use pgvigil_kit::words::count;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Settings;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Settings")]
pub struct Args {
    /// A setting and the value it should have, e.g. log_lock_waits=on or log_min_duration_statement=1s; units compare as PostgreSQL reads them (repeatable)
    #[arg(long = "expect", value_name = "NAME=VALUE", value_parser = parse_expect)]
    pub expect: Vec<(String, String)>,
    /// WARNING when settings changed since the previous run, naming old and new values (kept in a state file)
    #[arg(long)]
    pub changed: bool,
    /// A setting this check leaves alone (repeatable), e.g. fsync on a throwaway test server
    #[arg(long = "ignore", value_name = "NAME")]
    pub ignore: Vec<String>,
    #[command(flatten)]
    pub state: StateArgs,
}

fn parse_expect(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        }
        _ => Err(format!("'{text}' is not NAME=VALUE")),
    }
}

// pg_monitor's pg_read_all_settings shows every row; without it the
// superuser-only settings are missing from pg_settings.
const SQL: &str = "
SELECT name, setting, coalesce(unit, '') AS unit, vartype, pending_restart,
       source IN ('client', 'session') AS ours,
       pg_has_role(current_user, 'pg_read_all_settings', 'USAGE') AS reads_all
FROM pg_settings";

/// Settings whose `off` risks losing or corrupting data after a crash.
const UNSAFE_WHEN_OFF: [&str; 2] = ["fsync", "full_page_writes"];

/// What one run reads: every setting by name, whether the role reads them
/// all, and with --changed what the previous run kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub settings: BTreeMap<String, Setting>,
    pub reads_all: bool,
    pub user: String,
    pub previous: Option<Previous>,
}

/// The settings the previous run kept (`unit|value` by name), or why there
/// are none and this run is the baseline.
#[derive(Debug, Clone, PartialEq)]
pub enum Previous {
    Kept(BTreeMap<String, String>),
    Baseline(String),
}

/// One row of pg_settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Setting {
    pub value: String,
    pub unit: String,
    pub vartype: String,
    pub pending_restart: bool,
    /// Set by this session (statement_timeout from -t, application_name):
    /// not the server's configuration, so never a change.
    pub ours: bool,
}

impl Setting {
    /// The value as SHOW would print it, for messages: 1000 with unit ms is `1000ms`.
    /// As SHOW prints it: the largest unit that keeps a whole number
    /// (16384 pages of 8kB are `128MB`); -1 and other negatives bare.
    fn shown(&self) -> String {
        let (Some((kind, factor)), Ok(value)) =
            (setting_factor(&self.unit), self.value.parse::<f64>())
        else {
            return self.value.clone();
        };
        if value < 0.0 || value.fract() != 0.0 {
            return self.value.clone();
        }
        let total = value * factor;
        let units: &[&str] = if kind == "memory" {
            &["TB", "GB", "MB", "kB", "B"]
        } else {
            &["d", "h", "min", "s", "ms", "us"]
        };
        for unit in units {
            let (_, size) = unit_factor(unit).expect("known unit");
            if total >= size && (total / size).fract() == 0.0 {
                return format!("{}{unit}", total / size);
            }
        }
        format!("{}{}", self.value, self.unit)
    }
}

impl Check for Settings {
    const INTERVAL: u32 = 3600;
    const UNITS: UnitSpec = UnitSpec::of(&[], None);
    const HINT: &'static str = "compare with SELECT name, setting, unit, source, sourcefile, sourceline, pending_restart FROM pg_settings WHERE name IN (...); fix postgresql.conf or ALTER SYSTEM, then SELECT pg_reload_conf() (a pending restart needs a planned restart)";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c are not used: the findings decide. WARNING: a setting waits for a
  restart (pending_restart), differs from --expect, or changed since the
  previous run (--changed, reported once). CRITICAL: fsync or full_page_writes
  is off. --ignore NAME leaves a setting out of all of it.";
    type Args = Args;
    type Measured = Measured;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let measured = measure(db, ctx, args)?;
        expectations(&measured, args)?;
        Ok(measured)
    }

    /// fsync or full_page_writes off is CRITICAL; a pending restart, a setting
    /// that differs from --expect, or (with --changed) one that changed since
    /// the previous run is WARNING. An --expect naming no setting is a usage
    /// error, or a missing privilege when the role cannot read them all.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (args, verbose) = (judging.args, judging.verbose);
        let settings = &m.settings;
        let ignored = |name: &str| ignored(args, name);
        // What needs a restart, what differs, what is unsafe.
        let pending: Vec<&String> = settings
            .iter()
            .filter(|(name, s)| s.pending_restart && !ignored(name))
            .map(|(name, _)| name)
            .collect();
        let (matching, differing) = expectations(m, args).unwrap_or_default();
        let unsafe_off: Vec<&str> = UNSAFE_WHEN_OFF
            .iter()
            .copied()
            .filter(|name| !ignored(name))
            .filter(|name| settings.get(*name).is_some_and(|s| s.value == "off"))
            .collect();
        let (changes, baseline_note) = changes_since(m, args);

        let mut findings = Findings::new();
        findings.extend(unsafe_off.iter().map(|name| {
            (
                Status::Critical,
                format!("{name} is off: a crash may lose or corrupt data"),
            )
        }));
        findings.extend(differing.iter().map(|d| (Status::Warning, d.clone())));
        if !pending.is_empty() {
            let names: Vec<&str> = pending.iter().map(|n| n.as_str()).collect();
            findings.push(
                Status::Warning,
                format!(
                    "{} waiting for a restart: {}",
                    count(pending.len(), "setting"),
                    names.join(", ")
                ),
            );
        }
        // Many changes at once (a new postgresql.conf): the first few in the
        // summary, every one in the long output.
        const SHOWN_CHANGES: usize = 5;
        findings.extend(
            changes
                .iter()
                .take(SHOWN_CHANGES)
                .map(|c| (Status::Warning, c.clone())),
        );
        if changes.len() > SHOWN_CHANGES {
            findings.push(
                Status::Warning,
                format!(
                    "{} more settings changed (listed below)",
                    changes.len() - SHOWN_CHANGES
                ),
            );
        }
        let status = findings.worst();
        let mut summary = if findings.is_empty() {
            let mut text = format!("{} settings read", settings.len());
            if !args.expect.is_empty() {
                text.push_str(&format!(
                    ", {} as expected",
                    count(matching.len(), "setting")
                ));
            }
            text.push_str(", none waiting for a restart");
            text
        } else {
            findings.texts().join("; ")
        };
        if let Some(note) = &baseline_note {
            summary.push_str(&format!("; {note}"));
        }
        let mut details = Vec::new();
        if !m.reads_all {
            details.push(format!(
                    "role \"{}\" lacks pg_read_all_settings (part of pg_monitor): superuser-only settings are not checked",
                    m.user
                ));
        }
        if changes.len() > SHOWN_CHANGES {
            details.extend(changes.iter().cloned());
        }
        if verbose > 0 {
            details.extend(matching);
        }
        let mut perfdata = vec![
            PerfData::new("pending_restart", pending.len() as f64, Unit::Count).min(0.0),
            PerfData::new("unexpected", differing.len() as f64, Unit::Count).min(0.0),
            PerfData::new("unsafe", unsafe_off.len() as f64, Unit::Count).min(0.0),
        ];
        if args.changed {
            perfdata.push(PerfData::new("changed", changes.len() as f64, Unit::Count).min(0.0));
        }
        CheckResult::new(status, summary)
            .perf(perfdata)
            .details(details)
    }
}

/// With --changed: each setting changed, appeared or gone since the previous
/// run; or, on a first run, the note that says so.
fn changes_since(m: &Measured, args: &Args) -> (Vec<String>, Option<String>) {
    let before = match &m.previous {
        Some(Previous::Baseline(why)) => return (Vec::new(), Some(why.clone())),
        Some(Previous::Kept(before)) => before,
        None => return (Vec::new(), None),
    };
    let mut changes = Vec::new();
    let now = kept(&m.settings, args);
    for (name, value) in &now {
        match before.get(name) {
            Some(old) if old != value => changes.push(format!(
                "{name} changed from {} to {}",
                shown_raw(old),
                shown_raw(value)
            )),
            None if !before.is_empty() => {
                changes.push(format!("{name} appeared ({})", shown_raw(value)))
            }
            _ => {}
        }
    }
    // A setting ignored since, or set by this session, is not gone.
    for (name, old) in before {
        if !now.contains_key(name) && !m.settings.contains_key(name) {
            changes.push(format!("{name} is gone (was {})", shown_raw(old)));
        }
    }
    (changes, None)
}

fn measure(db: &mut Session, ctx: &Context, args: &Args) -> Result<Measured, Error> {
    let mut m = Measured {
        reads_all: true,
        user: ctx.conn.user.clone(),
        ..Measured::default()
    };
    for row in &db.query(SQL)? {
        m.reads_all = get(row, "reads_all")?;
        m.settings.insert(
            get(row, "name")?,
            Setting {
                value: get::<Option<String>>(row, "setting")?.unwrap_or_default(),
                unit: get(row, "unit")?,
                vartype: get(row, "vartype")?,
                pending_restart: get(row, "pending_restart")?,
                ours: get(row, "ours")?,
            },
        );
    }
    // Since the previous run: each setting's value, kept as a marker.
    if args.changed {
        let store = ctx.state_store(&args.state)?;
        m.previous = Some(match store.load() {
            Loaded::Found(s) => Previous::Kept(s.markers),
            Loaded::Missing => Previous::Baseline("first run, settings saved".to_string()),
            Loaded::Unusable(why) => {
                Previous::Baseline(format!("state file unusable ({why}), settings saved"))
            }
        });
        store.save(&Snapshot {
            markers: kept(&m.settings, args),
            ..Snapshot::default()
        })?;
    }
    Ok(m)
}

fn ignored(args: &Args, name: &str) -> bool {
    args.ignore.iter().any(|i| i.eq_ignore_ascii_case(name))
}

/// What a run keeps for the next: raw (unit, then value as pg_settings has
/// it), so that how values are shown may change without every setting
/// looking changed; neither ignored settings nor this session's own.
fn kept(settings: &BTreeMap<String, Setting>, args: &Args) -> BTreeMap<String, String> {
    settings
        .iter()
        .filter(|(name, s)| !ignored(args, name) && !s.ours)
        .map(|(name, s)| (name.clone(), format!("{}|{}", s.unit, s.value)))
        .collect()
}

/// Each `--expect` against the server's value: those that hold, then those
/// that differ. A name the server does not have is a usage error, or a
/// missing privilege when the role cannot read every setting; a value that
/// cannot be compared is a usage error. `fetch` raises these, so the judge
/// never meets them.
fn expectations(m: &Measured, args: &Args) -> Result<(Vec<String>, Vec<String>), Error> {
    let settings = &m.settings;
    let mut differing = Vec::new();
    let mut matching = Vec::new();
    for (name, wanted) in &args.expect {
        let Some(setting) = settings.get(name) else {
            return Err(if m.reads_all {
                Error::Usage(format!("--expect {name}: no such setting"))
            } else {
                Error::Privilege(format!(
                    "--expect {name}: role \"{}\" cannot read that setting: it needs pg_read_all_settings, part of pg_monitor",
                    m.user
                ))
            });
        };
        if ignored(args, name) {
            continue;
        }
        let same = same_value(wanted, setting)
            .map_err(|why| Error::Usage(format!("--expect {name}={wanted}: {why}")))?;
        if same {
            matching.push(format!("{name} is {} as expected", setting.shown()));
        } else {
            differing.push(format!("{name} is {} (expected {wanted})", setting.shown()));
        }
    }
    Ok((matching, differing))
}

/// A kept `unit|value` as SHOW would print it.
fn shown_raw(kept: &str) -> String {
    let (unit, value) = kept.split_once('|').unwrap_or(("", kept));
    Setting {
        value: value.to_string(),
        unit: unit.to_string(),
        vartype: String::new(),
        pending_restart: false,
        ours: false,
    }
    .shown()
}

/// Whether `wanted` is the setting's value once both are read the way
/// PostgreSQL reads them: units converted to the setting's own, booleans
/// by any of their spellings, enums without regard to case.
pub fn same_value(wanted: &str, setting: &Setting) -> Result<bool, String> {
    match setting.vartype.as_str() {
        "bool" => {
            let want =
                parse_bool(wanted).ok_or("not a boolean (on, off, true, false, yes, no, 1, 0)")?;
            Ok(parse_bool(&setting.value) == Some(want))
        }
        "integer" | "real" => {
            let want = parse_number(wanted, &setting.unit)?;
            let have: f64 = setting
                .value
                .parse()
                .map_err(|_| format!("the server's value '{}' is not a number", setting.value))?;
            let want = if setting.vartype == "integer" {
                want.round()
            } else {
                want
            };
            Ok((want - have).abs() <= 1e-9 * have.abs().max(1.0))
        }
        "enum" => Ok(wanted.eq_ignore_ascii_case(&setting.value)),
        _ => Ok(wanted == setting.value),
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "t" | "y" => Some(true),
        "off" | "false" | "no" | "0" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// A number with an optional unit, in the setting's unit: `1s` for a
/// setting in ms is 1000, `128MB` for one in 8kB pages is 16384. The
/// answer is finite, or the text is refused.
pub fn parse_number(text: &str, setting_unit: &str) -> Result<f64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("'{text}' is not a number"))?;
    let unit = unit.trim();
    if unit.is_empty() {
        return Ok(value);
    }
    let (kind, factor) = unit_factor(unit).ok_or_else(|| {
        format!("unknown unit '{unit}' (PostgreSQL's: B kB MB GB TB, us ms s min h d)")
    })?;
    let (base_kind, base_factor) = setting_factor(setting_unit)
        .ok_or_else(|| format!("the setting takes no unit, '{unit}' was given"))?;
    if kind != base_kind {
        return Err(format!(
            "'{unit}' is a {kind} unit, the setting is in {setting_unit}"
        ));
    }
    let value = value * factor / base_factor;
    if !value.is_finite() {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(value)
}

/// A unit as PostgreSQL spells it (case-sensitive, as in postgresql.conf),
/// in bytes or microseconds.
fn unit_factor(unit: &str) -> Option<(&'static str, f64)> {
    const K: f64 = 1024.0;
    Some(match unit {
        "B" => ("memory", 1.0),
        "kB" => ("memory", K),
        "MB" => ("memory", K * K),
        "GB" => ("memory", K * K * K),
        "TB" => ("memory", K * K * K * K),
        "us" => ("time", 1.0),
        "ms" => ("time", 1e3),
        "s" => ("time", 1e6),
        "min" => ("time", 60e6),
        "h" => ("time", 3600e6),
        "d" => ("time", 86400e6),
        _ => return None,
    })
}

/// pg_settings.unit, which may carry a multiple (`8kB`, `16MB`).
fn setting_factor(unit: &str) -> Option<(&'static str, f64)> {
    let split = unit
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(unit.len());
    let (count, unit) = unit.split_at(split);
    let count: f64 = if count.is_empty() {
        1.0
    } else {
        count.parse().ok()?
    };
    let (kind, factor) = unit_factor(unit)?;
    Some((kind, count * factor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, thresholds};

    fn setting(value: &str, unit: &str, vartype: &str) -> Setting {
        Setting {
            value: value.into(),
            unit: unit.into(),
            vartype: vartype.into(),
            pending_restart: false,
            ours: false,
        }
    }

    #[test]
    fn units_compare_as_postgresql_reads_them() {
        let ms = setting("1000", "ms", "integer");
        assert_eq!(same_value("1s", &ms), Ok(true));
        assert_eq!(same_value("1000ms", &ms), Ok(true));
        assert_eq!(same_value("1000", &ms), Ok(true));
        assert_eq!(same_value("2s", &ms), Ok(false));
        let pages = setting("16384", "8kB", "integer");
        assert_eq!(same_value("128MB", &pages), Ok(true));
        assert_eq!(same_value("131072kB", &pages), Ok(true));
        assert!(same_value("1s", &pages).is_err());
        assert!(same_value("1XB", &pages).is_err());
        let minutes = setting("5", "min", "integer");
        assert_eq!(same_value("300s", &minutes), Ok(true));
        let plain = setting("100", "", "integer");
        assert!(same_value("100MB", &plain).is_err());
        assert_eq!(same_value("100", &plain), Ok(true));
        let real = setting("0.9", "", "real");
        assert_eq!(same_value("0.90", &real), Ok(true));
    }

    #[test]
    fn values_are_shown_as_show_prints_them() {
        assert_eq!(setting("16384", "8kB", "integer").shown(), "128MB");
        assert_eq!(setting("4096", "kB", "integer").shown(), "4MB");
        assert_eq!(setting("1000", "ms", "integer").shown(), "1s");
        assert_eq!(setting("1500", "ms", "integer").shown(), "1500ms");
        assert_eq!(setting("-1", "ms", "integer").shown(), "-1");
        assert_eq!(setting("0", "ms", "integer").shown(), "0ms");
        assert_eq!(setting("300", "s", "integer").shown(), "5min");
        assert_eq!(setting("on", "", "bool").shown(), "on");
    }

    #[test]
    fn booleans_enums_and_strings() {
        let on = setting("on", "", "bool");
        assert_eq!(same_value("on", &on), Ok(true));
        assert_eq!(same_value("true", &on), Ok(true));
        assert_eq!(same_value("OFF", &on), Ok(false));
        assert!(same_value("maybe", &on).is_err());
        let level = setting("replica", "", "enum");
        assert_eq!(same_value("REPLICA", &level), Ok(true));
        let prefix = setting("%m [%p] ", "", "string");
        assert_eq!(same_value("%m [%p] ", &prefix), Ok(true));
        assert_eq!(same_value("%m", &prefix), Ok(false));
    }

    #[test]
    fn expect_needs_a_name_and_a_value() {
        assert_eq!(
            parse_expect("Log_Lock_Waits=on"),
            Ok(("log_lock_waits".into(), "on".into()))
        );
        assert_eq!(parse_expect("x="), Ok(("x".into(), "".into())));
        assert!(parse_expect("=on").is_err());
        assert!(parse_expect("novalue").is_err());
    }

    fn measured(extra: &[(&str, Setting)]) -> Measured {
        let mut settings: BTreeMap<String, Setting> = [
            ("fsync", setting("on", "", "bool")),
            ("full_page_writes", setting("on", "", "bool")),
            ("log_lock_waits", setting("off", "", "bool")),
            ("shared_buffers", setting("16384", "8kB", "integer")),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
        for (name, s) in extra {
            settings.insert(name.to_string(), s.clone());
        }
        Measured {
            settings,
            reads_all: true,
            user: "nagios".into(),
            previous: None,
        }
    }

    fn args(expect: &[(&str, &str)], ignore: &[&str], changed: bool) -> Args {
        Args {
            expect: expect
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            changed,
            ignore: ignore.iter().map(|s| s.to_string()).collect(),
            state: StateArgs::default(),
        }
    }

    #[test]
    fn findings_decide_worst_first() {
        use crate::checks::testing::{perf, reported};
        let r = judge::<Settings>(
            &measured(&[]),
            &args(&[], &[], false),
            &thresholds::<Settings>(None, None),
            0,
        );
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.summary, "4 settings read, none waiting for a restart");
        let mut pending = setting("on", "", "bool");
        pending.pending_restart = true;
        let m = measured(&[
            ("fsync", setting("off", "", "bool")),
            ("wal_level", pending),
        ]);
        let a = args(
            &[("log_lock_waits", "on"), ("shared_buffers", "128MB")],
            &[],
            false,
        );
        let r = reported::<Settings>(judge::<Settings>(
            &m,
            &a,
            &thresholds::<Settings>(None, None),
            1,
        ));
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "fsync is off: a crash may lose or corrupt data; log_lock_waits is off (expected on); 1 setting waiting for a restart: wal_level"
        );
        assert_eq!(r.details, ["shared_buffers is 128MB as expected"]);
        assert_eq!(
            perf(&r),
            ["pending_restart=1;;;0", "unexpected=1;;;0", "unsafe=1;;;0"]
        );
        assert!(r
            .hint
            .unwrap()
            .starts_with("compare with SELECT name, setting"));
        // --ignore leaves a setting out of all of it.
        let r = judge::<Settings>(
            &m,
            &args(&[], &["fsync", "wal_level"], false),
            &thresholds::<Settings>(None, None),
            0,
        );
        assert_eq!(r.status, Status::Ok);
    }

    #[test]
    fn expecting_an_unknown_setting_is_an_error_naming_why() {
        let a = args(&[("no_such", "1")], &[], false);
        assert_eq!(
            expectations(&measured(&[]), &a).unwrap_err(),
            Error::Usage("--expect no_such: no such setting".into())
        );
        let mut blind = measured(&[]);
        blind.reads_all = false;
        assert!(matches!(expectations(&blind, &a), Err(Error::Privilege(_))));
        let bad = args(&[("shared_buffers", "1s")], &[], false);
        assert!(matches!(
            expectations(&measured(&[]), &bad),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn changes_since_the_previous_run_warn_once() {
        let a = args(&[], &[], true);
        let mut m = measured(&[]);
        m.previous = Some(Previous::Baseline("first run, settings saved".into()));
        let r = judge::<Settings>(&m, &a, &thresholds::<Settings>(None, None), 0);
        assert_eq!(r.status, Status::Ok);
        assert!(r.summary.ends_with("; first run, settings saved"));
        let mut before = kept(&m.settings, &a);
        before.insert("shared_buffers".into(), "8kB|8192".into());
        before.insert("old_setting".into(), "|x".into());
        before.remove("log_lock_waits");
        m.previous = Some(Previous::Kept(before));
        let r = judge::<Settings>(&m, &a, &thresholds::<Settings>(None, None), 0);
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "log_lock_waits appeared (off); shared_buffers changed from 64MB to 128MB; old_setting is gone (was x)"
        );
        let unchanged = Measured {
            previous: Some(Previous::Kept(kept(&m.settings, &a))),
            ..m
        };
        assert_eq!(
            judge::<Settings>(&unchanged, &a, &thresholds::<Settings>(None, None), 0).status,
            Status::Ok
        );
    }
}
