//! check_pg_alive: the server accepts a session and answers, and how fast;
//! the first questions of any health check (service up, database
//! reachable), with the server's version, role and uptime. And the restarts
//! a poll misses: a recent start (--min-uptime), and a crash reset, after
//! which the server answers again within seconds while every application
//! saw its sessions end.

use crate::check::{Check, Context, Judging};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::state::{Loaded, Snapshot, StateArgs};
use pgvigil_kit::units::{pretty_duration, round_to};
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Alive;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Restarts")]
pub struct Args {
    /// WARNING when the server started less than DURATION ago, naming when
    #[arg(long, value_name = "DURATION", value_parser = pgvigil_kit::units::parse_duration_option)]
    pub min_uptime: Option<f64>,
    #[command(flatten)]
    pub state: StateArgs,
}

// After a backend crashes, the postmaster ends every session, replays WAL
// and starts its auxiliary processes again, while its own start time stays:
// the checkpointer's backend_start (visible with pg_monitor) is when the
// server last came back, from a start or from a crash reset.
const SQL: &str = "
SELECT current_setting('server_version') AS version,
       pg_is_in_recovery() AS in_recovery,
       extract(epoch FROM now() - pg_postmaster_start_time())::float8 AS uptime_seconds,
       to_char(pg_postmaster_start_time(), 'YYYY-MM-DD HH24:MI:SS TZ') AS started_at,
       (SELECT to_char(min(backend_start), 'YYYY-MM-DD HH24:MI:SS.US TZ')
          FROM pg_stat_activity WHERE backend_type = 'checkpointer') AS reset_at,
       (SELECT extract(epoch FROM now() - min(backend_start))
          FROM pg_stat_activity WHERE backend_type = 'checkpointer')::float8 AS reset_seconds";

impl Check for Alive {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Seconds], Some(Unit::Seconds));
    const HINT: &'static str = "the server answers slowly: look at its load (top, iostat), at pg_stat_activity for a pile of active sessions, and at the server log; after a restart or a crash reset, read the server log around that time (a backend \"terminated by signal 9\" is usually the kernel's OOM killer: dmesg)";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  -w/-c apply to the response time: connecting, authenticating and answering
  one query (a bare number is seconds). Default: {defaults}, as check_pgsql.
  A server that cannot be reached is CRITICAL whatever the thresholds.
  --min-uptime makes a start less than that ago WARNING. A crash reset (a
  backend died, the postmaster ended every session and replayed WAL, its
  own start time unchanged) is CRITICAL on the first run after it, from the
  start times kept in the state directory; with --min-uptime, until the
  reset is that old, so that a retry does not clear it before it notifies.";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("2s", "8s"));
    type Args = Args;
    type Measured = Measured;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        let mut measured = measure(db)?;
        measured.restart = since_previous(args, ctx, &measured);
        Ok(measured)
    }

    /// The response time against `-w`/`-c`; a start less than `--min-uptime`
    /// ago is at least WARNING, a crash reset since the previous run CRITICAL.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, args) = (judging.thresholds, judging.args);
        let mut status = t.status(&[(Unit::Seconds, m.response)]);
        let role = if m.in_recovery { "standby" } else { "primary" };
        let mut summary = format!(
            "PostgreSQL {} ({role}) answered in {} (connect {}); up {}",
            m.version,
            pretty_duration(m.response),
            pretty_duration(m.connect),
            pretty_duration(m.uptime)
        );
        let mut details = Vec::new();
        if let Some(min) = args.min_uptime.filter(|min| m.uptime < *min) {
            status = status.worst(Status::Warning);
            summary.push_str(&format!(
                "; started at {}, less than --min-uptime {} ago",
                m.started_at,
                pretty_duration(min)
            ));
        }
        let reset_age = m.reset_seconds.unwrap_or(0.0);
        let within_min_uptime = args.min_uptime.is_some_and(|min| reset_age < min);
        match &m.restart {
            Since::CrashReset | Since::EarlierCrashReset
                if m.restart == Since::CrashReset || within_min_uptime =>
            {
                status = Status::Critical;
                summary.push_str(&format!(
                    "; crash reset at {} ({} ago): a backend died, every session was ended and WAL replayed, the postmaster up since {} ({})",
                    m.reset_at.as_deref().unwrap_or_default(),
                    pretty_duration(reset_age),
                    m.started_at,
                    if args.min_uptime.is_some() {
                        "CRITICAL until it is --min-uptime old"
                    } else {
                        "reported once"
                    }
                ));
            }
            Since::Unknown(why) => details.push(why.clone()),
            Since::CrashReset | Since::EarlierCrashReset | Since::Same => {}
        }
        let perf = [
            PerfData::new("time", round_to(m.response, 6), Unit::Seconds)
                .thresholds(t)
                .min(0.0),
            PerfData::new("connect_time", round_to(m.connect, 6), Unit::Seconds).min(0.0),
            PerfData::new("uptime", m.uptime.round(), Unit::Seconds).min(0.0),
        ];
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
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
    /// pg_postmaster_start_time(), as the server writes it.
    pub started_at: String,
    /// The checkpointer's start: the last start or crash reset; None when
    /// the role cannot see it (it needs pg_monitor).
    pub reset_at: Option<String>,
    pub reset_seconds: Option<f64>,
    /// What changed since the previous run.
    pub restart: Since,
}

