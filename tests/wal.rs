//! check_pg_wal with WAL piling up for real: behind a failing
//! archive_command, behind an inactive slot, and a pgbench burst for the
//! rate; on a standby too.

use harness::{
    as_server_user, client_program, df, run_ok, server_major, temp_dir, Cluster, ClusterOptions,
    SmallFs,
};

const PLUGIN: &str = "check_pg_wal";

/// Small WAL settings, so a few segments pass max_wal_size.
fn small_wal(archive_command: Option<&str>) -> ClusterOptions {
    ClusterOptions {
        extra_conf: vec![
            "max_wal_size = 32MB".into(),
            "min_wal_size = 32MB".into(),
            // The harness keeps WAL for standbys; not these.
            if server_major() >= 13 {
                "wal_keep_size = 0".into()
            } else {
                "wal_keep_segments = 0".into()
            },
        ],
        archive_command: archive_command.map(str::to_string),
        ..ClusterOptions::default()
    }
}

/// `n` segments' worth of WAL: each switch ends one, and a checkpoint
/// would recycle them unless something holds them.
fn write_segments(cluster: &Cluster, n: usize) {
    cluster.execute("CREATE TABLE IF NOT EXISTS churn (g int)");
    for _ in 0..n {
        cluster
            .execute("INSERT INTO churn SELECT generate_series(1, 1000); SELECT pg_switch_wal()");
    }
    cluster.execute("CHECKPOINT");
}

#[test]
fn a_failing_archive_command_is_named_as_what_holds_wal() {
    let cluster = Cluster::start_with("wal-archive", small_wal(Some("/bin/false")));
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert!(
        out.summary()
            .contains(" of max_wal_size 32 MB; rate: first run, baseline saved"),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("wal_used").warn, "100");

    write_segments(&cluster, 4);
    cluster.wait_for(
        "SELECT failed_count > 0 FROM pg_stat_archiver",
        "archive_command to fail",
    );
    let out = cluster.plugin(PLUGIN).run();
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .contains("% of max_wal_size 32 MB; most held by archiver: "),
        "{}",
        out.summary()
    );
    assert!(
        out.long_output()[0].starts_with("archiver: ")
            && out.long_output()[0].contains(" waiting for archive_command (")
    );
    assert!(out.perf("wal_used").value > 150.0, "{}", out.stdout);
    assert!(out.perf("ready").value >= 4.0, "{}", out.stdout);
    assert!(out.hint().unwrap().contains("archive_command"));
    // A size and a file count apply too.
    cluster
        .plugin(PLUGIN)
        .args(&["-w", "1GB", "-c", "1TB"])
        .run()
        .expect("OK");
    cluster
        .plugin(PLUGIN)
        .args(&["-w", "1GB", "-c", "3"])
        .run()
        .expect("CRITICAL");
}

#[test]
fn an_inactive_slot_retaining_wal_is_named() {
    let cluster = Cluster::start_with("wal-slot", small_wal(None));
    cluster.execute("SELECT pg_create_physical_replication_slot('kept', true)");
    write_segments(&cluster, 4);
    let out = cluster.plugin(PLUGIN).run();
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .contains("; most held by slot kept (inactive) retains "),
        "{}",
        out.summary()
    );
    assert!(out.perf("slot_retained").value >= 3.0 * 16.0 * 1024.0 * 1024.0);
    cluster.execute("SELECT pg_drop_replication_slot('kept')");
    write_segments(&cluster, 1);
    cluster.execute("CHECKPOINT");
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert_eq!(out.perf("slot_retained").value, 0.0);
}

#[test]
fn a_burst_of_writes_is_measured_as_a_rate_on_primary_and_standby() {
    let primary = Cluster::start("wal-rate");
    let standby = Cluster::standby_of(&primary, "wal-rate-standby");
    let state = temp_dir("wal-rate-state");
    let state = state.to_str().unwrap();
    let run = |cluster: &Cluster, args: &[&str]| {
        cluster
            .plugin(PLUGIN)
            .env("PGVIGIL_STATE_DIR", state)
            .args(args)
            .run()
    };
    run(&primary, &[]).expect("OK");
    run(&standby, &[]).expect("OK");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    match client_program("pgbench", true) {
        Some(pgbench) => {
            run_ok(
                as_server_user(&pgbench)
                    .args(primary.connection_args())
                    .args(["-i", "-q", "-s", "2", "postgres"]),
                "pgbench -i",
            );
        }
        None => primary.execute(
            "CREATE TABLE burst AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 200000) g",
        ),
    }
    primary.wait_for(
        "SELECT replay_lsn = pg_current_wal_lsn() FROM pg_stat_replication",
        "the standby to catch up",
    );
    let out = run(&primary, &["-w", "rate=1MB"]);
    out.expect("WARNING");
    assert!(out.summary().contains(" written "), "{}", out.summary());
    let rate = out.perf("wal_rate");
    assert!(rate.value > 1024.0 * 1024.0, "{}", out.stdout);
    assert_eq!(rate.warn, "1048576");
    let out = run(&standby, &["-w", "rate=1MB"]);
    out.expect("WARNING");
    assert!(out.summary().contains(" received "), "{}", out.summary());
    assert!(out.summary().ends_with(" (standby)"), "{}", out.summary());
}

