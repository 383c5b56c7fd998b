//! check_pg_health: several of the suite's checks in one run over one
//! session, reported as one result: a whole health check as one service.

use crate::check::Prepared;
use crate::check::{Check, Context, Judging};
use crate::session::Session;
use pgvigil_kit::judge::{worst, worst_first};
use pgvigil_kit::output::Part;
use pgvigil_kit::words::plural;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Thresholds, UnitSpec};

/// A combined run over the checks `P` offers: the registry, which lists
/// this check among the others, hands itself in, so this module needs no
/// import of it.
pub struct Health<P>(std::marker::PhantomData<P>);

/// The checks a combined run may name.
pub trait Parts {
    /// Their names, for the error that names an unknown one.
    fn names() -> Vec<&'static str>;
    /// Check `name` with its options parsed; None when there is no such check.
    fn prepare(name: &str, argv: &[String]) -> Option<Result<Prepared, Error>>;
}

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Checks")]
pub struct Args {
    /// A check and its options exactly as its plugin takes them, e.g. 'connections -w 80% -c 90%' (repeatable; default: alive, connections, replication_lag, disk, long_running, locks, archiver)
    #[arg(long = "check", value_name = "'CHECK [OPTIONS]'")]
    checks: Vec<String>,
}

/// postgres_health_check.sh's questions, in its order.
const DEFAULT_CHECKS: &[&str] = &[
    "alive",
    "connections",
    "replication_lag",
    "disk",
    "long_running",
    "locks",
    "archiver",
];

impl<P: Parts> Check for Health<P> {
    const COMBINES: bool = true;
    const UNITS: UnitSpec = UnitSpec::of(&[], None);
    const HINT: &'static str = "look at the checks named above first, worst first";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  check_pg_health takes no -w/-c of its own: each --check carries its own, as
  its plugin does, and leaves them out for that plugin's defaults.
  Disk is skipped, with a note, when the server is not on this machine and
  the list is the default one.";
    type Args = Args;
    type Measured = Combined;

    fn validate(args: &Args, _thresholds: &Thresholds) -> Result<(), Error> {
        prepare_all::<P>(args, None).map(|_| ())
    }

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Combined, Error> {
        // Query: the checks, their options parsed.
        let hosts = ctx.conn.hosts();
        let remote = hosts.iter().find(|h| !crate::filesystem::is_local_host(h));
        let (prepared, skipped) = prepare_all::<P>(args, remote.map(String::as_str))?;

        // Each check in turn on the one session.
        let mut combined = Combined {
            skipped,
            ..Combined::default()
        };
        for (check, part) in prepared {
            if db.is_closed() {
                combined.not_run.push(check);
                continue;
            }
            let result = part(db, ctx);
            combined.parts.push(Part { check, result });
        }
        combined.lost = db.is_closed();
        Ok(combined)
    }

    fn judge(combined: &Combined, judging: &Judging<Args>) -> CheckResult {
        roll_up(combined, judging.verbose)
    }
}

/// What a combined run gathered: each check's own result, the checks not
/// run because the session was lost, and those skipped with the reason.
#[derive(Debug, Clone, Default)]
pub struct Combined {
    pub parts: Vec<Part>,
    pub not_run: Vec<String>,
    pub skipped: Vec<String>,
    /// The server closed the session midway.
    pub lost: bool,
}

