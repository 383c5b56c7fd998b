//! What every plugin shares: connection failures, authentication, timeouts,
//! bad arguments, help. Each is checked on every plugin where it applies.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use harness::{generated_password, Cluster, PluginRun, PLAIN};
use once_cell::sync::Lazy;

/// Every plugin, as the registry names them.
static PLUGINS: Lazy<Vec<&'static str>> = Lazy::new(|| {
    harness::plugin::names()
        .into_iter()
        .map(|n| &*Box::leak(n.into_boxed_str()))
        .collect()
});

/// check_pg_pgbouncer talks to PgBouncer's console and check_pg_patroni to
/// Patroni's REST API, not to the server (tests/pgbouncer.rs and
/// tests/patroni.rs run them against the real ones).
fn server_plugins() -> impl Iterator<Item = &'static str> {
    PLUGINS
        .iter()
        .copied()
        .filter(|p| !["check_pg_pgbouncer", "check_pg_patroni"].contains(p))
}

/// A directory with a fresh dump, for check_pg_backup --dump-dir.
static DUMPS: Lazy<&'static str> = Lazy::new(|| {
    let dir = harness::temp_dir("behaviour-dumps");
    std::fs::write(dir.join("app.sql"), "-- a dump\n").unwrap();
    Box::leak(dir.display().to_string().into_boxed_str())
});

/// The arguments a plugin needs to run at all.
fn base_args(plugin: &str) -> Vec<&'static str> {
    match plugin {
        "check_pg_query" => vec!["--query", "SELECT 1"],
        "check_pg_log" => vec!["--log", "/dev/null"],
        // The test clusters run with fsync and full_page_writes off.
        "check_pg_settings" => vec!["--ignore", "fsync", "--ignore", "full_page_writes"],
        "check_pg_backup" => vec!["--dump-dir", *DUMPS],
        _ => vec![],
    }
}

fn display(plugin: &str) -> String {
    format!(
        "PG_{}",
        plugin.trim_start_matches("check_pg_").to_uppercase()
    )
}

static CLUSTER: Lazy<Cluster> = Lazy::new(|| Cluster::start("behaviour"));

#[test]
fn every_plugin_is_ok_as_a_pg_monitor_only_role() {
    for plugin in server_plugins() {
        let out = CLUSTER.plugin(plugin).args(&base_args(plugin)).run();
        out.expect("OK");
        assert!(out
            .status_line()
            .starts_with(&format!("{} OK - ", display(plugin))));
        assert!(!out.perfdata().is_empty(), "{plugin} prints perfdata");
    }
}

#[test]
fn without_pg_monitor_each_check_names_the_missing_grant() {
    // What each check needs pg_monitor for, as the server or the check says it.
    for (plugin, needs) in [
        ("check_pg_connections", "cannot see other roles' sessions"),
        (
            "check_pg_replication_lag",
            "cannot see other roles' sessions",
        ),
        ("check_pg_disk", "data_directory"),
        ("check_pg_locks", "cannot see other roles' sessions"),
        ("check_pg_long_running", "cannot see other roles' sessions"),
        (
            "check_pg_archiver",
            "permission denied for function pg_ls_archive_statusdir",
        ),
    ] {
        let out = CLUSTER.plugin(plugin).env("PGUSER", PLAIN).run();
        out.expect("UNKNOWN");
        let summary = out.summary();
        assert!(summary.contains(needs), "{plugin}: {summary}");
        assert!(
            summary.contains("needs the pg_monitor role (GRANT pg_monitor TO \"plain\")"),
            "{plugin}: {summary}"
        );
    }
}

