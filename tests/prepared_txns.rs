//! check_pg_prepared_txns with a real transaction left prepared: named,
//! aged, surviving a restart, gone once rolled back.

use std::time::Duration;

use harness::{Cluster, ClusterOptions};

const PLUGIN: &str = "check_pg_prepared_txns";

#[test]
fn none_can_be_prepared_by_default() {
    let cluster = Cluster::start("prepared-none");
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert_eq!(
        out.summary(),
        "no prepared transaction (max_prepared_transactions is 0: none can be)"
    );
    let oldest = out.perf("oldest_prepared");
    assert_eq!(
        (oldest.value, oldest.warn.as_str(), oldest.crit.as_str()),
        (0.0, "300", "3600")
    );
    assert_eq!(out.perf("prepared").value, 0.0);
}

#[test]
fn a_forgotten_prepared_transaction_is_named_and_survives_a_restart() {
    let cluster = Cluster::start_with(
        "prepared-left",
        ClusterOptions {
            extra_conf: vec!["max_prepared_transactions = 5".into()],
            ..ClusterOptions::default()
        },
    );
    cluster.execute("CREATE TABLE orders (id int)");
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert_eq!(
        out.summary(),
        "no prepared transaction (max_prepared_transactions 5)"
    );

    // What a transaction manager leaves when it dies between the phases.
    cluster.execute("BEGIN; INSERT INTO orders VALUES (1); PREPARE TRANSACTION 'xa:42'");
    std::thread::sleep(Duration::from_millis(1100));
    let out = cluster.plugin(PLUGIN).args(&["-w", "1s"]).run();
    out.expect("WARNING");
    let summary = out.summary();
    assert!(
        summary.starts_with("1 prepared transaction, oldest "),
        "{summary}"
    );
    assert!(
        summary.contains(" ago: 'xa:42' (postgres@postgres, "),
        "{summary}"
    );
    assert!(
        summary.ends_with("; max_prepared_transactions 5"),
        "{summary}"
    );
    let line = out.long_output()[0];
    assert!(line.starts_with("'xa:42' prepared "), "{line}");
    assert!(line.contains(" by postgres in postgres, "), "{line}");
    assert!(out.perf("oldest_prepared").value >= 1.0);
    assert_eq!(out.perf("prepared").max, "5");
    assert!(out.hint().unwrap().contains("ROLLBACK PREPARED 'gid'"));
    cluster
        .plugin(PLUGIN)
        .args(&["-c", "1s"])
        .run()
        .expect("CRITICAL");
    // A plain number applies to how many.
    cluster
        .plugin(PLUGIN)
        .args(&["-w", "0", "-c", "1h"])
        .run()
        .expect("WARNING");

    // No session holds it: a restart keeps it, and its age.
    cluster.restart();
    let out = cluster.plugin(PLUGIN).args(&["-w", "1s"]).run();
    out.expect("WARNING");
    assert!(out.summary().contains("'xa:42'"), "{}", out.summary());

    cluster.execute("ROLLBACK PREPARED 'xa:42'");
    cluster
        .plugin(PLUGIN)
        .args(&["-w", "1s"])
        .run()
        .expect("OK");
}