/// The worst state of the checks (CRITICAL when the session was lost); the
/// non-OK checks first in the line and in the hint, then one line per check.
pub fn roll_up(c: &Combined, verbose: u8) -> CheckResult {
    let Combined {
        parts,
        not_run,
        skipped,
        lost,
    } = c;
    let status = if *lost {
        Status::Critical
    } else {
        worst(parts.iter().map(|p| p.result.status))
    };
    let mut alerts: Vec<&Part> = parts
        .iter()
        .filter(|p| p.result.status != Status::Ok)
        .collect();
    worst_first(&mut alerts, |p| p.result.status);
    let ok = parts.len() - alerts.len();
    let mut summary: Vec<String> = alerts
        .iter()
        .map(|p| format!("{} {}: {}", p.check, p.result.status, p.result.summary))
        .collect();
    if *lost {
        summary.insert(0, "the server closed the connection".into());
    }
    summary.push(if alerts.is_empty() {
        let names: Vec<&str> = parts.iter().map(|p| p.check.as_str()).collect();
        format!("{ok} check{} OK ({})", plural(ok as i64), names.join(", "))
    } else {
        format!("{ok} check{} OK", plural(ok as i64))
    });
    summary.extend(skipped.iter().cloned());

    let mut details = Vec::new();
    for part in parts {
        details.push(format!(
            "[{}] {}: {}",
            part.result.status, part.check, part.result.summary
        ));
        if verbose > 0 {
            details.extend(part.result.details.iter().map(|d| format!("  {d}")));
        }
    }
    details.extend(
        not_run
            .iter()
            .map(|c| format!("[UNKNOWN] {c}: not run, the connection was lost")),
    );
    details.extend(skipped.iter().cloned());

    let perfdata: Vec<PerfData> = parts
        .iter()
        .flat_map(|part| {
            part.result.perfdata.iter().map(|p| PerfData {
                label: format!("{}::{}", part.check, p.label),
                ..p.clone()
            })
        })
        .collect();
    let hints: Vec<String> = alerts
        .iter()
        .filter_map(|p| Some(format!("[{}] {}", p.check, p.result.hint.as_deref()?)))
        .collect();
    let mut result = CheckResult::new(status, summary.join("; "))
        .perf(perfdata)
        .details(details);
    if *lost {
        result.hint = Error::Lost {
            target: String::new(),
            reason: String::new(),
        }
        .hint("check_pg_health");
    } else if !hints.is_empty() {
        result.hint = Some(hints.join(" "));
    }
    result.parts = parts.clone();
    result
}

/// A check ready to run, by the name its output carries.
type Named = (String, Prepared);

/// Every `--check` (or the default list) parsed by its plugin's parser. In
/// the default list, disk is skipped when the server is on `remote`.
fn prepare_all<P: Parts>(
    args: &Args,
    remote: Option<&str>,
) -> Result<(Vec<Named>, Vec<String>), Error> {
    let defaults = args.checks.is_empty();
    let specs: Vec<String> = if defaults {
        DEFAULT_CHECKS.iter().map(|c| c.to_string()).collect()
    } else {
        args.checks.clone()
    };
    let mut skipped = Vec::new();
    let mut prepared = Vec::new();
    for spec in &specs {
        let words =
            split_words(spec).map_err(|why| Error::Usage(format!("--check '{spec}': {why}")))?;
        let Some((name, argv)) = words.split_first() else {
            return Err(Error::Usage("--check '' names no check".into()));
        };
        let name = name.trim_start_matches("check_pg_");
        if defaults && name == "disk" {
            if let Some(host) = remote {
                skipped.push(format!("disk skipped: {host} is not this machine"));
                continue;
            }
        }
        let part = P::prepare(name, argv).ok_or_else(|| {
            Error::Usage(format!(
                "--check '{spec}': no check '{name}' (known: {})",
                P::names().join(", ")
            ))
        })??;
        prepared.push((part_name(name, &prepared), part));
    }
    Ok((prepared, skipped))
}

/// `query`, then `query_2` for the second query check, so perfdata labels
/// and JSON entries stay apart.
fn part_name<T>(name: &str, earlier: &[(String, T)]) -> String {
    let same = earlier
        .iter()
        .filter(|(n, _)| n == name || n.starts_with(&format!("{name}_")))
        .count();
    if same == 0 {
        name.to_string()
    } else {
        format!("{name}_{}", same + 1)
    }
}

