//! The runner: the command line every plugin shares, and the run loop
//! around a check: parse, arm the timeout, connect, fetch and judge, print,
//! exit. What a check is lives in `check`.

use std::io::Write;

use clap::{Args, CommandFactory, FromArgMatches, Parser};

use crate::check::{defaults_text, Check, Context, Prepared};
use crate::conninfo::{ConnArgs, ConnSettings};
use crate::session::Session;
use pgvigil_kit::error::Error;
use pgvigil_kit::formats::{self, Format, Source};
use pgvigil_kit::output::CheckResult;
use pgvigil_kit::status::Status;
use pgvigil_kit::threshold::Thresholds;
use pgvigil_kit::timeout::{self, Timeout};

#[derive(Debug, Parser)]
struct Cli<A: Args> {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    check: A,
}

/// A check's own command line inside check_pg_health's `--check`: its
/// thresholds and options, the connection being the combined run's.
#[derive(Debug, Parser)]
struct PartCli<A: Args> {
    #[arg(short = 'w', long, allow_hyphen_values = true)]
    warning: Option<String>,
    #[arg(short = 'c', long, allow_hyphen_values = true)]
    critical: Option<String>,
    #[command(flatten)]
    check: A,
}

/// Parses `argv` (without the check's name) as check `C` takes it inside
/// `--check`, so a bad option fails the whole run before anything runs.
pub fn prepare<C: Check + 'static>(name: &'static str, argv: &[String]) -> Result<Prepared, Error>
where
    C::Args: 'static,
{
    let check = short_name(name);
    if C::CONSOLE.is_some() {
        return Err(Error::Usage(format!(
            "--check '{check}': {name} talks to an admin console, not to the server; run it on its own"
        )));
    }
    let (cli, thresholds) = parse_part::<C>(name, argv).map_err(|e| {
        let hint = match &e {
            PartError::Options(_) => format!(" (see {name} --help)"),
            PartError::Ranges(_) => String::new(),
        };
        Error::Usage(format!("--check '{check} {}': {e}{hint}", argv.join(" ")))
    })?;
    Ok(Box::new(move |db, parent| {
        let ctx = Context {
            plugin: format!("{}:{check}", parent.plugin),
            thresholds,
            verbose: parent.verbose,
            conn: parent.conn.clone(),
            timeout: parent.timeout,
            runbook: parent.runbook.clone(),
        };
        let result = C::validate(&cli.check, &ctx.thresholds)
            .and_then(|()| match C::fetch_local(&cli.check, &ctx) {
                Some(measured) => {
                    measured.and_then(|mut m| C::judged(&mut m, &cli.check, None, &ctx))
                }
                None => C::run(&cli.check, db, &ctx),
            })
            .unwrap_or_else(|e| error_result(&e, name));
        let next = NextStep {
            check,
            hint: C::HINT,
            runbook: parent.runbook.clone(),
        };
        next.apply(result)
    }))
}

/// Check `C`'s judgement of `measured` given its options as `--check` takes
/// them (`-w`/`-c` included, defaults filling what is left out): the judge
/// reached from outside a run, by the fuzz targets.
pub fn judge_with<C: Check>(measured: &C::Measured, argv: &[&str]) -> Result<CheckResult, Error> {
    let (cli, thresholds) = parse_part::<C>("part", argv).map_err(|e| match e {
        PartError::Options(why) => Error::Usage(why),
        PartError::Ranges(e) => e,
    })?;
    Ok(C::judge(
        measured,
        &crate::check::Judging {
            args: &cli.check,
            thresholds: &thresholds,
            verbose: 0,
        },
    ))
}

/// Why a check's options as `--check` takes them were refused.
#[derive(Debug)]
enum PartError {
    /// clap's message, on one line.
    Options(String),
    /// A range `-w`/`-c` cannot read.
    Ranges(Error),
}

impl std::fmt::Display for PartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartError::Options(why) => f.write_str(why),
            PartError::Ranges(e) => write!(f, "{e}"),
        }
    }
}

