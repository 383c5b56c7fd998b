//! check_pg_long_running with real sessions: one idle in transaction, one
//! running a long statement.

use std::process::Stdio;
use std::time::Duration;

use harness::{as_server_user, client_program, Cluster, PLAIN};

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
            "pid {idle_pid} (plain@postgres, pgvigil-test) transaction open "
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

#[test]
fn a_nightly_dump_left_out_by_application_while_a_leak_still_alerts() {
    let cluster = Cluster::start("long-dump");
    cluster.execute(
        "CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g",
    );
    // A real pg_dump whose reader never reads: it blocks on a full pipe
    // with its transaction open, as a long dump does. Where no pg_dump can
    // dump this major (the server-only builds of 16+ here), a session that
    // names itself pg_dump holds its snapshot the way pg_dump does.
    let mut stand_in = None;
    let mut dump = match client_program("pg_dump", false) {
        Some(pg_dump) => Some(
            as_server_user(pg_dump)
                .args(cluster.connection_args())
                .args(["-d", "postgres", "-t", "big"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("pg_dump"),
        ),
        None => {
            let mut c = cluster.client();
            c.batch_execute(
                "SET application_name = 'pg_dump'; BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT count(*) FROM big",
            )
            .unwrap();
            stand_in = Some(c);
            None
        }
    };
    cluster.wait_for(
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'pg_dump' AND xact_start IS NOT NULL",
        "pg_dump's transaction",
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut leak = cluster.client_as(PLAIN);
    let leak_pid: i32 = leak
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    leak.batch_execute("BEGIN; SELECT 1").unwrap();
    std::thread::sleep(Duration::from_millis(2200));

    // Without a filter, the dump is the oldest and pages.
    let out = cluster.plugin(PLUGIN).args(&["-w", "1s", "-c", "2s"]).run();
    out.expect("CRITICAL");
    assert!(
        out.long_output()[0].contains("(postgres@postgres, pg_dump) transaction open"),
        "{:?}",
        out.long_output()
    );
    assert_eq!(out.perf("open_transactions").value, 2.0);

    // Left out by application name, the leak still pages and the dump is
    // counted.
    let filtered = ["-w", "1s", "-c", "2s", "--exclude-app", "^pg_dump$"];
    let out = cluster.plugin(PLUGIN).args(&filtered).run();
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .contains(&format!("(pid {leak_pid}, idle in transaction)")),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("open_transactions").value, 1.0);
    assert_eq!(
        out.long_output().last().unwrap(),
        &"1 session excluded by filters (application !~ ^pg_dump$)"
    );

    // The leak ends: the dump alone is OK, and still said.
    leak.batch_execute("ROLLBACK").unwrap();
    let out = cluster.plugin(PLUGIN).args(&filtered).run();
    out.expect("OK");
    assert_eq!(out.summary(), "no transaction open");
    assert_eq!(
        out.long_output(),
        ["1 session excluded by filters (application !~ ^pg_dump$)"]
    );
    // The same by user, and a user filter that keeps nobody.
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "1s", "--include-user", "^plain$"])
        .run();
    out.expect("OK");
    assert_eq!(
        out.long_output(),
        ["1 session excluded by filters (user ~ ^plain$)"]
    );
    // A bad regex is a usage error.
    let out = cluster.plugin(PLUGIN).args(&["--exclude-app", "("]).run();
    out.expect("UNKNOWN");

    if let Some(dump) = dump.as_mut() {
        dump.kill().unwrap();
        dump.wait().unwrap();
    }
    drop(stand_in);
}

#[test]
fn autovacuum_workers_and_other_types_only_when_asked() {
    let cluster = Cluster::start("long-types");
    let mut idle = cluster.client_as(PLAIN);
    idle.batch_execute("BEGIN; SELECT 1").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    // A walsender or autovacuum worker is not a client: asked for alone,
    // the client's transaction is not judged and not counted as excluded.
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "1s", "--backend-type", "autovacuum-worker"])
        .run();
    out.expect("OK");
    assert!(out.long_output().is_empty(), "{:?}", out.long_output());
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "1s", "--backend-type", "all"])
        .run();
    out.expect("WARNING");
    idle.batch_execute("ROLLBACK").unwrap();
}
