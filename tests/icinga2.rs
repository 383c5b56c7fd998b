//! packaging/icinga2 with a real Icinga2: the CheckCommands and the example
//! validate, and a running daemon checking a real cluster through them
//! records the states and perfdata the plugins print.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::daemon::{
    icinga2_constants, packaged_file, perfdata_writer, perfdata_writer_records, repo_path,
    sandbox_copy, sandbox_dir, sandbox_plugins, wait_until, Daemon, LineSink,
};
use harness::{generated_password, parse_perfdata, temp_dir, Cluster, ClusterOptions, PluginRun};

fn icinga2(dir: &Path) -> Command {
    harness::daemon::icinga2(dir, &dir.join("icinga2.conf"))
}

/// The top of every sandbox configuration: the Template Library with
/// PluginDir at the freshly built plugins, and our CheckCommands.
fn preamble(dir: &Path) -> String {
    format!(
        "{}include <itl>\ninclude <plugins>\ninclude \"{}\"\n",
        icinga2_constants(&sandbox_plugins(dir)),
        packaged_file(
            dir,
            "usr/share/icinga2/include/plugins-contrib.d/pgvigil.conf"
        )
        .display(),
    )
}

/// The packaged example, written by hand, completed by `pgvigil
/// --icinga2-example` for the checks it leaves out: from a host alone, one
/// service per check, each from the example its --help gives.
#[test]
fn a_generated_service_for_every_check_validates() {
    let dir = temp_dir("icinga2-generated");
    let hand = dir.join("host.conf");
    fs::write(
        &hand,
        "object Host \"db1\" {\n\tcheck_command = \"dummy\"\n\taddress = \"192.0.2.10\"\n\tvars.postgres = true\n}\n",
    )
    .unwrap();
    let out = Command::new(harness::plugin::pgvigil())
        .arg("--icinga2-example")
        .arg(&hand)
        .output()
        .unwrap();
    assert!(out.status.success());
    let example = dir.join("example.conf");
    fs::write(&example, &out.stdout).unwrap();
    let conf = format!("{}include \"{}\"\n", preamble(&dir), example.display());
    fs::write(dir.join("icinga2.conf"), conf).unwrap();
    let out = icinga2(&dir).arg("-C").output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "icinga2 -C failed:\n{log}");
    let checks = harness::plugin::names().len();
    assert!(
        log.contains(&format!("Instantiated {checks} Services.")),
        "{checks} services expected:\n{log}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn check_commands_and_example_validate() {
    let dir = temp_dir("icinga2-validate");
    let preamble = preamble(&dir);
    let conf = format!(
        "{}const PgvigilPassword = \"{}\"\ninclude \"{}\"\n",
        preamble,
        generated_password(),
        sandbox_copy(&dir, "packaging/icinga2/pgvigil-example.conf").display()
    );
    fs::write(dir.join("icinga2.conf"), conf).unwrap();
    let out = icinga2(&dir).arg("-C").output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "icinga2 -C failed:\n{log}");
    // Every apply rule of the example makes a service on its host, but for
    // those that need an agent endpoint (disk, log, dumps), which it lacks.
    let example = fs::read_to_string(repo_path("packaging/icinga2/pgvigil-example.conf")).unwrap();
    let services = example.matches("apply Service ").count()
        - example
            .matches("assign where host.vars.postgres && host.vars.agent_endpoint")
            .count();
    assert!(
        log.contains(&format!("Instantiated {services} Services.")),
        "{services} services expected:\n{log}"
    );
    assert!(log.contains("Instantiated 1 Host."), "{log}");

    // And a service that names an option the commands lack does not pass.
    fs::write(
        dir.join("icinga2.conf"),
        format!(
            "{}object Host \"h\" {{ check_command = \"dummy\" }}\n\
             object Service \"s\" {{ host_name = \"h\"; check_command = \"pgvigil_nonesuch\" }}\n",
            preamble
        ),
    )
    .unwrap();
    let out = icinga2(&dir).arg("-C").output().unwrap();
    assert!(!out.status.success());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_ha_example_validates_with_every_service_on_every_node() {
    let dir = temp_dir("icinga2-ha");
    let conf = format!(
        "{}const PgvigilPassword = \"{}\"\ninclude \"{}\"\n",
        preamble(&dir),
        generated_password(),
        sandbox_copy(&dir, "packaging/icinga2/pgvigil-ha-example.conf").display()
    );
    fs::write(dir.join("icinga2.conf"), conf).unwrap();
    let out = icinga2(&dir).arg("-C").output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "icinga2 -C failed:\n{log}");
    let example =
        fs::read_to_string(repo_path("packaging/icinga2/pgvigil-ha-example.conf")).unwrap();
    let services = example.matches("apply Service ").count() * 3;
    assert!(log.contains("Instantiated 3 Hosts."), "{log}");
    assert!(
        log.contains(&format!("Instantiated {services} Services.")),
        "{services} services expected:\n{log}"
    );
    let _ = fs::remove_dir_all(&dir);
}