#[test]
fn refused_connection_is_critical_with_the_reason() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    // check_pg_backup --dump-dir reads files only and never connects;
    // check_pg_patroni asks Patroni, whose refusal tests/patroni.rs sees.
    for plugin in PLUGINS
        .iter()
        .copied()
        .filter(|p| !["check_pg_backup", "check_pg_patroni"].contains(p))
    {
        // check_pg_log given --log reads it while the server is down
        // (tests/log.rs); knowing no log, it has only the connection error.
        let args = if plugin == "check_pg_log" {
            Vec::new()
        } else {
            base_args(plugin)
        };
        let out = PluginRun::new(plugin)
            .args(&["-H", "127.0.0.1", "-p", &port.to_string(), "-U", "monitor"])
            .args(&args)
            .run();
        out.expect("CRITICAL");
        assert_eq!(
            out.summary(),
            format!("cannot connect to 127.0.0.1:{port}: connection refused (is the server running and accepting connections there?)"),
        );
    }
}

#[test]
fn missing_socket_and_missing_database_are_critical() {
    let out = PluginRun::new("check_pg_locks")
        .args(&["-H", "/nonexistent", "-p", "5999", "-U", "monitor"])
        .run();
    out.expect("CRITICAL");
    assert_eq!(
        out.summary(),
        "cannot connect to socket /nonexistent/.s.PGSQL.5999: no such socket (is the server running locally on this port?)"
    );
    let out = CLUSTER
        .plugin("check_pg_locks")
        .args(&["-d", "nosuchdb"])
        .run();
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .ends_with(": database \"nosuchdb\" does not exist"),
        "{}",
        out.summary()
    );
    let out = CLUSTER
        .plugin("check_pg_locks")
        .args(&["-U", "nosuchrole"])
        .run();
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .ends_with(": role \"nosuchrole\" does not exist"),
        "{}",
        out.summary()
    );
}

