//! check_pg_indexes with a failed CREATE INDEX CONCURRENTLY, an unused and a
//! duplicate index, and a table read by sequential scans.

use harness::Cluster;

const PLUGIN: &str = "check_pg_indexes";

#[test]
fn invalid_unused_duplicate_and_sequentially_scanned() {
    let cluster = Cluster::start("indexes");
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--min-size", "0", "-w", "1"])
        .run();
    out.expect("OK");
    assert_eq!(
        out.summary(),
        "0 unused indexes, 0 duplicates; 0 tables read mostly by sequential scans"
    );

    for sql in [
        "CREATE TABLE orders (id int PRIMARY KEY, customer int, note text)",
        "INSERT INTO orders SELECT g, g % 100, 'n' FROM generate_series(1, 30000) g",
        "CREATE INDEX orders_customer ON orders (customer)",
        "CREATE INDEX orders_customer_again ON orders (customer)",
        "CREATE INDEX orders_note ON orders (note)",
        // A primary key is used by nobody here, yet not unused: it enforces.
        "CREATE TABLE codes (code int)",
        "INSERT INTO codes VALUES (1), (1)",
        "SELECT count(*) FROM orders",
        "SELECT count(*) FROM orders",
    ] {
        cluster.execute(sql);
    }
    let mut client = cluster.client();
    let failed =
        client.batch_execute("CREATE UNIQUE INDEX CONCURRENTLY codes_code ON codes (code)");
    assert!(failed.is_err(), "duplicate codes make the build fail");
    drop(client);
    cluster.wait_for_stats(
        "postgres",
        "SELECT seq_scan >= 2 FROM pg_stat_user_tables WHERE relname = 'orders'",
        "the sequential scans counted",
    );

    // The invalid index is CRITICAL whatever the thresholds; duplicates count
    // whatever their size, unused indexes only over --min-size (10MB).
    let out = cluster.plugin(PLUGIN).run();
    out.expect("CRITICAL");
    assert_eq!(
        out.summary(),
        "1 invalid index (public.codes_code); 0 unused indexes, 1 duplicate; 0 tables read mostly by sequential scans"
    );
    let details = out.long_output();
    assert!(
        details[0].starts_with("invalid index public.codes_code on codes ("),
        "{details:?}"
    );
    assert!(
        details.iter().any(|l| l
            .starts_with("duplicate index public.orders_customer_again on orders (")
            && l.ends_with("): same definition as orders_customer")),
        "{details:?}"
    );
    assert_eq!(out.perf("invalid").value, 1.0);

    cluster.execute("DROP INDEX codes_code");
    // orders_customer and orders_note unused (the duplicate counts as one),
    // the primary key not: 3 to judge.
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--min-size", "0", "-w", "2", "-c", "5"])
        .run();
    out.expect("WARNING");
    assert_eq!(
        out.summary(),
        "2 unused indexes, 1 duplicate; 1 table read mostly by sequential scans"
    );
    let judged = out.perf("unused_and_duplicate");
    assert_eq!((judged.value, judged.warn.as_str()), (3.0, "2"));
    assert!(out.perf("unused_and_duplicate_size").value > 0.0);
    let details = out.long_output();
    for expected in [
        "unused index public.orders_customer on orders (",
        "unused index public.orders_note on orders (",
        "table public.orders (",
    ] {
        assert!(
            details.iter().any(|l| l.starts_with(expected)),
            "{expected}: {details:#?}"
        );
    }
    assert!(
        details
            .iter()
            .any(|l| l.contains(") read mostly by sequential scans, ")
                && l.ends_with(" rows per scan: missing index?")),
        "{details:#?}"
    );
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--min-size", "0", "-w", "5"])
        .run();
    out.expect("OK");
    // Filtering the table away leaves nothing to judge.
    let out = cluster
        .plugin(PLUGIN)
        .args(&[
            "--min-size",
            "0",
            "-w",
            "0",
            "--exclude",
            "^public\\.orders",
        ])
        .run();
    out.expect("OK");
}
