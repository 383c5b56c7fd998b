//! The one contract every check meets, and what it is given to run.

use clap::Args;

use crate::conninfo::ConnSettings;
use crate::session::Session;
use pgvigil_kit::error::Error;
use pgvigil_kit::output::CheckResult;
use pgvigil_kit::threshold::{Thresholds, UnitSpec};

/// What a check needs to measure and judge.
pub struct Context {
    /// The plugin's binary name, e.g. `check_pg_deadlocks`; a check run by
    /// check_pg_health is `check_pg_health:deadlocks`, so its saved state
    /// stays apart from the plugin's own.
    pub plugin: String,
    pub thresholds: Thresholds,
    pub verbose: u8,
    pub conn: ConnSettings,
    /// The `-t` budget; a check that opens more sessions gives each this as
    /// statement_timeout, the watchdog still bounding the whole run.
    pub timeout: std::time::Duration,
    /// `--runbook-url`, for the checks a combined run starts.
    pub runbook: Option<String>,
}

/// One monitoring check. The registry names it once; the runner parses its
/// options, connects, and calls `run`: `fetch` reads the measured values,
/// `judge` (a pure function) turns them into the result.
pub trait Check {
    /// The units `-w`/`-c` may use.
    const UNITS: UnitSpec;
    /// What `-w`/`-c` apply to, and examples, for `--help`; `{defaults}`
    /// stands for DEFAULT_THRESHOLDS as a command line gives them.
    const THRESHOLD_HELP: &'static str;
    /// The next step an operator should take when the check is not OK: what
    /// to look at or run first. Ends the long output of every alert.
    const HINT: &'static str;
    /// The check runs other checks (check_pg_health), so it cannot be one
    /// of a combined run's parts.
    const COMBINES: bool = false;
    /// The check talks to an admin console (PgBouncer's `pgbouncer`
    /// database) rather than to PostgreSQL: no startup options, the simple
    /// protocol only, and the console's database name.
    const CONSOLE: Option<&'static str> = None;
    /// Seconds between scheduled runs that suit the measure, as the
    /// Director's service templates set it: a minute for what can break at
    /// any time, longer for what moves slowly (sizes, settings, backups).
    const INTERVAL: u32 = 60;
    /// Defaults for `-w` and `-c` when left out ("" for none). The help
    /// and the README's table say them through `{defaults}`.
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = None;
    /// The check's own options.
    type Args: Args;

    /// What one run measures: everything the judge reads besides the
    /// options (a rate's previous sample included, as the state store gave it).
    type Measured;

    /// Checks the check's own options against the thresholds before
    /// anything connects, so bad input is UNKNOWN whether or not the server
    /// is up.
    fn validate(_args: &Self::Args, _thresholds: &Thresholds) -> Result<(), Error> {
        Ok(())
    }

    /// A check that measures without the server (files on this host, an
    /// HTTP API) does it here, and the run never connects. None: connect and
    /// `fetch`.
    fn fetch_local(_args: &Self::Args, _ctx: &Context) -> Option<Result<Self::Measured, Error>> {
        None
    }

    /// A check that can still measure when the server cannot be reached (its
    /// log says why it is down) does it here; None: the connection error
    /// stands.
    fn fetch_unreachable(
        _args: &Self::Args,
        _ctx: &Context,
        _error: &Error,
    ) -> Option<Result<Self::Measured, Error>> {
        None
    }

    /// Reads the measured values from the server.
    fn fetch(args: &Self::Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error>;

    /// The optional second look: after a first judgement, reads what only
    /// an alert's (or `-v`'s) long output needs, such as database names or
    /// what holds the xmin horizon, into `measured`, which is then judged
    /// again. Returns whether it read anything. The judge alone decides.
    fn look_closer(
        _measured: &mut Self::Measured,
        _first: &CheckResult,
        _judging: &Judging<Self::Args>,
        _db: &mut Session,
        _ctx: &Context,
    ) -> Result<bool, Error> {
        Ok(false)
    }

    /// The state, status line, perfdata and long output of what was
    /// measured: a pure function, the same for a plugin's run, a combined
    /// run and the unit tests.
    fn judge(measured: &Self::Measured, judging: &Judging<Self::Args>) -> CheckResult;

    /// Fetch, judge, and judge again after a closer look.
    fn run(args: &Self::Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        let mut measured = Self::fetch(args, db, ctx)?;
        Self::judged(&mut measured, args, Some(db), ctx)
    }

    /// Judges what was measured, with the closer look when there is a
    /// session to take it on.
    fn judged(
        measured: &mut Self::Measured,
        args: &Self::Args,
        db: Option<&mut Session>,
        ctx: &Context,
    ) -> Result<CheckResult, Error> {
        let judging = Judging {
            args,
            thresholds: &ctx.thresholds,
            verbose: ctx.verbose,
        };
        let first = Self::judge(measured, &judging);
        if let Some(db) = db {
            if Self::look_closer(measured, &first, &judging, db, ctx)? {
                return Ok(Self::judge(measured, &judging));
            }
        }
        Ok(first)
    }
}

/// A check ready to run inside a combined run, its options parsed.
pub type Prepared = Box<dyn FnOnce(&mut Session, &Context) -> CheckResult>;

/// What a judge is given besides the measured values: the check's options,
/// `-w`/`-c` with the defaults filled in, and `-v`.
pub struct Judging<'a, A> {
    pub args: &'a A,
    pub thresholds: &'a Thresholds,
    pub verbose: u8,
}

/// The defaults as a command line gives them: `-w 80% -c 90%`, `-w 0`.
pub fn defaults_text(defaults: Option<(&str, &str)>) -> String {
    let Some((warning, critical)) = defaults else {
        return String::new();
    };
    let given = [("-w", warning), ("-c", critical)];
    let sides: Vec<String> = given
        .iter()
        .filter(|(_, range)| !range.is_empty())
        .map(|(flag, range)| format!("{flag} {range}"))
        .collect();
    sides.join(" ")
}

impl Context {
    /// The state store of this check against this server and database.
    pub fn state_store(
        &self,
        state: &pgvigil_kit::state::StateArgs,
    ) -> Result<pgvigil_kit::state::Store, Error> {
        let key = format!(
            "{} {} {}",
            self.plugin,
            self.conn.target(),
            self.conn.dbname
        );
        pgvigil_kit::state::Store::open(state, &key, &|k| std::env::var(k).ok())
    }
}
