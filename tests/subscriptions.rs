//! check_pg_subscriptions on two real clusters: a publisher (wal_level
//! logical) and a subscriber. A healthy subscription, one disabled with its
//! table never copied, a unique violation that stops apply, and (15+) a
//! subscription that disable_on_error turned off.

use std::time::Duration;

use harness::daemon::wait_until;
use harness::{server_major, temp_dir, Cluster, ClusterOptions, PluginOutput};

const PLUGIN: &str = "check_pg_subscriptions";

fn publisher(name: &str) -> Cluster {
    Cluster::start_with(
        name,
        ClusterOptions {
            extra_conf: vec!["wal_level = logical".into()],
            ..ClusterOptions::default()
        },
    )
}

fn conninfo(publisher: &Cluster) -> String {
    format!(
        "host={} port={} user=postgres dbname=postgres",
        publisher.socket_dir.display(),
        publisher.port
    )
}

#[test]
fn subscriptions_are_judged_on_the_subscriber() {
    let publisher = publisher("subs-publisher");
    let subscriber = Cluster::start("subs-subscriber");
    for cluster in [&publisher, &subscriber] {
        cluster.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)");
    }
    publisher.execute("CREATE PUBLICATION shop FOR TABLE orders");
    subscriber.execute(&format!(
        "CREATE SUBSCRIPTION orders CONNECTION '{}' PUBLICATION shop",
        conninfo(&publisher)
    ));
    subscriber.wait_for(
        "SELECT count(*) = 1 AND bool_and(srsubstate = 'r') FROM pg_subscription_rel",
        "the table to be synchronized",
    );
    let state = temp_dir("subs-state");
    let run = |args: &[&str]| {
        subscriber
            .plugin(PLUGIN)
            .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
            .args(args)
            .run()
    };

    // Healthy, as the pg_monitor role sees it.
    let out = run(&["-v"]);
    out.expect("OK");
    assert!(
        out.summary().starts_with(
            "1 subscription streaming; 0 disabled, 0 without apply worker, 0 tables not ready"
        ),
        "{}",
        out.summary()
    );
    assert!(
        out.long_output()[0].starts_with(
            "OK orders (database postgres, enabled, apply worker running): last message from the publisher "
        ),
        "{:?}",
        out.long_output()
    );
    assert_eq!(out.perf("orders not_ready").value, 0.0);
    assert_eq!(out.perf("disabled").value, 0.0);
    assert!(out.perf("orders receipt_age").value < 60.0);

    // A subscription created disabled never copies its table: CRITICAL,
    // the table named with its state; --exclude leaves it out.
    subscriber.execute(&format!(
        "CREATE SUBSCRIPTION later CONNECTION '{}' PUBLICATION shop \
         WITH (enabled = false, create_slot = false, slot_name = NONE)",
        conninfo(&publisher)
    ));
    let out = run(&[]);
    out.expect("CRITICAL");
    assert!(
        out.summary().starts_with(
            "subscription later: disabled, 1 table not ready (public.orders waiting for its initial copy), 0 sync workers running; 1 disabled"
        ),
        "{}",
        out.summary()
    );
    assert!(out.hint().unwrap().contains("ALTER SUBSCRIPTION"));
    run(&["--exclude", "^later$"]).expect("OK");
    // From another database the tables are not counted, and it says so.
    subscriber.execute("CREATE DATABASE elsewhere");
    let out = run(&["-d", "elsewhere", "--include", "orders", "-v"]);
    out.expect("OK");
    assert!(
        out.long_output()[0]
            .ends_with("tables not counted: they are listed in database postgres (-d postgres)"),
        "{:?}",
        out.long_output()
    );
    subscriber.execute("DROP SUBSCRIPTION later");

    // A standby of the subscriber has the subscription in its catalog but
    // runs no worker: the primary's business, OK.
    let standby = Cluster::standby_of(&subscriber, "subs-standby");
    let out = standby.plugin(PLUGIN).run();
    out.expect("OK");
    assert_eq!(
        out.summary(),
        "a standby: its 1 subscription applies on the primary only"
    );
    standby.stop();
    subscriber.wait_for(
        "SELECT count(*) = 1 FROM pg_stat_subscription WHERE pid IS NOT NULL",
        "the apply worker to be back after the copy",
    );

    // A row the subscriber already has: apply fails on it, again and again.
    subscriber.execute("INSERT INTO orders VALUES (1, 'local')");
    publisher.execute("INSERT INTO orders VALUES (1, 'remote')");
    let failing = wait_until(Duration::from_secs(60), "apply to be seen failing", || {
        let out = run(&[]);
        (out.state() != "OK").then_some(out)
    });
    if server_major() >= 15 {
        // The errors since the previous run count, whether or not the
        // worker is up between two attempts.
        let out = wait_until(
            Duration::from_secs(30),
            "apply errors to be counted",
            || {
                let out = run(&[]);
                (out.perf("orders errors").value >= 1.0).then_some(out)
            },
        );
        assert_ne!(out.state(), "OK");
        assert!(
            out.long_output()[0].contains(" apply and 0 sync error"),
            "{:?}",
            out.long_output()
        );
    } else {
        failing.expect("CRITICAL");
        assert!(
            failing
                .summary()
                .starts_with("subscription orders: apply worker not running"),
            "{}",
            failing.summary()
        );
    }
    // The conflict resolved on the subscriber: apply goes on, and the run
    // after the errors' interval is OK again.
    subscriber.execute("DELETE FROM orders WHERE id = 1");
    subscriber.wait_for(
        "SELECT coalesce((SELECT note = 'remote' FROM orders WHERE id = 1), false)",
        "the change to be applied",
    );
    wait_until(Duration::from_secs(30), "the subscription to be OK", || {
        let out: PluginOutput = run(&[]);
        (out.state() == "OK").then_some(())
    });

    if server_major() >= 15 {
        // disable_on_error: the next error turns the subscription off.
        subscriber.execute("ALTER SUBSCRIPTION orders SET (disable_on_error = true)");
        subscriber.execute("INSERT INTO orders VALUES (2, 'local')");
        publisher.execute("INSERT INTO orders VALUES (2, 'remote')");
        subscriber.wait_for(
            "SELECT NOT subenabled FROM pg_subscription WHERE subname = 'orders'",
            "disable_on_error to disable the subscription",
        );
        let out = run(&[]);
        out.expect("CRITICAL");
        assert!(
            out.summary().starts_with(
                "subscription orders: disabled (disable_on_error: an error turned it off)"
            ),
            "{}",
            out.summary()
        );
        assert_eq!(out.perf("disabled").value, 1.0);
    }
}

