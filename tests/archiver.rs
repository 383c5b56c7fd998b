//! check_pg_archiver with archiving off, working, stalled and failing.

use harness::{Cluster, ClusterOptions};

const PLUGIN: &str = "check_pg_archiver";

fn archiving(name: &str, command: &str) -> Cluster {
    Cluster::start_with(
        name,
        ClusterOptions {
            archive_command: Some(command.to_string()),
            ..ClusterOptions::default()
        },
    )
}

/// Writes a little and switches to a new WAL segment, so one is due for archiving.
fn switch_wal(cluster: &Cluster) {
    cluster.execute(
        "CREATE TABLE IF NOT EXISTS t (i int); INSERT INTO t VALUES (1); SELECT pg_switch_wal();",
    );
}

#[test]
fn archive_mode_off_is_ok_unless_archiving_is_required() {
    let cluster = Cluster::start("arch-off");
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert_eq!(out.summary(), "archiving is off (archive_mode = off)");
    assert_eq!(out.perf("ready").value, 0.0);
    let out = cluster.plugin(PLUGIN).arg("--require-archiving").run();
    out.expect("CRITICAL");
}

#[test]
fn working_archiver_is_ok_and_counts_archived_files() {
    let cluster = archiving("arch-ok", "true");
    switch_wal(&cluster);
    cluster.wait_for(
        "SELECT archived_count > 0 FROM pg_stat_archiver",
        "a WAL file archived",
    );
    let out = cluster.plugin(PLUGIN).args(&["-w", "5", "-c", "10"]).run();
    out.expect("OK");
    assert!(out.summary().contains("last success"), "{}", out.summary());
    let archived = out.perf("archived");
    assert!(archived.value >= 1.0);
    assert_eq!(archived.uom, "c");
    assert_eq!(out.perf("ready").warn, "5");
}

#[test]
fn failing_archive_command_is_critical_naming_the_file() {
    let cluster = archiving("arch-fail", "false");
    switch_wal(&cluster);
    cluster.wait_for(
        "SELECT failed_count > 0 FROM pg_stat_archiver",
        "an archive failure",
    );
    let failed_wal: String = cluster
        .client()
        .query_one("SELECT last_failed_wal FROM pg_stat_archiver", &[])
        .unwrap()
        .get(0);
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "100", "-c", "200"])
        .run();
    out.expect("CRITICAL");
    let summary = out.summary();
    assert!(
        summary.starts_with("archive_command failing: "),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("{failed_wal} failed at ")),
        "{summary}"
    );
    assert!(summary.contains("never archived successfully"), "{summary}");
    assert!(out.perf("ready").value >= 1.0);
    assert!(out.perf("failed").value >= 1.0);
}

#[test]
fn backlog_of_ready_files_against_thresholds() {
    // An empty archive_command pauses archiving without failures: WAL piles up.
    let cluster = archiving("arch-backlog", "");
    switch_wal(&cluster);
    switch_wal(&cluster);
    let out = cluster.plugin(PLUGIN).args(&["-w", "1", "-c", "10"]).run();
    out.expect("WARNING");
    assert_eq!(out.perf("ready").value, 2.0);
    assert!(
        out.summary().starts_with("2 WAL files waiting, oldest"),
        "{}",
        out.summary()
    );
    cluster
        .plugin(PLUGIN)
        .args(&["-w", "0", "-c", "1"])
        .run()
        .expect("CRITICAL");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "10,1s", "-c", "10,1h"])
        .run();
    out.expect("WARNING");
    assert!(out.perf("oldest_ready").value >= 1.0);
}
