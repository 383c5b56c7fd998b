//! check_pg_checksums with a real checksum failure: a page of a stopped,
//! checksummed cluster overwritten with garbage, then read.

use std::io::{Seek, SeekFrom, Write};

use harness::{temp_dir, Cluster, ClusterOptions};

const PLUGIN: &str = "check_pg_checksums";

#[test]
fn a_corrupted_page_is_critical_naming_the_database() {
    let cluster = Cluster::start_with(
        "checksums",
        ClusterOptions {
            data_checksums: true,
            ..ClusterOptions::default()
        },
    );
    let state = temp_dir("checksums-state");
    let state = state.to_str().unwrap();
    cluster.execute("CREATE TABLE victim AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 1000) g");
    let path: String = cluster
        .client()
        .query_one("SELECT pg_relation_filepath('victim')", &[])
        .unwrap()
        .get(0);
    let out = cluster.plugin(PLUGIN).env("PGVIGIL_STATE_DIR", state).run();
    out.expect("OK");
    assert_eq!(
        out.summary(),
        "data checksums on; first run, baseline saved"
    );

    // A clean stop writes every page; then the first page gets garbage in
    // its tuple area, and the server reads it back after the restart.
    cluster.halt();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(cluster.data.join(&path))
        .unwrap();
    file.seek(SeekFrom::Start(4000)).unwrap();
    file.write_all(b"pgvigil was here, not your data").unwrap();
    drop(file);
    cluster.resume();
    let read = cluster
        .client()
        .batch_execute("SELECT count(*) FROM victim");
    let error = format!("{:?}", read.unwrap_err());
    assert!(error.contains("invalid page in block 0"), "{error}");
    cluster.wait_for_stats(
        "postgres",
        "SELECT checksum_failures >= 1 FROM pg_stat_database WHERE datname = 'postgres'",
        "the failure counted",
    );

    let out = cluster.plugin(PLUGIN).env("PGVIGIL_STATE_DIR", state).run();
    eprintln!("{}", out.stdout);
    // The restart started a new baseline; failures since are compared with it.
    let out = if out.summary().contains("new baseline saved") {
        cluster.execute("SELECT 1");
        let again = cluster
            .client()
            .batch_execute("SELECT count(*) FROM victim");
        assert!(again.is_err());
        cluster.wait_for_stats(
            "postgres",
            "SELECT checksum_failures >= 2 FROM pg_stat_database WHERE datname = 'postgres'",
            "the second failure counted",
        );
        cluster.plugin(PLUGIN).env("PGVIGIL_STATE_DIR", state).run()
    } else {
        out
    };
    out.expect("CRITICAL");
    let summary = out.summary();
    assert!(
        summary.starts_with("data checksums on; 1 new checksum failure in the last "),
        "{summary}"
    );
    assert!(
        summary.contains("(postgres: 1 checksum failure, last at "),
        "{summary}"
    );
    assert_eq!(out.perf("checksum_failures").value, 1.0);

    // A first run elsewhere shows the failures recorded before it, once.
    let fresh = temp_dir("checksums-fresh");
    let out = cluster
        .plugin(PLUGIN)
        .env("PGVIGIL_STATE_DIR", fresh.to_str().unwrap())
        .run();
    out.expect("WARNING");
    assert!(
        out.summary()
            .contains("recorded before this check's first run (postgres: "),
        "{}",
        out.summary()
    );
}

#[test]
fn checksums_off_warns_only_when_required() {
    let cluster = Cluster::start("checksums-off");
    let state = temp_dir("checksums-off-state");
    let state = state.to_str().unwrap();
    let out = cluster.plugin(PLUGIN).env("PGVIGIL_STATE_DIR", state).run();
    out.expect("OK");
    assert!(
        out.summary().starts_with("data checksums off; "),
        "{}",
        out.summary()
    );
    let out = cluster
        .plugin(PLUGIN)
        .env("PGVIGIL_STATE_DIR", state)
        .arg("--require-checksums")
        .run();
    out.expect("WARNING");
}
