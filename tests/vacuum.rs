//! check_pg_vacuum with a table autovacuum may not touch, and --all-databases
//! over several databases, one of which refuses the monitoring role.

use std::time::Duration;

use harness::Cluster;

const PLUGIN: &str = "check_pg_vacuum";

/// A table with autovacuum off, 20,000 rows analyzed, then 15,000 deleted.
fn dead_tuples(cluster: &Cluster, dbname: &str) {
    for sql in [
        "CREATE TABLE novac (id int, pad text) WITH (autovacuum_enabled = off)",
        "INSERT INTO novac SELECT g, repeat('x', 50) FROM generate_series(1, 20000) g",
        "ANALYZE novac",
        "DELETE FROM novac WHERE id > 5000",
    ] {
        cluster.execute_in(dbname, sql);
    }
    cluster.wait_for_stats(dbname,
        "SELECT coalesce((SELECT n_dead_tup = 15000 FROM pg_stat_user_tables WHERE relname = 'novac'), false)",
        "dead tuples counted",
    );
}

#[test]
fn dead_tuples_stale_statistics_and_autovacuum_disabled() {
    let cluster = Cluster::start("vacuum-table");
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert_eq!(out.summary(), "no table needs VACUUM or ANALYZE");
    let pct = out.perf("max_dead_pct");
    assert_eq!((pct.warn.as_str(), pct.crit.as_str()), ("10", "50"));
    assert_eq!(out.perf("oldest_stale").warn, "86400");

    dead_tuples(&cluster, "postgres");
    let out = cluster.plugin(PLUGIN).run();
    out.expect("CRITICAL");
    let summary = out.summary();
    assert!(
        summary.starts_with(
            "public.novac: 15000 dead tuples of 5000 live (300%), last vacuum never; 15000 rows changed since last analyze "
        ),
        "{summary}"
    );
    assert!(
        summary.ends_with(
            "; autovacuum disabled; 1 table to VACUUM, 1 to ANALYZE, 1 with autovacuum disabled"
        ),
        "{summary}"
    );
    assert_eq!(out.perf("max_dead_pct").value, 300.0);
    assert_eq!(out.perf("need_vacuum").value, 1.0);
    assert_eq!(out.perf("autovacuum_disabled").value, 1.0);
    assert_eq!(out.long_output().len(), 1);
    assert!(out.long_output()[0].starts_with("CRITICAL public.novac: "));

    // Under --min-dead the dead share does not count; autovacuum being off still warns.
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--min-dead", "20000", "--min-changes", "20000"])
        .run();
    out.expect("WARNING");
    // A relation filter leaves it out.
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--exclude", "^public\\.novac$"])
        .run();
    out.expect("OK");
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--include", "^other\\."])
        .run();
    out.expect("OK");

    // Vacuumed, then changed again: only the statistics are stale now.
    cluster.execute("VACUUM ANALYZE novac");
    cluster.execute("UPDATE novac SET pad = 'y' WHERE id <= 1500");
    cluster.wait_for_stats(
        "postgres",
        "SELECT n_mod_since_analyze >= 1500 FROM pg_stat_user_tables WHERE relname = 'novac'",
        "changes counted",
    );
    std::thread::sleep(Duration::from_millis(1500));
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--min-dead", "100000", "-w", "90%,1h", "-c", "95%,1s"])
        .run();
    out.expect("CRITICAL");
    let summary = out.summary();
    assert!(
        summary.contains("1500 rows changed since last analyze "),
        "{summary}"
    );
    assert!(
        summary.contains("0 tables to VACUUM, 1 to ANALYZE"),
        "{summary}"
    );
    assert!(out.perf("oldest_stale").value >= 1.0);
}

