//! `--format json` and `--format openmetrics` from real runs, checked by the
//! real validators: a JSON Schema validator against the documented schema
//! (packaging/schema) and `promtool check metrics`. The exit code is the
//! same in every format.

use std::io::Write;
use std::process::{Command, Stdio};

use harness::daemon::{repo_path, require};
use harness::{Cluster, PluginOutput};
use once_cell::sync::Lazy;

static CLUSTER: Lazy<Cluster> = Lazy::new(|| Cluster::start("formats"));

/// Runs that between them give every state, from several plugins.
fn runs() -> Vec<(&'static str, Vec<&'static str>, &'static str)> {
    vec![
        ("check_pg_alive", vec![], "OK"),
        ("check_pg_connections", vec!["-w", "0"], "WARNING"),
        ("check_pg_db_size", vec!["-c", "1MB"], "CRITICAL"),
        ("check_pg_query", vec!["--query", "SELECT 1/0"], "UNKNOWN"),
        (
            "check_pg_query",
            vec![
                "--query",
                "SELECT 42",
                "--label",
                "odd label=\"x\"",
                "-w",
                "40",
            ],
            "WARNING",
        ),
        ("check_pg_locks", vec![], "OK"),
        ("check_pg_archiver", vec![], "OK"),
        ("check_pg_long_running", vec!["-w", "@0:"], "WARNING"),
        (
            "check_pg_health",
            vec!["--check", "connections -w 0", "--check", "locks"],
            "WARNING",
        ),
        (
            "check_pg_health",
            vec![
                "--check",
                "alive",
                "--check",
                "query --query 'SELECT 1/0'",
                "--check",
                "query --query 'SELECT 2'",
            ],
            "UNKNOWN",
        ),
        ("check_pg_health", vec![], "OK"),
    ]
}

fn run(plugin: &str, args: &[&str], format: &str) -> PluginOutput {
    let mut run = CLUSTER.plugin(plugin);
    run.args(args).args(&["--format", format]);
    run.run()
}

