//! check_pg_sequences on real sequences set near their limits with setval:
//! serial and identity columns against their type, a bigint sequence with
//! a small maxvalue, a descending and a cycling one, and the pg_monitor role
//! that cannot read any value.

use harness::{Cluster, MONITOR};

const PLUGIN: &str = "check_pg_sequences";

const SCHEMA: &str = "
CREATE TABLE orders (id serial PRIMARY KEY);
CREATE TABLE tags (id smallserial PRIMARY KEY);
CREATE TABLE events (id int GENERATED ALWAYS AS IDENTITY);
CREATE TABLE wide (id bigserial);
CREATE SEQUENCE small MAXVALUE 1000;
CREATE SEQUENCE down INCREMENT -1 MINVALUE -1000 MAXVALUE -1;
CREATE SEQUENCE ring MAXVALUE 100 CYCLE;
CREATE TABLE legacy (id integer);
CREATE SEQUENCE legacy_id_seq AS bigint OWNED BY legacy.id;
ALTER TABLE legacy ALTER id SET DEFAULT nextval('legacy_id_seq');
SELECT setval('orders_id_seq', 2000000000);
SELECT setval('tags_id_seq', 25000);
SELECT setval(pg_get_serial_sequence('events', 'id'), 1700000000);
SELECT setval('wide_id_seq', 2000000000);
SELECT setval('small', 800);
SELECT setval('down', -950);
SELECT setval('ring', 99);
SELECT setval('legacy_id_seq', 1800000000);";

#[test]
fn each_sequence_against_the_limit_that_comes_first() {
    let cluster = Cluster::start("sequences");
    cluster.execute(SCHEMA);

    // pg_monitor alone cannot read a sequence's value: never a silent 0%.
    let out = cluster.plugin(PLUGIN).run();
    out.expect("UNKNOWN");
    assert!(
        out.summary().starts_with(&format!(
            "8 sequences unreadable by role \"{MONITOR}\" (e.g. public.down): GRANT pg_read_all_data TO \"{MONITOR}\" (PostgreSQL 14+) or GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO \"{MONITOR}\"; "
        )),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("unreadable").value, 8.0);
    assert_eq!(out.perf("max_used").value, 0.0);

    cluster.execute(&format!(
        "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {MONITOR}"
    ));
    let out = cluster.plugin(PLUGIN).arg("-v").run();
    out.expect("CRITICAL");
    assert_eq!(
        out.summary(),
        "sequence public.down: 95% used, 50 values left before -1000 (minvalue); 7 sequences checked, 1 cycling (not judged)"
    );
    let lines = out.long_output();
    let expected = [
        "CRITICAL public.orders.id (sequence public.orders_id_seq): 93.1% used, 147483647 values left before 2147483647 (column type integer)",
        "CRITICAL sequence public.down: 95% used, 50 values left before -1000 (minvalue)",
        "WARNING public.legacy.id (sequence public.legacy_id_seq): 83.8% used, 347483647 values left before 2147483647 (column type integer)",
        "WARNING sequence public.small: 80% used, 200 values left before 1000 (maxvalue)",
        "WARNING public.events.id (sequence public.events_id_seq): 79.2% used, 447483647 values left before 2147483647 (column type integer)",
        "WARNING public.tags.id (sequence public.tags_id_seq): 76.3% used, 7767 values left before 32767 (column type smallint)",
        "OK public.wide.id (sequence public.wide_id_seq): 0% used, 9223372034854775807 values left before 9223372036854775807 (column type bigint)",
        "sequence public.ring: cycles, not judged",
    ];
    for line in expected {
        assert!(lines.contains(&line), "{line:?} not in {lines:#?}");
    }
    // The worst first: CRITICAL ones before WARNING ones.
    let down = lines
        .iter()
        .position(|l| l.contains("public.down"))
        .unwrap();
    let small = lines
        .iter()
        .position(|l| l.contains("public.small"))
        .unwrap();
    assert!(down < small, "{lines:#?}");
    assert_eq!(out.perf("max_used").value, 94.99);
    assert_eq!(out.perf("sequences").value, 7.0);
    assert_eq!(out.perf("over_warning").value, 6.0);
    assert_eq!(out.perf("cycling").value, 1.0);
    assert_eq!(out.perf("unreadable").value, 0.0);
    assert!(out.hint().unwrap().contains("TYPE bigint"));

    // --include/--exclude on schema.sequence; thresholds as given.
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--include", "^public\\.(small|wide)", "-w", "85%"])
        .run();
    out.expect("OK");
    assert!(
        out.summary()
            .starts_with("sequence public.small: 80% used, 200 values left"),
        "{}",
        out.summary()
    );
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--exclude", "orders|down|tags|events|small|legacy"])
        .run();
    out.expect("OK");
    assert_eq!(out.perf("sequences").value, 1.0);

    // A sequence created after the grant is not covered by it.
    cluster.execute("CREATE SEQUENCE fresh AS integer");
    let out = cluster.plugin(PLUGIN).args(&["--include", "fresh"]).run();
    out.expect("UNKNOWN");
    assert_eq!(
        out.long_output()[0],
        "UNKNOWN sequence public.fresh: value not readable"
    );
    // Once granted, a sequence never called has used nothing, and says so.
    cluster.execute(&format!("GRANT SELECT ON public.fresh TO {MONITOR}"));
    let out = cluster.plugin(PLUGIN).args(&["--include", "fresh"]).run();
    out.expect("OK");
    assert_eq!(
        out.summary(),
        "sequence public.fresh: 0% used, 2147483647 values left before 2147483647 (maxvalue); 1 sequence checked"
    );
}

