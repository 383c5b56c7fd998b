//! check_pg_connections against a real cluster with max_connections = 20
//! (3 reserved for superusers: 17 usable).

use harness::{Cluster, PLAIN};
use postgres::Client;

const PLUGIN: &str = "check_pg_connections";

fn hold(cluster: &Cluster, n: usize) -> Vec<Client> {
    (0..n).map(|_| cluster.client_as(PLAIN)).collect()
}

#[test]
fn ok_below_thresholds_with_full_perfdata() {
    let cluster = Cluster::start("conn-ok");
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert!(
        out.summary().starts_with("1 of 17 connections used (5.9%)"),
        "{}",
        out.summary()
    );
    let total = out.perf("connections");
    assert_eq!(total.value, 1.0);
    // Default -w 80% -c 90% shown on the count too: 80% of 17 = 13.6.
    assert_eq!((total.warn.as_str(), total.crit.as_str()), ("13.6", "15.3"));
    assert_eq!((total.min.as_str(), total.max.as_str()), ("0", "17"));
    let labels: Vec<String> = out.perfdata().into_keys().collect();
    assert_eq!(
        labels,
        [
            "active",
            "connections",
            "connections_pct",
            "idle",
            "idle_in_transaction",
            "idle_in_transaction_aborted",
            "waiting"
        ]
    );
    assert_eq!(out.perf("connections_pct").uom, "%");
    assert!(out.long_output().is_empty(), "no detail when OK");
}

#[test]
fn counts_thresholds_and_states() {
    let cluster = Cluster::start("conn-states");
    let mut sessions = hold(&cluster, 6);
    sessions[0].batch_execute("BEGIN; SELECT 1").unwrap();
    sessions[1].batch_execute("BEGIN; SELECT 1/0").unwrap_err();

    let out = cluster.plugin(PLUGIN).args(&["-w", "5", "-c", "10"]).run();
    out.expect("WARNING");
    assert_eq!(out.perf("connections").value, 7.0);
    assert_eq!(out.perf("connections").warn, "5");
    assert_eq!(out.perf("idle").value, 4.0);
    assert_eq!(out.perf("idle_in_transaction").value, 1.0);
    assert_eq!(out.perf("idle_in_transaction_aborted").value, 1.0);
    assert_eq!(out.perf("active").value, 1.0);
    assert!(
        out.summary().contains("2 idle in transaction"),
        "{}",
        out.summary()
    );
    // Long output names who holds the connections.
    assert!(
        out.long_output().contains(&"user plain: 6 connections"),
        "{}",
        out.stdout
    );
    assert!(
        out.long_output()
            .contains(&"database postgres: 7 connections"),
        "{}",
        out.stdout
    );

    let out = cluster.plugin(PLUGIN).args(&["-w", "3", "-c", "6"]).run();
    out.expect("CRITICAL");

    // Filters choose what is counted; what they leave out is said.
    cluster.execute("CREATE DATABASE shop");
    let _shop = cluster.client_to(PLAIN, "shop");
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "3", "-c", "6", "--exclude-user", "^plain$"])
        .run();
    out.expect("OK");
    assert_eq!(out.perf("connections").value, 1.0);
    assert_eq!(
        out.long_output(),
        ["7 sessions excluded by filters (user !~ ^plain$)"]
    );
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "0", "--include-db", "^shop$", "-v"])
        .run();
    out.expect("WARNING");
    assert_eq!(out.perf("connections").value, 1.0);
    assert!(
        out.long_output().contains(&"database shop: 1 connection"),
        "{}",
        out.stdout
    );
    assert!(
        out.long_output()
            .contains(&"7 sessions excluded by filters (database ~ ^shop$)"),
        "{}",
        out.stdout
    );
    // The server's own processes are counted only when asked for.
    // (How many depends on the major: 18 adds I/O workers.)
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--backend-type", "all", "-w", "1000", "-c", "1000"])
        .run();
    out.expect("OK");
    assert!(out.perf("connections").value >= 12.0, "{}", out.stdout);
}

#[test]
fn percentage_thresholds_against_usable_slots() {
    let cluster = Cluster::start("conn-pct");
    let _sessions = hold(&cluster, 13);
    // 14 of 17 = 82.4%: over the default 80%, under 90%.
    let out = cluster.plugin(PLUGIN).run();
    out.expect("WARNING");
    assert!(
        out.summary()
            .starts_with("14 of 17 connections used (82.4%)"),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("connections_pct").value, 82.35);
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "50%", "-c", "80%"])
        .run();
    out.expect("CRITICAL");
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "90%", "-c", "95%"])
        .run();
    out.expect("OK");
}

#[test]
fn sessions_waiting_on_a_lock_are_counted() {
    let cluster = Cluster::start("conn-wait");
    cluster.execute("CREATE TABLE t (id int)");
    let mut holder = cluster.client();
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let mut waiter = cluster.client();
    let waiting = std::thread::spawn(move || waiter.batch_execute("SELECT * FROM t").unwrap());
    cluster.wait_for(
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
        "a lock wait",
    );
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert_eq!(out.perf("waiting").value, 1.0);
    assert!(
        out.summary().ends_with("1 waiting on a lock"),
        "{}",
        out.summary()
    );
    holder.batch_execute("ROLLBACK").unwrap();
    waiting.join().unwrap();
}
