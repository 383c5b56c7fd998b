//! check_pg_db_size's and check_pg_relation_size's forecasts against a
//! real table (and its database) grown at a steady rate, then truncated.

use harness::Cluster;

const PLUGIN: &str = "check_pg_db_size";
const MB: f64 = 1048576.0;

#[test]
fn a_database_grown_at_a_steady_rate_reaches_its_limit_in_time() {
    let cluster = Cluster::start("db-size-forecast");
    cluster.execute("CREATE DATABASE app");
    cluster.execute_in("app", "CREATE TABLE grow (v text)");
    let state = harness::temp_dir("db-size-forecast-state");
    let mut app = cluster.client_to("postgres", "app");
    // The sizes the server sees, for the truth.
    let number =
        |c: &mut postgres::Client, sql: &str| -> f64 { c.query_one(sql, &[]).unwrap().get(0) };
    let size = |c: &mut postgres::Client| number(c, "SELECT pg_database_size('app')::float8");
    let first = size(&mut app);
    let limit = first + 100.0 * MB;
    let limit_arg = format!("{}", limit as u64);
    let run = || {
        cluster
            .plugin(PLUGIN)
            .args(&["--forecast-window", "60s", "--state-dir"])
            .arg(state.to_str().unwrap())
            .args(&["--limit", &limit_arg, "-w", "12s:", "-c", "5s:"])
            .run()
    };
    let table = || {
        cluster
            .plugin("check_pg_relation_size")
            .args(&["-d", "app", "--min-size", "0", "--kind", "table"])
            .args(&["--forecast-window", "60s", "--state-dir"])
            .arg(state.to_str().unwrap())
            .args(&["--limit", "100MB", "-w", "12s:", "-c", "5s:"])
            .run()
    };
    let table_size =
        |c: &mut postgres::Client| number(c, "SELECT pg_total_relation_size('grow')::float8");
    // A bare duration needs a limit to count down to.
    let out = cluster.plugin(PLUGIN).args(&["-w", "20s:"]).run();
    out.expect("UNKNOWN");
    assert!(out.stdout.contains("give one of them"), "{}", out.stdout);

    let (mut course, mut table_course) = (harness::Course::new(), harness::Course::new());
    // About 1 MB every quarter second into app, a run after each.
    for i in 0..200u64 {
        course.step(i);
        app.batch_execute("INSERT INTO grow SELECT repeat('x', 900) FROM generate_series(1, 1000)")
            .unwrap();
        let out = run();
        let now = size(&mut app);
        let elapsed = course.elapsed();
        let left = out.perfdata().get("app time_left").map(|p| p.value);
        if elapsed < 7.0 {
            out.expect("OK");
            assert!(left.is_none(), "{}", out.stdout);
            assert!(
                out.long_output()
                    .iter()
                    .any(|l| l.contains(" app: ") && l.contains("more of history")),
                "{}",
                out.stdout
            );
        }
        if let Some(left) = left {
            let rate = (now - first) / elapsed;
            course.compare(left, (limit - now) / rate, &out);
        }
        course.saw(&out);
        let t = table();
        let grown = table_size(&mut app);
        if let Some(left) = t.perfdata().get("time_left").map(|p| p.value) {
            let truth = (100.0 * MB - grown) / (grown / table_course.elapsed());
            table_course.compare(left, truth, &t);
        } else {
            t.expect("OK");
        }
        table_course.saw(&t);
        if now > limit - 6.0 * MB {
            break;
        }
    }
    assert!(course.compared >= 6, "only {} forecasts", course.compared);
    assert_eq!(course.seen, ["OK", "WARNING", "CRITICAL"]);
    let table_compared = table_course.compared;
    assert!(table_compared >= 6, "only {table_compared} table forecasts");
    assert_eq!(table_course.seen, ["OK", "WARNING", "CRITICAL"]);
    let t = table();
    assert!(
        t.summary().starts_with("table public.grow ")
            && t.summary().contains(", reaches 100 MB in "),
        "{}",
        t.stdout
    );

    // TRUNCATE: far more than a wobble, so the history starts again.
    app.batch_execute("TRUNCATE grow").unwrap();
    let out = run();
    out.expect("OK");
    assert!(
        !out.perfdata().contains_key("app time_left"),
        "{}",
        out.stdout
    );
    assert!(
        out.long_output()
            .iter()
            .any(|l| l.contains(" app: ") && l.contains("forecast after ")),
        "{}",
        out.stdout
    );
    let t = table();
    t.expect("OK");
    assert!(!t.perfdata().contains_key("time_left"), "{}", t.stdout);
    assert!(
        t.long_output()
            .iter()
            .any(|l| l.starts_with("forecast after ")),
        "{}",
        t.stdout
    );
}