/// `argv` (without the check's name) as check `C` takes it inside
/// `--check`: its own options, and its thresholds with the defaults.
fn parse_part<C: Check>(
    name: &'static str,
    argv: &[impl AsRef<str>],
) -> Result<(PartCli<C::Args>, Thresholds), PartError> {
    let command = PartCli::<C::Args>::command()
        .name(name)
        .no_binary_name(true)
        .disable_help_flag(true)
        .disable_version_flag(true);
    let bad = |e: clap::Error| PartError::Options(one_line_clap(&e));
    let matches = command
        .try_get_matches_from(argv.iter().map(AsRef::as_ref))
        .map_err(bad)?;
    let cli = PartCli::<C::Args>::from_arg_matches(&matches).map_err(bad)?;
    let thresholds = thresholds::<C>(&cli.warning, &cli.critical).map_err(PartError::Ranges)?;
    Ok((cli, thresholds))
}

/// Check `C`'s `-w`/`-c`, its defaults filling a side left out. An empty
/// range is one left out: a Nagios command passes `-w '$ARG1$'` whether or
/// not the service gave ARG1.
pub(crate) fn thresholds<C: Check>(
    warning: &Option<String>,
    critical: &Option<String>,
) -> Result<Thresholds, Error> {
    fn given(range: &Option<String>) -> Option<&str> {
        range.as_deref().filter(|r| !r.trim().is_empty())
    }
    let thresholds = Thresholds::parse(given(warning), given(critical), C::UNITS)?;
    Ok(match C::DEFAULT_THRESHOLDS {
        Some((warning, critical)) => thresholds.with_defaults(warning, critical, C::UNITS),
        None => thresholds,
    })
}

/// clap's message without its usage block, on one line.
pub fn one_line_clap(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let message: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect();
    message.join(" ").trim_start_matches("error: ").to_string()
}

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Thresholds and run")]
struct CommonArgs {
    /// Warning range(s), comma separated, one per unit (see THRESHOLDS)
    #[arg(short = 'w', long, value_name = "RANGE", allow_hyphen_values = true)]
    warning: Option<String>,
    /// Critical range(s), comma separated, one per unit (see THRESHOLDS)
    #[arg(short = 'c', long, value_name = "RANGE", allow_hyphen_values = true)]
    critical: Option<String>,
    /// Seconds the whole run may take, connect included; :STATE sets the state reported on expiry
    #[arg(
        short = 't',
        long,
        value_name = "SECONDS[:STATE]",
        default_value = "10"
    )]
    timeout: String,
    /// More detail in the long output (repeatable)
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Output: nagios (status line, long output), json (one object) or openmetrics (textfile collector); the exit code is the same
    #[arg(long, value_name = "FORMAT", default_value = "nagios", value_parser = parse_format)]
    format: Format,
    /// Link added to the hint of every alert; {check} and {state} are filled in [env: PGVIGIL_RUNBOOK_URL]
    #[arg(long, value_name = "URL")]
    runbook_url: Option<String>,
    #[command(flatten)]
    conn: ConnArgs,
}

const FOOTER: &str = "\
THRESHOLD RANGES
  [@]START:END, both ends inclusive; alert when the value is outside the range,
  or inside it with a leading @.  10 = outside 0..10   10: = below 10
  ~:10 = above 10   10:20 = outside 10..20   @10:20 = within 10..20
  Units: % ; sizes B kB MB GB TB (1024-based) ; durations ms s min h d.
  An empty -w or -c is the same as leaving it out.