/// Splits a `--check` value into words as a POSIX shell would: blanks
/// separate, single quotes keep everything, double quotes keep all but `\"`
/// and `\\`, a backslash outside quotes escapes the next character.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("a backslash ends the value".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgvigil_kit::Unit;

    fn part(check: &str, status: Status, hint: Option<&str>) -> Part {
        let mut result = CheckResult::new(status, format!("{check} said so"))
            .perf([PerfData::new("n", 1.0, Unit::Count)])
            .details([format!("{check} detail")]);
        result.hint = hint.map(str::to_string);
        Part {
            check: check.into(),
            result,
        }
    }

    #[test]
    fn all_ok_names_every_check() {
        let r = roll_up(
            &Combined {
                parts: vec![
                    part("alive", Status::Ok, None),
                    part("locks", Status::Ok, None),
                ],
                ..Combined::default()
            },
            0,
        );
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.summary, "2 checks OK (alive, locks)");
        assert_eq!(
            r.details,
            ["[OK] alive: alive said so", "[OK] locks: locks said so"]
        );
        let labels: Vec<&str> = r.perfdata.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["alive::n", "locks::n"]);
        assert_eq!(r.hint, None);
        assert_eq!(r.parts.len(), 2);
    }

    #[test]
    fn the_worst_leads_and_the_hints_follow_in_that_order() {
        let r = roll_up(
            &Combined {
                parts: vec![
                    part("alive", Status::Ok, None),
                    part("connections", Status::Warning, Some("pool them")),
                    part("archiver", Status::Critical, Some("fix archive_command")),
                    part("bloat", Status::Unknown, Some("grant it")),
                ],
                skipped: vec!["disk skipped: db2 is not this machine".into()],
                ..Combined::default()
            },
            1,
        );
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "archiver CRITICAL: archiver said so; bloat UNKNOWN: bloat said so; connections WARNING: connections said so; 1 check OK; disk skipped: db2 is not this machine"
        );
        assert_eq!(
            r.hint.as_deref(),
            Some("[archiver] fix archive_command [bloat] grant it [connections] pool them")
        );
        // -v adds each check's own long output under its line.
        assert_eq!(r.details[1], "  alive detail");
        assert_eq!(
            r.details.last().unwrap(),
            "disk skipped: db2 is not this machine"
        );
    }

    #[test]
    fn a_lost_session_is_critical_and_names_what_did_not_run() {
        let r = roll_up(
            &Combined {
                parts: vec![part("alive", Status::Ok, None)],
                not_run: vec!["locks".into()],
                lost: true,
                ..Combined::default()
            },
            0,
        );
        assert_eq!(r.status, Status::Critical);
        assert!(r
            .summary
            .starts_with("the server closed the connection; 1 check OK"));
        assert_eq!(
            r.details[1],
            "[UNKNOWN] locks: not run, the connection was lost"
        );
        assert!(r.hint.unwrap().starts_with("is the server up"));
    }

    #[test]
    fn words_split_as_a_shell_splits_them() {
        assert_eq!(
            split_words("connections -w 80% -c 90%").unwrap(),
            ["connections", "-w", "80%", "-c", "90%"]
        );
        assert_eq!(
            split_words(r#"query --query "SELECT count(*) FROM \"t\"" --label 'a b'"#).unwrap(),
            [
                "query",
                "--query",
                "SELECT count(*) FROM \"t\"",
                "--label",
                "a b"
            ]
        );
        assert_eq!(split_words("  a\\ b ''  ").unwrap(), ["a b", ""]);
        assert!(split_words("'open").is_err());
        assert!(split_words("\"open").is_err());
        assert!(split_words("end\\").is_err());
        assert!(split_words("").unwrap().is_empty());
    }

    #[test]
    fn a_check_named_twice_gets_a_number() {
        let earlier = vec![("query".to_string(), ()), ("locks".to_string(), ())];
        assert_eq!(part_name("query", &earlier), "query_2");
        assert_eq!(part_name("connections", &earlier), "connections");
    }
}
