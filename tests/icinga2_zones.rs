//! Icinga2 spread over zones, as a large setup runs it: a master and a
//! satellite, two daemons on loopback with certificates from `icinga2 pki`.
//! The master schedules the pgvigil services with `command_endpoint` set to
//! the satellite, which runs the plugins (and keeps the rate checks' state);
//! the results, their perfdata and a stateful check's second run arrive at
//! the master. The plugins need nothing more than on a single node.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use harness::daemon::{
    icinga2, icinga2_cli, icinga2_node_constants, packaged_file, perfdata_writer,
    perfdata_writer_records, sandbox_dir, sandbox_plugins, wait_until, Daemon,
};
use harness::{chown, free_port, parse_perfdata, run_ok, temp_dir, Cluster};

/// The zone tree both nodes share: the satellite's zone is the master's child.
fn zones(master_port: u16) -> String {
    format!(
        r#"object Endpoint "master" {{
	host = "127.0.0.1"
	port = {master_port}
}}
object Endpoint "satellite" {{ }}
object Zone "master" {{
	endpoints = [ "master" ]
}}
object Zone "satellite" {{
	endpoints = [ "satellite" ]
	parent = "master"
}}
"#
    )
}

/// The top of a node's configuration: constants, the Template Library, our
/// CheckCommands, the zones, its API listener (its certificate is where
/// Icinga2 looks: DataDir/certs/NODE.crt, NODE.key and ca.crt).
fn node_config(dir: &Path, node: &str, port: u16, master_port: u16) -> String {
    format!(
        r#"{constants}include <itl>
include <plugins>
include "{commands}"
{zones}object ApiListener "api" {{
	bind_host = "127.0.0.1"
	bind_port = {port}
	accept_commands = true
}}
object FileLogger "log" {{
	path = "{log}"
	severity = "information"
}}
"#,
        constants = icinga2_node_constants(&sandbox_plugins(dir), node),
        commands = packaged_file(
            dir,
            "usr/share/icinga2/include/plugins-contrib.d/pgvigil.conf"
        )
        .display(),
        zones = zones(master_port),
        log = dir.join("icinga2.log").display(),
    )
}

/// Every result the master's PerfdataWriter recorded, per service, in order:
/// (state, output, perfdata, check source).
fn records(dir: &Path) -> BTreeMap<String, Vec<[String; 4]>> {
    let mut records: BTreeMap<String, Vec<[String; 4]>> = BTreeMap::new();
    for record in perfdata_writer_records(dir) {
        let field = |key: &str| record.get(key).cloned().unwrap_or_default();
        records.entry(field("SERVICEDESC")).or_default().push(
            [
                "SERVICESTATE",
                "SERVICEOUTPUT",
                "SERVICEPERFDATA",
                "CHECKSOURCE",
            ]
            .map(field),
        );
    }
    records
}

