//! check_pg_long_running with real sessions: one idle in transaction, one
//! running a long statement.

use std::time::Duration;

use harness::{Cluster, PLAIN};

const PLUGIN: &str = "check_pg_long_running";

#[test]
fn nothing_open_is_ok_with_every_label() {
    let cluster = Cluster::start("long-ok");
    // An idle session has no transaction open; our own is left out.
    let _idle = cluster.client_as(PLAIN);
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert_eq!(out.summary(), "no transaction open");
    let oldest = out.perf("oldest_transaction");
    assert_eq!(oldest.value, 0.0);
    assert_eq!(oldest.uom, "s");
    // Default -w 5min -c 30min, in seconds.
    assert_eq!(
        (oldest.warn.as_str(), oldest.crit.as_str()),
        ("300", "1800")
    );
    let labels: Vec<String> = out.perfdata().into_keys().collect();
    assert_eq!(
        labels,
        [
            "longest_idle_in_transaction",
            "longest_statement",
            "oldest_transaction",
            "open_transactions"
        ]
    );
    assert!(out.long_output().is_empty());
}

#[test]
fn idle_in_transaction_and_a_long_statement() {
    let cluster = Cluster::start("long-open");
    let mut idle = cluster.client_as(PLAIN);
    let idle_pid: i32 = idle
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    idle.batch_execute("BEGIN; SELECT 1").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut busy = cluster.client();
    let sleeper = std::thread::spawn(move || busy.batch_execute("SELECT pg_sleep(30)"));
    cluster.wait_for(
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'",
        "the long statement",
    );
    std::thread::sleep(Duration::from_millis(500));

    let out = cluster.plugin(PLUGIN).args(&["-w", "1s", "-c", "1h"]).run();
    out.expect("WARNING");
    let summary = out.summary();
    assert!(summary.starts_with("oldest transaction open "), "{summary}");
    assert!(
        summary.contains(&format!("(pid {idle_pid}, idle in transaction)")),
        "{summary}"
    );
    assert!(summary.ends_with("; 2 transactions open"), "{summary}");
    let oldest = out.perf("oldest_transaction").value;
    let statement = out.perf("longest_statement").value;
    let idle_for = out.perf("longest_idle_in_transaction").value;
    assert!((2.0..60.0).contains(&oldest), "{oldest}");
    assert!(statement >= 0.5 && statement < oldest, "{statement}");
    assert!(idle_for >= 2.0 && idle_for <= oldest, "{idle_for}");
    assert_eq!(out.perf("open_transactions").value, 2.0);
    assert_eq!(out.perf("oldest_transaction").warn, "1");
    // The long output names both, oldest first.
    let details = out.long_output();
    assert_eq!(details.len(), 2, "{details:?}");
    assert!(
        details[0].starts_with(&format!(
            "pid {idle_pid} (plain@postgres) transaction open "
        )),
        "{details:?}"
    );
    assert!(
        details[0].contains(", idle in transaction for ")
            && details[0].ends_with(": BEGIN; SELECT 1"),
        "{details:?}"
    );
    assert!(
        details[1].contains(", active, statement running ")
            && details[1].ends_with(": SELECT pg_sleep(30)"),
        "{details:?}"
    );

    let out = cluster.plugin(PLUGIN).args(&["-w", "1s", "-c", "2s"]).run();
    out.expect("CRITICAL");
    let out = cluster.plugin(PLUGIN).args(&["-w", "10min"]).run();
    out.expect("OK");
    assert!(out.long_output().is_empty());

    idle.batch_execute("ROLLBACK").unwrap();
    cluster.execute(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'",
    );
    let _ = sleeper.join();
}
