//! handle_pg_connections: the first response to connection exhaustion, as
//! an event handler. On a HARD CRITICAL of the
//! connections service it terminates client sessions idle for longer than
//! `--idle-for`, oldest first, at most `--max`, never its own, a superuser's,
//! a replication connection or a protected role's; then lists the queries
//! running for over 30 minutes for a human to judge. A dry run unless
//! `--execute` is given.

use std::io::Write;

use clap::{CommandFactory, FromArgMatches, Parser};
use postgres::types::Type;

use crate::conninfo::{ConnArgs, ConnSettings};
use crate::session::{get, Session};
use pgvigil_kit::output::one_line;
use pgvigil_kit::timeout::{self, Timeout};
use pgvigil_kit::units::{parse_duration_option, pretty_duration};
use pgvigil_kit::words::plural;
use pgvigil_kit::Error;

pub const NAME: &str = "handle_pg_connections";
pub const ABOUT: &str = "Event handler: terminates long-idle sessions when the connections service turns HARD CRITICAL (a dry run by default).";

#[derive(Debug, Parser)]
#[command(name = NAME, about = ABOUT, version, max_term_width = 100)]
#[command(after_help = AFTER_HELP)]
pub struct Cli {
    /// The service state ($SERVICESTATE$); only CRITICAL acts [default: act, as when run by hand]
    #[arg(long, value_name = "STATE")]
    state: Option<String>,
    /// The state type ($SERVICESTATETYPE$): HARD acts, SOFT only at --on-attempt
    #[arg(long, value_name = "TYPE")]
    state_type: Option<String>,
    /// The check attempt ($SERVICEATTEMPT$)
    #[arg(long, value_name = "N")]
    attempt: Option<u32>,
    /// Also act on a SOFT CRITICAL at this attempt
    #[arg(long, value_name = "N")]
    on_attempt: Option<u32>,
    /// Sessions idle for longer than this are terminated [default: 10min]
    #[arg(long, value_name = "DURATION", default_value = "10min", value_parser = parse_duration_option)]
    idle_for: f64,
    /// Sessions idle in a transaction count as idle too
    #[arg(long)]
    include_idle_in_transaction: bool,
    /// At most this many sessions per run, oldest first
    #[arg(long, value_name = "N", default_value = "20")]
    max: usize,
    /// A role whose sessions are never terminated (repeatable)
    #[arg(long = "protect", value_name = "ROLE")]
    protect: Vec<String>,
    /// Only sessions in this database
    #[arg(long, value_name = "NAME")]
    database: Option<String>,
    /// Only sessions of this role
    #[arg(long, value_name = "ROLE")]
    user: Option<String>,
    /// Terminate for real (the role needs pg_signal_backend); without it, only say what would be done
    #[arg(long)]
    execute: bool,
    /// Seconds the whole run may take, connect included
    #[arg(short = 't', long, value_name = "SECONDS", default_value = "10")]
    timeout: String,
    #[command(flatten)]
    conn: ConnArgs,
}

const AFTER_HELP: &str = "\
WHAT IT DOES
  Acts only on a HARD CRITICAL (or a SOFT CRITICAL at --on-attempt N), or when
  run by hand without --state. Terminates client sessions idle (and with
  --include-idle-in-transaction, idle in transaction) for longer than
  --idle-for, oldest first, at most --max; never its own session, a
  superuser's, a replication connection, or a --protect role's. Then lists the
  active queries running for over 30 minutes, without touching them.
  Without --execute nothing is terminated: it prints what it would do.
  Every termination goes to stdout and to syslog (daemon facility).

EXIT STATUS
  0 done, or nothing to do; 1 it could not run (connection, privilege, bad
  option). Event handlers' exit codes change no state in Nagios or Icinga2.";

/// One session the handler may terminate.
struct Idle {
    pid: i32,
    user: String,
    database: String,
    application: String,
    client: String,
    idle: f64,
    superuser: bool,
}