#[test]
fn pg_wal_filling_its_own_filesystem_is_forecast_full_in_time() {
    // Declared first, so the cluster stops before its filesystem goes.
    let small = SmallFs::mount(144);
    let wal_dir = small.0.join("wal");
    let mut options = small_wal(Some("/bin/false"));
    // The default max_wal_size, so the budget is far (1 GB); new segments
    // sparse and old ones kept, so the space used grows with the WAL
    // written, not 16 MB at a time.
    options
        .extra_conf
        .retain(|line| !line.contains("_wal_size"));
    options.extra_conf.extend([
        "wal_init_zero = off".to_string(),
        "wal_recycle = off".to_string(),
    ]);
    options.wal_dir = Some(wal_dir.clone());
    let cluster = Cluster::start_with("wal-forecast", options);
    let (mount, ..) = df(&wal_dir);
    let ballast = small.0.join("old-backup");
    std::fs::write(&ballast, vec![1u8; 32 << 20]).unwrap();
    let state = temp_dir("wal-forecast-state");
    let run = || {
        cluster
            .plugin(PLUGIN)
            .args(&["--forecast-window", "60s", "--state-dir"])
            .arg(state.to_str().unwrap())
            .args(&["-w", "100%,20s:", "-c", "150%,8s:"])
            .run()
    };

    // Past the segments copied whole with the cluster, which WAL fills
    // without taking more space.
    for _ in 0..3 {
        cluster
            .execute("SELECT pg_logical_emit_message(false, 'skip', 'x'); SELECT pg_switch_wal()");
    }
    // Half a megabyte of WAL every quarter second (2 MB/s), held in pg_wal
    // by the failing archive_command, a run after each write, until 12 MB
    // are left (a full pg_wal is a PANIC).
    let (_, used_at_start, _) = df(&wal_dir);
    let mut course = harness::Course::new();
    for i in 0..240 {
        course.step(i);
        // Transactional and committed synchronously, so the WAL is written
        // before the run, not whenever the WAL writer wakes: the space used
        // then grows as steadily as the schedule.
        cluster.execute(
            "SET synchronous_commit = on; SELECT pg_logical_emit_message(true, 'fill', repeat('x', 524288))",
        );
        let (_, used, size) = df(&wal_dir);
        let out = run();
        let left = out.perfdata().get("time_left").map(|p| p.value);
        // Gathering: never an alert, and no time_left.
        if course.elapsed() < 7.0 {
            out.expect("OK");
            assert!(left.is_none(), "{}", out.stdout);
            assert!(out.stdout.contains("more of history"), "{}", out.stdout);
        }
        if let Some(left) = left {
            course.compare_fill(left, (used_at_start, used, size), &out);
            assert!(
                out.summary().contains(", its filesystem full in "),
                "{}",
                out.stdout
            );
            // pg_wal reaches max_wal_size long after its filesystem is full.
            assert!(out.perf("budget_time_left").value > left, "{}", out.stdout);
        }
        course.saw(&out);
        // Stop well before the server PANICs on a full pg_wal.
        if used >= size - 12.0 * 1048576.0 {
            break;
        }
    }
    course.assert_few_misses();
    assert_eq!(course.seen, ["OK", "WARNING", "CRITICAL"]);
    let out = run();
    assert!(
        out.long_output()
            .iter()
            .any(|l| l.starts_with(&format!("pg_wal's filesystem {mount} "))
                && l.contains(": full in ")),
        "{}",
        out.stdout
    );

    // An old backup is deleted from the filesystem: a fall far beyond what
    // a checkpoint frees restarts the history. (The archiver catching up
    // would too, but before PostgreSQL 14 it sleeps a minute after failing,
    // and waking it ends a segment, which writes the rest of it out.)
    std::fs::remove_file(&ballast).unwrap();
    let out = run();
    out.expect("OK");
    assert!(!out.perfdata().contains_key("time_left"), "{}", out.stdout);
    assert!(
        out.long_output()
            .iter()
            .any(|l| l.starts_with("pg_wal's filesystem ") && l.contains("more of history")),
        "{}",
        out.stdout
    );
}