/// On the publisher, check_pg_replication_slots counts what each logical
/// slot spilled to disk and streamed since the previous run (14+): one
/// transaction larger than logical_decoding_work_mem, decoded for a
/// subscription that spills it and one that streams it.
#[test]
fn a_large_transaction_spills_or_streams_on_the_publisher() {
    if server_major() < 14 {
        eprintln!("pg_stat_replication_slots is PostgreSQL 14+: skipped");
        return;
    }
    let publisher = Cluster::start_with(
        "spill-publisher",
        ClusterOptions {
            extra_conf: vec![
                "wal_level = logical".into(),
                "logical_decoding_work_mem = '64kB'".into(),
            ],
            ..ClusterOptions::default()
        },
    );
    let subscriber = Cluster::start("spill-subscriber");
    subscriber.execute("CREATE DATABASE streamed");
    let table = "CREATE TABLE big (id int PRIMARY KEY, pad text)";
    publisher.execute(table);
    subscriber.execute(table);
    subscriber.execute_in("streamed", table);
    publisher.execute("CREATE PUBLICATION bulk FOR TABLE big");
    // 18 streams by default (streaming = parallel): this one must not.
    subscriber.execute(&format!(
        "CREATE SUBSCRIPTION spills CONNECTION '{}' PUBLICATION bulk WITH (streaming = off)",
        conninfo(&publisher)
    ));
    subscriber.execute_in(
        "streamed",
        &format!(
            "CREATE SUBSCRIPTION streams CONNECTION '{}' PUBLICATION bulk WITH (streaming = on)",
            conninfo(&publisher)
        ),
    );
    publisher.wait_for(
        "SELECT count(*) = 2 FROM pg_replication_slots WHERE active",
        "both subscriptions to stream",
    );
    let state = temp_dir("spill-state");
    let run = |args: &[&str]| {
        publisher
            .plugin("check_pg_replication_slots")
            .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
            .args(args)
            .run()
    };
    run(&["-w", "spill=1MB"]).expect("OK");

    publisher
        .execute("INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 50000) g");
    publisher.wait_for_stats(
        "postgres",
        "SELECT sum(spill_bytes) FILTER (WHERE slot_name = 'spills') > 1048576 \
         AND sum(stream_bytes) FILTER (WHERE slot_name = 'streams') > 0 FROM pg_stat_replication_slots",
        "the transaction to be spilled and streamed",
    );
    // Decoding and its statistics go on a little after the first bytes:
    // wait for both copies, then for the counters to settle.
    subscriber.wait_for("SELECT count(*) = 50000 FROM big", "the first copy");
    subscriber.wait_for_in(
        "streamed",
        "SELECT count(*) = 50000 FROM big",
        "the streamed copy",
    );
    let totals = || -> (i64, i64) {
        let row = publisher
            .client()
            .query_one(
                "SELECT sum(spill_bytes)::int8, sum(stream_bytes)::int8 FROM pg_stat_replication_slots",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    let mut last = totals();
    wait_until(
        Duration::from_secs(30),
        "the decoding statistics to settle",
        || {
            std::thread::sleep(Duration::from_millis(1500));
            let now = totals();
            let settled = now == last;
            last = now;
            settled.then_some(())
        },
    );
    let out = run(&["-w", "spill=1MB"]);
    out.expect("WARNING");
    assert!(
        out.summary()
            .starts_with("slot spills (logical, active) retains ")
            && out.summary().contains(", spilled "),
        "{}",
        out.summary()
    );
    assert!(out.perf("spills spill").value > 1048576.0);
    assert_eq!(out.perf("spills spill").warn, "1048576");
    assert!(out.perf("streams stream").value > 0.0);
    assert_eq!(out.perf("streams spill").value, 0.0);
    // Nothing more since: OK again.
    let out = run(&["-w", "spill=1MB"]);
    out.expect("OK");
    assert_eq!(out.perf("spills spill").value, 0.0);
}
