//! check_pg_health against real clusters: the default checks in one run over
//! one connection, one check's failure kept to its own line, the worst state
//! on top, and a server that is down or goes away is CRITICAL.

use harness::{Cluster, ClusterOptions};
use once_cell::sync::Lazy;

const DEFAULTS: [&str; 7] = [
    "alive",
    "connections",
    "replication_lag",
    "disk",
    "long_running",
    "locks",
    "archiver",
];

// Every connection is logged, so a test can count the run's own.
static CLUSTER: Lazy<Cluster> = Lazy::new(|| {
    Cluster::start_with(
        "health",
        ClusterOptions {
            max_connections: 40,
            extra_conf: vec!["log_connections = on".into()],
            ..ClusterOptions::default()
        },
    )
});

#[test]
fn the_default_checks_are_ok_on_a_quiet_cluster() {
    let out = CLUSTER.plugin("check_pg_health").run();
    out.expect("OK");
    assert_eq!(
        out.summary(),
        format!("7 checks OK ({})", DEFAULTS.join(", "))
    );
    let long: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(long.len(), DEFAULTS.len(), "{}", out.stdout);
    for (line, check) in long.iter().zip(DEFAULTS) {
        assert!(line.starts_with(&format!("[OK] {check}: ")), "{line}");
    }
    // Every check's perfdata, each label under its check's name.
    let perfdata = out.perfdata();
    for check in DEFAULTS {
        assert!(
            perfdata
                .keys()
                .any(|l| l.starts_with(&format!("{check}::"))),
            "{check}: {perfdata:?}"
        );
    }
    assert!(perfdata.keys().all(|l| l.contains("::")));
    // 90% of 37 slots (40 less 3 reserved).
    assert_eq!(perfdata["connections::connections"].crit, "33.3");
    assert!(!out.stdout.contains("hint:"));
}

#[test]
fn one_run_is_one_connection() {
    // A role of its own: the other tests' runs do not count.
    CLUSTER.execute("CREATE ROLE one_run LOGIN IN ROLE pg_monitor");
    let before = connections_logged(&CLUSTER);
    harness::PluginRun::new("check_pg_health")
        .args(&["-H", &CLUSTER.socket_dir.display().to_string()])
        .args(&[
            "-p",
            &CLUSTER.port.to_string(),
            "-U",
            "one_run",
            "-d",
            "postgres",
        ])
        .run()
        .expect("OK");
    let mut after = connections_logged(&CLUSTER);
    for _ in 0..50 {
        if after > before {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        after = connections_logged(&CLUSTER);
    }
    assert_eq!(after - before, 1, "{}", CLUSTER.log());
}

fn connections_logged(cluster: &Cluster) -> usize {
    cluster
        .log()
        .lines()
        .filter(|l| l.contains("connection authorized: user=one_run "))
        .count()
}

#[test]
fn a_warning_and_an_unknown_in_one_run_with_the_others_reported() {
    let cluster = &*CLUSTER;
    cluster.execute("CREATE TABLE IF NOT EXISTS secret (n int)");
    // Sessions held open while the check runs: more than 5 warns.
    let _sessions: Vec<_> = (0..6).map(|_| cluster.client()).collect();
    let out = cluster
        .plugin("check_pg_health")
        .args(&[
            "--check",
            "alive",
            "--check",
            "connections -w 5 -c 30",
            "--check",
            "query --label secrets --query 'SELECT count(*) FROM secret'",
            "--check",
            "locks",
        ])
        .run();
    // UNKNOWN outranks WARNING, as the Monitoring Plugins merge states.
    out.expect("UNKNOWN");
    let summary = out.summary();
    assert!(
        summary.starts_with("query UNKNOWN: permission denied for table secret: role \"monitor\""),
        "{summary}"
    );
    assert!(summary.contains("; connections WARNING: "), "{summary}");
    assert!(summary.ends_with("; 2 checks OK"), "{summary}");
    let long: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert!(long[0].starts_with("[OK] alive: PostgreSQL "), "{long:?}");
    assert!(long[1].starts_with("[WARNING] connections: "), "{long:?}");
    assert!(long[2].starts_with("[UNKNOWN] query: "), "{long:?}");
    assert!(long[3].starts_with("[OK] locks: "), "{long:?}");
    // The next steps of the checks that alert, worst first.
    assert!(
        long[4].starts_with("hint: [query] grant the monitoring role what the message names"),
        "{}",
        long[4]
    );
    assert!(long[4].contains(" [connections] look at pg_stat_activity"));
    let perfdata = out.perfdata();
    assert!(perfdata["connections::connections"].value >= 7.0);
    assert_eq!(perfdata["connections::connections"].warn, "5");
    assert!(perfdata.contains_key("locks::waiting"));
    assert!(perfdata.contains_key("alive::time"));
    assert!(!perfdata.keys().any(|l| l.starts_with("query::")));
}

#[test]
fn a_check_given_twice_keeps_both_results_apart() {
    let out = CLUSTER
        .plugin("check_pg_health")
        .args(&[
            "--check",
            "query --query 'SELECT 1'",
            "--check",
            "query --query 'SELECT 2' -w 1",
        ])
        .run();
    out.expect("WARNING");
    assert_eq!(out.summary(), "query_2 WARNING: result is 2; 1 check OK");
    let perfdata = out.perfdata();
    assert_eq!(perfdata["query::result"].value, 1.0);
    assert_eq!(perfdata["query_2::result"].value, 2.0);
}

#[test]
fn a_session_lost_midway_is_critical_and_the_rest_is_not_run() {
    let out = CLUSTER
        .plugin("check_pg_health")
        .args(&[
            "--check",
            "alive",
            "--check",
            "query --query 'SELECT count(*) FROM (SELECT pg_terminate_backend(pg_backend_pid())) t'",
            "--check",
            "locks",
        ])
        .run();
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .starts_with("the server closed the connection; query UNKNOWN: "),
        "{}",
        out.summary()
    );
    assert!(out
        .stdout
        .contains("\n[UNKNOWN] locks: not run, the connection was lost\n"));
    assert!(out.hint().unwrap().starts_with("is the server up"));
}

#[test]
fn a_server_that_is_down_is_critical() {
    let cluster = Cluster::start("health-down");
    let port = cluster.port.to_string();
    let socket = cluster.socket_dir.display().to_string();
    drop(cluster);
    let out = harness::PluginRun::new("check_pg_health")
        .args(&["-H", &socket, "-p", &port, "-U", harness::MONITOR])
        .run();
    out.expect("CRITICAL");
    assert!(
        out.summary().starts_with("cannot connect to socket "),
        "{}",
        out.summary()
    );
}