CONNECTING
  As psql: the options; a connection string or URI in -d ('host=db1 sslmode=
  verify-full', postgresql://user@db1,db2/app?target_session_attrs=primary),
  whose settings override -H, -p and -U; the service (--service, PGSERVICE) from
  PGSERVICEFILE or ~/.pg_service.conf, then PGSYSCONFDIR/pg_service.conf; then
  PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD PGPASSFILE (~/.pgpass) PGSSLMODE
  PGSSLROOTCERT PGSSLCERT PGSSLKEY PGTARGETSESSIONATTRS PGCONNECT_TIMEOUT
  PGAPPNAME and libpq's other variables. Kerberos (GSSAPI) and SSPI are not
  supported: give the role a cert or scram-sha-256 line in pg_hba.conf.
  The session is read-only; the monitoring role needs pg_monitor, not superuser.

EXIT STATUS
  0 OK, 1 WARNING, 2 CRITICAL (also: cannot connect), 3 UNKNOWN (bad arguments,
  timeout, missing privilege, failed query).";

/// What the registry says of a check that its command line shows.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// `check_pg_locks`.
    pub binary: &'static str,
    /// One line: what it measures.
    pub about: &'static str,
    /// The options of one typical run.
    pub example: &'static str,
}

/// The command line of check `C` as the registry names it: what `--help`
/// prints and the man pages are rendered from.
pub fn command<C: Check>(program: Program) -> clap::Command {
    let Program {
        binary: name,
        about,
        example,
    } = program;
    let example = format!("{name} {example}");
    Cli::<C::Args>::command()
        .name(name)
        .bin_name(name)
        .version(env!("CARGO_PKG_VERSION"))
        .about(about)
        .after_help(format!(
            "{}\n\nEXAMPLE\n  {}\n\n{FOOTER}",
            C::THRESHOLD_HELP.replace("{defaults}", &defaults_text(C::DEFAULT_THRESHOLDS)),
            example.trim_end()
        ))
        .max_term_width(100)
        // The last -H wins, as in most Unix tools: a Nagios command may pass
        // -H '$HOSTADDRESS$' and a service add -H /var/run/postgresql.
        .args_override_self(true)
}

/// Runs check `C` as the registry names it with `args` (the first being the
/// name it was called by) and exits with its state.
pub fn run<C: Check>(program: Program, args: Vec<std::ffi::OsString>) -> ! {
    let name = program.binary;
    let source = Source {
        check: short_name(name),
    };
    let format = requested_format(&args);
    let matches = match command::<C>(program).try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(e) => usage_error(source, e, format),
    };
    let cli = match Cli::<C::Args>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => usage_error(source, e, format),
    };
    let runbook = cli
        .common
        .runbook_url
        .clone()
        .or_else(|| std::env::var("PGVIGIL_RUNBOOK_URL").ok())
        .filter(|u| !u.trim().is_empty());
    let next = NextStep {
        check: source.check,
        hint: C::HINT,
        runbook,
    };
    let result = execute::<C>(name, &cli, source, &next).unwrap_or_else(|e| error_result(&e, name));
    finish(source, cli.common.format, next.apply(result))
}

/// `connections` for `check_pg_connections`.
pub fn short_name(plugin: &str) -> &str {
    plugin.trim_start_matches("check_pg_")
}

/// The result a failed run reports, with the next step the failure calls for.
pub fn error_result(error: &Error, plugin: &str) -> CheckResult {
    let hint = if matches!(error, Error::Usage(_)) {
        format!(" (see {plugin} --help)")
    } else {
        String::new()
    };
    let mut result = CheckResult::new(error.status(), format!("{error}{hint}"));
    result.hint = error.hint(plugin);
    result
}

/// The hint every alert ends with, and the runbook link added to it.
pub struct NextStep<'a> {
    pub check: &'a str,
    pub hint: &'a str,
    pub runbook: Option<String>,
}

impl NextStep<'_> {
    /// Gives a result that is not OK its hint (the check's own unless the
    /// result brings a more precise one) and the runbook link.
    pub fn apply(&self, mut result: CheckResult) -> CheckResult {
        if result.status == Status::Ok {
            result.hint = None;
            return result;
        }
        let mut hint = result.hint.take().unwrap_or_else(|| self.hint.to_string());
        // A combined run's hint is its checks' hints, each with its own link.
        if let Some(url) = self.runbook.as_ref().filter(|_| result.parts.is_empty()) {
            let url = url
                .replace("{check}", self.check)
                .replace("{state}", &result.status.to_string().to_ascii_lowercase());
            hint.push_str(&format!(" (runbook: {url})"));
        }
        result.hint = Some(hint);
        result
    }
}

