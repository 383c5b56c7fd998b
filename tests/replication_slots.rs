//! check_pg_replication_slots with real slots: an inactive physical slot
//! holding WAL, one whose WAL is about to go and then gone, and the
//! maintenance checks on a streaming standby.

use std::time::Duration;

use harness::{server_major, Cluster, ClusterOptions};

const PLUGIN: &str = "check_pg_replication_slots";

/// Writes a few WAL segments' worth and switches to a new segment after each.
fn write_wal(cluster: &Cluster, segments: usize) {
    cluster.execute("CREATE TABLE IF NOT EXISTS wal_filler (n int, pad text)");
    for _ in 0..segments {
        cluster.execute(
            "INSERT INTO wal_filler SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g; SELECT pg_switch_wal()",
        );
    }
}

#[test]
fn an_inactive_physical_slot_retaining_wal() {
    let cluster = Cluster::start("slots-inactive");
    let out = cluster.plugin(PLUGIN).args(&["-w", "1MB"]).run();
    out.expect("OK");
    assert_eq!(out.summary(), "no replication slots");
    assert_eq!(out.perf("slots").value, 0.0);

    cluster.execute("SELECT pg_create_physical_replication_slot('forgotten', true)");
    write_wal(&cluster, 2);
    std::thread::sleep(Duration::from_millis(1200));

    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "1MB", "-c", "1GB"])
        .run();
    out.expect("WARNING");
    let summary = out.summary();
    assert!(
        summary.starts_with("slot forgotten (physical, inactive"),
        "{summary}"
    );
    assert!(summary.ends_with("; 1 slot, 1 inactive"), "{summary}");
    let retained = out.perf("forgotten retained");
    assert!(retained.value >= 16.0 * 1048576.0, "{}", retained.value);
    assert_eq!(
        (retained.uom.as_str(), retained.warn.as_str()),
        ("B", "1048576")
    );
    assert_eq!(out.perf("inactive").value, 1.0);
    let details = out.long_output();
    assert_eq!(details.len(), 1, "{details:?}");
    assert!(
        details[0].starts_with("WARNING forgotten (physical, inactive"),
        "{details:?}"
    );

    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "1MB", "-c", "2MB"])
        .run();
    out.expect("CRITICAL");

    // PostgreSQL 17 records since when a slot is inactive; before, the
    // first run that saw it inactive (above) started the count.
    std::thread::sleep(Duration::from_millis(1100));
    let out = cluster.plugin(PLUGIN).args(&["-w", "1GB,1s"]).run();
    if server_major() >= 17 {
        out.expect("WARNING");
        let inactive = out.perf("forgotten inactive_for");
        assert!(inactive.value >= 1.0, "{}", inactive.value);
        assert!(
            out.summary().contains("(physical, inactive for "),
            "{}",
            out.summary()
        );
    } else {
        // Before 17 the runs count it: every run above saw it inactive, so
        // it has been for at least the time since the first of them.
        out.expect("WARNING");
        let inactive = out.perf("forgotten inactive_for");
        assert!(inactive.value >= 1.0, "{}", inactive.value);
        assert!(
            out.summary().contains("(physical, inactive for at least "),
            "{}",
            out.summary()
        );
    }
    // A longer duration is not reached yet.
    let out = cluster.plugin(PLUGIN).args(&["-w", "1GB,1h"]).run();
    out.expect("OK");
}

#[test]
fn a_slot_past_max_slot_wal_keep_size_warns_then_is_lost() {
    if server_major() < 13 {
        eprintln!("wal_status and max_slot_wal_keep_size exist from PostgreSQL 13");
        return;
    }
    let cluster = Cluster::start_with(
        "slots-lost",
        ClusterOptions {
            extra_conf: vec![
                "wal_keep_size = 0".into(),
                "max_slot_wal_keep_size = 1MB".into(),
            ],
            ..ClusterOptions::default()
        },
    );
    cluster.execute("SELECT pg_create_physical_replication_slot('doomed', true)");
    write_wal(&cluster, 4);
    // Past max_slot_wal_keep_size: the next checkpoint removes its WAL.
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "1GB", "-c", "2GB"])
        .run();
    out.expect("WARNING");
    assert!(
        out.summary().contains("wal_status unreserved"),
        "{}",
        out.summary()
    );

    cluster.execute("CHECKPOINT");
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "1GB", "-c", "2GB"])
        .run();
    out.expect("CRITICAL");
    let summary = out.summary();
    assert!(
        summary.starts_with("slot doomed (physical, inactive"),
        "{summary}"
    );
    assert!(summary.contains("wal_status lost"), "{summary}");
}

#[test]
fn the_maintenance_checks_on_a_streaming_standby() {
    let primary = Cluster::start("slots-primary");
    primary.execute(
        "SELECT pg_create_physical_replication_slot('cascade', true); \
         CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)",
    );
    let standby = Cluster::standby_of(&primary, "slots-standby");
    standby.wait_for("SELECT count(*) = 1000 FROM t", "the table replayed");

    // The slot was copied with the data directory; on the standby its WAL is
    // measured from what the standby has received.
    let out = standby.plugin(PLUGIN).args(&["-w", "1GB"]).run();
    out.expect("OK");
    assert!(
        out.summary()
            .starts_with("slot cascade (physical, inactive"),
        "{}",
        out.summary()
    );

    for (plugin, args) in [
        ("check_pg_wraparound", vec![]),
        ("check_pg_vacuum", vec!["--all-databases"]),
        ("check_pg_indexes", vec!["--all-databases", "-w", "5"]),
        ("check_pg_bloat", vec!["--all-databases"]),
    ] {
        let out = standby.plugin(plugin).args(&args).run();
        out.expect("OK");
        assert!(!out.perfdata().is_empty(), "{plugin}");
    }
}
