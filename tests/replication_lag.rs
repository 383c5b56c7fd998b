//! check_pg_replication_lag on a real primary with a real streaming standby
//! (copied from the stopped primary), with replay paused on the standby while the primary writes.

use harness::Cluster;

const PLUGIN: &str = "check_pg_replication_lag";

fn write_wal(primary: &Cluster, megabytes: u32) {
    primary.execute(&format!(
        "CREATE TABLE IF NOT EXISTS filler (t text);
         INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, {megabytes} * 1000);"
    ));
}

/// Runs `f` while the server process `pid` is stopped (SIGSTOP), and
/// lets it go on (SIGCONT) before returning what `f` returned.
fn while_stopped<T>(pid: i32, f: impl FnOnce() -> T) -> T {
    let signal = |sig: &str| {
        harness::run_ok(
            harness::as_server_user("kill").args([sig, &pid.to_string()]),
            &format!("kill {sig} {pid}"),
        )
    };
    signal("-STOP");
    let out = f();
    signal("-CONT");
    out
}

#[test]
fn primary_and_standby_both_sides() {
    let primary = Cluster::start("repl-primary");
    let standby = Cluster::standby_of(&primary, "standby1");

    // Caught up: OK on both sides, with the standby's lag in perfdata.
    let out = primary
        .plugin(PLUGIN)
        .args(&["--min-standbys", "1", "-w", "16MB,30s", "-c", "1GB,5min"])
        .run();
    out.expect("OK");
    assert!(
        out.summary().starts_with("1 of 1 standby streaming"),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("standbys").value, 1.0);
    let lag = out.perf("standby1 lag_bytes");
    assert_eq!(
        (lag.uom.as_str(), lag.warn.as_str(), lag.crit.as_str()),
        ("B", "16777216", "1073741824")
    );
    let lag_s = out.perf("standby1 lag_seconds");
    assert_eq!(
        (lag_s.uom.as_str(), lag_s.warn.as_str(), lag_s.crit.as_str()),
        ("s", "30", "300")
    );
    assert!(
        out.long_output()[0].starts_with("standby1: OK from local socket (streaming, async)"),
        "{}",
        out.stdout
    );

    // An idle primary is not lag: after a replayed commit, wait past the
    // 1 s threshold with nothing written; still OK.
    write_wal(&primary, 1);
    standby.wait_for(
        "SELECT pg_last_xact_replay_timestamp() IS NOT NULL AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()",
        "standby replayed a commit",
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let out = standby
        .plugin(PLUGIN)
        .args(&["-w", "1s", "-c", "1GB"])
        .run();
    out.expect("OK");
    assert_eq!(out.perf("lag_seconds").value, 0.0);
    assert_eq!(out.perf("lag_bytes").value, 0.0);
    assert!(
        out.summary().starts_with("standby 0 ms behind in replay"),
        "{}",
        out.summary()
    );

    // Replay paused while the primary writes ~8 MB: the standby receives but does not replay.
    standby.execute("SELECT pg_wal_replay_pause()");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write_wal(&primary, 8);
    standby.wait_for(
        "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) > 4 * 1024 * 1024",
        "WAL received but not replayed",
    );

    let out = standby
        .plugin(PLUGIN)
        .args(&["-w", "1MB", "-c", "1GB"])
        .run();
    out.expect("WARNING");
    assert!(
        out.perf("lag_bytes").value > 4.0 * 1048576.0,
        "{}",
        out.stdout
    );
    assert!(
        out.summary()
            .contains("; replay is paused (last transaction replayed from "),
        "{}",
        out.summary()
    );
    // Paused alone is WARNING, whatever the lag.
    standby
        .plugin(PLUGIN)
        .args(&["-w", "1TB", "-c", "2TB"])
        .run()
        .expect("WARNING");
    let out = standby
        .plugin(PLUGIN)
        .args(&["-w", "100ms", "-c", "1s"])
        .run();
    out.expect("CRITICAL");
    assert!(out.perf("lag_seconds").value >= 1.0, "{}", out.stdout);

    // The primary sees the same standby behind.
    primary.wait_for(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) > 4 * 1024 * 1024 FROM pg_stat_replication",
        "primary sees the lag",
    );
    let out = primary
        .plugin(PLUGIN)
        .args(&["-w", "1MB", "-c", "1GB"])
        .run();
    out.expect("WARNING");
    assert!(out.perf("standby1 lag_bytes").value > 4.0 * 1048576.0);
    assert_eq!(
        out.perf("max_lag_bytes").value,
        out.perf("standby1 lag_bytes").value
    );
    let out = primary
        .plugin(PLUGIN)
        .args(&["-w", "1MB", "-c", "2MB"])
        .run();
    out.expect("CRITICAL");

    // Resumed: back to OK.
    standby.execute("SELECT pg_wal_replay_resume()");
    standby.wait_for(
        "SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()",
        "replay caught up",
    );
    standby
        .plugin(PLUGIN)
        .args(&["-w", "1MB,1s"])
        .run()
        .expect("OK");

    // The standby goes away: the primary expecting one is CRITICAL.
    drop(standby);
    primary.wait_for(
        "SELECT count(*) = 0 FROM pg_stat_replication",
        "standby gone",
    );
    let out = primary.plugin(PLUGIN).args(&["--min-standbys", "1"]).run();
    out.expect("CRITICAL");
    assert_eq!(out.summary(), "no standby connected, 1 expected");
    assert_eq!(out.perf("standbys").value, 0.0);
}