#[test]
fn a_satellite_runs_the_checks_and_the_master_records_them() {
    let cluster = Cluster::start("icinga2-zones");
    let base = temp_dir("icinga2-zones");
    let master = sandbox_dir(&base, "master");
    let satellite = sandbox_dir(&base, "satellite");
    let (master_port, satellite_port) = (free_port(), free_port());

    // A CA in the master's data directory, and a certificate for each node,
    // made and signed by icinga2 pki as an operator would.
    let pki = sandbox_dir(&base, "pki");
    run_ok(
        &mut icinga2_cli(&master, &["pki", "new-ca"]),
        "icinga2 pki new-ca",
    );
    fs::copy(master.join("lib/ca/ca.crt"), pki.join("ca.crt")).unwrap();
    for node in ["master", "satellite"] {
        let file = |ext: &str| pki.join(format!("{node}.{ext}")).display().to_string();
        run_ok(
            &mut icinga2_cli(
                &master,
                &[
                    "pki",
                    "new-cert",
                    "--cn",
                    node,
                    "--key",
                    &file("key"),
                    "--csr",
                    &file("csr"),
                ],
            ),
            "icinga2 pki new-cert",
        );
        run_ok(
            &mut icinga2_cli(
                &master,
                &[
                    "pki",
                    "sign-csr",
                    "--csr",
                    &file("csr"),
                    "--cert",
                    &file("crt"),
                ],
            ),
            "icinga2 pki sign-csr",
        );
    }
    for (node, dir) in [("master", &master), ("satellite", &satellite)] {
        let certs = sandbox_dir(dir, "lib/certs");
        for (from, to) in [
            (format!("{node}.crt"), format!("{node}.crt")),
            (format!("{node}.key"), format!("{node}.key")),
        ] {
            fs::copy(pki.join(from), certs.join(&to)).unwrap();
            chown(&certs.join(to));
        }
        fs::copy(master.join("lib/ca/ca.crt"), certs.join("ca.crt")).unwrap();
        chown(&certs.join("ca.crt"));
    }

    let perfdata = sandbox_dir(&master, "perfdata");
    let mut conf = node_config(&master, "master", master_port, master_port);
    conf.push_str(&format!(
        r#"object CheckerComponent "checker" {{ }}
{writer}object Host "pg" {{
	zone = "master"
	check_command = "dummy"
	address = "127.0.0.1"
	vars.pgvigil_port = {port}
	vars.pgvigil_dbname = "postgres"
	vars.pgvigil_username = "postgres"
}}
template Service "on-satellite" {{
	zone = "master"
	host_name = "pg"
	command_endpoint = "satellite"
	check_interval = 2s
	retry_interval = 2s
}}
object Service "connections" {{
	import "on-satellite"
	check_command = "pgvigil_connections"
}}
object Service "locks" {{
	import "on-satellite"
	check_command = "pgvigil_locks"
}}
object Service "deadlocks" {{
	import "on-satellite"
	check_command = "pgvigil_deadlocks"
}}
"#,
        writer = perfdata_writer(
            &perfdata,
            &[
                ("SERVICEDESC", "service.name"),
                ("SERVICESTATE", "service.state"),
                ("SERVICEOUTPUT", "service.output"),
                ("SERVICEPERFDATA", "service.perfdata"),
                ("CHECKSOURCE", "service.check_source"),
            ],
        ),
        port = cluster.port,
    ));
    fs::write(master.join("icinga2.conf"), conf).unwrap();
    let conf = node_config(&satellite, "satellite", satellite_port, master_port);
    fs::write(satellite.join("icinga2.conf"), conf).unwrap();

    let mut satellite_daemon =
        Daemon::spawn(&mut icinga2(&satellite, &satellite.join("icinga2.conf")));
    let mut master_daemon = Daemon::spawn(&mut icinga2(&master, &master.join("icinga2.conf")));
    let logs = || {
        format!(
            "master:\n{}\nsatellite:\n{}",
            fs::read_to_string(master.join("icinga2.log")).unwrap_or_default(),
            fs::read_to_string(satellite.join("icinga2.log")).unwrap_or_default()
        )
    };
    let recorded = wait_until(
        Duration::from_secs(90),
        "every service's results from the satellite, two of the rate check",
        || {
            assert!(master_daemon.is_running(), "master exited:\n{}", logs());
            assert!(
                satellite_daemon.is_running(),
                "satellite exited:\n{}",
                logs()
            );
            let records = records(&perfdata);
            let done = ["connections", "locks"]
                .iter()
                .all(|s| records.get(*s).is_some_and(|r| !r.is_empty()))
                && records.get("deadlocks").is_some_and(|r| r.len() >= 2);
            done.then_some(records)
        },
    );
    satellite_daemon.assert_unprivileged();
    master_daemon.assert_unprivileged();
    drop(master_daemon);
    drop(satellite_daemon);

    for (service, results) in &recorded {
        let [state, output, perf, source] = &results[0];
        eprintln!("{service}: {state} from {source}: {output} | {perf}");
        assert_eq!(source, "satellite", "{service} ran elsewhere: {results:?}");
        assert_eq!(state, "OK", "{service}: {output}");
        assert!(!parse_perfdata(perf).is_empty(), "{service}: no perfdata");
    }
    let connections = parse_perfdata(&recorded["connections"][0][2]);
    assert!(connections["connections"].value >= 1.0, "{connections:?}");
    // The rate check's first run saved its baseline on the satellite; the
    // second measured against it.
    let deadlocks = &recorded["deadlocks"];
    assert!(
        deadlocks[0][1].starts_with("PG_DEADLOCKS OK - first run, baseline saved"),
        "{deadlocks:?}"
    );
    assert!(
        deadlocks[1][1].starts_with("PG_DEADLOCKS OK - 0 deadlocks in the last "),
        "{deadlocks:?}"
    );
    let kept_on = |dir: &Path| {
        fs::read_dir(dir.join("state"))
            .map(|d| {
                d.flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("check_pg_deadlocks-")
                })
            })
            .unwrap_or(false)
    };
    assert!(kept_on(&satellite), "no state on the satellite");
    assert!(!kept_on(&master), "state on the master");
    let _ = fs::remove_dir_all(&base);
}
