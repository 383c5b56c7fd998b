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
    let size = |c: &mut postgres::Client| -> f64 {
        c.query_one("SELECT pg_database_size('app')::float8", &[])
            .unwrap()
            .get(0)
    };
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
    let table_size = |c: &mut postgres::Client| -> f64 {
        c.query_one("SELECT pg_total_relation_size('grow')::float8", &[])
            .unwrap()
            .get(0)
    };
    // A bare duration needs a limit to count down to.
    let out = cluster.plugin(PLUGIN).args(&["-w", "20s:"]).run();
    out.expect("UNKNOWN");
    assert!(out.stdout.contains("give one of them"), "{}", out.stdout);

    let start = std::time::Instant::now();
    let mut seen = Vec::new();
    let mut table_seen = Vec::new();
    let mut compared = 0;
    let mut table_compared = 0;
    // About 1 MB every quarter second into app, a run after each.
    for i in 0..200u64 {
        let due = start + std::time::Duration::from_millis(250 * i);
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
        app.batch_execute("INSERT INTO grow SELECT repeat('x', 900) FROM generate_series(1, 1000)")
            .unwrap();
        let out = run();
        let now = size(&mut app);
        let elapsed = start.elapsed().as_secs_f64();
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
            let truth = (limit - now) / rate;
            eprintln!("true {truth:.1} s: {}", out.status_line());
            if truth > 3.0 {
                assert!(
                    (left - truth).abs() <= 0.25 * truth,
                    "forecast {left} s, true {truth:.1} s: {}",
                    out.stdout
                );
                compared += 1;
            }
        }
        if seen.last().map(String::as_str) != Some(out.state()) {
            seen.push(out.state().to_string());
        }
        let t = table();
        let grown = table_size(&mut app);
        if let Some(left) = t.perfdata().get("time_left").map(|p| p.value) {
            let truth = (100.0 * MB - grown) / (grown / start.elapsed().as_secs_f64());
            eprintln!("true {truth:.1} s: {}", t.status_line());
            if truth > 3.0 {
                assert!(
                    (left - truth).abs() <= 0.25 * truth,
                    "forecast {left} s, true {truth:.1} s: {}",
                    t.stdout
                );
                table_compared += 1;
            }
        } else {
            t.expect("OK");
        }
        if table_seen.last().map(String::as_str) != Some(t.state()) {
            table_seen.push(t.state().to_string());
        }
        if now > limit - 6.0 * MB {
            break;
        }
    }
    assert!(compared >= 6, "only {compared} forecasts");
    assert_eq!(seen, ["OK", "WARNING", "CRITICAL"]);
    assert!(table_compared >= 6, "only {table_compared} table forecasts");
    assert_eq!(table_seen, ["OK", "WARNING", "CRITICAL"]);
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