#[test]
fn every_database_with_all_databases() {
    let cluster = Cluster::start("sequences-all");
    cluster.execute("CREATE DATABASE shop");
    cluster.execute_in(
        "shop",
        &format!(
            "CREATE TABLE orders (id serial); SELECT setval('orders_id_seq', 2100000000);
             GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {MONITOR}"
        ),
    );
    cluster.plugin(PLUGIN).run().expect("OK");
    let out = cluster.plugin(PLUGIN).arg("--all-databases").run();
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .starts_with("shop.public.orders.id (sequence shop.public.orders_id_seq): 97.8% used"),
        "{}",
        out.summary()
    );
    assert!(out.summary().ends_with("1 sequence checked in 2 databases"));
}

#[test]
fn a_sequence_used_at_a_steady_rate_is_forecast_to_run_out_in_time() {
    let cluster = Cluster::start("sequences-forecast");
    cluster.execute(&format!(
        "CREATE SEQUENCE fill AS smallint; GRANT SELECT ON SEQUENCE fill TO {MONITOR}"
    ));
    let state = harness::temp_dir("sequences-forecast-state");
    let run = || {
        cluster
            .plugin(PLUGIN)
            .args(&["--forecast-window", "60s", "--state-dir"])
            .arg(state.to_str().unwrap())
            .args(&["-w", "100%,12s:", "-c", "100%,5s:"])
            .run()
    };
    let mut app = cluster.client();
    let mut course = harness::Course::new();
    // 375 values every quarter second (1,500 a second) of 32,767, a run after each.
    for i in 0..160u64 {
        course.step(i);
        let last: i64 = app
            .query_one(
                "SELECT max(nextval('fill')) FROM generate_series(1, 375)",
                &[],
            )
            .unwrap()
            .get(0);
        let out = run();
        let elapsed = course.elapsed();
        let left = out.perfdata().get("time_left").map(|p| p.value);
        if elapsed < 7.0 {
            out.expect("OK");
            assert!(left.is_none(), "{}", out.stdout);
            assert!(
                out.long_output()
                    .iter()
                    .any(|l| l.starts_with("forecast after ")),
                "{}",
                out.stdout
            );
        }
        if let Some(left) = left {
            let rate = last as f64 / elapsed;
            course.compare(left, (32767 - last) as f64 / rate, &out);
        }
        course.saw(&out);
        if last > 31_500 {
            break;
        }
    }
    assert!(course.compared >= 10, "only {} forecasts", course.compared);
    assert_eq!(course.seen, ["OK", "WARNING", "CRITICAL"]);
    let out = run();
    assert!(out.summary().contains(", runs out in "), "{}", out.stdout);

    // Set back: the history restarts instead of forecasting from a trend
    // that is gone.
    cluster.execute("SELECT setval('fill', 10)");
    let out = run();
    out.expect("OK");
    assert!(
        out.long_output()
            .iter()
            .any(|l| l.starts_with("forecast after ")),
        "{}",
        out.stdout
    );
    assert!(!out.perfdata().contains_key("time_left"), "{}", out.stdout);
}
