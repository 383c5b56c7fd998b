//! check_pg_replication_lag: on a primary, every standby's lag; on a standby,
//! WAL received but not yet replayed and the age of what was replayed last,
//! and the stalls that lag cannot show: a WAL receiver that hears nothing
//! from the primary (receive equals replay, so the lag reads 0), no
//! receiver at all, and replay left paused.

use crate::check::{Check, Context, Judging};
use crate::checks::common::catalog::require_stats_visibility;
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::judge::worst;
use pgvigil_kit::range::Range;
use pgvigil_kit::units::{pretty_bytes, pretty_duration, round_to};
use pgvigil_kit::words::plural;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

pub struct ReplicationLag;

#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Replication")]
pub struct Args {
    /// On a primary: CRITICAL when fewer standbys than this are streaming
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub min_standbys: u32,
    /// On a standby: it restores WAL from the archive only, so no WAL receiver is expected
    #[arg(long)]
    pub archive_only: bool,
}

// One statement for both roles. On a standby the time lag counts only while
// WAL waits to be replayed, so an idle primary never looks like lag.
// pg_stat_replication is pg_stat_get_wal_senders() joined to every session
// in pg_stat_get_activity(NULL) and to pg_authid; asking pg_stat_get_activity
// for the walsenders' pids alone gives the same rows for ~0.9 ms less server
// time in a new backend, and the same on every version from 12.
const SQL: &str = "
WITH node AS (
  SELECT pg_is_in_recovery() AS in_recovery,
         pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all
)
SELECT node.*,
  CASE WHEN in_recovery THEN
    coalesce(greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0), 0)::float8
  END AS standby_lag_bytes,
  CASE WHEN in_recovery THEN
    CASE WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
         ELSE greatest(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
    END::float8
  END AS standby_lag_seconds,
  CASE WHEN in_recovery THEN pg_is_wal_replay_paused() END AS replay_paused,
  CASE WHEN in_recovery THEN (SELECT status FROM pg_stat_wal_receiver) END AS receiver_status,
  CASE WHEN in_recovery THEN (SELECT greatest(extract(epoch FROM now() - last_msg_receipt_time), 0)
                                FROM pg_stat_wal_receiver) END::float8 AS receipt_age,
  CASE WHEN in_recovery THEN greatest(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
  END::float8 AS replayed_ago,
  a.application_name AS name, host(a.client_addr) AS addr, w.state, w.sync_state,
  CASE WHEN NOT in_recovery THEN
    pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(w.replay_lsn, w.flush_lsn, w.write_lsn, w.sent_lsn))::float8
  END AS lag_bytes,
  coalesce(extract(epoch FROM w.replay_lag), 0)::float8 AS lag_seconds,
  CASE WHEN NOT in_recovery THEN pg_current_wal_lsn() > coalesce(w.flush_lsn, '0/0') END AS unconfirmed,
  greatest(extract(epoch FROM now() - w.reply_time), 0)::float8 AS reply_age,
  extract(epoch FROM current_setting('wal_receiver_status_interval')::interval)::float8 AS status_interval
FROM node
LEFT JOIN (pg_stat_get_wal_senders() w CROSS JOIN LATERAL pg_stat_get_activity(w.pid) a)
  ON NOT node.in_recovery AND w.state <> 'backup'
ORDER BY a.application_name, w.pid";

/// What one run measures, on whichever side of replication the server is.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    /// A standby: what it has received but not replayed.
    Standby(Replay),
    /// A primary: its standbys, by name.
    Primary(Vec<Standby>),
}

/// A standby's own view of its replay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    /// WAL received and not replayed, in bytes.
    pub bytes: f64,
    /// How far replay is behind, in seconds; 0 when all received WAL is replayed.
    pub seconds: f64,
    pub paused: bool,
    /// pg_stat_wal_receiver's status; None when no receiver runs.
    pub receiver: Option<String>,
    /// Seconds since the receiver last heard from the primary (WAL or a
    /// keepalive, at least every wal_receiver_timeout / 2 while it streams).
    pub receipt_age: Option<f64>,
    /// Seconds since the last replayed transaction's commit on the primary.
    pub replayed_ago: Option<f64>,
}