/// pg_stat_reset() sets every table's live count to 0, not its rows: the
/// dead tuples made after it are a share of the table, not of nothing (the
/// soak's routine reset made every busy table CRITICAL, "100% dead").
#[test]
fn a_statistics_reset_leaves_the_tables_size_alone() {
    let cluster = Cluster::start("vacuum-reset");
    for sql in [
        "CREATE TABLE busy (id int PRIMARY KEY, n int) WITH (autovacuum_vacuum_threshold = 1000000, \
         autovacuum_analyze_threshold = 1000000)",
        "INSERT INTO busy SELECT g, 0 FROM generate_series(1, 20000) g",
        "ANALYZE busy",
        "SELECT pg_stat_reset()",
        "UPDATE busy SET n = 1 WHERE id <= 1500",
    ] {
        cluster.execute(sql);
    }
    cluster.wait_for_stats(
        "postgres",
        "SELECT coalesce((SELECT n_dead_tup = 1500 AND n_live_tup = 0 FROM pg_stat_user_tables WHERE relname = 'busy'), false)",
        "dead tuples counted after the reset",
    );
    let out = cluster.plugin(PLUGIN).args(&["-v"]).run();
    out.expect("OK");
    assert_eq!(out.perf("max_dead_pct").value, 7.5, "{}", out.stdout);
}

/// Dead tuples that a vacuum a moment ago could not remove, because an open
/// snapshot still sees them, are not the vacuum's to fix: another VACUUM
/// would not help, and the snapshot's holder is check_pg_long_running's to
/// report. (The soak's 2-minute reporting query paged through a 10-row
/// table autovacuum visited every minute.)
#[test]
fn dead_tuples_an_open_snapshot_holds_past_a_vacuum_do_not_page() {
    let cluster = Cluster::start("vacuum-held");
    cluster.execute(
        "CREATE TABLE hot (id int PRIMARY KEY, n int) WITH (autovacuum_vacuum_threshold = 1000000, \
         autovacuum_analyze_threshold = 1000000)",
    );
    cluster.execute("INSERT INTO hot SELECT g, 0 FROM generate_series(1, 10) g");
    cluster.execute("ANALYZE hot");
    let mut reader = cluster.client();
    reader
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM hot")
        .unwrap();
    cluster.execute("DO $$ BEGIN FOR i IN 1..150 LOOP UPDATE hot SET n = n + 1; END LOOP; END $$");
    // The updating session's counts first: flushed after the VACUUM (its
    // backend exiting late on a loaded machine) they would add to the
    // count the VACUUM set.
    cluster.wait_for_stats(
        "postgres",
        "SELECT coalesce((SELECT n_dead_tup >= 1500 FROM pg_stat_user_tables WHERE relname = 'hot'), false)",
        "the updates counted",
    );
    cluster.execute("VACUUM hot");
    cluster.wait_for_stats(
        "postgres",
        "SELECT coalesce((SELECT n_dead_tup >= 1500 AND last_vacuum IS NOT NULL \
         FROM pg_stat_user_tables WHERE relname = 'hot'), false)",
        "the dead tuples the vacuum left",
    );
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    let kept = out
        .summary()
        .strip_prefix("no table needs VACUUM or ANALYZE; public.hot keeps ")
        .and_then(|rest| rest.split_once(" dead tuples though vacuumed "))
        .and_then(|(n, _)| n.parse::<i64>().ok());
    assert!(kept.is_some_and(|n| n >= 1500), "{}", out.stdout);
    assert_eq!(out.perf("max_dead_pct").value, 0.0);
    // Past three naptimes (1 s here) without a vacuum the share counts again.
    cluster.execute("ALTER SYSTEM SET autovacuum_naptime = 1");
    cluster.execute("SELECT pg_reload_conf()");
    std::thread::sleep(Duration::from_millis(3500));
    let out = cluster.plugin(PLUGIN).run();
    out.expect("CRITICAL");
    assert!(
        out.summary().starts_with(&format!(
            "public.hot: {} dead tuples of 10 live (",
            kept.unwrap()
        )),
        "{}",
        out.stdout
    );
    drop(reader);
}

