//! The rate checks over pg_stat_database and the checkpointer, each between
//! two runs around the real thing: reads that miss the cache, rollbacks, a
//! sort that spills, a forced checkpoint, a database that grows.

use std::path::Path;

use harness::{
    as_server_user, client_program, run_ok, server_major, temp_dir, Cluster, ClusterOptions,
    PluginOutput,
};

fn run(cluster: &Cluster, plugin: &str, state: &Path, args: &[&str]) -> PluginOutput {
    let out = cluster
        .plugin(plugin)
        .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
        .args(args)
        .run();
    eprintln!("{}", out.stdout.trim_end());
    out
}

/// Runs `sql` in a session that ends (so its statistics are reported), then
/// waits until `visible` holds.
fn activity(cluster: &Cluster, sql: &str, visible: &str) {
    let mut client = cluster.client();
    client.batch_execute(sql).unwrap();
    drop(client);
    cluster.wait_for_stats("postgres", visible, "the statistics");
}

fn stat(cluster: &Cluster, column: &str) -> i64 {
    cluster
        .client()
        .query_one(
            &format!("SELECT {column}::int8 FROM pg_stat_database WHERE datname = 'postgres'"),
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn hit_ratio_of_a_scan_bigger_than_shared_buffers() {
    let cluster = Cluster::start("hit-ratio");
    let state = temp_dir("hit-ratio-state");
    // 30 MB against 16 MB of shared_buffers: a scan reads most of it from disk.
    cluster.execute("CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 120000) g");
    let out = run(&cluster, "check_pg_hit_ratio", &state, &[]);
    out.expect("OK");
    assert_eq!(out.summary(), "first run, baseline saved");
    assert_eq!(out.perf("blks_read").uom, "c");

    let before = stat(&cluster, "blks_read");
    activity(
        &cluster,
        "SELECT count(*) FROM big; SELECT count(*) FROM big",
        &format!(
            "SELECT blks_read >= {} FROM pg_stat_database WHERE datname = 'postgres'",
            before + 3000
        ),
    );
    let out = run(&cluster, "check_pg_hit_ratio", &state, &[]);
    out.expect("CRITICAL");
    assert!(
        out.summary().contains("% hit ratio in the last "),
        "{}",
        out.summary()
    );
    let ratio = out.perf("hit_ratio");
    assert!(ratio.value < 90.0, "{}", ratio.value);
    assert_eq!((ratio.warn.as_str(), ratio.crit.as_str()), ("95:", "90:"));
    assert!(out.perf("postgres hit_ratio").value < 90.0);
    assert!(out
        .long_output()
        .iter()
        .any(|l| l.starts_with("CRITICAL postgres: ")));

    // A quiet interval has too few reads to judge.
    let out = run(
        &cluster,
        "check_pg_hit_ratio",
        &state,
        &["--min-reads", "100000"],
    );
    out.expect("OK");
    assert!(
        out.summary()
            .ends_with("(fewer than --min-reads 100000: not judged)"),
        "{}",
        out.summary()
    );
}

#[test]
fn rollbacks_and_temporary_files_between_runs() {
    let cluster = Cluster::start("commit-temp");
    let state = temp_dir("commit-temp-state");
    for plugin in ["check_pg_commit_ratio", "check_pg_temp_files"] {
        run(&cluster, plugin, &state, &[]).expect("OK");
    }

    let before = stat(&cluster, "xact_rollback");
    let mut work = String::new();
    for _ in 0..150 {
        work.push_str("BEGIN; SELECT 1; ROLLBACK; ");
    }
    for _ in 0..50 {
        work.push_str("BEGIN; SELECT 1; COMMIT; ");
    }
    activity(
        &cluster,
        &work,
        &format!(
            "SELECT xact_rollback >= {} FROM pg_stat_database WHERE datname = 'postgres'",
            before + 150
        ),
    );
    let out = run(
        &cluster,
        "check_pg_commit_ratio",
        &state,
        &["-w", "50%", "-c", "90%"],
    );
    out.expect("WARNING");
    assert!(
        out.summary().starts_with("150 rollbacks of "),
        "{}",
        out.summary()
    );
    let pct = out.perf("rollback_pct").value;
    assert!((50.0..90.0).contains(&pct), "{pct}");
    assert_eq!(out.perf("rollbacks_interval").value, 150.0);

    let before = stat(&cluster, "temp_files");
    activity(
        &cluster,
        "SET work_mem = '64kB'; SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC) s",
        &format!("SELECT temp_files > {before} FROM pg_stat_database WHERE datname = 'postgres'"),
    );
    let out = run(
        &cluster,
        "check_pg_temp_files",
        &state,
        &["-w", "0", "-c", "1GB"],
    );
    out.expect("WARNING");
    assert!(
        out.summary().contains(" temporary file"),
        "{}",
        out.summary()
    );
    assert!(out.perf("temp_files").value >= 1.0);
    assert!(out.perf("temp_bytes").value > 64.0 * 1024.0);
    assert!(
        out.long_output()[0].starts_with("postgres: "),
        "{:?}",
        out.long_output()
    );
    let out = run(&cluster, "check_pg_temp_files", &state, &["-w", "0"]);
    out.expect("OK");
}

#[test]
fn an_application_that_stops_writing_is_too_few_commits_per_second() {
    let cluster = Cluster::start("commit-rate");
    let state = temp_dir("commit-rate-state");
    cluster.execute("CREATE DATABASE app");
    cluster.execute_in("app", "CREATE TABLE orders (id int)");
    let ranges = [
        "-w",
        "commit_rate=1:",
        "-c",
        "commit_rate=0.1:",
        "--rate-db",
        "^app$",
    ];
    run(&cluster, "check_pg_commit_ratio", &state, &ranges).expect("OK");

    // The application writes: a few hundred commits in a second or two.
    let mut app = cluster.client_to("postgres", "app");
    for i in 0..300 {
        app.batch_execute(&format!("INSERT INTO orders VALUES ({i})"))
            .unwrap();
    }
    drop(app);
    cluster.wait_for_stats(
        "app",
        "SELECT xact_commit >= 300 FROM pg_stat_database WHERE datname = 'app'",
        "the application's commits",
    );
    let out = run(&cluster, "check_pg_commit_ratio", &state, &ranges);
    out.expect("OK");
    assert!(
        out.summary()
            .ends_with(" commits per second in databases matching ^app$"),
        "{}",
        out.summary()
    );
    let rate = out.perf("commit_rate");
    assert!(rate.value > 1.0, "{}", out.stdout);
    assert_eq!((rate.warn.as_str(), rate.crit.as_str()), ("1:", "0.1:"));

    // Then it stops: the server is up and quiet, and that pages.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let out = run(&cluster, "check_pg_commit_ratio", &state, &ranges);
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .ends_with("; 0 commits per second in databases matching ^app$"),
        "{}",
        out.summary()
    );
    assert!(out.hint().unwrap().contains("consumer stuck"));
}

#[test]
fn a_forced_checkpoint_and_a_growing_database() {
    let cluster = Cluster::start("checkpoint-size");
    let state = temp_dir("checkpoint-size-state");
    run(&cluster, "check_pg_checkpoints", &state, &[]).expect("OK");
    let out = run(&cluster, "check_pg_db_size", &state, &["-w", "1GB"]);
    out.expect("OK");
    assert!(
        out.summary()
            .ends_with("; growth: first run, baseline saved"),
        "{}",
        out.summary()
    );
    // Growth is judged over at least an hour by default.
    let out = run(&cluster, "check_pg_db_size", &state, &["--growth", "1B"]);
    out.expect("OK");
    assert!(
        out.summary().contains("; growth: baseline from "),
        "{}",
        out.summary()
    );
    assert!(
        out.summary()
            .ends_with(", measured once 1 h 0 min have passed"),
        "{}",
        out.summary()
    );
    assert!(out.perf("postgres size").value > 1_000_000.0);

    // PostgreSQL 17 counts checkpoints in pg_stat_checkpointer.
    let requested = if server_major() >= 17 {
        "SELECT num_requested FROM pg_stat_checkpointer"
    } else {
        "SELECT checkpoints_req FROM pg_stat_bgwriter"
    };
    let before: i64 = cluster.client().query_one(requested, &[]).unwrap().get(0);
    cluster.execute(
        "CREATE TABLE grows AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 20000) g",
    );
    cluster.execute("CHECKPOINT");
    cluster.wait_for_stats(
        "postgres",
        &format!("SELECT ({requested}) > {before}"),
        "the checkpoint counted",
    );
    // Judged over any number of checkpoints when told so.
    let out = run(
        &cluster,
        "check_pg_checkpoints",
        &state,
        &["-w", "50%", "--min-checkpoints", "0"],
    );
    out.expect("WARNING");
    let summary = out.summary();
    assert!(summary.contains(" checkpoint"), "{summary}");
    assert!(summary.contains(" requested (100%): writing "), "{summary}");
    assert_eq!(out.perf("requested_pct").value, 100.0);

    // About 10 MB more in seconds: far beyond 1 GB per day.
    let out = run(
        &cluster,
        "check_pg_db_size",
        &state,
        &[
            "-w",
            "1GB",
            "--growth-interval",
            "0",
            "--growth",
            "1GB",
            "--growth-critical",
            "100000TB",
        ],
    );
    out.expect("WARNING");
    let summary = out.summary();
    assert!(summary.starts_with("postgres "), "{summary}");
    assert!(summary.contains(" per day); "), "{summary}");
    let growth = out.perf("postgres growth_per_day");
    assert!(growth.value > 1073741824.0, "{}", growth.value);
    assert_eq!(growth.warn, "1073741824");
    let out = run(
        &cluster,
        "check_pg_db_size",
        &state,
        &["-c", "1MB", "--growth-interval", "0"],
    );
    out.expect("CRITICAL");
    // Bad growth ranges are refused clearly.
    let out = run(&cluster, "check_pg_db_size", &state, &["--growth", "10s"]);
    out.expect("UNKNOWN");
    assert!(
        out.summary().contains("is not a size per day"),
        "{}",
        out.summary()
    );
}

/// Checkpoints requested so far (PostgreSQL 17 moved the counter).
fn requested_checkpoints(cluster: &Cluster) -> i64 {
    let sql = if server_major() >= 17 {
        "SELECT num_requested FROM pg_stat_checkpointer"
    } else {
        "SELECT checkpoints_req FROM pg_stat_bgwriter"
    };
    cluster.client().query_one(sql, &[]).unwrap().get(0)
}

fn wait_for_requested(cluster: &Cluster, at_least: i64) {
    let sql = if server_major() >= 17 {
        "SELECT num_requested FROM pg_stat_checkpointer"
    } else {
        "SELECT checkpoints_req FROM pg_stat_bgwriter"
    };
    cluster.wait_for_stats(
        "postgres",
        &format!("SELECT ({sql}) >= {at_least}"),
        "the requested checkpoints counted",
    );
}

#[test]
fn a_checkpoint_and_a_base_backup_do_not_page_sustained_wal_does() {
    let cluster = Cluster::start_with(
        "checkpoint-load",
        ClusterOptions {
            extra_conf: vec!["max_wal_size = 32MB".into(), "min_wal_size = 32MB".into()],
            ..ClusterOptions::default()
        },
    );
    let state = temp_dir("checkpoint-load-state");
    let args = ["-w", "30%", "-c", "60%"];
    let checkpoints = |expected: &str| {
        let out = run(&cluster, "check_pg_checkpoints", &state, &args);
        out.expect(expected);
        out
    };
    checkpoints("OK");

    // One CHECKPOINT: 100% requested, and not an alert.
    let before = requested_checkpoints(&cluster);
    cluster.execute("CHECKPOINT");
    wait_for_requested(&cluster, before + 1);
    let out = checkpoints("OK");
    assert!(
        out.summary()
            .ends_with("1 requested: not judged, fewer than --min-checkpoints 10 (the span carries over to the next run)"),
        "{}",
        out.summary()
    );
    assert!(!out.stdout.contains("requested_pct"), "{}", out.stdout);

    // A base backup asks for its own checkpoint; the span carries over.
    let backup = temp_dir("checkpoint-load-backup");
    match client_program("pg_basebackup", false) {
        Some(pg_basebackup) => {
            run_ok(
                as_server_user(pg_basebackup)
                    .args(cluster.connection_args())
                    .args(["-c", "fast", "-X", "none", "-D"])
                    .arg(backup.join("base")),
                "pg_basebackup",
            );
        }
        // The server-only builds of 16+ here have no pg_basebackup: the
        // backup API it calls asks for the same checkpoint.
        None => {
            cluster.execute("SELECT pg_backup_start('pgvigil', true); SELECT pg_backup_stop(false)")
        }
    }
    wait_for_requested(&cluster, before + 2);
    let out = checkpoints("OK");
    assert!(
        out.summary()
            .contains(" requested: not judged, fewer than --min-checkpoints 10"),
        "{}",
        out.summary()
    );
    assert!(out.perf("checkpoints").value >= 2.0, "{}", out.stdout);

    // Sustained WAL volume against a 32 MB max_wal_size: checkpoints come
    // one after another, requested, and that pages.
    let target = requested_checkpoints(&cluster) + 12;
    let pgbench = client_program("pgbench", true);
    for _ in 0..60 {
        if requested_checkpoints(&cluster) >= target {
            break;
        }
        match &pgbench {
            Some(pgbench) => {
                run_ok(
                    as_server_user(pgbench)
                        .args(cluster.connection_args())
                        .args(["-i", "-q", "-s", "3", "postgres"]),
                    "pgbench -i",
                );
            }
            None => cluster.execute(
                "DROP TABLE IF EXISTS churn; CREATE TABLE churn AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 60000) g",
            ),
        }
    }
    wait_for_requested(&cluster, target);
    let out = checkpoints("CRITICAL");
    let pct = out.perf("requested_pct");
    assert!(pct.value > 60.0, "{}", out.stdout);
    assert_eq!((pct.warn.as_str(), pct.crit.as_str()), ("30", "60"));
    assert!(out.perf("checkpoints").value >= 12.0, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("hint: requested checkpoints come from WAL volume"),
        "{}",
        out.stdout
    );
}
