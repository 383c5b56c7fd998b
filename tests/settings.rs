//! check_pg_settings against a real server: a setting waiting for a restart,
//! values compared with --expect in PostgreSQL's units, fsync off, and what
//! changed between two runs.

use harness::{Cluster, PLAIN};

const PLUGIN: &str = "check_pg_settings";
/// The test clusters run with fsync and full_page_writes off, for speed.
const SAFE_HERE: [&str; 4] = ["--ignore", "fsync", "--ignore", "full_page_writes"];

#[test]
fn restart_expectations_risks_and_changes() {
    let cluster = Cluster::start("settings");
    let run = |args: &[&str]| cluster.plugin(PLUGIN).args(&SAFE_HERE).args(args).run();

    // As the harness starts it: nothing to say once fsync is left aside.
    let out = run(&[]);
    out.expect("OK");
    assert!(
        out.summary()
            .ends_with(" settings read, none waiting for a restart"),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("pending_restart").value, 0.0);

    // fsync off is CRITICAL unless ignored.
    let out = cluster.plugin(PLUGIN).run();
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .starts_with("fsync is off: a crash may lose or corrupt data; full_page_writes is off"),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("unsafe").value, 2.0);

    // Units compare as PostgreSQL reads them: 1s is 1000ms.
    cluster.execute("ALTER SYSTEM SET log_min_duration_statement = '1s'");
    cluster.execute("ALTER SYSTEM SET log_lock_waits = on");
    cluster.execute("SELECT pg_reload_conf()");
    cluster.wait_for(
        "SELECT current_setting('log_lock_waits') = 'on'",
        "the reload",
    );
    let out = run(&[
        "--expect",
        "log_min_duration_statement=1000ms",
        "--expect",
        "log_lock_waits=true",
        "--expect",
        "shared_buffers=16MB",
    ]);
    out.expect("OK");
    assert!(
        out.summary().contains(", 3 settings as expected"),
        "{}",
        out.summary()
    );
    let out = run(&[
        "--expect",
        "log_min_duration_statement=2s",
        "--expect",
        "log_checkpoints=on",
        "--expect",
        "LOG_LOCK_WAITS=on",
    ]);
    out.expect("WARNING");
    let log_checkpoints_default_on = harness::server_major() >= 15;
    if log_checkpoints_default_on {
        assert_eq!(
            out.summary(),
            "log_min_duration_statement is 1s (expected 2s)"
        );
        assert_eq!(out.perf("unexpected").value, 1.0);
    } else {
        assert_eq!(
            out.summary(),
            "log_min_duration_statement is 1s (expected 2s); log_checkpoints is off (expected on)"
        );
        assert_eq!(out.perf("unexpected").value, 2.0);
    }
    assert!(out.hint().unwrap().contains("pg_reload_conf()"));

    // A setting that needs a restart is named until the restart.
    cluster.execute("ALTER SYSTEM SET shared_buffers = '24MB'");
    cluster.execute("SELECT pg_reload_conf()");
    cluster.wait_for(
        "SELECT pending_restart FROM pg_settings WHERE name = 'shared_buffers'",
        "shared_buffers to wait for a restart",
    );
    let out = run(&[]);
    out.expect("WARNING");
    assert_eq!(
        out.summary(),
        "1 setting waiting for a restart: shared_buffers"
    );
    assert_eq!(out.perf("pending_restart").value, 1.0);
    cluster.restart();
    run(&[]).expect("OK");

    // --changed: a baseline, then the change named once.
    let out = run(&["--changed"]);
    out.expect("OK");
    assert!(
        out.summary().ends_with("; first run, settings saved"),
        "{}",
        out.summary()
    );
    cluster.execute("ALTER SYSTEM SET work_mem = '8MB'");
    cluster.execute("SELECT pg_reload_conf()");
    cluster.wait_for("SELECT current_setting('work_mem') = '8MB'", "the reload");
    let out = run(&["--changed"]);
    out.expect("WARNING");
    assert_eq!(out.summary(), "work_mem changed from 4MB to 8MB");
    assert_eq!(out.perf("changed").value, 1.0);
    // Reported once: the new value is the baseline now.
    run(&["--changed"]).expect("OK");
    // The session's own settings (statement_timeout from -t) are no change.
    run(&["--changed", "-t", "7"]).expect("OK");
    // Nor is a setting ignored from now on, changed or not.
    cluster.execute("ALTER SYSTEM SET work_mem = '16MB'");
    cluster.execute("SELECT pg_reload_conf()");
    cluster.wait_for("SELECT current_setting('work_mem') = '16MB'", "the reload");
    run(&["--changed", "--ignore", "work_mem"]).expect("OK");
    run(&["--changed"]).expect("WARNING");
}

#[test]
fn bad_expectations_and_missing_privileges_are_unknown() {
    let cluster = Cluster::start("settings-privileges");
    for (expect, says) in [
        (
            "no_such_setting=1",
            "--expect no_such_setting: no such setting",
        ),
        (
            "work_mem=4s",
            "--expect work_mem=4s: 's' is a time unit, the setting is in kB",
        ),
        ("log_lock_waits=maybe", "not a boolean"),
        ("junk", "'junk' is not NAME=VALUE"),
    ] {
        let out = cluster.plugin(PLUGIN).args(&["--expect", expect]).run();
        out.expect("UNKNOWN");
        assert!(out.summary().contains(says), "{expect}: {}", out.summary());
    }
    // Without pg_read_all_settings the superuser-only settings are hidden.
    let out = cluster
        .plugin_as(PLUGIN, PLAIN)
        .args(&["--expect", "data_directory=/nowhere"])
        .run();
    out.expect("UNKNOWN");
    assert_eq!(
        out.summary(),
        "--expect data_directory: role \"plain\" cannot read that setting: it needs pg_read_all_settings, part of pg_monitor"
    );
}
