//! packaging/nagios with a real Nagios 4: the commands and the example
//! validate, and a running Nagios checking a real cluster through them
//! records the states, output and perfdata the plugins print.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::daemon::{
    daemon_command, daemon_user, packaged_file, repo_path, require, sandbox_copy, sandbox_dir,
    sandbox_plugins, wait_until, Daemon,
};
use harness::{parse_perfdata, Cluster, ClusterOptions, PluginRun};

/// A sandbox with the directories nagios.cfg points into.
fn sandbox(tag: &str) -> PathBuf {
    let dir = harness::temp_dir(tag);
    sandbox_dir(&dir, "checkresults");
    sandbox_dir(&dir, "archives");
    dir
}

fn nagios4(dir: &Path) -> Command {
    daemon_command(&require("nagios4"), dir)
}

/// nagios.cfg with every path in `dir`, intervals in seconds, Debian's
/// stock templates, our commands, and `objects`.
fn write_config(dir: &Path, objects: &[PathBuf]) -> PathBuf {
    let (user, group) = daemon_user();
    let d = dir.display();
    let mut cfg = format!(
        "log_file={d}/nagios.log\n\
         object_cache_file={d}/objects.cache\n\
         precached_object_file={d}/objects.precache\n\
         resource_file={d}/resource.cfg\n\
         status_file={d}/status.dat\n\
         status_update_interval=1\n\
         nagios_user={user}\n\
         nagios_group={group}\n\
         check_external_commands=0\n\
         command_file={d}/nagios.cmd\n\
         lock_file={d}/nagios.lock\n\
         temp_file={d}/nagios.tmp\n\
         temp_path={d}\n\
         check_result_path={d}/checkresults\n\
         query_socket={d}/nagios.qh\n\
         retain_state_information=0\n\
         state_retention_file={d}/retention.dat\n\
         debug_file={d}/debug.log\n\
         log_archive_path={d}/archives\n\
         interval_length=1\n\
         service_inter_check_delay_method=n\n\
         host_inter_check_delay_method=n\n\
         enable_notifications=0\n\
         process_performance_data=1\n\
         service_perfdata_file={d}/service-perfdata\n\
         service_perfdata_file_template=$SERVICEDESC$\\t$SERVICESTATE$\\t$SERVICEPERFDATA$\n\
         service_perfdata_file_mode=a\n\
         service_perfdata_file_processing_interval=0\n"
    );
    for stock in ["templates", "timeperiods", "contacts", "commands"] {
        cfg.push_str(&format!("cfg_file=/etc/nagios4/objects/{stock}.cfg\n"));
    }
    cfg.push_str(&format!(
        "cfg_file={}\n",
        packaged_file(dir, "etc/nagios-plugins/config/pgvigil.cfg").display()
    ));
    for file in objects {
        cfg.push_str(&format!("cfg_file={}\n", file.display()));
    }
    fs::write(
        dir.join("resource.cfg"),
        format!("$USER1$={}\n", sandbox_plugins(dir).display()),
    )
    .unwrap();
    let path = dir.join("nagios.cfg");
    fs::write(&path, cfg).unwrap();
    path
}

/// A host check command, so that hosts need no plugin of their own.
const HOST_UP: &str =
    "define command {\n\tcommand_name\tcheck-host-alive\n\tcommand_line\t/bin/true\n}\n";

#[test]
fn commands_and_example_validate() {
    let dir = sandbox("nagios-validate");
    let host_up = dir.join("host-up.cfg");
    fs::write(&host_up, HOST_UP).unwrap();
    let cfg = write_config(
        &dir,
        &[
            host_up,
            sandbox_copy(&dir, "packaging/nagios/pgvigil-example.cfg"),
        ],
    );
    let out = nagios4(&dir).arg("-v").arg(&cfg).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "nagios4 -v failed:\n{report}");
    assert!(report.contains("Total Errors:   0"), "{report}");
    // Our commands plus Debian's stock ones; every service the example
    // defines on its host.
    let example = fs::read_to_string(repo_path("packaging/nagios/pgvigil-example.cfg")).unwrap();
    let services =
        example.matches("define service {").count() - example.matches("register\t\t0").count();
    assert!(
        report.contains(&format!("Checked {services} services.")),
        "{services} services expected:\n{report}"
    );

    // A service naming a command we do not define fails validation.
    let broken = dir.join("broken.cfg");
    fs::write(
        &broken,
        "define service {\n\tuse\tgeneric-service\n\thost_name\tdb1\n\tservice_description\tx\n\tcheck_command\tpgvigil_nonesuch\n}\n",
    )
    .unwrap();
    let cfg = write_config(
        &dir,
        &[
            dir.join("host-up.cfg"),
            sandbox_copy(&dir, "packaging/nagios/pgvigil-example.cfg"),
            broken,
        ],
    );
    let out = nagios4(&dir).arg("-v").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let _ = fs::remove_dir_all(&dir);
}

