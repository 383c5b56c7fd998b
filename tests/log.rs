//! check_pg_log over logs a real server wrote in all its formats: the same
//! events counted the same in stderr, csvlog and jsonlog, across rotation
//! by pg_rotate_logfile() and by copytruncate, with a line still being
//! written, invalid UTF-8 and a 10 MB entry.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::{
    generated_password, server_major, temp_dir, Cluster, ClusterOptions, PluginOutput, PluginRun,
};

const PLUGIN: &str = "check_pg_log";

fn formats() -> Vec<&'static str> {
    if server_major() >= 15 {
        vec!["stderr", "csvlog", "jsonlog"]
    } else {
        vec!["stderr", "csvlog"]
    }
}

fn logging_cluster(name: &str) -> Cluster {
    let destinations = formats().join(",");
    Cluster::start_with(
        name,
        ClusterOptions {
            extra_conf: vec![
                "logging_collector = on".into(),
                format!("log_destination = '{destinations}'"),
                "log_directory = 'log'".into(),
                "log_filename = 'postgresql-%Y%m%d-%H%M%S.log'".into(),
                "log_file_mode = 0640".into(),
                // The recommended logging settings, a shorter slow-statement limit.
                "log_line_prefix = '%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h '".into(),
                "log_min_duration_statement = 100".into(),
                "log_connections = on".into(),
                "log_lock_waits = on".into(),
                "log_temp_files = 0".into(),
                "log_checkpoints = on".into(),
                "deadlock_timeout = 100ms".into(),
            ],
            ..ClusterOptions::default()
        },
    )
}

fn run(cluster: &Cluster, state: &Path, args: &[&str]) -> PluginOutput {
    let out = cluster
        .plugin(PLUGIN)
        .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
        .args(args)
        .run();
    eprintln!("{}", out.stdout.trim_end());
    out
}