/// What the previous run's record says of this run.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Since {
    /// Nothing to compare with, or nothing changed.
    #[default]
    Same,
    /// The postmaster stayed up, its auxiliary processes started again.
    CrashReset,
    /// The last reset, seen by an earlier run, was a crash reset.
    EarlierCrashReset,
    /// Detection is off, and why (a state directory that cannot be used,
    /// a role that cannot see the checkpointer).
    Unknown(String),
}

fn measure(db: &mut Session) -> Result<Measured, Error> {
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
        started_at: get(&row, "started_at")?,
        reset_at: get(&row, "reset_at")?,
        reset_seconds: get(&row, "reset_seconds")?,
        restart: Since::Same,
    })
}

/// Compares the start and reset times with the previous run's, keeping
/// them when they moved: a crash reset is reported once, by the first run
/// after it. A state directory that cannot be used turns detection off with
/// a note, never the liveness check UNKNOWN.
fn since_previous(args: &Args, ctx: &Context, m: &Measured) -> Since {
    let Some(reset_at) = &m.reset_at else {
        return Since::Unknown(
            "crash resets not detected: the role cannot see the checkpointer (GRANT pg_monitor)"
                .into(),
        );
    };
    let store = match ctx.state_store(&args.state) {
        Ok(store) => store,
        Err(e) => return Since::Unknown(format!("crash resets not detected: {e}")),
    };
    let previous = match store.load() {
        Loaded::Found(s) => s.markers,
        Loaded::Missing | Loaded::Unusable(_) => Default::default(),
    };
    let was = |key: &str, value: &String| previous.get(key) == Some(value);
    let same_start = was("postmaster start", &m.started_at);
    if same_start && was("reset", reset_at) {
        return if was("crash reset", reset_at) {
            Since::EarlierCrashReset
        } else {
            Since::Same
        };
    }
    // The same postmaster with another reset time: a crash reset.
    let since = if same_start {
        Since::CrashReset
    } else {
        Since::Same
    };
    let mut current = Snapshot::default();
    current
        .markers
        .insert("postmaster start".into(), m.started_at.clone());
    current.markers.insert("reset".into(), reset_at.clone());
    if since == Since::CrashReset {
        current
            .markers
            .insert("crash reset".into(), reset_at.clone());
    }
    match store.save(&current) {
        Ok(()) => since,
        Err(e) => Since::Unknown(format!("crash resets not detected: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, perf, reported, thresholds};
    use pgvigil_kit::Thresholds;

    fn measured(response: f64) -> Measured {
        Measured {
            response,
            connect: 0.002,
            version: "17.10".into(),
            in_recovery: false,
            uptime: 3600.4,
            started_at: "2026-11-29 10:00:00 UTC".into(),
            reset_at: Some("2026-11-29 10:00:00.120000 UTC".into()),
            reset_seconds: Some(3600.0),
            restart: Since::Same,
        }
    }

    fn args(min_uptime: Option<f64>) -> Args {
        Args {
            min_uptime,
            state: StateArgs::default(),
        }
    }

    fn judged(m: &Measured, t: &Thresholds) -> CheckResult {
        judge::<Alive>(m, &args(None), t, 0)
    }

    #[test]
    fn a_recent_start_warns_and_a_crash_reset_is_critical() {
        let t = thresholds::<Alive>(None, None);
        let r = judge::<Alive>(&measured(0.01), &args(Some(7200.0)), &t, 0);
        assert_eq!(r.status, Status::Warning);
        assert!(
            r.summary.ends_with(
                "; started at 2026-11-29 10:00:00 UTC, less than --min-uptime 2 h 0 min ago"
            ),
            "{}",
            r.summary
        );
        assert_eq!(
            judge::<Alive>(&measured(0.01), &args(Some(600.0)), &t, 0).status,
            Status::Ok
        );
        let mut m = measured(0.01);
        m.reset_seconds = Some(42.0);
        m.restart = Since::CrashReset;
        let r = reported::<Alive>(judged(&m, &t));
        assert_eq!(r.status, Status::Critical);
        assert!(
            r.summary.ends_with("; crash reset at 2026-11-29 10:00:00.120000 UTC (42 s ago): a backend died, every session was ended and WAL replayed, the postmaster up since 2026-11-29 10:00:00 UTC (reported once)"),
            "{}",
            r.summary
        );
        assert!(r.hint.unwrap().contains("OOM killer"));
        // With --min-uptime, it stays CRITICAL until the reset is that old.
        m.restart = Since::EarlierCrashReset;
        assert_eq!(judged(&m, &t).status, Status::Ok);
        let r = judge::<Alive>(&m, &args(Some(60.0)), &t, 0);
        assert_eq!(r.status, Status::Critical);
        assert!(r
            .summary
            .ends_with("(CRITICAL until it is --min-uptime old)"));
        assert_eq!(
            judge::<Alive>(&m, &args(Some(30.0)), &t, 0).status,
            Status::Ok
        );
        m.restart = Since::Unknown("crash resets not detected: why".into());
        let r = judged(&m, &t);
        assert_eq!((r.status, r.details.len()), (Status::Ok, 1));
    }

    #[test]
    fn default_thresholds_are_2s_and_8s_inclusive() {
        let t = thresholds::<Alive>(None, None);
        assert_eq!(judged(&measured(2.0), &t).status, Status::Ok);
        assert_eq!(judged(&measured(2.001), &t).status, Status::Warning);
        assert_eq!(judged(&measured(8.0), &t).status, Status::Warning);
        assert_eq!(judged(&measured(8.001), &t).status, Status::Critical);
    }

    #[test]
    fn milliseconds_and_bare_seconds_are_both_read() {
        let t = thresholds::<Alive>(Some("500ms"), Some("1"));
        assert_eq!(judged(&measured(0.5), &t).status, Status::Ok);
        assert_eq!(judged(&measured(0.6), &t).status, Status::Warning);
        assert_eq!(judged(&measured(1.2), &t).status, Status::Critical);
    }

    #[test]
    fn the_line_names_version_role_and_uptime() {
        let t = thresholds::<Alive>(None, None);
        let r = judged(&measured(0.003126), &t);
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
        assert!(judged(&standby, &t).summary.contains("(standby)"));
        assert!(reported::<Alive>(judged(&measured(9.0), &t)).hint.is_some());
    }
}
