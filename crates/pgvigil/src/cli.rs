//! The command line every plugin shares, and the run loop around a check:
//! parse, arm the timeout, connect, measure, print, exit.

use std::io::Write;

use clap::{Args, CommandFactory, FromArgMatches, Parser};

use crate::conninfo::{ConnArgs, ConnSettings};
use crate::error::Error;
use crate::output::CheckResult;
use crate::session::Session;
use crate::status::Status;
use crate::threshold::{Thresholds, UnitSpec};
use crate::timeout::{self, Timeout};

/// What a check needs to measure and judge.
pub struct Context {
    /// The plugin's binary name, e.g. `check_pg_deadlocks`.
    pub plugin: &'static str,
    pub thresholds: Thresholds,
    pub verbose: u8,
    pub conn: ConnSettings,
    /// The `-t` budget; a check that opens more sessions gives each this as
    /// statement_timeout, the watchdog still bounding the whole run.
    pub timeout: std::time::Duration,
}

/// One monitoring check. A plugin binary is `pgvigil::run::<TheCheck>()`.
pub trait Check {
    /// The name after `PG_` in the status line, e.g. `CONNECTIONS`.
    const DISPLAY: &'static str;
    /// What the check measures, for `--help`.
    const ABOUT: &'static str;
    /// The units `-w`/`-c` may use.
    const UNITS: UnitSpec;
    /// What `-w`/`-c` apply to, and examples, for `--help`.
    const THRESHOLD_HELP: &'static str;
    /// Defaults for `-w` and `-c` when left out.
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = None;
    /// The check's own options.
    type Args: Args;

    /// Query, measure, compare, report.
    fn run(args: &Self::Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error>;
}

#[derive(Debug, Parser)]
struct Cli<A: Args> {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    check: A,
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

ENVIRONMENT
  PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD PGPASSFILE (~/.pgpass) PGSSLMODE
  PGSSLROOTCERT PGCONNECT_TIMEOUT PGAPPNAME are honoured as psql honours them.
  The session is read-only; the monitoring role needs pg_monitor, not superuser.

EXIT STATUS
  0 OK, 1 WARNING, 2 CRITICAL (also: cannot connect), 3 UNKNOWN (bad arguments,
  timeout, missing privilege, failed query).";

/// The command line of check `C` as the plugin `name`: what `--help` prints
/// and the man pages are rendered from.
pub fn command<C: Check>(name: &'static str) -> clap::Command {
    Cli::<C::Args>::command()
        .name(name)
        .bin_name(name)
        .version(env!("CARGO_PKG_VERSION"))
        .about(C::ABOUT)
        .after_help(format!("{}\n\n{FOOTER}", C::THRESHOLD_HELP))
        .max_term_width(100)
        // The last -H wins, as in most Unix tools: a Nagios command may pass
        // -H '$HOSTADDRESS$' and a service add -H /var/run/postgresql.
        .args_override_self(true)
}

/// Runs check `C` as the plugin `name` and exits with its state.
pub fn run<C: Check>(name: &'static str) -> ! {
    let matches = match command::<C>(name).try_get_matches() {
        Ok(matches) => matches,
        Err(e) => usage_error(C::DISPLAY, e),
    };
    let cli = match Cli::<C::Args>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => usage_error(C::DISPLAY, e),
    };
    let result = execute::<C>(name, &cli).unwrap_or_else(|e| {
        let hint = if matches!(e, Error::Usage(_)) {
            format!(" (see {name} --help)")
        } else {
            String::new()
        };
        CheckResult::new(e.status(), format!("{e}{hint}"))
    });
    finish(C::DISPLAY, &result)
}

fn execute<C: Check>(name: &'static str, cli: &Cli<C::Args>) -> Result<CheckResult, Error> {
    let timeout = Timeout::parse(&cli.common.timeout)?;
    timeout::arm(timeout, C::DISPLAY);
    // An empty range is one left out: a Nagios command passes `-w '$ARG1$'`
    // whether or not the service gave ARG1.
    fn given(range: &Option<String>) -> Option<&str> {
        range.as_deref().filter(|r| !r.trim().is_empty())
    }
    let mut thresholds = Thresholds::parse(
        given(&cli.common.warning),
        given(&cli.common.critical),
        C::UNITS,
    )?;
    if let Some((warning, critical)) = C::DEFAULT_THRESHOLDS {
        thresholds = thresholds.with_defaults(warning, critical, C::UNITS);
    }
    let conn = ConnSettings::resolve(&cli.common.conn, name, &|k| std::env::var(k).ok())?;
    let mut session = Session::connect(&conn, timeout.duration())?;
    let ctx = Context {
        plugin: name,
        thresholds,
        verbose: cli.common.verbose,
        conn,
        timeout: timeout.duration(),
    };
    C::run(&cli.check, &mut session, &ctx)
}

fn usage_error(display: &str, error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            std::process::exit(0);
        }
        _ => {
            // clap's message up to its usage block, folded onto one line.
            let text = error.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(|l| l.trim())
                .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
                .collect();
            let message = message.join(" ");
            let message = message.trim_start_matches("error: ");
            let result = CheckResult::new(Status::Unknown, format!("{message} (see --help)"));
            finish(display, &result)
        }
    }
}

fn finish(display: &str, result: &CheckResult) -> ! {
    if !timeout::claim_output() {
        // The watchdog is printing the timeout and exiting.
        loop {
            std::thread::park();
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(result.render(display).as_bytes());
    let _ = out.flush();
    std::process::exit(result.status.exit_code())
}