/// One service of the end-to-end run: its CheckCommand, variables, and the
/// same plugin run by hand.
struct Case {
    service: &'static str,
    command: &'static str,
    vars: &'static [(&'static str, &'static str)],
    state: &'static str,
}

const CASES: &[Case] = &[
    Case {
        service: "alive",
        command: "pgvigil_alive",
        vars: &[("pgvigil_warning", "2s"), ("pgvigil_critical", "8s")],
        state: "OK",
    },
    Case {
        service: "connections",
        command: "pgvigil_connections",
        vars: &[],
        state: "OK",
    },
    // At least the plugin's own session is there, so more than 0 warns.
    Case {
        service: "connections-warning",
        command: "pgvigil_connections",
        vars: &[("pgvigil_warning", "0"), ("pgvigil_critical", "90%")],
        state: "WARNING",
    },
    Case {
        service: "replication-lag",
        command: "pgvigil_replication_lag",
        vars: &[
            ("pgvigil_warning", "16MB,30s"),
            ("pgvigil_critical", "1GB,5min"),
        ],
        state: "OK",
    },
    Case {
        service: "disk",
        command: "pgvigil_disk",
        vars: &[],
        state: "OK",
    },
    Case {
        service: "locks",
        command: "pgvigil_locks",
        vars: &[
            ("pgvigil_warning", "5,30s,50%"),
            ("pgvigil_critical", "20,5min,80%"),
        ],
        state: "OK",
    },
    Case {
        service: "wal",
        command: "pgvigil_wal",
        vars: &[
            ("pgvigil_warning", "100%,rate=1TB"),
            ("pgvigil_critical", "150%"),
        ],
        state: "OK",
    },
    Case {
        service: "long-running",
        command: "pgvigil_long_running",
        vars: &[("pgvigil_warning", "5min"), ("pgvigil_critical", "30min")],
        state: "OK",
    },
    Case {
        service: "archiver-required",
        command: "pgvigil_archiver",
        vars: &[("pgvigil_require_archiving", "true")],
        state: "CRITICAL",
    },
    // Any transaction ID age is over 1: the horizon's holders are listed.
    Case {
        service: "wraparound-warning",
        command: "pgvigil_wraparound",
        vars: &[("pgvigil_warning", "1")],
        state: "WARNING",
    },
    Case {
        service: "replication-slots",
        command: "pgvigil_replication_slots",
        vars: &[("pgvigil_warning", "1GB,1h")],
        state: "OK",
    },
    Case {
        service: "vacuum",
        command: "pgvigil_vacuum",
        vars: &[("pgvigil_all_databases", "true")],
        state: "OK",
    },
    Case {
        service: "bloat",
        command: "pgvigil_bloat",
        vars: &[
            ("pgvigil_all_databases", "true"),
            ("pgvigil_min_size", "10MB"),
        ],
        state: "OK",
    },
    Case {
        service: "indexes",
        command: "pgvigil_indexes",
        vars: &[("pgvigil_all_databases", "true"), ("pgvigil_warning", "5")],
        state: "OK",
    },
    Case {
        service: "deadlocks",
        command: "pgvigil_deadlocks",
        vars: &[],
        state: "OK",
    },
    Case {
        service: "hit-ratio",
        command: "pgvigil_hit_ratio",
        vars: &[("pgvigil_warning", "95:"), ("pgvigil_critical", "90:")],
        state: "OK",
    },
    Case {
        service: "checksums-required",
        command: "pgvigil_checksums",
        vars: &[("pgvigil_require_checksums", "true")],
        state: "WARNING",
    },
    Case {
        service: "db-size-critical",
        command: "pgvigil_db_size",
        vars: &[("pgvigil_critical", "1MB")],
        state: "CRITICAL",
    },
    Case {
        service: "log",
        command: "pgvigil_log",
        vars: &[
            ("pgvigil_log", "/dev/null"),
            ("pgvigil_warning", "errors=5"),
        ],
        state: "OK",
    },
    // The test clusters run with fsync off.
    Case {
        service: "settings",
        command: "pgvigil_settings",
        vars: &[("pgvigil_changed", "true")],
        state: "CRITICAL",
    },
    Case {
        service: "roles",
        command: "pgvigil_roles",
        vars: &[],
        state: "OK",
    },
    // More than 0 sessions warns; the hint links to the runbook.
    Case {
        service: "health-warning",
        command: "pgvigil_health",
        vars: &[
            ("pgvigil_check", "alive;connections -w 0;locks -w 5 -c 20"),
            (
                "pgvigil_runbook_url",
                "https://wiki.example.com/{check}/{state}",
            ),
        ],
        state: "WARNING",
    },
    Case {
        service: "answer-warning",
        command: "pgvigil_query",
        vars: &[
            ("pgvigil_query", "SELECT 42"),
            ("pgvigil_label", "answer"),
            ("pgvigil_warning", "40"),
            ("pgvigil_critical", "50"),
        ],
        state: "WARNING",
    },
    Case {
        service: "answer-critical",
        command: "pgvigil_query",
        vars: &[
            ("pgvigil_query", "SELECT 42"),
            ("pgvigil_label", "answer"),
            ("pgvigil_warning", "10"),
            ("pgvigil_critical", "20"),
        ],
        state: "CRITICAL",
    },
];

