//! check_pg_wraparound with what really holds the xmin horizon back: a
//! forgotten prepared transaction and a session keeping an old snapshot.

use harness::{Cluster, ClusterOptions, PLAIN};

const PLUGIN: &str = "check_pg_wraparound";

#[test]
fn a_fresh_cluster_is_ok_with_every_database_in_the_perfdata() {
    let cluster = Cluster::start("wrap-ok");
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    let summary = out.summary();
    assert!(summary.starts_with("oldest XID age "), "{summary}");
    assert!(
        summary.contains(" of wraparound), oldest multixact age "),
        "{summary}"
    );
    let pct = out.perf("wraparound_pct");
    assert_eq!((pct.warn.as_str(), pct.crit.as_str()), ("50", "75"));
    assert!(pct.value < 0.01, "{}", pct.value);
    assert_eq!(out.perf("max_xid_age").max, "2147483648");
    for db in ["postgres", "template0", "template1"] {
        let age = out.perf(&format!("{db} xid_age")).value;
        assert!(
            age > 0.0 && age <= out.perf("max_xid_age").value,
            "{db}: {age}"
        );
    }
    // Quiet but for the forecast, which needs more history first.
    assert_eq!(
        out.long_output(),
        ["wraparound stop (2^31 - 3 million): forecast after 3 h 0 min more of history"]
    );
    assert!(!out.perfdata().contains_key("time_left"), "{}", out.stdout);
}

#[test]
fn a_prepared_transaction_and_an_old_snapshot_hold_the_horizon() {
    let cluster = Cluster::start_with(
        "wrap-held",
        ClusterOptions {
            extra_conf: vec!["max_prepared_transactions = 5".into()],
            ..ClusterOptions::default()
        },
    );
    let mut admin = cluster.client();
    admin.batch_execute("CREATE TABLE held (id int)").unwrap();
    admin.batch_execute("BEGIN").unwrap();
    admin.batch_execute("INSERT INTO held VALUES (1)").unwrap();
    admin
        .batch_execute("PREPARE TRANSACTION 'forgotten'")
        .unwrap();
    let mut snapshot = cluster.client_as(PLAIN);
    let pid: i32 = snapshot
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    snapshot
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
        .unwrap();
    // 500 transactions later, freezing the database cannot pass either.
    cluster.execute(
        "DO $$ BEGIN FOR i IN 1..500 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$",
    );
    cluster.execute("VACUUM (FREEZE)");

    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "400", "-c", "100000"])
        .run();
    out.expect("WARNING");
    let oldest = out.perf("max_xid_age");
    assert!(oldest.value >= 500.0, "{}", oldest.value);
    assert_eq!(oldest.warn, "400");
    // The summary says where to look first.
    let summary = out.summary();
    assert!(
        summary.contains("; oldest xmin held by prepared transaction 'forgotten' (age ")
            || summary.contains(&format!("; oldest xmin held by session pid {pid} (age ")),
        "{summary}"
    );
    let postgres_age = out.perf("postgres xid_age").value;
    assert!(
        postgres_age >= 500.0,
        "VACUUM FREEZE got past the holders: {postgres_age}"
    );
    let details = out.long_output();
    let held_by = |prefix: &str| {
        details
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}' in {details:#?}"))
            .to_string()
    };
    let prepared = held_by(
        "xmin horizon held by prepared transaction 'forgotten' (owner postgres, database postgres, prepared ",
    );
    let session = held_by(&format!(
        "xmin horizon held by session pid {pid} (plain@postgres, idle in transaction), transaction open "
    ));
    for line in [&prepared, &session] {
        let age: f64 = line.rsplit("age ").next().unwrap().parse().unwrap();
        assert!(age >= 500.0, "{line}");
    }
    assert!(details
        .iter()
        .any(|l| l.starts_with("database template0: XID age ")));

    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "100", "-c", "450"])
        .run();
    out.expect("CRITICAL");

    // Listing the holders needs other roles' sessions: pg_monitor.
    let out = cluster
        .plugin(PLUGIN)
        .env("PGUSER", PLAIN)
        .args(&["-w", "400"])
        .run();
    out.expect("UNKNOWN");
    assert!(
        out.summary().contains("cannot see other roles' sessions"),
        "{}",
        out.summary()
    );

    snapshot.batch_execute("ROLLBACK").unwrap();
    cluster.execute("ROLLBACK PREPARED 'forgotten'");
}

#[test]
fn xids_used_at_a_steady_rate_give_the_time_left() {
    let cluster = Cluster::start("wrap-forecast");
    let state = harness::temp_dir("wrap-forecast-state");
    let mut burner = cluster.client();
    let next_xid = |c: &mut postgres::Client| -> f64 {
        c.query_one(
            "SELECT txid_snapshot_xmax(txid_current_snapshot())::float8",
            &[],
        )
        .unwrap()
        .get(0)
    };
    let first = next_xid(&mut burner);
    let mut course = harness::Course::new();
    // 500 transactions every quarter second (2,000 a second), a run after each.
    for i in 0..64 {
        course.step(i);
        burner
            .batch_execute(
                "DO $$ BEGIN FOR i IN 1..500 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$",
            )
            .unwrap();
        let out = cluster
            .plugin(PLUGIN)
            .args(&["--forecast-window", "60s", "--state-dir"])
            .arg(state.to_str().unwrap())
            .args(&["-w", "50%,30d:", "-c", "75%,1d:"])
            .run();
        let elapsed = course.elapsed();
        let left = out.perfdata().get("time_left").map(|p| p.value);
        if elapsed < 7.0 {
            out.expect("OK");
            assert!(left.is_none(), "{}", out.stdout);
            assert!(out.stdout.contains("more of history"), "{}", out.stdout);
        }
        if let Some(left) = left {
            let rate = (next_xid(&mut burner) - first) / elapsed;
            let truth = (2_147_483_648.0 - 3_000_000.0 - out.perf("max_xid_age").value) / rate;
            course.compare(left, truth, &out);
            assert!(
                out.summary().contains("new transactions refused in "),
                "{}",
                out.stdout
            );
        }
        course.saw(&out);
        if course.compared >= 8 {
            break;
        }
    }
    assert!(course.compared >= 8, "only {} forecasts", course.compared);
    // Gathering is OK; then under 30 days left at 2,000 XIDs a second.
    assert_eq!(course.seen, ["OK", "WARNING"]);
}