/// From a host alone, `pgvigil --nagios-example` gives one service per
/// check, each from the example its --help gives, and Nagios takes them.
#[test]
fn a_generated_service_for_every_check_validates() {
    let dir = sandbox("nagios-generated");
    let hand = dir.join("host.cfg");
    fs::write(
        &hand,
        format!("{HOST_UP}define host {{\n\tuse\t\t\tgeneric-host\n\thost_name\t\tdb1\n\taddress\t\t\t192.0.2.10\n\tcheck_command\t\tcheck-host-alive\n\tmax_check_attempts\t3\n}}\ndefine service {{\n\tname\t\t\tpgvigil-service\n\tuse\t\t\tgeneric-service\n\tregister\t\t0\n}}\n"),
    )
    .unwrap();
    let out = Command::new(harness::plugin::pgvigil())
        .arg("--nagios-example")
        .arg(&hand)
        .output()
        .unwrap();
    assert!(out.status.success());
    let example = dir.join("example.cfg");
    fs::write(&example, &out.stdout).unwrap();
    let cfg = write_config(&dir, &[example]);
    let out = nagios4(&dir).arg("-v").arg(&cfg).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "nagios4 -v failed:\n{report}");
    let checks = harness::plugin::names().len();
    assert!(
        report.contains(&format!("Checked {checks} services.")),
        "{checks} services expected:\n{report}"
    );
    let _ = fs::remove_dir_all(&dir);
}

/// One service: its check_command line (after the `!`) and expected state.
struct Case {
    service: &'static str,
    command: &'static str,
    args: &'static str,
    state: &'static str,
}