#[test]
fn all_databases_with_one_refusing_connections() {
    let cluster = Cluster::start("vacuum-databases");
    for sql in [
        "CREATE DATABASE app",
        "CREATE DATABASE locked",
        "CREATE DATABASE closed",
        "REVOKE CONNECT ON DATABASE locked FROM PUBLIC",
        "ALTER DATABASE closed ALLOW_CONNECTIONS false",
    ] {
        cluster.execute(sql);
    }
    dead_tuples(&cluster, "app");

    // Only the -d database without --all-databases.
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");

    let out = cluster.plugin(PLUGIN).arg("--all-databases").run();
    out.expect("CRITICAL");
    let summary = out.summary();
    assert!(
        summary.starts_with("app.public.novac: 15000 dead tuples"),
        "{summary}"
    );
    // app and postgres checked; locked refused us; closed takes no connections.
    assert!(
        summary.ends_with(" in 2 databases; 1 database unreachable (locked)"),
        "{summary}"
    );
    let details = out.long_output();
    assert_eq!(
        details[0],
        "database locked not checked: permission denied for database \"locked\""
    );

    // An unreachable database makes an otherwise clean result WARNING.
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--all-databases", "--exclude-db", "^app$"])
        .run();
    out.expect("WARNING");
    assert!(
        out.summary().ends_with("; 1 database unreachable (locked)"),
        "{}",
        out.summary()
    );
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--all-databases", "--include-db", "^(postgres|app)$"])
        .run();
    out.expect("CRITICAL");
    assert!(!out.summary().contains("unreachable"), "{}", out.summary());

    // Bad filters are UNKNOWN with one clear line.
    for (args, says) in [
        (vec!["--include-db", "app"], "--all-databases"),
        (
            vec!["--all-databases", "--include-db", "(app"],
            "regex parse error",
        ),
        (
            vec!["--all-databases", "--include-db", "^nothing$"],
            "no database",
        ),
    ] {
        let out = cluster.plugin(PLUGIN).args(&args).run();
        out.expect("UNKNOWN");
        assert!(out.summary().contains(says), "{args:?}: {}", out.summary());
        // The status line and the next step, nothing else.
        assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
        assert!(out.hint().is_some(), "{}", out.stdout);
    }
}

#[test]
fn autovacuum_workers_all_busy_on_slow_vacuums() {
    let cluster = Cluster::start_with(
        "vacuum-workers",
        harness::ClusterOptions {
            extra_conf: vec![
                "autovacuum_max_workers = 2".into(),
                "autovacuum_naptime = 1s".into(),
            ],
            ..harness::ClusterOptions::default()
        },
    );
    let loose = "100%,30d";
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", &format!("{loose},workers=99%"), "-c", loose])
        .run();
    out.expect("OK");
    assert_eq!(out.perf("autovacuum_busy").max, "100");
    for t in ["big1", "big2", "big3"] {
        cluster.execute(&format!(
            // Vacuumed at once, and crawling: a 100 ms nap after every page or so.
            "CREATE TABLE {t} WITH (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
                                    autovacuum_vacuum_cost_limit = 1, autovacuum_vacuum_cost_delay = 100)
               AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 50000) g;
             DELETE FROM {t} WHERE id % 2 = 0"
        ));
    }
    cluster.wait_for(
        "SELECT count(*) = 2 FROM pg_stat_activity
          WHERE backend_type = 'autovacuum worker' AND query LIKE 'autovacuum: VACUUM%public.big%'",
        "both autovacuum workers to be busy",
    );
    std::thread::sleep(Duration::from_millis(1100));
    let out = cluster
        .plugin(PLUGIN)
        .args(&[
            "-w",
            &format!("{loose},workers=99%,worker_age=1s"),
            "-c",
            &format!("{loose},worker_age=1h"),
        ])
        .run();
    out.expect("WARNING");
    assert!(
        out.summary()
            .contains("; autovacuum workers 2 of 2 busy, the longest for "),
        "{}",
        out.summary()
    );
    let line = out
        .long_output()
        .into_iter()
        .find(|l| l.starts_with("WARNING autovacuum: 2 of 2 workers busy; the longest for "))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        line.contains("autovacuum: VACUUM") && line.contains(" public.big"),
        "{line}"
    );
    let busy = out.perf("autovacuum_busy");
    assert_eq!((busy.value, busy.warn.as_str()), (100.0, "99"));
    assert!(out.perf("autovacuum_longest").value >= 1.0);
    // Without the worker ranges, busy workers alone do not alert.
    cluster
        .plugin(PLUGIN)
        .args(&["-w", loose, "-c", loose])
        .run()
        .expect("OK");
}
