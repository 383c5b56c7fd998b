//! check_pg_alive against a real primary and its standby, and a stopped server.

use harness::Cluster;

const PLUGIN: &str = "check_pg_alive";

#[test]
fn answers_with_version_role_uptime_and_times() {
    let primary = Cluster::start("alive");
    let out = primary.plugin(PLUGIN).run();
    out.expect("OK");
    let version: String = primary
        .client()
        .query_one("SELECT current_setting('server_version')", &[])
        .unwrap()
        .get(0);
    let version = version.split_whitespace().next().unwrap().to_string();
    let head = format!("PostgreSQL {version} (primary) answered in ");
    assert!(out.summary().starts_with(&head), "{}", out.summary());
    let time = out.perf("time");
    let connect = out.perf("connect_time");
    // Default -w 2s -c 8s, as check_pgsql.
    assert_eq!((time.warn.as_str(), time.crit.as_str()), ("2", "8"));
    assert!(time.value > 0.0 && time.value < 2.0, "{}", time.value);
    assert!(
        connect.value > 0.0 && connect.value <= time.value,
        "{} {}",
        connect.value,
        time.value
    );
    assert_eq!(time.uom, "s");
    assert!(out.perf("uptime").value >= 0.0);

    // Any response time is over -w 0.
    let out = primary.plugin(PLUGIN).args(&["-w", "0", "-c", "1h"]).run();
    out.expect("WARNING");
    let out = primary.plugin(PLUGIN).args(&["-w", "0", "-c", "0"]).run();
    out.expect("CRITICAL");

    let standby = Cluster::standby_of(&primary, "alive-standby");
    let out = standby.plugin(PLUGIN).run();
    out.expect("OK");
    assert!(
        out.summary()
            .starts_with(&format!("PostgreSQL {version} (standby) answered in ")),
        "{}",
        out.summary()
    );

    standby.stop();
    let out = standby.plugin(PLUGIN).run();
    out.expect("CRITICAL");
    assert!(
        out.summary().starts_with("cannot connect to "),
        "{}",
        out.summary()
    );
}

#[test]
fn a_recent_start_and_a_crash_reset_are_reported() {
    let cluster = Cluster::start("alive-reset");
    let state = harness::temp_dir("alive-reset-state");
    let run = |args: &[&str]| {
        cluster
            .plugin(PLUGIN)
            .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
            .args(args)
            .run()
    };
    // Just started: within --min-uptime, WARNING naming when.
    let out = run(&["--min-uptime", "1h"]);
    out.expect("WARNING");
    assert!(
        out.summary().contains("; started at ")
            && out
                .summary()
                .ends_with(", less than --min-uptime 1 h 0 min ago"),
        "{}",
        out.summary()
    );
    run(&[]).expect("OK");

    // One backend killed: the postmaster ends every session and replays
    // WAL, and answers again within seconds, its start time unchanged.
    let mut victim = cluster.client();
    let pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    harness::run_ok(
        harness::as_server_user("kill").args(["-9", &pid.to_string()]),
        "kill -9 a backend",
    );
    assert!(victim.simple_query("SELECT 1").is_err());
    let out = harness::daemon::wait_until(
        std::time::Duration::from_secs(30),
        "the server back after its reset",
        || {
            let out = run(&[]);
            (out.state() != "CRITICAL" || out.summary().contains("crash reset")).then_some(out)
        },
    );
    out.expect("CRITICAL");
    assert!(
        out.summary().contains("; crash reset at ")
            && out.summary().contains(" ago): a backend died, every session was ended and WAL replayed, the postmaster up since ")
            && out.summary().ends_with(" (reported once)"),
        "{}",
        out.summary()
    );
    assert!(out.hint().unwrap().contains("OOM killer"));
    // Once: the next run is OK again; with --min-uptime it stays CRITICAL
    // until the reset is that old, so that a retry cannot clear it.
    run(&[]).expect("OK");
    let out = run(&["--min-uptime", "1h"]);
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .ends_with(" (CRITICAL until it is --min-uptime old)"),
        "{}",
        out.summary()
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    run(&["--min-uptime", "1s"]).expect("OK");
}