const IDLE_SQL: &str = "
SELECT s.pid, coalesce(s.usename::text, '') AS usename, coalesce(s.datname::text, '') AS datname,
       coalesce(s.application_name, '') AS application_name,
       coalesce(host(s.client_addr), 'local socket') AS client,
       extract(epoch FROM now() - s.state_change)::float8 AS idle_seconds,
       coalesce(r.rolsuper, false) AS superuser
FROM pg_stat_activity s LEFT JOIN pg_roles r ON r.oid = s.usesysid
WHERE s.backend_type = 'client backend' AND s.pid <> pg_backend_pid()
  AND (s.state = 'idle'
       OR ($1 AND s.state IN ('idle in transaction', 'idle in transaction (aborted)')))
  AND s.state_change < now() - make_interval(secs => $2)
ORDER BY s.state_change";

const LONG_SQL: &str = "
SELECT s.pid, coalesce(s.usename::text, '') AS usename, coalesce(s.datname::text, '') AS datname,
       extract(epoch FROM now() - s.query_start)::float8 AS seconds, left(s.query, 100) AS query
FROM pg_stat_activity s
WHERE s.backend_type = 'client backend' AND s.state = 'active' AND s.pid <> pg_backend_pid()
  AND s.query_start < now() - interval '30 minutes'
ORDER BY s.query_start";

const CAN_SIGNAL_SQL: &str = "
SELECT pg_has_role(current_user, 'pg_signal_backend', 'USAGE') AS can_signal,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all";

/// Runs the handler with `args` (the first being the name it was called
/// by) and exits.
pub fn main(args: Vec<std::ffi::OsString>) -> ! {
    let cli = match Cli::command().try_get_matches_from(args) {
        Ok(m) => Cli::from_arg_matches(&m).unwrap_or_else(|e| e.exit()),
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                e.exit()
            }
            finish(
                1,
                &[format!(
                    "{NAME}: {} (see {NAME} --help)",
                    crate::runner::one_line_clap(&e)
                )],
            )
        }
    };
    match run(&cli) {
        Ok(lines) => finish(0, &lines),
        Err(e) => finish(1, &[format!("{NAME}: could not run: {e}")]),
    }
}

/// The command line, for the man page.
pub fn command() -> clap::Command {
    Cli::command()
}

fn finish(code: i32, lines: &[String]) -> ! {
    if timeout::claim_output() {
        let mut out = std::io::stdout().lock();
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
        std::process::exit(code)
    }
    loop {
        std::thread::park();
    }
}

/// Why the daemon's call asks for nothing, or None when it calls for
/// action: only a HARD CRITICAL (or the chosen SOFT attempt) does, and so
/// does a run by hand (no state given).
fn nothing_to_do(cli: &Cli) -> Option<String> {
    let state = cli.state.as_ref()?;
    let hard = cli
        .state_type
        .as_deref()
        .is_none_or(|t| t.eq_ignore_ascii_case("HARD"));
    let at_attempt = cli.on_attempt.is_some() && cli.on_attempt == cli.attempt;
    if state.eq_ignore_ascii_case("CRITICAL") && (hard || at_attempt) {
        return None;
    }
    Some(format!(
        "{NAME}: nothing to do: the service is {state} ({}, attempt {})",
        cli.state_type.as_deref().unwrap_or("HARD"),
        cli.attempt.map_or("?".to_string(), |a| a.to_string())
    ))
}

/// The idle sessions to end, oldest first (as fetched), at most --max:
/// never a superuser's or a protected role's, only in --database/--user.
fn choose<'a>(candidates: &'a [Idle], cli: &Cli) -> Vec<&'a Idle> {
    candidates
        .iter()
        .filter(|s| !s.superuser && !cli.protect.contains(&s.user))
        .filter(|s| cli.database.as_ref().is_none_or(|d| *d == s.database))
        .filter(|s| cli.user.as_ref().is_none_or(|u| *u == s.user))
        .take(cli.max)
        .collect()
}

