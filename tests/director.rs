//! The Icinga Director basket (`pgvigil --director-basket`) in a real Icinga
//! Director (Debian's icingaweb2-module-director and icingacli, its database
//! on a throwaway cluster): it restores, twice as an upgrade would; the
//! configuration the Director renders from it validates in Icinga2; and
//! services made in the Director from its templates run checks end to end.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::daemon::{
    icinga2, perfdata_writer, perfdata_writer_records, require, sandbox_dir, sandbox_plugins,
    wait_until, Daemon,
};
use harness::{chown, generated_password, parse_perfdata, plugin, temp_dir, Cluster};

/// `icingacli ARGS…` reading the Director's configuration from `etc`, with
/// `input` on its standard input; its output, which must say it succeeded.
fn icingacli(etc: &Path, args: &[&str], input: &str) -> String {
    let mut child = Command::new(require("icingacli"))
        .args(args)
        .env("ICINGAWEB_CONFIGDIR", etc)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("icingacli");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "icingacli {args:?}: {text}");
    text
}

/// An Icinga Web configuration directory with the Director enabled and its
/// database in `cluster`, migrated.
fn director(cluster: &Cluster, dir: &Path) -> std::path::PathBuf {
    cluster.execute("CREATE ROLE director LOGIN");
    cluster.execute("CREATE DATABASE director OWNER director");
    cluster.execute_in("director", "CREATE EXTENSION pgcrypto");
    let etc = dir.join("icingaweb2");
    fs::create_dir_all(etc.join("enabledModules")).unwrap();
    fs::create_dir_all(etc.join("modules/director")).unwrap();
    for module in ["director", "incubator"] {
        std::os::unix::fs::symlink(
            Path::new("/usr/share/icingaweb2/modules").join(module),
            etc.join("enabledModules").join(module),
        )
        .unwrap();
    }
    // The role is trusted over loopback: no password to keep here.
    fs::write(
        etc.join("resources.ini"),
        format!(
            "[director_db]\ntype = \"db\"\ndb = \"pgsql\"\nhost = \"127.0.0.1\"\n\
             port = \"{}\"\ndbname = \"director\"\nusername = \"director\"\n\
             password = \"\"\ncharset = \"utf8\"\n",
            cluster.port
        ),
    )
    .unwrap();
    fs::write(
        etc.join("modules/director/config.ini"),
        "[db]\nresource = \"director_db\"\n",
    )
    .unwrap();
    icingacli(&etc, &["director", "migration", "run"], "");
    etc
}

