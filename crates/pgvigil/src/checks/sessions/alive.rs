//! check_pg_alive: the server accepts a session and answers, and how fast;
//! the first questions of any health check (service up, database
//! reachable), with
//! the server's version, role and uptime.

use crate::session::get;
use crate::units::{pretty_duration, round_to};
use crate::{Check, CheckResult, Context, Error, PerfData, Session, Unit, UnitSpec};

pub struct Alive;

#[derive(Debug, clap::Args)]
pub struct Args {}

const SQL: &str = "
SELECT current_setting('server_version') AS version,
       pg_is_in_recovery() AS in_recovery,
       extract(epoch FROM now() - pg_postmaster_start_time())::float8 AS uptime_seconds";

impl Check for Alive {
    const DISPLAY: &'static str = "ALIVE";
    const ABOUT: &'static str = "Whether the server accepts a session and answers a query, and how long that takes (connect included), with its version, role and uptime.";
    const UNITS: UnitSpec = UnitSpec {
        accepted: &[Unit::Seconds],
        bare: Some(Unit::Seconds),
        labels: &[],
    };
    const HINT: &'static str = "the server answers slowly: look at its load (top, iostat), at pg_stat_activity for a pile of active sessions, and at the server log";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the response time: connecting, authenticating and answering
  one query (a bare number is seconds). Default: -w 2s -c 8s, as check_pgsql.
  A server that cannot be reached is CRITICAL whatever the thresholds.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("2s", "8s"));
    type Args = Args;

    fn run(_args: &Args, db: &mut Session, ctx: &Context) -> Result<CheckResult, Error> {
        // Query
        let row = db.query_one(SQL)?;

        // Measure
        let response = db.elapsed().as_secs_f64();
        let connect = db.connected_in().as_secs_f64();
        // Distributions append their own build after a space: "15.18 (Debian …)".
        let version: String = get(&row, "version")?;
        let version = version.split_whitespace().next().unwrap_or_default();
        let role = if get::<bool>(&row, "in_recovery")? {
            "standby"
        } else {
            "primary"
        };
        let uptime = get::<f64>(&row, "uptime_seconds")?.max(0.0);

        // Compare
        let t = &ctx.thresholds;
        let status = t.status(&[(Unit::Seconds, response)]);

        // Report
        let summary = format!(
            "PostgreSQL {version} ({role}) answered in {} (connect {}); up {}",
            pretty_duration(response),
            pretty_duration(connect),
            pretty_duration(uptime)
        );
        let perf = [
            PerfData::new("time", round_to(response, 6), Unit::Seconds)
                .thresholds(t)
                .min(0.0),
            PerfData::new("connect_time", round_to(connect, 6), Unit::Seconds).min(0.0),
            PerfData::new("uptime", uptime.round(), Unit::Seconds).min(0.0),
        ];
        Ok(CheckResult::new(status, summary).perf(perf))
    }
}