fn parse_format(text: &str) -> Result<Format, String> {
    Format::parse(text)
        .ok_or_else(|| format!("'{text}' is not a format: nagios, json or openmetrics"))
}

/// `--format` read straight from the command line, for errors clap reports
/// before it has parsed anything.
fn requested_format(args: &[std::ffi::OsString]) -> Format {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    args.iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--format") {
            Some("") => args.get(i + 1).and_then(|f| Format::parse(f)),
            Some(rest) => rest.strip_prefix('=').and_then(Format::parse),
            None => None,
        })
        .unwrap_or_default()
}

fn execute<C: Check>(
    name: &'static str,
    cli: &Cli<C::Args>,
    source: Source<'static>,
    next: &NextStep,
) -> Result<CheckResult, Error> {
    let timeout = Timeout::parse(&cli.common.timeout)?;
    let format = cli.common.format;
    let expired = next
        .apply(CheckResult::new(timeout.state, String::new()).with_hint(timed_out_hint(timeout)));
    timeout::arm(
        timeout,
        Box::new(move |why| {
            let mut result = expired.clone();
            result.summary = why.to_string();
            formats::render(&result, source, format)
        }),
    );
    let thresholds = thresholds::<C>(&cli.common.warning, &cli.common.critical)?;
    C::validate(&cli.check, &thresholds)?;
    let conn = ConnSettings::resolve(&cli.common.conn, name, &|k| std::env::var(k).ok())?;
    // The console's database, with the password ~/.pgpass has for it.
    let conn = match C::CONSOLE {
        Some(console) => conn.for_database(console),
        None => conn,
    };
    let ctx = Context {
        plugin: name.to_string(),
        thresholds,
        verbose: cli.common.verbose,
        conn,
        timeout: timeout.duration(),
        runbook: next.runbook.clone(),
    };
    if let Some(measured) = C::fetch_local(&cli.check, &ctx) {
        return C::judged(&mut measured?, &cli.check, None, &ctx);
    }
    let connected = if C::CONSOLE.is_some() {
        Session::connect_console(&ctx.conn)
    } else {
        Session::connect(&ctx.conn, timeout.duration())
    };
    let mut session = match connected {
        Ok(session) => session,
        Err(e @ Error::Connect { .. }) => {
            return match C::fetch_unreachable(&cli.check, &ctx, &e) {
                Some(measured) => C::judged(&mut measured?, &cli.check, None, &ctx),
                None => Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    // A server that goes away mid-check is as down as one that refuses us.
    let result = C::run(&cli.check, &mut session, &ctx).map_err(|e| match e {
        Error::Query(reason) if session.is_closed() => Error::Lost {
            target: ctx.conn.target(),
            reason,
        },
        other => other,
    });
    // PgBouncer logs a session that ends without Terminate; the server does not.
    if C::CONSOLE.is_some() {
        drop(session);
    } else {
        session.leave();
    }
    result
}

fn timed_out_hint(timeout: Timeout) -> String {
    format!(
        "the server did not answer within {} s: look at its load and at sessions waiting on locks (check_pg_locks, pg_stat_activity); raise -t if the check is slow by nature",
        timeout.seconds
    )
}

fn usage_error(source: Source, error: clap::Error, format: Format) -> ! {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            std::process::exit(0);
        }
        _ => {
            let message = one_line_clap(&error);
            let result = CheckResult::new(Status::Unknown, format!("{message} (see --help)"))
                .with_hint(format!(
                    "fix the command line; check_pg_{} --help lists every option",
                    source.check
                ));
            finish(source, format, result)
        }
    }
}

fn finish(source: Source, format: Format, result: CheckResult) -> ! {
    if !timeout::claim_output() {
        // The watchdog is printing the timeout and exiting.
        loop {
            std::thread::park();
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(formats::render(&result, source, format).as_bytes());
    let _ = out.flush();
    std::process::exit(result.status.exit_code())
}