fn pipe(mut command: Command, input: &str) -> (i32, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("validator runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Debian's python3-jsonschema validating one document against the schema.
fn validate_json(document: &str) -> (i32, String) {
    let mut command = Command::new("/usr/bin/python3");
    command.args([
        "-c",
        "import json, sys, jsonschema\n\
         schema = json.load(open(sys.argv[1]))\n\
         jsonschema.Draft202012Validator.check_schema(schema)\n\
         jsonschema.validate(json.loads(sys.stdin.read()), schema, cls=jsonschema.Draft202012Validator)\n\
         print('valid')",
    ]);
    command.arg(repo_path("packaging/schema/pgvigil-result.schema.json"));
    pipe(command, document)
}

#[test]
fn json_follows_the_schema_and_says_what_the_nagios_output_says() {
    for (plugin, args, state) in runs() {
        let nagios = run(plugin, &args, "nagios");
        nagios.expect(state);
        let out = run(plugin, &args, "json");
        assert_eq!(out.code, nagios.code, "{plugin} {args:?}: exit code");
        assert!(out.stderr.is_empty(), "{}", out.stderr);
        assert_eq!(out.stdout.lines().count(), 1, "one line: {}", out.stdout);
        let (code, said) = validate_json(&out.stdout);
        assert_eq!(code, 0, "{plugin} {args:?}: {said}\n{}", out.stdout);

        // The same facts as the Nagios output (values may move between runs).
        let doc = parse_json(&out.stdout);
        let check = plugin.trim_start_matches("check_pg_");
        assert!(
            out.stdout.starts_with(&format!(
                "{{\"check\":\"{check}\",\"state\":\"{state}\",\"exit_code\":{},",
                nagios.code
            )),
            "{}",
            out.stdout
        );
        let labels: Vec<String> = nagios.perfdata().into_keys().collect();
        // Nagios perfdata cannot hold '=' in a label; JSON keeps it.
        let mut listed: Vec<String> = doc
            .perfdata_labels
            .iter()
            .map(|l| l.replace('=', "_"))
            .collect();
        listed.sort();
        assert_eq!(listed, labels, "{plugin} {args:?}");
        assert_eq!(doc.has_hint, state != "OK", "{}", out.stdout);
    }
}

#[test]
fn a_failed_connection_is_valid_json_too() {
    let cluster = Cluster::start("formats-down");
    let (socket, port) = (cluster.socket_dir.display().to_string(), cluster.port);
    drop(cluster);
    let out = harness::PluginRun::new("check_pg_connections")
        .args(&["-H", &socket, "-p", &port.to_string(), "--format", "json"])
        .run();
    assert_eq!(out.code, 2);
    let (code, said) = validate_json(&out.stdout);
    assert_eq!(code, 0, "{said}\n{}", out.stdout);
    assert!(out.stdout.contains("\"state\":\"CRITICAL\""));
    assert!(out.stdout.contains("\"hint\":\"is the server up"));
}

#[test]
fn openmetrics_passes_promtool_and_carries_the_state() {
    let promtool = require("promtool");
    for (plugin, args, state) in runs() {
        let out = run(plugin, &args, "openmetrics");
        let code = match state {
            "OK" => 0,
            "WARNING" => 1,
            "CRITICAL" => 2,
            _ => 3,
        };
        assert_eq!(out.code, code, "{plugin} {args:?}: {}", out.stdout);
        assert!(out.stderr.is_empty(), "{}", out.stderr);
        let mut command = Command::new(&promtool);
        command.args(["check", "metrics"]);
        let (status, said) = pipe(command, &out.stdout);
        assert_eq!(
            (status, said.as_str()),
            (0, ""),
            "{plugin} {args:?}:\n{}",
            out.stdout
        );

        let check = plugin.trim_start_matches("check_pg_");
        assert!(
            out.stdout.contains(&format!(
                "\npgvigil_check_state{{check=\"{check}\"}} {code}\n"
            )),
            "{}",
            out.stdout
        );
        assert!(out.stdout.ends_with("\n# EOF\n"), "{}", out.stdout);
        // OpenMetrics: a family's unit is the suffix of its name.
        for line in out.stdout.lines() {
            if let Some(rest) = line.strip_prefix("# UNIT ") {
                let (name, unit) = rest.split_once(' ').unwrap();
                assert!(name.ends_with(&format!("_{unit}")), "{line}");
            }
        }
    }
}

#[test]
fn openmetrics_of_a_combined_run_names_each_check() {
    let out = run(
        "check_pg_health",
        &["--check", "connections -w 0", "--check", "locks"],
        "openmetrics",
    );
    assert_eq!(out.code, 1);
    for expected in [
        "pgvigil_check_state{check=\"health\"} 1\n",
        "pgvigil_check_state{check=\"connections\"} 1\n",
        "pgvigil_check_state{check=\"locks\"} 0\n",
        "# TYPE pgvigil_connections_connections_ratio gauge\n# UNIT pgvigil_connections_connections_ratio ratio\n",
        "# TYPE pgvigil_locks_longest_wait_seconds gauge\n# UNIT pgvigil_locks_longest_wait_seconds seconds\n",
    ] {
        assert!(out.stdout.contains(expected), "{expected}in:\n{}", out.stdout);
    }
    // Percentages become ratios: 1 session of 17 is about 0.06.
    let ratio: f64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("pgvigil_connections_connections_ratio "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
}

#[test]
fn bad_arguments_keep_the_requested_format() {
    let out = harness::PluginRun::new("check_pg_locks")
        .args(&["--format", "json", "--no-such-option"])
        .run();
    assert_eq!(out.code, 3);
    let (code, said) = validate_json(&out.stdout);
    assert_eq!(code, 0, "{said}\n{}", out.stdout);
    assert!(out
        .stdout
        .contains("unexpected argument '--no-such-option'"));
    let out = harness::PluginRun::new("check_pg_locks")
        .args(&["--format", "yaml"])
        .run();
    out.expect("UNKNOWN");
    assert_eq!(
        out.status_line(),
        "PG_LOCKS UNKNOWN - invalid value 'yaml' for '--format <FORMAT>': 'yaml' is not a format: nagios, json or openmetrics (see --help)"
    );
}

/// What the tests read back from a JSON result, found with a JSON parser.
struct JsonDoc {
    perfdata_labels: Vec<String>,
    has_hint: bool,
}

fn parse_json(text: &str) -> JsonDoc {
    let mut command = Command::new("/usr/bin/python3");
    command.args([
        "-c",
        "import json, sys\n\
         d = json.loads(sys.stdin.read())\n\
         print(d['hint'] is not None)\n\
         for p in d['perfdata']: print(p['label'])",
    ]);
    let (code, out) = pipe(command, text);
    assert_eq!(code, 0, "{out}");
    let mut lines = out.lines();
    let has_hint = lines.next() == Some("True");
    JsonDoc {
        perfdata_labels: lines.map(String::from).collect(),
        has_hint,
    }
}
