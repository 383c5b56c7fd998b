//! The one contract every check meets, and what it is given to run.

use clap::Args;

use crate::conninfo::ConnSettings;
use crate::error::Error;
use crate::output::CheckResult;
use crate::session::{get, Session};
use crate::threshold::{Thresholds, UnitSpec};

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
/// options, connects, and calls `run`, which fetches the measured values and
/// hands them to the check's pure judge.
pub trait Check {
    /// The name after `PG_` in the status line, e.g. `CONNECTIONS`.
    const DISPLAY: &'static str;
    /// What the check measures, for `--help`.
    const ABOUT: &'static str;
    /// The units `-w`/`-c` may use.
    const UNITS: UnitSpec;
    /// What `-w`/`-c` apply to, and examples, for `--help`.
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
    /// Defaults for `-w` and `-c` when left out.
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = None;
    /// The check's own options.
    type Args: Args;

    /// Checks the check's own options before anything connects, so bad
    /// input is UNKNOWN whether or not the server is up.
    fn validate(_args: &Self::Args) -> Result<(), Error> {
        Ok(())
    }

    /// A check that can measure without the server (files on this host)
    /// answers here, and the run never connects. None: connect and `run`.
    fn without_server(_args: &Self::Args, _ctx: &Context) -> Option<Result<CheckResult, Error>> {
        None
    }

    /// A check that can still measure when the server cannot be reached
    /// (its log says why it is down) answers here; None: the connection
    /// error stands.
    fn when_unreachable(
        _args: &Self::Args,
        _ctx: &Context,
        _error: &Error,
    ) -> Option<Result<CheckResult, Error>> {
        None
    }

    /// Fetch the measured values, then judge them.
    fn run(args: &Self::Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error>;
}

impl Context {
    /// The state store of this check against this server and database.
    pub fn state_store(
        &self,
        state: &crate::state::StateArgs,
    ) -> Result<crate::state::Store, Error> {
        let key = format!(
            "{} {} {}",
            self.plugin,
            self.conn.target(),
            self.conn.dbname
        );
        crate::state::Store::open(state, &key, &|k| std::env::var(k).ok())
    }
}

/// Without pg_read_all_stats (part of pg_monitor) other roles' sessions show
/// up with their details nulled, which would make a check quietly wrong.
pub fn require_stats_visibility(sees_all: bool, user: &str) -> Result<(), Error> {
    if sees_all {
        Ok(())
    } else {
        Err(Error::Privilege(format!(
            "role \"{user}\" cannot see other roles' sessions: it needs the pg_monitor role (GRANT pg_monitor TO \"{user}\")"
        )))
    }
}

/// Database names by oid. Checks read them only for the long output: the main
/// statement then stays clear of catalog joins, which a new backend pays for.
pub fn database_names(db: &mut Session) -> Result<std::collections::BTreeMap<u32, String>, Error> {
    db.query("SELECT oid, datname::text AS datname FROM pg_database")?
        .iter()
        .map(|r| Ok((get(r, "oid")?, get(r, "datname")?)))
        .collect()
}