/// Waits until the collector has written `marker` to every format's file.
fn logged(cluster: &Cluster, marker: &str) {
    let dir = cluster.data.join("log");
    for _ in 0..100 {
        let all = formats().iter().all(|f| {
            let ext = match *f {
                "stderr" => "log",
                "csvlog" => "csv",
                _ => "json",
            };
            fs::read_dir(&dir).unwrap().flatten().any(|e| {
                e.path().extension().is_some_and(|x| x == ext)
                    && fs::read_to_string(e.path()).is_ok_and(|t| t.contains(marker))
            })
        });
        if all {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{marker} never reached the logs");
}

fn failed_login(cluster: &Cluster) {
    let refused = postgres::Config::new()
        .host("127.0.0.1")
        .port(cluster.port)
        .user("pwuser")
        .password("not-the-password")
        .dbname("postgres")
        .connect(postgres::NoTls);
    assert!(refused.is_err());
}

#[test]
fn the_same_events_counted_alike_in_every_format_and_across_rotation() {
    let cluster = logging_cluster("log-formats");
    cluster.execute(&format!(
        "CREATE ROLE pwuser LOGIN PASSWORD '{}'",
        generated_password()
    ));
    let state = temp_dir("log-state");
    // First runs start at the end of what is there.
    for f in formats() {
        let out = run(&cluster, &state, &["--log-format", f]);
        out.expect("OK");
        assert!(
            out.summary()
                .contains("first run: reading starts at the end"),
            "{}",
            out.summary()
        );
    }

    let mut client = cluster.client();
    for _ in 0..3 {
        assert!(client.batch_execute("SELECT 1/0").is_err());
    }
    client
        .batch_execute("SET work_mem = '64kB'; SELECT count(*) FROM (SELECT g FROM generate_series(1, 100000) g ORDER BY g DESC) s; SELECT pg_sleep(0.2)")
        .unwrap();
    failed_login(&cluster);
    failed_login(&cluster);
    cluster.deadlock();
    client.batch_execute("SELECT 'marker-one'").unwrap();
    client
        .batch_execute("SELECT pg_sleep(0.15), 'marker-one'")
        .unwrap();
    logged(&cluster, "marker-one");

    let mut seen: Vec<(String, Vec<(String, f64)>)> = Vec::new();
    for f in formats() {
        let out = run(
            &cluster,
            &state,
            &[
                "--log-format",
                f,
                "-w",
                "errors=2,auth_failures=1",
                "-c",
                "auth_failures=5",
            ],
        );
        out.expect("WARNING");
        let perf = out.perfdata();
        // Every count but lines: each run's own connection is logged too,
        // and lands in the others' intervals.
        let counts: Vec<(String, f64)> = perf
            .iter()
            .filter(|(k, _)| *k != "lines")
            .map(|(k, v)| (k.clone(), v.value))
            .collect();
        assert!(out.perf("lines").value >= 20.0, "{f}");
        assert_eq!(
            out.perf("errors").value,
            4.0,
            "{f}: 3 divisions by zero and a deadlock"
        );
        assert_eq!(out.perf("errors").warn, "2");
        assert_eq!(out.perf("auth_failures").value, 2.0, "{f}");
        assert_eq!(out.perf("auth_failures").crit, "5");
        assert_eq!(out.perf("fatals").value, 2.0, "{f}");
        assert_eq!(out.perf("deadlocks").value, 1.0, "{f}");
        assert!(out.perf("lock_waits").value >= 1.0, "{f}");
        assert!(out.perf("temp_files").value >= 1.0, "{f}");
        assert!(out.perf("slow_statements").value >= 2.0, "{f}");
        assert_eq!(out.perf("panics").value, 0.0);
        let details = out.long_output();
        assert!(
            details.contains(&"failed login: user pwuser from 127.0.0.1: 2"),
            "{f}: {details:#?}"
        );
        assert!(
            details.contains(&"3 × division by zero"),
            "{f}: {details:#?}"
        );
        assert!(
            details
                .iter()
                .any(|l| l.starts_with("slow: ") && l.ends_with("ms: SELECT pg_sleep(N), '?'")),
            "{f}: {details:#?}"
        );
        seen.push((f.to_string(), counts));
    }
    for (f, counts) in &seen[1..] {
        assert_eq!(counts, &seen[0].1, "{f} counts differ from stderr's");
    }
    // With -v, the clients that connected most (log_connections).
    for f in formats() {
        let verbose = run(
            &cluster,
            &temp_dir("log-verbose"),
            &["--log-format", f, "--from-start", "-v"],
        );
        assert!(
            verbose
                .long_output()
                .iter()
                .any(|l| l.starts_with("client 127.0.0.1: ")),
            "{f}: {:#?}",
            verbose.long_output()
        );
    }

    // Nothing new: nothing counted twice.
    for f in formats() {
        let out = run(&cluster, &state, &["--log-format", f]);
        out.expect("OK");
        assert_eq!(out.perf("errors").value, 0.0, "{f}");
    }

    // Rotation by the server: the old file is finished, the new one read.
    assert!(client.batch_execute("SELECT 1/0").is_err());
    cluster.execute("SELECT pg_rotate_logfile()");
    assert!(client
        .batch_execute("SELECT 1/0 AS after_rotation")
        .is_err());
    logged(&cluster, "after_rotation");
    for f in formats() {
        let out = run(&cluster, &state, &["--log-format", f]);
        assert_eq!(out.perf("errors").value, 2.0, "{f}");
    }

    // copytruncate: the copy goes on where we were, the emptied file anew.
    let dir = cluster.data.join("log");
    let mut newest: Vec<PathBuf> = Vec::new();
    for f in formats() {
        let ext = match f {
            "stderr" => "log",
            "csvlog" => "csv",
            _ => "json",
        };
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        files.sort();
        newest.push(files.pop().unwrap());
    }
    // The copies are read through a pattern that takes both names; its
    // first run sets the marks.
    let ext_of = |f: &str| match f {
        "stderr" => "log",
        "csvlog" => "csv",
        _ => "json",
    };
    let pattern_of = |f: &str| dir.join(format!("postgresql-*.{}*", ext_of(f)));
    for f in formats() {
        let pattern = pattern_of(f);
        let out = run(
            &cluster,
            &state,
            &["--log-format", f, "--log", pattern.to_str().unwrap()],
        );
        assert!(out.summary().contains("first run"), "{}", out.summary());
    }
    assert!(client.batch_execute("SELECT 1/0 AS before_copy").is_err());
    logged(&cluster, "before_copy");
    for path in &newest {
        let copy =
            path.with_extension(format!("{}.1", path.extension().unwrap().to_str().unwrap()));
        fs::copy(path, &copy).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(0)
            .unwrap();
    }
    assert!(client.batch_execute("SELECT 1/0 AS after_copy").is_err());
    logged(&cluster, "after_copy");
    for f in formats() {
        let pattern = pattern_of(f);
        let out = run(
            &cluster,
            &state,
            &["--log-format", f, "--log", pattern.to_str().unwrap()],
        );
        out.expect("OK");
        assert_eq!(out.perf("errors").value, 2.0, "{f}: {}", out.stdout);
        let out = run(
            &cluster,
            &state,
            &["--log-format", f, "--log", pattern.to_str().unwrap()],
        );
        assert_eq!(out.perf("errors").value, 0.0, "{f}: {}", out.stdout);
    }
}

#[test]
fn partial_lines_invalid_utf8_and_a_10_mb_entry() {
    let cluster = Cluster::start("log-edges");
    let state = temp_dir("log-edges-state");
    let dir = temp_dir("log-edges-files");
    let file = dir.join("server.log");
    let prefix = "2026-11-25 22:42:30.737 UTC [7911] postgres@postgres ";
    let mut text = Vec::new();
    text.extend_from_slice(format!("{prefix}ERROR:  bad byte \u{e9}").as_bytes());
    text.extend_from_slice(b" \xff\xfe here\n");
    text.extend_from_slice(
        format!("{prefix}LOG:  duration: 1.5 ms  statement: SELECT '").as_bytes(),
    );
    text.extend(std::iter::repeat_n(b'x', 10 << 20));
    text.extend_from_slice(b"'\n");
    text.extend_from_slice(format!("{prefix}ERROR:  still being writ").as_bytes());
    fs::write(&file, &text).unwrap();
    let args = [
        "--log",
        file.to_str().unwrap(),
        "--prefix",
        "%m [%p] %q%u@%d ",
        "--from-start",
    ];
    let out = run(&cluster, &state, &args);
    out.expect("OK");
    assert_eq!(out.perf("lines").value, 2.0, "{}", out.stdout);
    assert_eq!(out.perf("errors").value, 1.0);
    assert_eq!(out.perf("slow_statements").value, 1.0);
    assert!(
        out.long_output()
            .iter()
            .any(|l| l.starts_with("1 × bad byte é")),
        "{:?}",
        out.long_output()
    );

    // The line being written is counted once it is complete, and only once.
    fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(b"ten\n")
        .unwrap();
    let out = run(&cluster, &state, &args);
    assert_eq!(out.perf("errors").value, 1.0, "{}", out.stdout);
    assert_eq!(out.perf("lines").value, 1.0);
    let out = run(&cluster, &state, &args);
    assert_eq!(out.perf("lines").value, 0.0);

    // Rotation by rename (logrotate): the old file is finished under its
    // new name, the new file read from its start; a PANIC is CRITICAL.
    let rotated = dir.join("server.log.1");
    fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(format!("{prefix}ERROR:  last words of the old file\n").as_bytes())
        .unwrap();
    fs::rename(&file, &rotated).unwrap();
    fs::write(
        &file,
        format!("{prefix}PANIC:  could not write to file\n{prefix}ERROR:  first of the new\n"),
    )
    .unwrap();
    let pattern = dir.join("server.log*");
    let renamed = [
        "--log",
        pattern.to_str().unwrap(),
        "--prefix",
        "%m [%p] %q%u@%d ",
    ];
    // The pattern is another set of logs: its first run reads from the start.
    let state2 = temp_dir("log-edges-rename");
    let out = cluster
        .plugin(PLUGIN)
        .env("PGVIGIL_STATE_DIR", state2.to_str().unwrap())
        .args(&renamed)
        .arg("--from-start")
        .run();
    out.expect("CRITICAL");
    assert_eq!(out.perf("panics").value, 1.0);
    fs::rename(&file, dir.join("server.log.2")).unwrap();
    fs::write(&file, format!("{prefix}ERROR:  newest\n")).unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(dir.join("server.log.2"))
        .unwrap()
        .write_all(format!("{prefix}ERROR:  late line of the renamed file\n").as_bytes())
        .unwrap();
    let out = cluster
        .plugin(PLUGIN)
        .env("PGVIGIL_STATE_DIR", state2.to_str().unwrap())
        .args(&renamed)
        .run();
    out.expect("OK");
    assert_eq!(out.perf("errors").value, 2.0, "{}", out.stdout);
    assert_eq!(out.perf("panics").value, 0.0);

    // Bad input is UNKNOWN with one clear line.
    let out = run(
        &cluster,
        &state,
        &["--log", dir.join("missing.log").to_str().unwrap()],
    );
    out.expect("UNKNOWN");
    assert!(
        out.summary().starts_with("cannot read log "),
        "{}",
        out.summary()
    );
    let out = run(
        &cluster,
        &state,
        &["--log", file.to_str().unwrap(), "-w", "error=1"],
    );
    out.expect("UNKNOWN");
    assert!(
        out.summary().contains("unknown measurement 'error'"),
        "{}",
        out.summary()
    );
}

#[test]
fn without_log_it_reads_where_the_server_logs() {
    let cluster = logging_cluster("log-server");
    let state = temp_dir("log-server-state");
    run(&cluster, &state, &[]).expect("OK");
    let mut client = cluster.client();
    assert!(client
        .batch_execute("SELECT 1/0 AS found_by_settings")
        .is_err());
    logged(&cluster, "found_by_settings");
    let out = run(&cluster, &state, &["-w", "0"]);
    out.expect("WARNING");
    assert_eq!(out.perf("errors").value, 1.0);
    // Where the server logs is a setting pg_monitor may read; a plain role may not.
    let out = cluster
        .plugin(PLUGIN)
        .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
        .env("PGUSER", harness::PLAIN)
        .run();
    out.expect("UNKNOWN");
    assert!(out.summary().contains("pg_monitor"), "{}", out.summary());
}

#[test]
fn the_log_is_read_while_the_server_is_down() {
    let cluster = logging_cluster("log-down");
    let state = temp_dir("log-down-state");
    // A successful run finds where the server logs, and remembers it.
    run(&cluster, &state, &[]).expect("OK");
    let mut client = cluster.client();
    for _ in 0..3 {
        assert!(client
            .batch_execute("SELECT 1/0 AS before_the_crash")
            .is_err());
    }
    logged(&cluster, "before_the_crash");
    drop(client);
    // An immediate shutdown, as a crash or an OOM kill leaves it.
    cluster.stop();

    let out = run(&cluster, &state, &["-w", "0"]);
    out.expect("WARNING");
    assert_eq!(out.perf("errors").value, 3.0, "{}", out.stdout);
    // The errors, and the shutdown's own lines.
    assert!(out.perf("lines").value >= 5.0, "{}", out.stdout);
    assert!(
        out.summary()
            .ends_with("; server unreachable, log read all the same"),
        "{}",
        out.summary()
    );
    let first = out.long_output()[0];
    assert!(
        first.starts_with("server unreachable (cannot connect to "),
        "{first}"
    );
    assert!(
        first.ends_with("; log location from the last successful run"),
        "{first}"
    );
    // Nothing new since: the log is still followed, not read again.
    let out = run(&cluster, &state, &["-w", "0"]);
    out.expect("OK");
    assert_eq!(out.perf("lines").value, 0.0, "{}", out.stdout);
}

#[test]
fn a_server_that_cannot_start_is_read_from_its_startup_log() {
    let cluster = Cluster::start("log-no-start");
    let state = temp_dir("log-no-start-state");
    cluster.stop();
    let mut conf = fs::OpenOptions::new()
        .append(true)
        .open(cluster.data.join("postgresql.conf"))
        .unwrap();
    writeln!(conf, "shared_buffers = 'plenty'").unwrap();
    drop(conf);
    let refused = cluster.try_start();
    assert!(refused.is_err(), "the server started with a bad setting");

    // Where pg_ctl sent the server's stderr, as Debian's pg_ctlcluster does:
    // the FATAL is there, written before any logging collector.
    let startup = cluster.base.join("server.log");
    let out = run(
        &cluster,
        &state,
        &[
            "--log",
            startup.to_str().unwrap(),
            "--from-start",
            "-c",
            "fatals=0",
        ],
    );
    out.expect("CRITICAL");
    assert!(out.perf("fatals").value >= 1.0, "{}", out.stdout);
    assert!(
        out.long_output()[0].ends_with("; log location from --log"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("configuration file") && out.stdout.contains("contains errors"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_log_host_needs_no_server_at_all() {
    // A real server's log, carried to a host where no server runs.
    let cluster = Cluster::start("log-host");
    assert!(cluster
        .client()
        .batch_execute("SELECT 1/0 AS shipped")
        .is_err());
    cluster.stop();
    let shipped = temp_dir("log-host-files").join("postgresql.log");
    fs::copy(cluster.base.join("server.log"), &shipped).unwrap();
    drop(cluster);

    let state = temp_dir("log-host-state");
    let port = harness::free_port().to_string();
    let out = PluginRun::new(PLUGIN)
        .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
        .args(&["-H", "/nonexistent", "-p", &port])
        .args(&["--log", shipped.to_str().unwrap(), "--prefix", "%m [%p] "])
        .args(&["--from-start", "-w", "0"])
        .run();
    out.expect("WARNING");
    assert_eq!(out.perf("errors").value, 1.0, "{}", out.stdout);
    assert!(!out.stdout.contains("unreachable"), "{}", out.stdout);
}