/// What a variable's value looks like in the configuration; the health
/// checks, `;`-separated here, are an array of strings.
fn literal(var: &str, value: &str) -> String {
    if var == "pgvigil_check" {
        let items: Vec<String> = value.split(';').map(|c| format!("{c:?}")).collect();
        format!("[ {} ]", items.join(", "))
    } else if value == "true" || value == "false" {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}

/// The same check run by hand, with the arguments the CheckCommand builds.
fn by_hand(case: &Case, cluster: &Cluster, password: &str) -> harness::PluginOutput {
    let binary = case.command.replace("pgvigil_", "check_pg_");
    let mut run = PluginRun::new(&binary);
    let port = cluster.port.to_string();
    run.args(&[
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-d",
        "postgres",
        "-U",
        "pwuser",
    ])
    .env("PGPASSWORD", password);
    for (var, value) in case.vars {
        if *var == "pgvigil_check" {
            for check in value.split(';') {
                run.args(&["--check", check]);
            }
            continue;
        }
        let flag = match *var {
            "pgvigil_warning" => "-w",
            "pgvigil_critical" => "-c",
            "pgvigil_query" => "--query",
            "pgvigil_label" => "--label",
            "pgvigil_require_archiving" => "--require-archiving",
            "pgvigil_all_databases" => "--all-databases",
            "pgvigil_min_size" => "--min-size",
            "pgvigil_require_checksums" => "--require-checksums",
            "pgvigil_log" => "--log",
            "pgvigil_runbook_url" => "--runbook-url",
            "pgvigil_changed" => "--changed",
            other => panic!("no flag for {other}"),
        };
        run.arg(flag);
        if *value != "true" {
            run.arg(value);
        }
    }
    run.run()
}

#[test]
fn running_icinga2_records_what_the_plugins_print() {
    // The daemon starts every service at once: room for all of them
    // besides the sessions the connections checks count.
    let cluster = Cluster::start_with(
        "icinga2",
        ClusterOptions {
            max_connections: 100,
            ..ClusterOptions::default()
        },
    );
    let password = generated_password();
    cluster.execute(&format!(
        "CREATE ROLE pwuser LOGIN PASSWORD '{password}' IN ROLE pg_monitor"
    ));
    let graphite = LineSink::start();
    let dir = temp_dir("icinga2-run");
    let perfdata_dir = sandbox_dir(&dir, "perfdata");

    let mut conf = preamble(&dir);
    conf.push_str(&format!(
        r#"object CheckerComponent "checker" {{ }}
object FileLogger "log" {{
	path = "{log}"
	severity = "information"
}}
{writer}object GraphiteWriter "graphite" {{
	host = "127.0.0.1"
	port = {graphite}
	enable_send_thresholds = true
}}
object Host "pg" {{
	check_command = "dummy"
	address = "127.0.0.1"
	vars.pgvigil_port = {port}
	vars.pgvigil_dbname = "postgres"
	vars.pgvigil_username = "pwuser"
	vars.pgvigil_password = "{password}"
}}
"#,
        log = dir.join("icinga2.log").display(),
        writer = perfdata_writer(
            &perfdata_dir,
            &[
                ("SERVICEDESC", "service.name"),
                ("SERVICESTATE", "service.state"),
                ("SERVICEPERFDATA", "service.perfdata"),
            ],
        ),
        graphite = graphite.port,
        port = cluster.port,
    ));
    for case in CASES {
        conf.push_str(&format!(
            "object Service \"{}\" {{\n\thost_name = \"pg\"\n\tcheck_command = \"{}\"\n\tcheck_interval = 2s\n\tretry_interval = 2s\n",
            case.service, case.command
        ));
        for (var, value) in case.vars {
            conf.push_str(&format!("\tvars.{var} = {}\n", literal(var, value)));
        }
        conf.push_str("}\n");
    }
    // The connection from a service file: the CheckCommand then leaves the
    // host's address out (a -H here would fail), and the file names the server.
    let services = sandbox_dir(&dir, "services");
    let service_file = services.join("pg_service.conf");
    fs::write(
        &service_file,
        format!(
            "[pgvigil-test]\nhost=127.0.0.1\nport={}\ndbname=postgres\n",
            cluster.port
        ),
    )
    .unwrap();
    fs::set_permissions(
        &service_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    conf.push_str(&format!(
        "object Service \"by-service\" {{\n\thost_name = \"pg\"\n\tcheck_command = \"pgvigil_alive\"\n\
         \tcheck_interval = 2s\n\tvars.pgvigil_service = \"pgvigil-test\"\n\
         \tvars.pgvigil_host = \"/nonexistent\"\n\tvars.pgvigil_dbname = \"servicefile={}\"\n}}\n",
        service_file.display()
    ));
    fs::write(dir.join("icinga2.conf"), conf).unwrap();

    let mut daemon = Daemon::spawn(&mut icinga2(&dir));
    // Every service's first result, as the PerfdataWriter wrote it.
    let recorded = wait_until(
        Duration::from_secs(60),
        "a result for every service",
        || {
            assert!(daemon.is_running(), "icinga2 exited:\n{}", log(&dir));
            let records = perfdata_records(&perfdata_dir);
            (records.len() == CASES.len() + 1).then_some(records)
        },
    );
    // Graphite gets the perfdata as Icinga2 itself parsed it.
    let metrics = wait_until(Duration::from_secs(30), "graphite metrics", || {
        let metrics = graphite_metrics(&graphite.lines());
        CASES
            .iter()
            .all(|c| {
                metrics
                    .keys()
                    .any(|k| k.starts_with(&format!("icinga2.pg.services.{}.", c.service)))
            })
            .then_some(metrics)
    });
    daemon.assert_unprivileged();
    drop(daemon);

    for case in CASES {
        let (state, perfdata) = &recorded[case.service];
        // Shown with --nocapture: what Icinga2 itself recorded and parsed.
        println!("{}: {state} | {perfdata}", case.service);
        let parsed = format!("icinga2.pg.services.{}.", case.service);
        for (metric, value) in metrics.range(parsed.clone()..) {
            if !metric.starts_with(&parsed) {
                break;
            }
            println!("    {metric} {value}");
        }
        let printed = by_hand(case, &cluster, &password);
        assert_eq!(
            state, case.state,
            "{}: state Icinga2 recorded",
            case.service
        );
        printed.expect(case.state);
        // The perfdata Icinga2 kept has the plugin's labels, units and thresholds.
        let kept = parse_perfdata(perfdata);
        let printed = printed.perfdata();
        let shape = |p: &BTreeMap<String, harness::PerfValue>| {
            p.iter()
                .map(|(l, v)| {
                    (
                        l.clone(),
                        v.uom.clone(),
                        v.warn.clone(),
                        v.crit.clone(),
                        v.min.clone(),
                        v.max.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&kept), shape(&printed), "{}", case.service);
        // And every item was parsed by Icinga2 into a metric, thresholds included.
        let prefix = format!(
            "icinga2.pg.services.{}.{}.perfdata.",
            case.service, case.command
        );
        for (label, value) in &kept {
            let metric = |field: &str| {
                metrics
                    .get(&format!("{prefix}{}.{field}", graphite_escape(label)))
                    .copied()
                    .unwrap_or_else(|| {
                        panic!(
                            "no {field} metric for {}/{label}: {metrics:?}",
                            case.service
                        )
                    })
            };
            // Graphite may have missed the first result while connecting, so
            // values that move between runs are only checked to be there.
            if ["pgvigil_query", "pgvigil_archiver"].contains(&case.command) {
                assert_eq!(metric("value"), value.value, "{}/{label}", case.service);
            } else {
                metric("value");
            }
            if !value.warn.is_empty() {
                assert_eq!(metric("warn"), value.warn.parse::<f64>().unwrap());
            }
            if !value.crit.is_empty() {
                assert_eq!(metric("crit"), value.crit.parse::<f64>().unwrap());
            }
        }
    }
    let (state, perfdata) = &recorded["by-service"];
    assert_eq!(state, "OK", "the service-file service: {perfdata}");
    assert!(perfdata.contains("time="), "{perfdata}");
    // The query services are deterministic: the values themselves match.
    assert_eq!(
        parse_perfdata(&recorded["answer-warning"].1)["answer"].value,
        42.0
    );
    let log = log(&dir);
    assert!(!log.contains("invalid perfdata"), "{log}");
    let _ = fs::remove_dir_all(&dir);
}

fn log(dir: &Path) -> String {
    fs::read_to_string(dir.join("icinga2.log")).unwrap_or_default()
}

/// The first record per service in the PerfdataWriter's rotated files:
/// service name to (state, perfdata).
fn perfdata_records(dir: &Path) -> BTreeMap<String, (String, String)> {
    let mut records = BTreeMap::new();
    for record in perfdata_writer_records(dir) {
        let field = |key: &str| record.get(key).cloned().unwrap_or_default();
        records
            .entry(field("SERVICEDESC"))
            .or_insert_with(|| (field("SERVICESTATE"), field("SERVICEPERFDATA")));
    }
    records.remove("");
    records
}

/// Carbon plaintext lines (`path value timestamp`): the first value per
/// path, from the same (first) check result as the perfdata record.
fn graphite_metrics(lines: &[String]) -> BTreeMap<String, f64> {
    let mut metrics = BTreeMap::new();
    for line in lines {
        let mut words = line.split_whitespace();
        if let (Some(path), Some(Ok(value))) = (words.next(), words.next().map(str::parse)) {
            metrics.entry(path.to_string()).or_insert(value);
        }
    }
    metrics
}

/// How Icinga2's GraphiteWriter writes a label into a metric path.
fn graphite_escape(label: &str) -> String {
    // check_pg_health's `check::label` becomes a level of the metric path.
    label
        .split("::")
        .map(graphite_escape_part)
        .collect::<Vec<_>>()
        .join(".")
}

fn graphite_escape_part(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The shipped EventCommand end to end: the connections service turns HARD
/// CRITICAL on idle sessions, Icinga2 runs handle_pg_connections, the idle
/// sessions are gone and the service recovers, all read back from Icinga2's log.
#[test]
fn the_event_handler_clears_idle_sessions_and_the_service_recovers() {
    let cluster = Cluster::start_with(
        "icinga2-handler",
        ClusterOptions {
            max_connections: 20,
            ..ClusterOptions::default()
        },
    );
    cluster.execute(
        "CREATE ROLE app LOGIN; CREATE ROLE handler LOGIN IN ROLE pg_monitor, pg_signal_backend",
    );
    // 14 idle sessions of 17 usable slots: over 75%.
    let idle: Vec<postgres::Client> = (0..14).map(|_| cluster.client_as("app")).collect();
    std::thread::sleep(Duration::from_millis(1200));

    let dir = temp_dir("icinga2-handler");
    let mut conf = preamble(&dir);
    conf.push_str(&format!(
        r#"object CheckerComponent "checker" {{ }}
object FileLogger "log" {{
	path = "{log}"
	severity = "debug"
}}
object Host "pg" {{
	check_command = "dummy"
	address = "127.0.0.1"
	vars.pgvigil_port = {port}
	vars.pgvigil_dbname = "postgres"
	vars.pgvigil_username = "handler"
}}
object Service "connections" {{
	host_name = "pg"
	check_command = "pgvigil_connections"
	check_interval = 1s
	retry_interval = 1s
	max_check_attempts = 2
	vars.pgvigil_warning = "50%"
	vars.pgvigil_critical = "75%"
	event_command = "pgvigil_handle_connections"
	vars.pgvigil_handle_idle_for = "1s"
	vars.pgvigil_handle_execute = true
}}
"#,
        log = dir.join("icinga2.log").display(),
        port = cluster.port,
    ));
    fs::write(dir.join("icinga2.conf"), conf).unwrap();

    let mut daemon = Daemon::spawn(&mut icinga2(&dir));
    let recovered = wait_until(Duration::from_secs(60), "the service to recover", || {
        assert!(daemon.is_running(), "icinga2 exited:\n{}", log(&dir));
        let log = log(&dir);
        let critical = log.find("'pg!connections' hard state change from UNKNOWN to CRITICAL")?;
        log[critical..]
            .contains("'pg!connections' hard state change from CRITICAL to OK")
            .then_some(log)
    });
    daemon.assert_unprivileged();
    drop(daemon);
    // Shown with --nocapture: the state changes and the handler's runs.
    let lines: Vec<&str> = recovered
        .lines()
        .filter(|l| {
            l.contains("'pg!connections' hard state change")
                || l.contains("Executing event handler")
                || (l.contains("handle_pg_connections") && l.contains("terminated with exit code"))
        })
        .collect();
    for line in &lines {
        println!("{line}");
    }
    // The handler acted on the HARD CRITICAL and succeeded, before the recovery.
    let acted = lines
        .iter()
        .position(|l| {
            l.contains("'--execute'")
                && l.contains("'--state' 'CRITICAL' '--state-type' 'HARD'")
                && l.ends_with("terminated with exit code 0")
        })
        .unwrap_or_else(|| panic!("no successful handler run:\n{}", lines.join("\n")));
    let recovery = lines
        .iter()
        .position(|l| l.contains("hard state change from CRITICAL to OK"))
        .unwrap();
    assert!(acted < recovery, "{}", lines.join("\n"));
    cluster.wait_for(
        "SELECT count(*) = 0 FROM pg_stat_activity WHERE usename = 'app'",
        "the idle sessions to be gone",
    );
    drop(idle);
    let _ = fs::remove_dir_all(&dir);
}