/// `pid 42 (app@shop, application 'web', from 10.0.0.5, idle 12 min 0 s)`.
fn describe(s: &Idle) -> String {
    format!(
        "pid {} ({}@{}, application '{}', from {}, idle {})",
        s.pid,
        s.user,
        s.database,
        s.application,
        s.client,
        pretty_duration(s.idle)
    )
}

/// What a dry run says it would do.
fn dry_run(chosen: &[&Idle], idle_for: f64) -> Vec<String> {
    let mut lines = vec![format!(
        "{NAME}: DRY RUN: would terminate {} session{} idle for over {} (add --execute to do it)",
        chosen.len(),
        plural(chosen.len() as i64),
        pretty_duration(idle_for)
    )];
    lines.extend(
        chosen
            .iter()
            .map(|s| format!("would terminate {}", describe(s))),
    );
    lines
}

fn run(cli: &Cli) -> Result<Vec<String>, Error> {
    if let Some(why) = nothing_to_do(cli) {
        return Ok(vec![why]);
    }
    let timeout = Timeout::parse(&cli.timeout)?;
    timeout::arm(
        timeout,
        Box::new(move |why| format!("{NAME}: could not run: {why}\n")),
    );
    let conn = ConnSettings::resolve(&cli.conn, NAME, &|k| std::env::var(k).ok())?;
    let mut db = Session::connect(&conn, timeout.duration())?;

    // Who may be terminated.
    let rights = db.query_one(CAN_SIGNAL_SQL)?;
    if !get::<bool>(&rights, "sees_all")? {
        return Err(Error::Privilege(format!(
            "role \"{}\" cannot see other roles' sessions: it needs pg_monitor (or pg_read_all_stats)",
            conn.user
        )));
    }
    if cli.execute && !get::<bool>(&rights, "can_signal")? {
        return Err(Error::Privilege(format!(
            "role \"{u}\" may not terminate sessions: GRANT pg_signal_backend TO \"{u}\"",
            u = conn.user
        )));
    }
    let rows = db.query_with(
        IDLE_SQL,
        &[
            (&cli.include_idle_in_transaction, Type::BOOL),
            (&cli.idle_for, Type::FLOAT8),
        ],
    )?;
    let mut candidates = Vec::new();
    for row in &rows {
        candidates.push(Idle {
            pid: get(row, "pid")?,
            user: get(row, "usename")?,
            database: get(row, "datname")?,
            application: get(row, "application_name")?,
            client: get(row, "client")?,
            idle: get(row, "idle_seconds")?,
            superuser: get(row, "superuser")?,
        });
    }
    let chosen = choose(&candidates, cli);

    // Act, or say what would be done.
    let mut lines = Vec::new();
    let idle_for = pretty_duration(cli.idle_for);
    if cli.execute {
        let mut done = 0;
        let mut log = Syslog::open();
        for s in &chosen {
            let row = db.query_with(
                "SELECT pg_terminate_backend($1) AS done",
                &[(&s.pid, Type::INT4)],
            )?;
            let terminated: bool = get(&row[0], "done")?;
            let line = if terminated {
                done += 1;
                format!("terminated {}", describe(s))
            } else {
                format!("could not terminate {} (already gone?)", describe(s))
            };
            log.write(&line);
            lines.push(line);
        }
        lines.insert(
            0,
            format!(
                "{NAME}: terminated {done} session{} idle for over {idle_for}",
                plural(done as i64)
            ),
        );
    } else {
        lines.extend(dry_run(&chosen, cli.idle_for));
    }
    let spared = candidates.len() - chosen.len();
    if spared > 0 {
        lines.push(format!(
            "left alone: {spared} idle session{} (superusers, protected roles, other databases or users, over --max)",
            plural(spared as i64)
        ));
    }

    // For a human: long-running queries, untouched.
    for row in db.query(LONG_SQL)? {
        lines.push(format!(
            "running for {} (not touched, review it): pid {} ({}@{}): {}",
            pretty_duration(get(&row, "seconds")?),
            get::<i32>(&row, "pid")?,
            get::<String>(&row, "usename")?,
            get::<String>(&row, "datname")?,
            one_line(&get::<Option<String>>(&row, "query")?.unwrap_or_default())
        ));
    }
    db.leave();
    Ok(lines)
}