const CASES: &[Case] = &[
    Case {
        service: "alive",
        command: "pgvigil_alive",
        args: "!2s!8s",
        state: "OK",
    },
    Case {
        service: "connections",
        command: "pgvigil_connections",
        args: "!!",
        state: "OK",
    },
    // At least the plugin's own session is there, so more than 0 warns.
    Case {
        service: "connections warning",
        command: "pgvigil_connections",
        args: "!0!90%",
        state: "WARNING",
    },
    Case {
        service: "replication lag",
        command: "pgvigil_replication_lag",
        args: "!16MB,30s!1GB,5min",
        state: "OK",
    },
    Case {
        service: "disk",
        command: "pgvigil_disk",
        args: "!80%!90%",
        state: "OK",
    },
    Case {
        service: "locks",
        command: "pgvigil_locks",
        args: "!5,30s,50%!20,5min,80%",
        state: "OK",
    },
    Case {
        service: "version",
        command: "pgvigil_version",
        args: "!!!--min-version 10.0 --min-version 99.1",
        state: "OK",
    },
    Case {
        service: "long running",
        command: "pgvigil_long_running",
        args: "!5min!30min",
        state: "OK",
    },
    Case {
        service: "archiver required",
        command: "pgvigil_archiver",
        args: "!!!--require-archiving",
        state: "CRITICAL",
    },
    Case {
        service: "wraparound warning",
        command: "pgvigil_wraparound",
        args: "!1!",
        state: "WARNING",
    },
    Case {
        service: "replication slots",
        command: "pgvigil_replication_slots",
        args: "!1GB,1h!10GB,1d",
        state: "OK",
    },
    Case {
        service: "vacuum",
        command: "pgvigil_vacuum",
        args: "!!!--all-databases",
        state: "OK",
    },
    Case {
        service: "bloat",
        command: "pgvigil_bloat",
        args: "!!!--all-databases --min-size 10MB",
        state: "OK",
    },
    Case {
        service: "indexes",
        command: "pgvigil_indexes",
        args: "!5!!--all-databases",
        state: "OK",
    },
    Case {
        service: "deadlocks",
        command: "pgvigil_deadlocks",
        args: "!!",
        state: "OK",
    },
    Case {
        service: "commit ratio",
        command: "pgvigil_commit_ratio",
        args: "!5%!20%",
        state: "OK",
    },
    Case {
        service: "checksums required",
        command: "pgvigil_checksums",
        args: "!!!--require-checksums",
        state: "WARNING",
    },
    Case {
        service: "db size critical",
        command: "pgvigil_db_size",
        args: "!!1MB",
        state: "CRITICAL",
    },
    Case {
        service: "log",
        command: "pgvigil_log",
        args: "!errors=5!!--log /dev/null",
        state: "OK",
    },
    // The test clusters run with fsync off.
    Case {
        service: "settings",
        command: "pgvigil_settings",
        args: "!!!--changed",
        state: "CRITICAL",
    },
    Case {
        service: "roles",
        command: "pgvigil_roles",
        args: "!!",
        state: "OK",
    },
    // More than 0 sessions warns; the hint links to the runbook.
    Case {
        service: "health warning",
        command: "pgvigil_health",
        args: "!!!--check alive --check 'connections -w 0' --check 'locks -w 5 -c 20' --runbook-url https://wiki.example.com/{check}/{state}",
        state: "WARNING",
    },
    Case {
        service: "answer warning",
        command: "pgvigil_query",
        args: "!40!50!--label answer --query \"SELECT 42\"",
        state: "WARNING",
    },
    Case {
        service: "answer critical",
        command: "pgvigil_query",
        args: "!10!20!--label answer --query \"SELECT 42\"",
        state: "CRITICAL",
    },
];

/// The same check run by hand: `-w ARG1 -c ARG2 ARG3` as the command has it.
fn by_hand(case: &Case, cluster: &Cluster) -> harness::PluginOutput {
    let binary = case.command.replace("pgvigil_", "check_pg_");
    let args: Vec<&str> = case.args.split('!').skip(1).collect();
    let port = cluster.port.to_string();
    let mut run = PluginRun::new(&binary);
    run.args(&["-H", "127.0.0.1", "-w", args[0], "-c", args[1]]);
    run.args(&["-p", &port, "-U", harness::MONITOR, "-d", "postgres"]);
    if let Some(more) = args.get(2) {
        if more.contains("--query") {
            run.args(&["--label", "answer", "--query", "SELECT 42"]);
        } else if more.contains("--check") {
            for check in ["alive", "connections -w 0", "locks -w 5 -c 20"] {
                run.args(&["--check", check]);
            }
            run.args(&["--runbook-url", "https://wiki.example.com/{check}/{state}"]);
        } else {
            run.args(&more.split_whitespace().collect::<Vec<_>>());
        }
    }
    run.run()
}

