//! check_pg_bloat on a table and index bloated by a mass delete, through each
//! way the check has to see it: no way (UNKNOWN naming the grants),
//! pgstattuple, then the statistics once the role may read them.

use harness::{Cluster, MONITOR};

const PLUGIN: &str = "check_pg_bloat";
const ARGS: [&str; 6] = ["--min-size", "1MB", "-w", "40%", "-c", "60%"];

#[test]
fn a_mass_delete_seen_through_pgstattuple_and_through_statistics() {
    let cluster = Cluster::start("bloat");
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert_eq!(
        out.summary(),
        "no table or B-tree index over 10 MB to check"
    );
    let pct = out.perf("max_wasted_pct");
    assert_eq!((pct.warn.as_str(), pct.crit.as_str()), ("50", "80"));

    // 100,000 rows (about 7 MB), four in five deleted, vacuumed: the space
    // stays with the table and its index.
    for sql in [
        "CREATE TABLE bloated (id int, pad text) WITH (autovacuum_enabled = off)",
        "INSERT INTO bloated SELECT g, repeat('x', 40) FROM generate_series(1, 100000) g",
        "CREATE INDEX bloated_id ON bloated (id)",
        "DELETE FROM bloated WHERE id % 5 <> 0",
        "VACUUM ANALYZE bloated",
        // A partitioned parent holds no data: never reported.
        "CREATE TABLE parted (id int) PARTITION BY RANGE (id)",
        "CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (1000000)",
        "INSERT INTO parted SELECT generate_series(1, 50000)",
        "ANALYZE parted_1",
    ] {
        cluster.execute(sql);
    }

    // pg_monitor alone cannot see the columns' statistics: UNKNOWN, saying why.
    let out = cluster.plugin(PLUGIN).args(&ARGS).run();
    out.expect("UNKNOWN");
    let summary = out.summary();
    assert!(
        summary.starts_with("cannot estimate bloat of 3 relations in database postgres ("),
        "{summary}"
    );
    for says in [
        "public.bloated",
        "public.bloated_id",
        "public.parted_1",
        &format!("role \"{MONITOR}\" may not read their statistics in pg_stats"),
        &format!("GRANT pg_read_all_data TO \"{MONITOR}\" (PostgreSQL 14+) or SELECT on them"),
        "CREATE EXTENSION pgstattuple in that database",
    ] {
        assert!(summary.contains(says), "{says}: {summary}");
    }

    // pgstattuple, which pg_monitor (pg_stat_scan_tables) may call.
    cluster.execute("CREATE EXTENSION pgstattuple");
    let out = cluster.plugin(PLUGIN).args(&ARGS).run();
    out.expect("CRITICAL");
    let summary = out.summary();
    assert!(summary.starts_with("table public.bloated "), "{summary}");
    assert!(
        summary.contains("; 3 relations over 1024 kB checked, "),
        "{summary}"
    );
    let wasted = out.perf("max_wasted_pct").value;
    assert!((60.0..=90.0).contains(&wasted), "{wasted}");
    let details = out.long_output();
    assert!(
        details
            .iter()
            .any(|l| l.starts_with("CRITICAL table public.bloated: ")
                && l.ends_with("measured by pgstattuple_approx")),
        "{details:#?}"
    );
    assert!(
        details.iter().any(
            |l| l.starts_with("CRITICAL index public.bloated_id on bloated: ")
                && l.ends_with("measured by pgstatindex")
        ),
        "{details:#?}"
    );
    assert!(
        !details.iter().any(|l| l.contains("public.parted ")),
        "{details:#?}"
    );
    assert!(
        !details.iter().any(|l| l.contains("parted_1")),
        "{details:#?}"
    );

    // With the statistics readable the estimate needs no extension.
    cluster.execute("DROP EXTENSION pgstattuple");
    cluster.execute(&format!("GRANT SELECT ON bloated, parted_1 TO {MONITOR}"));
    let out = cluster.plugin(PLUGIN).args(&ARGS).run();
    out.expect("CRITICAL");
    let table = out
        .long_output()
        .into_iter()
        .find(|l| l.starts_with("CRITICAL table public.bloated: "))
        .unwrap_or_else(|| panic!("{}", out.stdout))
        .to_string();
    assert!(table.ends_with("estimated from statistics"), "{table}");
    let wasted = out.perf("max_wasted_pct").value;
    assert!((70.0..=90.0).contains(&wasted), "{wasted}");
    // A packed partition wastes nothing.
    let out = cluster
        .plugin(PLUGIN)
        .args(&ARGS)
        .args(&["--include", "^public\\.parted"])
        .run();
    out.expect("OK");
    assert!(
        out.summary().contains("1 relation over 1024 kB checked"),
        "{}",
        out.summary()
    );
    assert!(out.perf("max_wasted_pct").value < 10.0, "{}", out.stdout);

    // Rewritten, it is compact again.
    cluster.execute("VACUUM FULL bloated");
    cluster.execute("ANALYZE bloated");
    let out = cluster
        .plugin(PLUGIN)
        .args(&[
            "--min-size",
            "0",
            "--include",
            "^public\\.bloated",
            "-w",
            "40%",
            "-c",
            "60%",
        ])
        .run();
    out.expect("OK");
    assert!(out.perf("max_wasted_pct").value < 20.0, "{}", out.stdout);
}