/// One standby as its primary sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Standby {
    pub label: String,
    pub addr: String,
    pub state: String,
    pub sync_state: String,
    pub bytes: f64,
    /// pg_stat_replication's replay_lag: the standby's last report, which
    /// stands still while the standby says nothing.
    pub seconds: f64,
    /// WAL written here that the standby has not confirmed flushing.
    pub unconfirmed: bool,
    /// Seconds since the standby's last reply.
    pub reply_age: Option<f64>,
    /// wal_receiver_status_interval, in seconds: a standby that streams
    /// replies at least this often, and at every write.
    pub status_interval: f64,
}

impl Standby {
    /// The lag in time: replay_lag, or how long the standby has been
    /// silent while WAL waits for it, past the interval it replies at
    /// anyway (a WAL receiver stopped or stuck on its disk reports no lag;
    /// the primary only drops it at wal_sender_timeout).
    fn lag_seconds(&self) -> f64 {
        match self.silence() {
            Some(age) => self.seconds.max(age),
            None => self.seconds,
        }
    }

    fn silence(&self) -> Option<f64> {
        let age = self.reply_age?;
        (self.unconfirmed && self.status_interval > 0.0 && age > self.status_interval)
            .then_some(age)
    }
}

impl Check for ReplicationLag {
    const UNITS: UnitSpec =
        UnitSpec::of(&[Unit::Bytes, Unit::Seconds], None).with_labels(&["receipt_age"]);
    const HINT: &'static str = "on the standby: is the WAL receiver streaming (pg_stat_wal_receiver) and is replay paused or slowed by conflicts (pg_last_xact_replay_timestamp, the standby's log)? on the primary: pg_stat_replication's write, flush and replay lag, and the network";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  The unit decides what a range applies to: a size to the lag in bytes, a
  duration to the lag in time; give both separated by a comma.
  Examples: -w 16MB -c 1GB   -w 30s -c 5min   -w 16MB,30s -c 1GB,5min
  On a primary add --min-standbys 1 so that a lost standby is CRITICAL. A
  standby silent past wal_receiver_status_interval while WAL waits for it
  (a stopped or stuck WAL receiver) is behind by at least that silence.
  On a standby, receipt_age=DURATION applies to the time since the WAL
  receiver last heard from the primary: a stalled network path leaves it
  streaming with a lag of 0. Default: -w receipt_age=1min
  -c receipt_age=5min (a streaming receiver hears from its primary at least
  every wal_receiver_timeout / 2, 30 s by default; with wal_receiver_timeout
  = 0 it only hears WAL, so give ranges above the primary's quietest
  interval). No WAL receiver at all is
  CRITICAL (--archive-only when the standby restores from the archive only),
  replay paused WARNING.";
    type Args = Args;
    type Measured = Measured;

    fn fetch(_args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        measure(db, &ctx.conn.user)
    }

    /// Lag in bytes (a size) and in time (a duration) against `-w`/`-c`; on a
    /// primary, too few standbys streaming is CRITICAL; a standby that does not
    /// stream is at least WARNING, since it cannot know it is behind.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, args) = (judging.thresholds, judging.args);
        match m {
            Measured::Standby(replay) => standby_side(replay, t, args),
            Measured::Primary(standbys) => primary_side(standbys, t, args),
        }
    }
}

