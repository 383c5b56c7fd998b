//! Every plugin ends every alert with one `hint:` line: its own next step on
//! a WARNING or CRITICAL it measured, the failure's on UNKNOWN and on a
//! server it cannot reach; `--runbook-url` adds the link with the check and
//! state filled in. An OK result has no hint.

use harness::{Cluster, ClusterOptions, PluginOutput, PluginRun, PLAIN};
use once_cell::sync::Lazy;

const RUNBOOK: &str = "https://runbooks.example.com/pg/{check}/{state}";

/// A primary with a streaming standby, a replication slot, a table with
/// statistics and a big enough one for the bloat estimate.
static CLUSTER: Lazy<(Cluster, Cluster)> = Lazy::new(|| {
    let primary = Cluster::start_with(
        "hints",
        ClusterOptions {
            archive_command: Some("/bin/true".into()),
            ..ClusterOptions::default()
        },
    );
    primary.execute(
        "CREATE TABLE t AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 60000) g;
         DELETE FROM t WHERE id % 2 = 0;
         ANALYZE t;
         GRANT SELECT ON t TO monitor;
         CREATE ROLE expiring LOGIN;
         SELECT pg_create_physical_replication_slot('kept', true);",
    );
    let in_3_days: String = primary
        .client()
        .query_one(
            "SELECT format('ALTER ROLE expiring VALID UNTIL %L', now() + interval '3 days')",
            &[],
        )
        .unwrap()
        .get(0);
    primary.execute(&in_3_days);
    let standby = Cluster::standby_of(&primary, "hints-standby");
    primary.wait_for(
        "SELECT count(*) = 1 FROM pg_stat_replication WHERE state = 'streaming'",
        "the standby to stream",
    );
    primary.wait_for_stats(
        "postgres",
        "SELECT n_dead_tup > 0 FROM pg_stat_user_tables WHERE relname = 't'",
        "statistics of t",
    );
    (primary, standby)
});

/// What a plugin needs to measure something here, and a range that alerts
/// on any value of its unit, where `-w @0:` ("0 or more", in the check's
/// bare unit) and no arguments will not do.
fn exception(plugin: &str) -> Option<(Vec<&'static str>, &'static str)> {
    Some(match plugin {
        "check_pg_replication_lag" | "check_pg_replication_slots" => (vec![], "@0B:"),
        "check_pg_relation_size" => (vec![], "@0B:"),
        "check_pg_sequences" | "check_pg_vacuum" | "check_pg_wal" => (vec![], "@0%:"),
        "check_pg_roles" => (vec![], "@0s:"),
        "check_pg_query" => (vec!["--query", "SELECT 1"], "@0:"),
        "check_pg_bloat" => (vec!["--min-size", "1MB"], "@0B:"),
        "check_pg_hit_ratio" => (vec!["--min-reads", "0"], "@0:"),
        "check_pg_checkpoints" => (vec!["--min-checkpoints", "0"], "@0:"),
        "check_pg_log" => (vec!["--log", "/dev/null"], "@0:"),
        "check_pg_backup" => (vec!["--dump-dir", *DUMPS], "@0s:"),
        _ => return None,
    })
}

/// Every check the registry names but those covered elsewhere, with what it
/// needs and a range that alerts: a new check is held to its hint with no
/// line here, unless it needs more than `-w @0:`.
fn plugins() -> Vec<(String, Vec<&'static str>, &'static str)> {
    harness::plugin::names()
        .into_iter()
        .filter(|p| !COVERED_ELSEWHERE.contains(&p.as_str()))
        .map(|p| {
            let (args, range) = exception(&p).unwrap_or((vec![], "@0:"));
            (p, args, range)
        })
        .collect()
}

/// A directory with a fresh dump, for check_pg_backup.
static DUMPS: Lazy<&'static str> = Lazy::new(|| {
    let dir = harness::temp_dir("hints-dumps");
    std::fs::write(dir.join("app.sql"), "-- a dump\n").unwrap();
    Box::leak(dir.display().to_string().into_boxed_str())
});

fn run(plugin: &str, args: &[&str]) -> PluginOutput {
    CLUSTER.0.plugin(plugin).args(args).run()
}

/// The last line, which must be the hint; checked to be the only one.
fn hint(out: &PluginOutput) -> String {
    let hints: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("hint: "))
        .collect();
    assert_eq!(hints.len(), 1, "one hint line:\n{}", out.stdout);
    let last = out.stdout.lines().last().unwrap();
    assert_eq!(last, hints[0], "the hint ends the output:\n{}", out.stdout);
    last.trim_start_matches("hint: ").to_string()
}

/// The hints of failures, which a measured alert must not fall back to.
const FAILURE_HINTS: [&str; 4] = [
    "is the server up",
    "grant the monitoring role",
    "read the server log around this time",
    "fix the command line",
];

/// Checks whose hints other tests here cover, each for its reason: no
/// thresholds of its own (settings, health), or a PgBouncer to talk to.
const COVERED_ELSEWHERE: [&str; 7] = [
    "check_pg_settings",      // settings_findings_end_with_its_next_step
    "check_pg_version",       // tests/version.rs, against --min-version
    "check_pg_role",          // tests/role.rs, split brain and --expect
    "check_pg_health",        // a_combined_run_gives_the_hints_of_its_alerts
    "check_pg_pgbouncer",     // tests/pgbouncer.rs, against a real PgBouncer
    "check_pg_subscriptions", // tests/subscriptions.rs, a subscription that fails
    "check_pg_patroni",       // tests/patroni.rs, against a real Patroni cluster
];

