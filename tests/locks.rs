//! check_pg_locks with a real session holding a lock that another waits on.

use std::time::Duration;

use harness::Cluster;

const PLUGIN: &str = "check_pg_locks";

#[test]
fn no_blocked_session_is_ok_with_zero_perfdata() {
    let cluster = Cluster::start("locks-ok");
    let out = cluster.plugin(PLUGIN).args(&["-w", "0", "-c", "5"]).run();
    out.expect("OK");
    assert!(
        out.summary().starts_with("no session blocked"),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("blocked").value, 0.0);
    assert_eq!(out.perf("blocked").warn, "0");
    assert_eq!(out.perf("waiting").value, 0.0);
    assert_eq!(out.perf("longest_wait").value, 0.0);
    assert!(out.perf("locks").value >= 1.0);
}

#[test]
fn blocked_session_names_its_blocker() {
    let cluster = Cluster::start("locks-blocked");
    cluster.execute("CREATE TABLE orders (id int)");
    let mut holder = cluster.client();
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    holder
        .batch_execute("BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let mut waiter = cluster.client();
    let waiter_pid: i32 = waiter
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let blocked =
        std::thread::spawn(move || waiter.batch_execute("SELECT count(*) FROM orders").unwrap());
    cluster.wait_for(
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
        "a blocked session",
    );

    let out = cluster.plugin(PLUGIN).args(&["-w", "0", "-c", "5"]).run();
    out.expect("WARNING");
    assert!(
        out.summary()
            .starts_with("1 session blocked, longest waiting"),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("blocked").value, 1.0);
    assert_eq!(out.perf("waiting").value, 1.0);
    let detail = out.long_output()[0];
    let expected = format!("pid {waiter_pid} (postgres@postgres, pgvigil-test) waiting ");
    assert!(detail.starts_with(&expected), "{detail}");
    let blocker = format!("on pid {holder_pid} (idle in transaction for ");
    assert!(detail.contains(&blocker), "{detail}");
    assert!(
        detail.contains("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"),
        "{detail}"
    );
    assert!(
        detail.ends_with("): SELECT count(*) FROM orders"),
        "{detail}"
    );

    cluster
        .plugin(PLUGIN)
        .args(&["-c", "0"])
        .run()
        .expect("CRITICAL");

    // A duration threshold applies to the longest wait.
    std::thread::sleep(Duration::from_millis(1200));
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "10,1s", "-c", "10,1min"])
        .run();
    out.expect("WARNING");
    let wait = out.perf("longest_wait");
    assert!(wait.value >= 1.0, "{}", out.stdout);
    assert_eq!(
        (wait.uom.as_str(), wait.warn.as_str(), wait.crit.as_str()),
        ("s", "1", "60")
    );

    // The waiter left out by user: not judged, and counted.
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "0", "--exclude-user", "^postgres$"])
        .run();
    out.expect("OK");
    assert_eq!(out.perf("blocked").value, 0.0);
    assert_eq!(
        out.long_output(),
        ["1 session excluded by filters (user !~ ^postgres$)"]
    );
    cluster
        .plugin(PLUGIN)
        .args(&["-w", "0", "--include-app", "^pgvigil-test$"])
        .run()
        .expect("WARNING");

    holder.batch_execute("ROLLBACK").unwrap();
    blocked.join().unwrap();
    cluster.plugin(PLUGIN).args(&["-w", "0"]).run().expect("OK");
}

#[test]
fn one_transaction_over_many_partitions_fills_the_lock_table() {
    let cluster = Cluster::start("locks-table");
    let capacity: i64 = cluster
        .client()
        .query_one(
            "SELECT current_setting('max_locks_per_transaction')::int8
                    * (current_setting('max_connections')::int8
                       + current_setting('max_prepared_transactions')::int8)",
            &[],
        )
        .unwrap()
        .get(0);
    // Enough partitions (each with an index) to pass a third of the table.
    let partitions = capacity / 3 / 2 + 10;
    cluster.execute(&format!(
        "CREATE TABLE events (id int, at int) PARTITION BY RANGE (at);
         CREATE INDEX ON events (id);
         DO $$ BEGIN FOR i IN 0..{partitions} LOOP
           EXECUTE format('CREATE TABLE events_%s PARTITION OF events FOR VALUES FROM (%s) TO (%s)', i, i, i + 1);
         END LOOP; END $$;"
    ));
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "30%", "-c", "90%"])
        .run();
    out.expect("OK");
    assert!(out.perf("lock_table_used").value < 30.0, "{}", out.stdout);

    // A query over every partition holds a lock on each, and each index.
    let mut holder = cluster.client();
    holder
        .batch_execute("BEGIN; SELECT count(*) FROM events WHERE id = 1")
        .unwrap();
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "30%", "-c", "90%"])
        .run();
    out.expect("WARNING");
    assert!(
        out.summary().contains(" used (") && out.summary().ends_with(&format!(" of {capacity})")),
        "{}",
        out.summary()
    );
    let used = out.perf("lock_table_used");
    assert!(used.value > 30.0, "{}", out.stdout);
    assert_eq!((used.warn.as_str(), used.crit.as_str()), ("30", "90"));
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    assert!(
        out.long_output().iter().any(|l| l.starts_with(&format!(
            "pid {holder_pid} holds the most locks in the shared lock table: "
        ))),
        "{}",
        out.stdout
    );
    assert!(out.hint().unwrap().contains("max_locks_per_transaction"));
    holder.batch_execute("ROLLBACK").unwrap();
    cluster
        .plugin(PLUGIN)
        .args(&["-w", "30%", "-c", "90%"])
        .run()
        .expect("OK");
}