#[test]
fn a_stalled_wal_sender_is_seen_while_the_lag_reads_zero() {
    let primary = Cluster::start("repl-stall");
    let standby = Cluster::standby_of(&primary, "stall1");
    let out = standby.plugin(PLUGIN).args(&["-w", "16MB"]).run();
    out.expect("OK");
    assert!(
        out.summary().contains("; last message from the primary "),
        "{}",
        out.summary()
    );
    let age = out.perf("receipt_age");
    assert_eq!((age.warn.as_str(), age.crit.as_str()), ("60", "300"));

    // The path stalls: the walsender stops, its TCP connection stays open,
    // and the standby still says streaming with nothing left to replay.
    let sender: i32 = primary
        .client()
        .query_one("SELECT pid FROM pg_stat_replication", &[])
        .unwrap()
        .get(0);
    let out = while_stopped(sender, || {
        std::thread::sleep(std::time::Duration::from_secs(3));
        standby
            .plugin(PLUGIN)
            .args(&["-w", "16MB,receipt_age=2s", "-c", "1GB"])
            .run()
    });
    out.expect("WARNING");
    assert!(
        out.summary().starts_with(
            "standby 0 ms behind in replay (0 bytes not replayed); last message from the primary "
        ),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("lag_bytes").value, 0.0);
    assert!(out.perf("receipt_age").value >= 3.0, "{}", out.stdout);
    assert_eq!(out.perf("receipt_age").warn, "2");

    // No WAL receiver at all: this standby follows no primary.
    drop(primary);
    let out = harness::daemon::wait_until(
        std::time::Duration::from_secs(30),
        "the WAL receiver to stop",
        || {
            let out = standby.plugin(PLUGIN).run();
            out.summary()
                .contains("no WAL receiver running")
                .then_some(out)
        },
    );
    out.expect("CRITICAL");
    standby
        .plugin(PLUGIN)
        .arg("--archive-only")
        .run()
        .expect("OK");
}

/// A WAL receiver that stops (SIGSTOP here; a standby stuck on its disk in
/// the field) reports nothing more: pg_stat_replication's replay_lag stands
/// at its last value and the primary drops the standby only at
/// wal_sender_timeout. Its silence while WAL waits is the lag (the soak saw
/// this fault only after a minute).
#[test]
fn a_stopped_wal_receiver_lags_by_its_silence_on_the_primary() {
    let primary = Cluster::start("repl-silent");
    primary.execute("ALTER SYSTEM SET wal_receiver_status_interval = '1s'");
    primary.execute("SELECT pg_reload_conf()");
    let standby = Cluster::standby_of(&primary, "silent1");
    primary
        .plugin(PLUGIN)
        .args(&["-w", "1GB,2s"])
        .run()
        .expect("OK");
    let receiver: i32 = standby
        .client()
        .query_one("SELECT pid FROM pg_stat_wal_receiver", &[])
        .unwrap()
        .get(0);
    let out = while_stopped(receiver, || {
        write_wal(&primary, 2);
        std::thread::sleep(std::time::Duration::from_secs(3));
        primary
            .plugin(PLUGIN)
            .args(&["-w", "1GB,2s", "-c", "2GB,1h"])
            .run()
    });
    out.expect("WARNING");
    assert!(
        out.summary().contains("; silent1 silent for "),
        "{}",
        out.stdout
    );
    assert!(
        out.summary().ends_with(" with WAL unconfirmed"),
        "{}",
        out.stdout
    );
    assert!(
        out.perf("silent1 lag_seconds").value >= 3.0,
        "{}",
        out.stdout
    );
    // Streaming again, it catches up and replies.
    primary.wait_for(
        "SELECT flush_lsn = pg_current_wal_lsn() AND coalesce(replay_lag, '0') < '2s' \
         FROM pg_stat_replication",
        "the standby to catch up",
    );
    primary
        .plugin(PLUGIN)
        .args(&["-w", "1GB,2s"])
        .run()
        .expect("OK");
}

#[test]
fn primary_without_standby_is_ok_unless_one_is_required() {
    let primary = Cluster::start("repl-alone");
    let out = primary.plugin(PLUGIN).run();
    out.expect("OK");
    assert_eq!(out.summary(), "primary with no standby connected");
    // The same labels as with standbys, zero valued, so graphs keep their series.
    for label in ["standbys", "max_lag_bytes", "max_lag_seconds"] {
        assert_eq!(out.perf(label).value, 0.0);
    }
    primary
        .plugin(PLUGIN)
        .args(&["--min-standbys", "1"])
        .run()
        .expect("CRITICAL");
}

#[test]
fn thresholds_need_a_unit() {
    let out = harness::PluginRun::new(PLUGIN).args(&["-w", "100"]).run();
    out.expect("UNKNOWN");
    assert!(
        out.summary().contains("'100' needs a unit"),
        "{}",
        out.summary()
    );
}
