//! check_pg_alive: the server accepts a session and answers, and how fast;
//! the first questions of any health check (service up, database
//! reachable), with
//! the server's version, role and uptime.

use crate::check::{Check, Context};
use crate::session::get;
use crate::session::Session;
use crate::units::{pretty_duration, round_to};
use crate::{CheckResult, Error, PerfData, Thresholds, Unit, UnitSpec};

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
        let measured = fetch(db)?;
        Ok(judge(&measured, &ctx.thresholds))
    }
}

/// What one run measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Connect, authenticate and answer the query, in seconds.
    pub response: f64,
    pub connect: f64,
    /// `version()`'s number: `15.18`.
    pub version: String,
    pub in_recovery: bool,
    pub uptime: f64,
}

fn fetch(db: &mut Session) -> Result<Measured, Error> {
    let row = db.query_one(SQL)?;
    // Distributions append their own build after a space: "15.18 (Debian …)".
    let version: String = get(&row, "version")?;
    Ok(Measured {
        response: db.elapsed().as_secs_f64(),
        connect: db.connected_in().as_secs_f64(),
        version: version
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
        in_recovery: get(&row, "in_recovery")?,
        uptime: get::<f64>(&row, "uptime_seconds")?.max(0.0),
    })
}

/// The response time against `-w`/`-c`.
pub fn judge(m: &Measured, t: &Thresholds) -> CheckResult {
    let status = t.status(&[(Unit::Seconds, m.response)]);
    let role = if m.in_recovery { "standby" } else { "primary" };
    let summary = format!(
        "PostgreSQL {} ({role}) answered in {} (connect {}); up {}",
        m.version,
        pretty_duration(m.response),
        pretty_duration(m.connect),
        pretty_duration(m.uptime)
    );
    let perf = [
        PerfData::new("time", round_to(m.response, 6), Unit::Seconds)
            .thresholds(t)
            .min(0.0),
        PerfData::new("connect_time", round_to(m.connect, 6), Unit::Seconds).min(0.0),
        PerfData::new("uptime", m.uptime.round(), Unit::Seconds).min(0.0),
    ];
    CheckResult::new(status, summary).perf(perf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{perf, reported, thresholds};
    use crate::Status;

    fn measured(response: f64) -> Measured {
        Measured {
            response,
            connect: 0.002,
            version: "17.10".into(),
            in_recovery: false,
            uptime: 3600.4,
        }
    }

    #[test]
    fn default_thresholds_are_2s_and_8s_inclusive() {
        let t = thresholds::<Alive>(None, None);
        assert_eq!(judge(&measured(2.0), &t).status, Status::Ok);
        assert_eq!(judge(&measured(2.001), &t).status, Status::Warning);
        assert_eq!(judge(&measured(8.0), &t).status, Status::Warning);
        assert_eq!(judge(&measured(8.001), &t).status, Status::Critical);
    }

    #[test]
    fn milliseconds_and_bare_seconds_are_both_read() {
        let t = thresholds::<Alive>(Some("500ms"), Some("1"));
        assert_eq!(judge(&measured(0.5), &t).status, Status::Ok);
        assert_eq!(judge(&measured(0.6), &t).status, Status::Warning);
        assert_eq!(judge(&measured(1.2), &t).status, Status::Critical);
    }

    #[test]
    fn the_line_names_version_role_and_uptime() {
        let t = thresholds::<Alive>(None, None);
        let r = judge(&measured(0.003126), &t);
        assert_eq!(
            r.summary,
            "PostgreSQL 17.10 (primary) answered in 3 ms (connect 2 ms); up 1 h 0 min"
        );
        assert_eq!(
            perf(&r),
            [
                "time=0.003126s;2;8;0",
                "connect_time=0.002s;;;0",
                "uptime=3600s;;;0"
            ]
        );
        let standby = Measured {
            in_recovery: true,
            ..measured(0.0)
        };
        assert!(judge(&standby, &t).summary.contains("(standby)"));
        assert!(reported::<Alive>(judge(&measured(9.0), &t)).hint.is_some());
    }
}