#[test]
fn running_nagios_records_what_the_plugins_print() {
    // The daemon starts every service at once: room for all of them
    // besides the sessions the connections checks count.
    let cluster = Cluster::start_with(
        "nagios",
        ClusterOptions {
            max_connections: 100,
            ..ClusterOptions::default()
        },
    );
    let dir = sandbox("nagios-run");
    let mut objects = format!(
        "{HOST_UP}define host {{\n\tuse\tgeneric-host\n\thost_name\tpg\n\taddress\t127.0.0.1\n\tcheck_command\tcheck-host-alive\n\tmax_check_attempts\t1\n}}\n"
    );
    // Port, user and database go in ARG3, after the thresholds.
    let conn = format!("-p {} -U {} -d postgres", cluster.port, harness::MONITOR);
    for case in CASES {
        let mut args: Vec<String> = case.args.split('!').skip(1).map(String::from).collect();
        args.resize(3, String::new());
        args[2] = format!("{conn} {}", args[2]);
        objects.push_str(&format!(
            "define service {{\n\tuse\tgeneric-service\n\thost_name\tpg\n\tservice_description\t{}\n\
             \tcheck_command\t{}!{}\n\tcheck_interval\t2\n\tretry_interval\t2\n\tmax_check_attempts\t1\n}}\n",
            case.service,
            case.command,
            args.join("!")
        ));
    }
    let objects_file = dir.join("objects.cfg");
    fs::write(&objects_file, objects).unwrap();
    let cfg = write_config(&dir, &[objects_file]);

    let mut daemon = Daemon::spawn(nagios4(&dir).arg(&cfg));
    let status = wait_until(Duration::from_secs(60), "every service checked", || {
        assert!(daemon.is_running(), "nagios4 exited:\n{}", log(&dir));
        let status = service_status(&dir.join("status.dat"));
        let checked = status
            .values()
            .filter(|s| s["has_been_checked"] == "1")
            .count();
        (checked == CASES.len()).then_some(status)
    });
    daemon.assert_unprivileged();
    drop(daemon);
    let perfdata_file = fs::read_to_string(dir.join("service-perfdata")).unwrap_or_default();

    for case in CASES {
        let recorded = &status[case.service];
        // Shown with --nocapture: what Nagios itself recorded.
        println!(
            "{}: current_state={} plugin_output={} performance_data={}",
            case.service,
            recorded["current_state"],
            recorded["plugin_output"],
            recorded["performance_data"]
        );
        let mut printed = by_hand(case, &cluster);
        // A check that compares runs prints its baseline first; Nagios may
        // have run it twice already: compare like with like.
        let baseline = |output: &str| output.contains("baseline saved");
        if baseline(printed.summary()) && !baseline(&recorded["plugin_output"]) {
            printed = by_hand(case, &cluster);
        }
        printed.expect(case.state);
        let code = printed.code.to_string();
        assert_eq!(recorded["current_state"], code, "{}: state", case.service);
        // Nagios keeps the status line up to the `|`. Counts of sessions
        // and bytes move between runs; the query's and archiver's do not.
        let line = printed.status_line().split('|').next().unwrap().trim();
        if ["pgvigil_query", "pgvigil_archiver"].contains(&case.command) {
            assert_eq!(recorded["plugin_output"], line, "{}", case.service);
        } else {
            let head = line.split(" - ").next().unwrap();
            assert!(
                recorded["plugin_output"].starts_with(&format!("{head} - ")),
                "{}",
                recorded["plugin_output"]
            );
        }
        let kept = parse_perfdata(&recorded["performance_data"]);
        let printed = printed.perfdata();
        assert_eq!(
            kept.keys().collect::<Vec<_>>(),
            printed.keys().collect::<Vec<_>>(),
            "{}",
            case.service
        );
        for (label, value) in &kept {
            let mine = &printed[label];
            assert_eq!(
                (&value.uom, &value.warn, &value.crit, &value.min, &value.max),
                (&mine.uom, &mine.warn, &mine.crit, &mine.min, &mine.max),
                "{}/{label}",
                case.service
            );
        }
        // The perfdata file has the same result, state by name.
        let line = perfdata_file
            .lines()
            .find(|l| l.starts_with(&format!("{}\t", case.service)))
            .unwrap_or_else(|| panic!("{} missing from:\n{perfdata_file}", case.service));
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields[1], case.state, "{line}");
    }
    let answer = parse_perfdata(&status["answer warning"]["performance_data"]);
    assert_eq!(answer["answer"].value, 42.0);
    let _ = fs::remove_dir_all(&dir);
}

fn log(dir: &Path) -> String {
    fs::read_to_string(dir.join("nagios.log")).unwrap_or_default()
}

/// status.dat's servicestatus blocks, by service_description.
fn service_status(path: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut services = BTreeMap::new();
    for block in text.split("servicestatus {").skip(1) {
        // The block ends at a line of its own: values may hold `}` (the
        // runbook URL's {check}).
        let block = block.split("\n\t}").next().unwrap();
        let fields: BTreeMap<String, String> = block
            .lines()
            .filter_map(|l| l.trim().split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(name) = fields.get("service_description") {
            services.insert(name.clone(), fields);
        }
    }
    services
}