#[test]
fn the_checks_covered_elsewhere_are_checks_of_the_registry() {
    let names = harness::plugin::names();
    for plugin in COVERED_ELSEWHERE {
        assert!(names.contains(plugin), "{plugin}");
    }
}

#[test]
fn every_measured_alert_ends_with_the_checks_own_next_step() {
    for (plugin, args, range) in plugins() {
        let plugin = plugin.as_str();
        if harness::plugin::takes_no_thresholds(plugin) {
            // No range forces its alert: its own test gives it one (the
            // data directory opened, for check_pg_pgdata) and reads the hint.
            continue;
        }
        let check = plugin.trim_start_matches("check_pg_");
        // The checks that compare runs need a baseline first.
        // Half of t is dead: loose ranges keep vacuum and bloat OK here.
        let calm: &[&str] = match plugin {
            "check_pg_vacuum" | "check_pg_bloat" => &["-w", "100%", "-c", "100%"],
            // A password expires in 3 days.
            "check_pg_roles" => &["-w", "1d:", "-c", "1h:"],
            _ => &[],
        };
        run(plugin, &args);
        let ok = run(plugin, &[args.as_slice(), calm].concat());
        ok.expect("OK");
        assert!(!ok.stdout.contains("hint:"), "{plugin}: {}", ok.stdout);

        let mut hints = Vec::new();
        for (option, state) in [("-w", "WARNING"), ("-c", "CRITICAL")] {
            // The last -w or -c given wins.
            let mut full = [args.as_slice(), calm].concat();
            full.extend([option, range, "--runbook-url", RUNBOOK]);
            let out = run(plugin, &full);
            out.expect(state);
            let hint = hint(&out);
            let link = format!(
                " (runbook: https://runbooks.example.com/pg/{check}/{})",
                state.to_lowercase()
            );
            assert!(hint.ends_with(&link), "{plugin}: {hint}");
            let text = hint.trim_end_matches(&link).to_string();
            assert!(text.len() > 40, "{plugin}: a next step, not a word: {text}");
            assert!(
                !FAILURE_HINTS.iter().any(|f| text.starts_with(f)),
                "{plugin}: {text}"
            );
            hints.push(text);
        }
        assert_eq!(hints[0], hints[1], "{plugin}: one next step per check");
    }
}

#[test]
fn every_failure_ends_with_its_next_step() {
    let (cluster, _) = &*CLUSTER;
    let gone = Cluster::start("hints-gone");
    let (socket, port) = (gone.socket_dir.display().to_string(), gone.port);
    drop(gone);
    for (plugin, args, _) in plugins() {
        let plugin = plugin.as_str();
        // Cannot connect: CRITICAL (check_pg_backup --dump-dir never connects;
        // check_pg_log is asked without --log, which it would read anyway).
        if plugin != "check_pg_backup" {
            let connecting: &[&str] = if plugin == "check_pg_log" { &[] } else { &args };
            let out = PluginRun::new(plugin)
                .args(connecting)
                .args(&["-H", &socket, "-p", &port.to_string()])
                .run();
            out.expect("CRITICAL");
            assert!(
                hint(&out).starts_with("is the server up and reachable"),
                "{plugin}"
            );
        }

        // Bad input: UNKNOWN.
        let out = run(plugin, &[args.as_slice(), &["-t", "x"]].concat());
        out.expect("UNKNOWN");
        assert_eq!(
            hint(&out),
            format!("fix the command line; {plugin} --help lists every option")
        );
    }
    // A role without pg_monitor, where the check needs it: UNKNOWN.
    for plugin in [
        "check_pg_connections",
        "check_pg_long_running",
        "check_pg_locks",
    ] {
        let out = cluster.plugin_as(plugin, PLAIN).run();
        out.expect("UNKNOWN");
        assert!(
            hint(&out).starts_with("grant the monitoring role what the message names"),
            "{plugin}: {}",
            out.stdout
        );
    }
}

#[test]
fn settings_findings_end_with_its_next_step() {
    // No thresholds: a value other than expected warns, fsync off is critical.
    for (args, state) in [
        (
            vec![
                "--ignore",
                "fsync",
                "--ignore",
                "full_page_writes",
                "--expect",
                "work_mem=1kB",
            ],
            "WARNING",
        ),
        (vec![], "CRITICAL"),
    ] {
        let out = run("check_pg_settings", &args);
        out.expect(state);
        assert!(
            hint(&out).starts_with("compare with SELECT name, setting"),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn a_combined_run_gives_the_hints_of_its_alerts() {
    let out = run(
        "check_pg_health",
        &[
            "--check",
            "locks -w @0:",
            "--check",
            "alive",
            "--check",
            "query --query 'SELECT 1/0'",
            "--runbook-url",
            RUNBOOK,
        ],
    );
    out.expect("UNKNOWN");
    let hint = hint(&out);
    assert!(hint.starts_with("[query] read the server log"), "{hint}");
    assert!(
        hint.contains(
            " (runbook: https://runbooks.example.com/pg/query/unknown) [locks] find the blocker"
        ),
        "{hint}"
    );
    assert!(
        hint.ends_with(" (runbook: https://runbooks.example.com/pg/locks/warning)"),
        "{hint}"
    );
}