#[test]
fn password_authentication_from_every_source() {
    let password = generated_password();
    CLUSTER.execute(&format!(
        "DROP ROLE IF EXISTS pwuser; CREATE ROLE pwuser LOGIN PASSWORD '{password}' IN ROLE pg_monitor"
    ));
    let tcp = |run: &mut PluginRun| {
        run.args(&["-H", "127.0.0.1", "-U", "pwuser"])
            .env_remove("PGHOST");
    };
    let dir = std::env::temp_dir().join(format!("pgvigil-pw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // No password anywhere.
    let mut run = CLUSTER.plugin("check_pg_locks");
    tcp(&mut run);
    let out = run.run();
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .contains("the server asks for a password and none was given"),
        "{}",
        out.summary()
    );

    // Wrong password.
    let mut run = CLUSTER.plugin("check_pg_locks");
    tcp(&mut run);
    let out = run.env("PGPASSWORD", "wrong").run();
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .ends_with("password authentication failed for user \"pwuser\""),
        "{}",
        out.summary()
    );

    // PGPASSWORD, a PGPASSFILE in .pgpass format, and --password-file.
    let mut run = CLUSTER.plugin("check_pg_locks");
    tcp(&mut run);
    let out = run.env("PGPASSWORD", &password).run();
    out.expect("OK");
    assert!(!out.stdout.contains(&password));

    let pgpass = dir.join("pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{}:*:pwuser:{password}\n", CLUSTER.port),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut run = CLUSTER.plugin("check_pg_locks");
    tcp(&mut run);
    run.env("PGPASSFILE", pgpass.to_str().unwrap())
        .run()
        .expect("OK");

    // ~/.pgpass, as libpq finds it through HOME.
    std::fs::copy(&pgpass, dir.join(".pgpass")).unwrap();
    std::fs::set_permissions(dir.join(".pgpass"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut run = CLUSTER.plugin("check_pg_locks");
    tcp(&mut run);
    run.env("HOME", dir.to_str().unwrap()).run().expect("OK");

    let file = dir.join("password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    let mut run = CLUSTER.plugin("check_pg_locks");
    tcp(&mut run);
    run.args(&["--password-file", file.to_str().unwrap()])
        .run()
        .expect("OK");

    std::fs::remove_dir_all(&dir).unwrap();
}

const TIMEOUT_HINT: &str = "hint: the server did not answer within 3 s: look at its load and at sessions waiting on locks (check_pg_locks, pg_stat_activity); raise -t if the check is slow by nature";

#[test]
fn timeout_while_querying_cancels_the_query_on_the_server() {
    // -t 3, not 1: the budget includes the connect, which a loaded machine
    // (CI runs three test binaries at once) once stretched past 1 s, so the
    // watchdog fired while connecting. The query still outlasts it tenfold.
    let out = CLUSTER
        .plugin("check_pg_query")
        .args(&["-t", "3", "--query", "SELECT 1 FROM pg_sleep(30)"])
        .run();
    out.expect("UNKNOWN");
    assert_eq!(
        out.stdout,
        format!("PG_QUERY UNKNOWN - timed out after 3 s (while running query)\n{TIMEOUT_HINT}\n")
    );
    // statement_timeout, set at connect, stops the query on the server too.
    CLUSTER.wait_for(
        "SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)' AND application_name = 'check_pg_query'",
        "the server to cancel the query",
    );
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn bad_arguments_are_unknown_with_a_clear_line() {
    for plugin in PLUGINS.iter().copied() {
        let name = display(plugin);
        let mut cases: Vec<(&[&str], String)> = vec![
            (&["-w", "2:1"], format!("{name} UNKNOWN - invalid -w/--warning '2:1': start 2 is greater than end 1 (see {plugin} --help)")),
            (&["-c", "abc"], format!("{name} UNKNOWN - invalid -c/--critical 'abc': 'abc' is not a number (see {plugin} --help)")),
            (&["-w", "10XB"], format!("{name} UNKNOWN - invalid -w/--warning '10XB': unknown unit 'XB' in '10XB' (known: % B kB MB GB TB ms s min h d) (see {plugin} --help)")),
            (&["-t", "0"], format!("{name} UNKNOWN - invalid -t/--timeout '0': seconds must be a whole number above 0 (see {plugin} --help)")),
            (&["--no-such-option"], format!("{name} UNKNOWN - unexpected argument '--no-such-option' found (see --help)")),
        ];
        if harness::plugin::takes_no_thresholds(plugin) {
            cases.retain(|(args, _)| !["-w", "-c"].contains(&args[0]));
            cases.push((&["-w", "5"], format!("{name} UNKNOWN - invalid -w/--warning '5': this check takes no thresholds of its own (see {plugin} --help)")));
        }
        if plugin == "check_pg_health" {
            cases.push((&["--check", "connections -w 2:1"], format!("{name} UNKNOWN - --check 'connections -w 2:1': invalid -w/--warning '2:1': start 2 is greater than end 1 (see {plugin} --help)")));
        }
        for (args, expected) in cases {
            let out = PluginRun::new(plugin)
                .args(&base_args(plugin))
                .args(args)
                .run();
            out.expect("UNKNOWN");
            let lines: Vec<&str> = out.stdout.lines().collect();
            assert_eq!(lines[0], expected, "{plugin} {args:?}");
            // The next step is the only other line.
            assert_eq!(
                lines[1..],
                [format!(
                    "hint: fix the command line; {plugin} --help lists every option"
                )],
                "{plugin} {args:?}"
            );
        }
    }
    let out = PluginRun::new("check_pg_query").run();
    out.expect("UNKNOWN");
    assert!(out.summary().contains("--query <SQL>"), "{}", out.summary());
}

/// Nagios commands pass `-w '$ARG1$'` even when a service gives no ARG1.
#[test]
fn empty_ranges_are_the_same_as_none() {
    for plugin in server_plugins() {
        // Each run a first run for the checks that compare runs, so that
        // both print the same labels.
        let fresh = || harness::temp_dir("empty-ranges-state");
        let plain = CLUSTER
            .plugin(plugin)
            .env("PGVIGIL_STATE_DIR", fresh().to_str().unwrap())
            .args(&base_args(plugin))
            .run();
        let empty = CLUSTER
            .plugin(plugin)
            .env("PGVIGIL_STATE_DIR", fresh().to_str().unwrap())
            .args(&base_args(plugin))
            .args(&["-w", "", "-c", ""])
            .run();
        empty.expect("OK");
        let thresholds = |out: &harness::PluginOutput| {
            out.perfdata()
                .into_iter()
                .map(|(label, p)| (label, p.warn, p.crit))
                .collect::<Vec<_>>()
        };
        assert_eq!(thresholds(&empty), thresholds(&plain), "{plugin}");
    }
}

#[test]
fn help_and_version() {
    for plugin in PLUGINS.iter().copied() {
        let out = PluginRun::new(plugin).arg("--help").run();
        assert_eq!(out.code, 0);
        for needle in [
            "-w, --warning",
            "-c, --critical",
            "-t, --timeout",
            "[default: 10]",
            "-H, --host",
            "THRESHOLD RANGES",
            "@10:20",
            "PGPASSFILE",
            "EXIT STATUS",
        ] {
            assert!(
                out.stdout.contains(needle),
                "{plugin} --help lacks {needle}"
            );
        }
        let out = PluginRun::new(plugin).arg("-V").run();
        assert_eq!(out.code, 0);
        assert_eq!(
            out.stdout,
            format!("{plugin} {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn a_session_the_server_ends_mid_check_is_critical() {
    let out = CLUSTER
        .plugin("check_pg_query")
        .args(&[
            "--query",
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pg_backend_pid())) t",
        ])
        .run();
    // The reason is the server's FATAL, or the closed socket when the
    // driver notices that first.
    out.expect_lost_connection();
    assert!(out.hint().unwrap().starts_with("is the server up"));
}

#[test]
fn without_a_database_the_plugins_use_postgres() {
    // A role made as the README says has no database of its own.
    let out = CLUSTER
        .plugin("check_pg_query")
        .env_remove("PGDATABASE")
        .args(&["--query", "SELECT (current_database() = 'postgres')::int"])
        .run();
    out.expect("OK");
    assert_eq!(out.summary(), "result is 1");
}

#[test]
fn a_password_never_reaches_any_output() {
    let cluster = Cluster::start("behaviour-marked");
    let password = generated_password();
    cluster.execute(&format!(
        "CREATE ROLE marked LOGIN PASSWORD '{password}' IN ROLE pg_monitor"
    ));
    // The role must give its password over TCP: first line of pg_hba.conf.
    let hba = cluster.data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all marked 127.0.0.1/32 scram-sha-256\n{rules}"),
    )
    .unwrap();
    cluster.execute("SELECT pg_reload_conf()");
    let wrong = format!("{password}x");
    for plugin in [
        "check_pg_alive",
        "check_pg_connections",
        "check_pg_settings",
        "check_pg_health",
    ] {
        for format in ["nagios", "json", "openmetrics"] {
            for (given, state) in [(&password, None), (&wrong, Some("CRITICAL"))] {
                let out = cluster
                    .plugin(plugin)
                    .env_remove("PGHOST")
                    .env("PGPASSWORD", given)
                    .args(&["-H", "127.0.0.1", "-U", "marked", "-v", "-v"])
                    .args(&["--format", format, "-t", "5"])
                    .run();
                match state {
                    Some(state) => {
                        assert_eq!(out.code, 2, "{plugin} {format}: {state}: {}", out.stdout)
                    }
                    // The right password logs in (the output is then the check's).
                    None => assert!(
                        !out.stdout.contains("authentication failed"),
                        "{plugin} {format}: {}",
                        out.stdout
                    ),
                }
                for text in [&out.stdout, &out.stderr] {
                    assert!(
                        !text.contains(password.as_str()),
                        "{plugin} {format} printed the password"
                    );
                }
            }
        }
    }
}