/// The record every termination leaves in the system log.
struct Syslog;

impl Syslog {
    fn open() -> Syslog {
        // SAFETY: the identifier is a static C string that outlives the process's use of it.
        unsafe {
            libc::openlog(
                c"handle_pg_connections".as_ptr(),
                libc::LOG_PID,
                libc::LOG_DAEMON,
            )
        };
        Syslog
    }

    fn write(&mut self, line: &str) {
        let Ok(text) = std::ffi::CString::new(line.replace('\0', " ")) else {
            return;
        };
        // SAFETY: a "%s" format with one C string argument.
        unsafe { libc::syslog(libc::LOG_NOTICE, c"%s".as_ptr(), text.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut argv = vec![NAME];
        argv.extend(args);
        Cli::try_parse_from(argv).expect("valid arguments")
    }

    fn idle(pid: i32, user: &str, database: &str, superuser: bool) -> Idle {
        Idle {
            pid,
            user: user.into(),
            database: database.into(),
            application: "web".into(),
            client: "10.0.0.5".into(),
            idle: 720.0,
            superuser,
        }
    }

    #[test]
    fn only_a_hard_critical_or_the_chosen_attempt_acts() {
        assert_eq!(nothing_to_do(&cli(&[])), None);
        assert_eq!(
            nothing_to_do(&cli(&["--state", "CRITICAL", "--state-type", "HARD"])),
            None
        );
        assert_eq!(
            nothing_to_do(&cli(&[
                "--state",
                "WARNING",
                "--state-type",
                "HARD",
                "--attempt",
                "3"
            ]))
            .unwrap(),
            "handle_pg_connections: nothing to do: the service is WARNING (HARD, attempt 3)"
        );
        let soft = [
            "--state",
            "CRITICAL",
            "--state-type",
            "SOFT",
            "--attempt",
            "2",
        ];
        assert!(nothing_to_do(&cli(&soft)).is_some());
        let mut at_two = soft.to_vec();
        at_two.extend(["--on-attempt", "2"]);
        assert_eq!(nothing_to_do(&cli(&at_two)), None);
    }

    #[test]
    fn never_a_superuser_or_protected_role_and_at_most_max() {
        let sessions = vec![
            idle(1, "postgres", "shop", true),
            idle(2, "app", "shop", false),
            idle(3, "batch", "shop", false),
            idle(4, "app", "other", false),
            idle(5, "app", "shop", false),
        ];
        let pids = |c: &Cli| {
            choose(&sessions, c)
                .iter()
                .map(|s| s.pid)
                .collect::<Vec<_>>()
        };
        assert_eq!(pids(&cli(&[])), [2, 3, 4, 5]);
        assert_eq!(pids(&cli(&["--protect", "batch", "--max", "2"])), [2, 4]);
        assert_eq!(pids(&cli(&["--database", "shop", "--user", "app"])), [2, 5]);
    }

    #[test]
    fn a_dry_run_names_each_session_it_would_end() {
        let sessions = [idle(2, "app", "shop", false)];
        let chosen: Vec<&Idle> = sessions.iter().collect();
        assert_eq!(
            dry_run(&chosen, 600.0),
            [
                "handle_pg_connections: DRY RUN: would terminate 1 session idle for over 10 min 0 s (add --execute to do it)",
                "would terminate pid 2 (app@shop, application 'web', from 10.0.0.5, idle 12 min 0 s)"
            ]
        );
        assert!(dry_run(&[], 60.0)[0].contains("would terminate 0 sessions"));
    }
}