fn measure(db: &mut Session, user: &str) -> Result<Measured, Error> {
    let rows = db.query(SQL)?;
    let first = rows.first().ok_or_else(|| Error::Query("no row".into()))?;
    require_stats_visibility(get(first, "sees_all")?, user)?;
    if get::<bool>(first, "in_recovery")? {
        return Ok(Measured::Standby(Replay {
            bytes: get::<Option<f64>>(first, "standby_lag_bytes")?.unwrap_or(0.0),
            seconds: round_to(
                get::<Option<f64>>(first, "standby_lag_seconds")?.unwrap_or(0.0),
                3,
            ),
            paused: get::<Option<bool>>(first, "replay_paused")?.unwrap_or(false),
            receiver: get(first, "receiver_status")?,
            receipt_age: get(first, "receipt_age")?,
            replayed_ago: get(first, "replayed_ago")?,
        }));
    }
    let mut standbys = Vec::new();
    for row in &rows {
        let Some(state) = get::<Option<String>>(row, "state")? else {
            continue;
        };
        let name: Option<String> = get(row, "name")?;
        standbys.push(Standby {
            label: name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "standby".into()),
            addr: get::<Option<String>>(row, "addr")?.unwrap_or_else(|| "local socket".into()),
            state,
            sync_state: get::<Option<String>>(row, "sync_state")?.unwrap_or_default(),
            bytes: get::<Option<f64>>(row, "lag_bytes")?
                .unwrap_or(0.0)
                .max(0.0),
            seconds: round_to(get(row, "lag_seconds")?, 3),
            unconfirmed: get::<Option<bool>>(row, "unconfirmed")?.unwrap_or(false),
            reply_age: get::<Option<f64>>(row, "reply_age")?.map(|a| round_to(a, 3)),
            status_interval: get::<Option<f64>>(row, "status_interval")?.unwrap_or(10.0),
        });
    }
    disambiguate(&mut standbys);
    Ok(Measured::Primary(standbys))
}

/// The receipt age's ranges: as `-w`/`-c` name them, else the defaults.
fn receipt_ranges(t: &Thresholds) -> (Range, Range) {
    let given = |r: Option<&Range>, default: &str| {
        r.cloned()
            .unwrap_or_else(|| Range::parse(default).expect("valid default"))
    };
    (
        given(t.warning_for("receipt_age"), "60"),
        given(t.critical_for("receipt_age"), "300"),
    )
}

fn standby_side(r: &Replay, t: &Thresholds, args: &Args) -> CheckResult {
    let mut status = t.status(&[(Unit::Bytes, r.bytes), (Unit::Seconds, r.seconds)]);
    let mut summary = format!(
        "standby {} behind in replay ({} not replayed)",
        pretty_duration(r.seconds),
        pretty_bytes(r.bytes)
    );
    let (warn_age, crit_age) = receipt_ranges(t);
    match (r.receiver.as_deref(), r.receipt_age) {
        (None, _) if args.archive_only => {
            summary.push_str(
                "; restoring WAL from the archive (no WAL receiver, as --archive-only says)",
            );
        }
        (None, _) => {
            status = Status::Critical;
            summary.push_str("; no WAL receiver running: this standby streams from no primary");
        }
        (Some("streaming"), age) => {
            if let Some(age) = age {
                status = status.worst(if crit_age.alerts(age) {
                    Status::Critical
                } else if warn_age.alerts(age) {
                    Status::Warning
                } else {
                    Status::Ok
                });
                summary.push_str(&format!(
                    "; last message from the primary {} ago",
                    pretty_duration(age)
                ));
            }
        }
        (Some(other), _) => {
            status = status.worst(Status::Warning);
            summary.push_str(&format!(
                "; not streaming from the primary (WAL receiver {other})"
            ));
        }
    }
    if r.paused {
        status = status.worst(Status::Warning);
        summary.push_str("; replay is paused");
        if let Some(ago) = r.replayed_ago {
            summary.push_str(&format!(
                " (last transaction replayed from {} ago; pg_wal_replay_resume() resumes it)",
                pretty_duration(ago)
            ));
        }
    }
    let mut receipt = PerfData::new(
        "receipt_age",
        round_to(r.receipt_age.unwrap_or(0.0), 3),
        Unit::Seconds,
    )
    .min(0.0);
    receipt.warning = Some(warn_age.to_perfdata());
    receipt.critical = Some(crit_age.to_perfdata());
    let perf = [
        PerfData::new("lag_bytes", r.bytes, Unit::Bytes)
            .thresholds(t)
            .min(0.0),
        PerfData::new("lag_seconds", r.seconds, Unit::Seconds)
            .thresholds(t)
            .min(0.0),
        receipt,
    ];
    CheckResult::new(status, summary).perf(perf)
}

