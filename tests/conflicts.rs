//! check_pg_conflicts on a real hot standby: a query holding a snapshot is
//! cancelled when replay removes the rows it reads (VACUUM on the primary,
//! hot_standby_feedback off, a short max_standby_streaming_delay).

use harness::{temp_dir, Cluster};

const PLUGIN: &str = "check_pg_conflicts";

#[test]
fn a_query_cancelled_by_replay_is_counted_on_the_standby() {
    let primary = Cluster::start("conflicts-primary");
    primary.execute(
        "CREATE TABLE reports AS SELECT g AS id FROM generate_series(1, 10000) g; ALTER TABLE reports SET (autovacuum_enabled = off)",
    );
    let standby = Cluster::standby_of(&primary, "conflicts-standby");
    standby.execute("ALTER SYSTEM SET max_standby_streaming_delay = '100ms'");
    standby.execute("ALTER SYSTEM SET hot_standby_feedback = off");
    standby.execute("SELECT pg_reload_conf()");
    primary.wait_for(
        "SELECT replay_lsn = pg_current_wal_lsn() FROM pg_stat_replication",
        "the standby to replay the table",
    );
    let state = temp_dir("conflicts-state");
    let run = |cluster: &Cluster, args: &[&str]| {
        cluster
            .plugin(PLUGIN)
            .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
            .args(args)
            .run()
    };
    let out = run(&standby, &[]);
    out.expect("OK");
    assert_eq!(out.summary(), "first run, baseline saved");
    run(&primary, &[]).expect("OK");

    // A report holds its snapshot on the standby while the primary removes
    // the rows it reads; replay cancels it.
    let mut report = standby.client();
    report
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM reports")
        .unwrap();
    primary.execute("DELETE FROM reports");
    primary.execute("VACUUM reports");
    // Wait on the primary until the standby has replayed the VACUUM: a
    // session opened on the standby while replay still waits would hold a
    // snapshot as old as the report's, and be cancelled with it.
    primary.wait_for(
        "SELECT replay_lsn >= pg_current_wal_lsn() FROM pg_stat_replication",
        "the standby to replay the VACUUM",
    );
    standby.wait_for_stats(
        "postgres",
        "SELECT confl_snapshot > 0 FROM pg_stat_database_conflicts WHERE datname = 'postgres'",
        "the conflict to be counted",
    );
    assert!(report
        .batch_execute("SELECT count(*) FROM reports")
        .is_err());
    let out = run(&standby, &[]);
    out.expect("WARNING");
    assert!(
        out.summary()
            .starts_with("1 query cancelled by recovery conflicts in the last "),
        "{}",
        out.summary()
    );
    assert!(
        out.summary().ends_with(" (1 snapshot)"),
        "{}",
        out.summary()
    );
    assert_eq!(out.long_output(), ["postgres: 1 snapshot"]);
    assert_eq!(out.perf("conflicts").value, 1.0);
    assert_eq!(out.perf("snapshot").value, 1.0);
    assert!(out.hint().unwrap().contains("hot_standby_feedback"));
    // The next interval has none; the primary never has any.
    run(&standby, &[]).expect("OK");
    let out = run(&primary, &[]);
    out.expect("OK");
    assert!(
        out.summary()
            .ends_with("; a primary: recovery conflicts happen only on standbys"),
        "{}",
        out.summary()
    );
}