/// The files of the configuration the Director rendered with `checksum`:
/// path (`zones.d/master/hosts.conf`) to content.
fn rendered(cluster: &Cluster, checksum: &str) -> BTreeMap<String, String> {
    let mut client = cluster.client_to("postgres", "director");
    client
        .query(
            "SELECT cf.file_path, f.content FROM director_generated_config_file cf \
             JOIN director_generated_file f ON f.checksum = cf.file_checksum \
             WHERE cf.config_checksum = decode($1, 'hex')",
            &[&checksum],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[test]
fn the_director_imports_the_basket_and_runs_its_checks() {
    let cluster = Cluster::start("director");
    let password = generated_password();
    cluster.execute(&format!(
        "CREATE ROLE pwuser LOGIN PASSWORD '{password}' IN ROLE pg_monitor"
    ));
    let dir = temp_dir("director");
    let etc = director(&cluster, &dir);

    let out = Command::new(plugin::pgvigil())
        .arg("--director-basket")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let basket = String::from_utf8(out.stdout).unwrap();
    // Restored once, and again as an upgrade restores over it.
    for _ in 0..2 {
        let said = icingacli(&etc, &["director", "basket", "restore"], &basket);
        assert!(
            said.contains("Objects from Basket Snapshot have been restored"),
            "{said}"
        );
    }
    for name in plugin::names() {
        let shown = icingacli(&etc, &["director", "command", "show", &name], "");
        assert!(
            shown.contains(&format!("object CheckCommand \"{name}\"")),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("command = [ PluginDir + \"/{name}\" ]")),
            "{shown}"
        );
    }
    // Each variable once as a data field, described by its option's help,
    // and every command offers a field for each of its arguments.
    let parsed: serde_json::Value = serde_json::from_str(&basket).unwrap();
    let mut db = cluster.client_to("postgres", "director");
    let described: i64 = db
        .query_one(
            "SELECT count(DISTINCT varname) FROM director_datafield \
             WHERE varname LIKE 'pgvigil\\_%' AND description <> ''",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        described as usize,
        parsed["Datafield"].as_object().unwrap().len()
    );
    let unfielded: Vec<String> = db
        .query(
            "SELECT c.object_name FROM icinga_command c \
             LEFT JOIN icinga_command_field f ON f.command_id = c.id \
             JOIN icinga_command_argument a ON a.command_id = c.id \
             GROUP BY c.object_name \
             HAVING count(DISTINCT f.datafield_id) < count(DISTINCT a.id)",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(unfielded.is_empty(), "{unfielded:?}");
    let shown = icingacli(&etc, &["director", "service", "show", "pgvigil-bloat"], "");
    assert!(shown.contains("check_interval = 1h"), "{shown}");

    // A host and services as an operator makes them in the Director: the
    // password in a file only the daemon user reads, never on a command line.
    let password_file = sandbox_dir(&dir, "secrets").join("pwuser");
    fs::write(&password_file, format!("{password}\n")).unwrap();
    chown(&password_file);
    fs::set_permissions(&password_file, fs::Permissions::from_mode(0o600)).unwrap();
    let host = serde_json::json!({
        "object_type": "object",
        "address": "127.0.0.1",
        "check_command": "check_pg_alive",
        "vars": {
            "pgvigil_port": cluster.port.to_string(),
            "pgvigil_username": "pwuser",
            "pgvigil_password_file": password_file,
        },
    });
    icingacli(
        &etc,
        &[
            "director",
            "host",
            "create",
            "db1",
            "--json",
            &host.to_string(),
        ],
        "",
    );
    let services = [
        ("pg-alive", "pgvigil-alive", serde_json::json!({})),
        // A list variable: only the test's own role's sessions, of which
        // there is the check's own, so more than 0 warns.
        (
            "pg-connections",
            "pgvigil-connections",
            serde_json::json!({ "pgvigil_include_user": ["pwuser"], "pgvigil_warning": "0" }),
        ),
        // A boolean variable: the cluster runs without data checksums.
        (
            "pg-checksums",
            "pgvigil-checksums",
            serde_json::json!({ "pgvigil_require_checksums": true }),
        ),
    ];
    for (name, template, vars) in &services {
        let service = serde_json::json!({
            "object_type": "object",
            "host": "db1",
            "imports": [template],
            "check_interval": "2",
            "retry_interval": "2",
            "vars": vars,
        });
        icingacli(
            &etc,
            &[
                "director",
                "service",
                "create",
                name,
                "--json",
                &service.to_string(),
            ],
            "",
        );
    }
    let said = icingacli(&etc, &["director", "config", "render"], "");
    let checksum = said
        .split_whitespace()
        .find(|w| w.len() == 40 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no checksum in: {said}"));
    let files = rendered(&cluster, checksum);
    let commands = &files["zones.d/director-global/commands.conf"];
    assert_eq!(
        commands.matches("object CheckCommand \"check_pg_").count(),
        plugin::names().len(),
        "{commands}"
    );
    assert!(!files.values().any(|f| f.contains(&password)));

    // Icinga2 loads the rendered files, their zones (master, the global
    // director-global) flattened onto this one node, which runs the checks.
    let zones = dir.join("zones.d");
    for (path, content) in &files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    let perfdata_dir = sandbox_dir(&dir, "perfdata");
    let conf = format!(
        "const PluginDir = \"{plugins}\"\n\
         const NodeName = \"pgvigil-test\"\n\
         const ZoneName = NodeName\n\
         include <itl>\n\
         include_recursive \"{zones}\"\n\
         object CheckerComponent \"checker\" {{ }}\n\
         object FileLogger \"log\" {{\n\tpath = \"{log}\"\n\tseverity = \"information\"\n}}\n\
         {writer}",
        plugins = sandbox_plugins(&dir).display(),
        zones = zones.display(),
        log = dir.join("icinga2.log").display(),
        writer = perfdata_writer(
            &perfdata_dir,
            &[
                ("SERVICEDESC", "service.name"),
                ("SERVICESTATE", "service.state"),
                ("SERVICEPERFDATA", "service.perfdata"),
                // Last: its long output runs onto the lines after.
                ("SERVICEOUTPUT", "service.output"),
            ],
        ),
    );
    fs::write(dir.join("icinga2.conf"), conf).unwrap();
    let out = icinga2(&dir, &dir.join("icinga2.conf"))
        .arg("-C")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "icinga2 -C failed:\n{log}");
    assert!(log.contains("Instantiated 3 Services."), "{log}");
    assert!(log.contains("Instantiated 1 Host."), "{log}");

    let mut daemon = Daemon::spawn(&mut icinga2(&dir, &dir.join("icinga2.conf")));
    let results = wait_until(
        Duration::from_secs(60),
        "a result for every Director service",
        || {
            assert!(
                daemon.is_running(),
                "icinga2 exited:\n{}",
                fs::read_to_string(dir.join("icinga2.log")).unwrap_or_default()
            );
            let mut first = BTreeMap::new();
            for record in perfdata_writer_records(&perfdata_dir) {
                let field = |k: &str| record.get(k).cloned().unwrap_or_default();
                first.entry(field("SERVICEDESC")).or_insert_with(|| {
                    (
                        field("SERVICESTATE"),
                        field("SERVICEOUTPUT"),
                        field("SERVICEPERFDATA"),
                    )
                });
            }
            // Long output lines carry no fields.
            first.remove("");
            (first.len() >= services.len()).then_some(first)
        },
    );
    drop(daemon);
    let state = |name: &str| &results[name];
    let (alive, output, perfdata) = state("pg-alive");
    assert_eq!(alive, "OK", "{output}");
    assert!(output.starts_with("PG_ALIVE OK"), "{output}");
    assert!(parse_perfdata(perfdata).contains_key("time"), "{perfdata}");
    let (connections, output, perfdata) = state("pg-connections");
    assert_eq!(connections, "WARNING", "{output}");
    // Its own session at least; Icinga2 starts the services together, so
    // another's may be counted beside it (one each at the most).
    let counted = parse_perfdata(perfdata)
        .get("connections")
        .map(|p| p.value)
        .unwrap_or(0.0);
    assert!(
        (1.0..=services.len() as f64).contains(&counted),
        "{output} | {perfdata}"
    );
    let (checksums, output, _) = state("pg-checksums");
    assert_eq!(checksums, "WARNING", "{output}");
    let _ = fs::remove_dir_all(&dir);
}