fn primary_side(standbys: &[Standby], t: &Thresholds, args: &Args) -> CheckResult {
    let streaming = standbys.iter().filter(|s| s.state == "streaming").count() as u32;
    let max_bytes = standbys.iter().map(|s| s.bytes).fold(0.0, f64::max);
    let max_seconds = standbys
        .iter()
        .map(Standby::lag_seconds)
        .fold(0.0, f64::max);
    let judged: Vec<Status> = standbys
        .iter()
        .map(|s| t.status(&[(Unit::Bytes, s.bytes), (Unit::Seconds, s.lag_seconds())]))
        .collect();
    let too_few = streaming < args.min_standbys;
    let status = if too_few {
        Status::Critical
    } else {
        worst(judged.iter().copied())
    };
    let summary = if standbys.is_empty() {
        if args.min_standbys > 0 {
            format!("no standby connected, {} expected", args.min_standbys)
        } else {
            "primary with no standby connected".to_string()
        }
    } else {
        let worst = standbys
            .iter()
            .max_by(|a, b| {
                (a.bytes, a.lag_seconds())
                    .partial_cmp(&(b.bytes, b.lag_seconds()))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .expect("not empty");
        let mut text = format!(
            "{streaming} of {} standby{} streaming",
            standbys.len(),
            plural(standbys.len() as i64)
        );
        if too_few {
            text.push_str(&format!(", {} expected", args.min_standbys));
        }
        text.push_str(&format!(
            "; largest lag {} / {} ({})",
            pretty_bytes(max_bytes),
            pretty_duration(max_seconds),
            worst.label
        ));
        if let Some(silent) = standbys
            .iter()
            .filter_map(|s| s.silence().map(|a| (a, s)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
        {
            text.push_str(&format!(
                "; {} silent for {} with WAL unconfirmed",
                silent.1.label,
                pretty_duration(silent.0)
            ));
        }
        text
    };
    let mut perf = vec![
        PerfData::new("standbys", f64::from(streaming), Unit::Count).min(0.0),
        PerfData::new("max_lag_bytes", max_bytes, Unit::Bytes)
            .thresholds(t)
            .min(0.0),
        PerfData::new("max_lag_seconds", max_seconds, Unit::Seconds)
            .thresholds(t)
            .min(0.0),
    ];
    let mut details = Vec::new();
    for (standby, state) in standbys.iter().zip(&judged) {
        perf.push(
            PerfData::new(
                format!("{} lag_bytes", standby.label),
                standby.bytes,
                Unit::Bytes,
            )
            .thresholds(t)
            .min(0.0),
        );
        perf.push(
            PerfData::new(
                format!("{} lag_seconds", standby.label),
                standby.lag_seconds(),
                Unit::Seconds,
            )
            .thresholds(t)
            .min(0.0),
        );
        details.push(format!(
            "{}: {} from {} ({}, {}), lag {} / {}{}",
            standby.label,
            state,
            standby.addr,
            standby.state,
            standby.sync_state,
            pretty_bytes(standby.bytes),
            pretty_duration(standby.lag_seconds()),
            standby
                .silence()
                .map(|a| format!(", silent for {}", pretty_duration(a)))
                .unwrap_or_default()
        ));
    }
    CheckResult::new(status, summary)
        .perf(perf)
        .details(details)
}

/// Standbys left at the default application_name all say `walreceiver`;
/// numbering the repeats keeps their perfdata labels apart.
fn disambiguate(standbys: &mut [Standby]) {
    let names: Vec<String> = standbys.iter().map(|s| s.label.clone()).collect();
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for (standby, name) in standbys.iter_mut().zip(&names) {
        if names.iter().filter(|n| *n == name).count() > 1 {
            let n = seen.entry(name.clone()).or_insert(0);
            *n += 1;
            standby.label = format!("{name}#{n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, perf, reported, thresholds};

    fn standby(label: &str, bytes: f64, seconds: f64) -> Standby {
        Standby {
            label: label.into(),
            addr: "192.0.2.2".into(),
            state: "streaming".into(),
            sync_state: "async".into(),
            bytes,
            seconds,
            unconfirmed: true,
            reply_age: Some(0.5),
            status_interval: 10.0,
        }
    }

    fn replay(bytes: f64, seconds: f64, receiver: Option<&str>) -> Measured {
        Measured::Standby(Replay {
            bytes,
            seconds,
            paused: false,
            receiver: receiver.map(str::to_string),
            receipt_age: Some(2.0),
            replayed_ago: None,
        })
    }

    #[test]
    fn sizes_and_durations_apply_each_to_their_own_lag() {
        let t = thresholds::<ReplicationLag>(Some("16MB,30s"), Some("1GB,5min"));
        let args = Args::default();
        let at = |b: f64, s: f64| {
            judge::<ReplicationLag>(&Measured::Primary(vec![standby("s1", b, s)]), &args, &t, 0)
                .status
        };
        assert_eq!(at(16.0 * 1048576.0, 30.0), Status::Ok);
        assert_eq!(at(16.0 * 1048576.0 + 1.0, 0.0), Status::Warning);
        assert_eq!(at(0.0, 30.5), Status::Warning);
        assert_eq!(at(0.0, 301.0), Status::Critical);
        let streaming = Some("streaming");
        assert_eq!(
            judge::<ReplicationLag>(&replay(0.0, 31.0, streaming), &args, &t, 0).status,
            Status::Warning
        );
        // No thresholds: lag alone never alarms.
        let none = thresholds::<ReplicationLag>(None, None);
        assert_eq!(
            judge::<ReplicationLag>(&replay(1e12, 1e6, streaming), &args, &none, 0).status,
            Status::Ok
        );
    }

    #[test]
    fn a_standby_that_does_not_stream_says_why() {
        let t = thresholds::<ReplicationLag>(None, None);
        // No receiver at all: it follows no primary.
        let r = judge::<ReplicationLag>(&replay(0.0, 0.0, None), &Args::default(), &t, 0);
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "standby 0 ms behind in replay (0 bytes not replayed); no WAL receiver running: this standby streams from no primary"
        );
        let archive = Args {
            archive_only: true,
            ..Args::default()
        };
        assert_eq!(
            judge::<ReplicationLag>(&replay(0.0, 0.0, None), &archive, &t, 0).status,
            Status::Ok
        );
        // A receiver that is not streaming (yet, or any more).
        let r =
            judge::<ReplicationLag>(&replay(0.0, 0.0, Some("waiting")), &Args::default(), &t, 0);
        assert_eq!(r.status, Status::Warning);
        assert!(r
            .summary
            .ends_with("; not streaming from the primary (WAL receiver waiting)"));
        let paused = Measured::Standby(Replay {
            paused: true,
            receiver: Some("streaming".into()),
            receipt_age: Some(1.0),
            replayed_ago: Some(7200.0),
            ..Replay::default()
        });
        let r = judge::<ReplicationLag>(&paused, &Args::default(), &t, 0);
        assert_eq!(r.status, Status::Warning);
        assert!(r.summary.ends_with(
            "; last message from the primary 1 s ago; replay is paused (last transaction replayed from 2 h 0 min ago; pg_wal_replay_resume() resumes it)"
        ), "{}", r.summary);
    }

    #[test]
    fn a_receiver_that_hears_nothing_alerts_while_the_lag_reads_zero() {
        let at = |age: f64, w: Option<&str>, c: Option<&str>| {
            let t = thresholds::<ReplicationLag>(w, c);
            let m = Measured::Standby(Replay {
                receiver: Some("streaming".into()),
                receipt_age: Some(age),
                ..Replay::default()
            });
            judge::<ReplicationLag>(&m, &Args::default(), &t, 0)
        };
        // Defaults: 1 min and 5 min.
        assert_eq!(at(30.0, None, None).status, Status::Ok);
        assert_eq!(at(61.0, None, None).status, Status::Warning);
        let r = at(301.0, None, None);
        assert_eq!(r.status, Status::Critical);
        assert_eq!(perf(&r)[2], "receipt_age=301s;60;300;0");
        // Its own ranges, beside the lag's.
        let r = at(3.0, Some("16MB,receipt_age=2s"), Some("1GB"));
        assert_eq!(r.status, Status::Warning);
        assert_eq!(perf(&r)[2], "receipt_age=3s;2;300;0");
        assert_eq!(perf(&r)[0], "lag_bytes=0B;16777216;1073741824;0");
    }

    #[test]
    fn a_standby_silent_while_wal_waits_lags_by_its_silence() {
        // A stuck WAL receiver: replay_lag stands at its last report.
        let t = thresholds::<ReplicationLag>(Some("16MB,30s"), Some("1GB,5min"));
        let mut stuck = standby("s1", 4.0 * 1024.0 * 1024.0, 0.2);
        stuck.reply_age = Some(42.0);
        let r = reported::<ReplicationLag>(judge::<ReplicationLag>(
            &Measured::Primary(vec![stuck.clone(), standby("s2", 0.0, 0.1)]),
            &Args::default(),
            &t,
            0,
        ));
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "2 of 2 standbys streaming; largest lag 4096 kB / 42 s (s1); s1 silent for 42 s with WAL unconfirmed"
        );
        assert!(
            r.details[0].ends_with("lag 4096 kB / 42 s, silent for 42 s"),
            "{:?}",
            r.details
        );
        // Quiet, not stuck: nothing waits for it, or it is within the
        // interval it replies at anyway, or it was told not to reply.
        for (unconfirmed, age, interval) in
            [(false, 42.0, 10.0), (true, 9.0, 10.0), (true, 42.0, 0.0)]
        {
            let mut quiet = stuck.clone();
            (quiet.unconfirmed, quiet.reply_age, quiet.status_interval) =
                (unconfirmed, Some(age), interval);
            let r =
                judge::<ReplicationLag>(&Measured::Primary(vec![quiet]), &Args::default(), &t, 0);
            assert_eq!(r.status, Status::Ok, "{}", r.summary);
        }
    }

    #[test]
    fn too_few_standbys_are_critical_and_each_standby_has_a_line() {
        let t = thresholds::<ReplicationLag>(Some("16MB"), None);
        let need_one = Args {
            min_standbys: 1,
            ..Args::default()
        };
        let r = reported::<ReplicationLag>(judge::<ReplicationLag>(
            &Measured::Primary(vec![]),
            &need_one,
            &t,
            0,
        ));
        assert_eq!(r.status, Status::Critical);
        assert_eq!(r.summary, "no standby connected, 1 expected");
        assert!(r
            .hint
            .unwrap()
            .starts_with("on the standby: is the WAL receiver streaming"));
        let r = judge::<ReplicationLag>(&Measured::Primary(vec![]), &Args::default(), &t, 0);
        assert_eq!(
            (r.status, r.summary.as_str()),
            (Status::Ok, "primary with no standby connected")
        );

        let mut catching_up = standby("s2", 32.0 * 1048576.0, 2.0);
        catching_up.state = "catchup".into();
        let two = Measured::Primary(vec![standby("s1", 0.0, 0.0), catching_up]);
        let r = judge::<ReplicationLag>(
            &two,
            &Args {
                min_standbys: 2,
                ..Args::default()
            },
            &t,
            0,
        );
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "1 of 2 standbys streaming, 2 expected; largest lag 32 MB / 2 s (s2)"
        );
        assert_eq!(
            r.details,
            [
                "s1: OK from 192.0.2.2 (streaming, async), lag 0 bytes / 0 ms",
                "s2: WARNING from 192.0.2.2 (catchup, async), lag 32 MB / 2 s"
            ]
        );
        assert_eq!(perf(&r)[3], "'s1 lag_bytes'=0B;16777216;;0");
    }

    #[test]
    fn repeated_names_are_numbered() {
        let mut standbys = vec![
            standby("walreceiver", 0.0, 0.0),
            standby("walreceiver", 0.0, 0.0),
            standby("s3", 0.0, 0.0),
        ];
        disambiguate(&mut standbys);
        let labels: Vec<_> = standbys.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["walreceiver#1", "walreceiver#2", "s3"]);
    }
}
