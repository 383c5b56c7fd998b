//! The fault matrix: what a plugin says, and how soon, when the server hangs
//! or dies under it. Each case prints its row (`FAULT | expected | measured`)
//! to stderr, for `cargo test --test faults -- --nocapture`.

use std::time::{Duration, Instant};

use harness::{Cluster, PluginOutput, PluginRun};

fn timed(run: &mut PluginRun) -> (PluginOutput, Duration) {
    let start = Instant::now();
    let out = run.run();
    (out, start.elapsed())
}

/// What starting and ending a plugin process costs on this machine now: a
/// run that stops at its arguments. The `-t` bounds below are the timeout
/// plus twice this plus half a second, so that a machine loaded by other
/// test binaries stretches the bound with the cost of a run, not the
/// watchdog's promise.
fn process_cost(cluster: &Cluster) -> Duration {
    let (_, took) = timed(cluster.plugin("check_pg_connections").args(&["-t", "x"]));
    took
}

fn within(timeout: Duration, cost: Duration) -> Duration {
    timeout + cost * 2 + Duration::from_millis(500)
}

fn row(fault: &str, expected: &str, out: &PluginOutput, took: Duration) {
    eprintln!(
        "FAULT | {fault} | {expected} | {} in {:.2} s: {}",
        out.state(),
        took.as_secs_f64(),
        out.summary()
    );
}

/// The postmaster and every process it started: the whole server.
fn server_processes(postmaster: i32) -> Vec<i32> {
    let mut pids = vec![postmaster];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid …: comm may hold spaces, so read after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(postmaster) {
            pids.push(pid);
        }
    }
    pids
}

fn signal(pids: &[i32], sig: libc::c_int) {
    for pid in pids {
        // SAFETY: signalling the test's own server processes.
        unsafe { libc::kill(*pid, sig) };
    }
}

const QUERY_RUNNING: &str = "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'check_pg_query' AND state = 'active'";

const NO_PLUGIN_SESSION: &str =
    "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name LIKE 'check_pg_%'";

/// `-t` bounds the whole run, so a server that stops answering (SIGSTOP)
/// before or during the plugin's query gives the `-t` state within `-t`
/// (plus the time to start a process); once the server resumes, nothing of
/// the plugin is left running on it.
#[test]
fn a_stopped_server_gives_the_timeout_state_within_the_timeout() {
    let cluster = Cluster::start("faults-stopped");
    let postmaster = cluster.postmaster_pid();

    // Before connect: the postmaster accepts nothing.
    let cost = process_cost(&cluster);
    signal(&[postmaster], libc::SIGSTOP);
    let (unknown, took_unknown) = timed(cluster.plugin("check_pg_connections").args(&["-t", "1"]));
    let (critical, took_critical) = timed(
        cluster
            .plugin("check_pg_archiver")
            .args(&["-t", "1:critical"]),
    );
    signal(&[postmaster], libc::SIGCONT);
    row(
        "postmaster stopped before connect, -t 1",
        "UNKNOWN within 1 s and a run's cost",
        &unknown,
        took_unknown,
    );
    row(
        "postmaster stopped before connect, -t 1:critical",
        "CRITICAL within 1 s and a run's cost",
        &critical,
        took_critical,
    );
    unknown.expect("UNKNOWN");
    assert_eq!(unknown.summary(), "timed out after 1 s (while connecting)");
    critical.expect("CRITICAL");
    assert_eq!(critical.summary(), "timed out after 1 s (while connecting)");
    for took in [took_unknown, took_critical] {
        let bound = within(Duration::from_secs(1), cost);
        assert!(took < bound, "took {took:?}, more than {bound:?}");
    }
    cluster.wait_for(NO_PLUGIN_SESSION, "the queued connections to go away");

    // During the query: every server process stops once the query runs.
    // The query would outlast -t anyway, so a loaded machine that sees it
    // running late cannot turn the case into an OK.
    let cost = process_cost(&cluster);
    let mut run = cluster.plugin("check_pg_query");
    run.args(&["-t", "2", "--query", "SELECT count(*) FROM pg_sleep(30)"]);
    let start = Instant::now();
    let running = std::thread::spawn(move || run.run());
    cluster.wait_for(QUERY_RUNNING, "the plugin's query to run");
    let server = server_processes(postmaster);
    signal(&server, libc::SIGSTOP);
    let out = running.join().unwrap();
    let took = start.elapsed();
    signal(&server, libc::SIGCONT);
    row(
        "whole server stopped during the query, -t 2",
        "UNKNOWN within 2 s and a run's cost",
        &out,
        took,
    );
    out.expect("UNKNOWN");
    assert_eq!(out.summary(), "timed out after 2 s (while running query)");
    let bound = within(Duration::from_secs(2), cost);
    assert!(took < bound, "took {took:?}, more than {bound:?}");
    cluster.wait_for(NO_PLUGIN_SESSION, "the plugin's query to end on the server");
}

/// Runs a 15 s query through the plugin on a cluster of its own, kills
/// `victim` (the backend or the postmaster) once it runs, and returns what the
/// plugin said. Either way the backend is gone and the plugin says the
/// connection was lost, at once.
fn kill_during_query(name: &str, victim: &str) -> (PluginOutput, Duration) {
    let cluster = Cluster::start(name);
    let mut run = cluster.plugin("check_pg_query");
    run.args(&["-t", "20", "--query", "SELECT count(*) FROM pg_sleep(15)"]);
    let running = std::thread::spawn(move || run.run());
    cluster.wait_for(QUERY_RUNNING, "the plugin's query to run");
    let pid = match victim {
        "backend" => cluster
            .client()
            .query_one(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'check_pg_query'",
                &[],
            )
            .unwrap()
            .get(0),
        _ => cluster.postmaster_pid(),
    };
    let killed = Instant::now();
    signal(&[pid], libc::SIGKILL);
    let out = running.join().unwrap();
    let took = killed.elapsed();
    row(
        &format!("{victim} SIGKILLed during the query, -t 20 (time from the kill)"),
        "CRITICAL at once",
        &out,
        took,
    );
    out.expect_lost_connection();
    assert!(
        took < Duration::from_secs(15),
        "waited for the query: {took:?}"
    );
    (out, took)
}

#[test]
fn a_backend_killed_mid_query_is_critical_and_says_the_connection_was_lost() {
    kill_during_query("faults-backend-killed", "backend");
}

#[test]
fn a_killed_postmaster_is_critical_and_says_the_connection_was_lost() {
    kill_during_query("faults-postmaster-killed", "postmaster");
}

#[test]
fn a_server_out_of_slots_says_so_and_reserved_slots_let_monitoring_in() {
    // 8 slots, 3 for superusers, and from 16 on 2 for pg_use_reserved_connections.
    let reserved = harness::server_major() >= 16;
    let mut extra_conf = Vec::new();
    if reserved {
        extra_conf.push("reserved_connections = 2".to_string());
    }
    let cluster = Cluster::start_with(
        "faults-full",
        harness::ClusterOptions {
            max_connections: 8,
            extra_conf,
            ..harness::ClusterOptions::default()
        },
    );
    cluster.execute("CREATE ROLE app LOGIN");
    let usable = if reserved { 3 } else { 5 };
    let _sessions: Vec<_> = (0..usable).map(|_| cluster.client_as("app")).collect();
    let (out, took) = timed(&mut cluster.plugin("check_pg_connections"));
    row(
        "max_connections exhausted",
        "CRITICAL naming reserved_connections",
        &out,
        took,
    );
    out.expect("CRITICAL");
    assert!(
        out.summary().contains(": the server is out of connection slots (max_connections); from PostgreSQL 16, reserved_connections and GRANT pg_use_reserved_connections TO \"monitor\" keep monitoring working"),
        "{}",
        out.summary()
    );
    if reserved {
        cluster.execute("GRANT pg_use_reserved_connections TO monitor");
        let (out, took) = timed(&mut cluster.plugin("check_pg_connections"));
        row(
            "max_connections exhausted, role with pg_use_reserved_connections (16+)",
            "CRITICAL reporting the saturation",
            &out,
            took,
        );
        out.expect("CRITICAL");
        assert!(
            out.summary().starts_with("4 of 3 connections used"),
            "{}",
            out.summary()
        );
    }
}

/// What sessions may put in pg_stat_activity: newlines, `|`, `=`, quotes, and
/// bytes that are not UTF-8 (a SQL_ASCII database takes any), with a query
/// text of 200 kB (kept to 100 kB, the largest track_activity_query_size of
/// PostgreSQL 12) beside them. No plugin output breaks: one status line with
/// the perfdata after its only `|`, perfdata that parses, at most 8 KB.
#[test]
fn hostile_text_in_pg_stat_activity_never_breaks_the_output() {
    let cluster = Cluster::start_with(
        "faults-hostile",
        harness::ClusterOptions {
            extra_conf: vec!["track_activity_query_size = '100kB'".into()],
            ..harness::ClusterOptions::default()
        },
    );
    cluster.execute(
        "CREATE DATABASE ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
    );
    use std::os::unix::ffi::OsStrExt;
    // Debian's client: the other majors' server packages have no psql.
    let ascii_psql = |user: &[u8], sql: &[u8]| {
        let mut psql = harness::as_server_user("psql");
        psql.args(["-X", "-q"])
            .args(cluster.connection_args())
            .arg("-U")
            .arg(std::ffi::OsStr::from_bytes(user))
            .args(["-d", "ascii", "-c"])
            .arg(std::ffi::OsStr::from_bytes(sql))
            .env("PGCLIENTENCODING", "SQL_ASCII")
            .env("PGAPPNAME", "evil|app")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        psql
    };
    // A role whose name is not UTF-8 either (roles are shared by every database).
    let created = ascii_psql(b"postgres", b"CREATE ROLE \"r\xff|\" LOGIN").status();
    assert!(created.unwrap().success());
    let hostile = b"SELECT pg_sleep(60) /* a|b=c 'q' \n| WARNING x=1;2;3 \xff\xfe\xc3( */";
    let mut invalid = ascii_psql(b"r\xff|", hostile).spawn().unwrap();
    let big = format!("SELECT pg_sleep(60) /* é|{} */", "x".repeat(200_000));
    let mut client = cluster.client();
    let long = std::thread::spawn(move || {
        let _ = client.simple_query(&big);
    });
    cluster.wait_for(
        "SELECT count(*) = 2 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' AND state = 'active'",
        "both hostile sessions",
    );

    let runs: [(&str, &[&str]); 6] = [
        ("check_pg_long_running", &["-w", "0", "-c", "0"]),
        ("check_pg_long_running", &["-v"]),
        ("check_pg_connections", &["-v"]),
        ("check_pg_locks", &["-v"]),
        ("check_pg_roles", &["-v"]),
        ("check_pg_health", &[]),
    ];
    for (plugin, args) in runs {
        let out = cluster.plugin(plugin).args(args).run();
        let context = format!("{plugin} {args:?}:\n{}", out.stdout);
        assert!((0..=2).contains(&out.code), "{context}");
        assert!(
            out.stdout.len() <= 8000,
            "{} bytes: {context}",
            out.stdout.len()
        );
        let first = out.status_line();
        assert!(first.matches('|').count() <= 1, "{context}");
        assert!(
            !out.stdout.lines().skip(1).any(|l| l.contains('|')),
            "{context}"
        );
        // Every perfdata item parses (the harness's own reader panics if not).
        assert!(!out.perfdata().is_empty(), "{context}");
        if plugin == "check_pg_long_running" {
            assert!(
                out.long_output()
                    .iter()
                    .any(|l| l.contains("(r\u{fffd}/@ascii, evil/app)")
                        && l.contains("pg_sleep(60) /* a/b=c 'q' / WARNING")),
                "{context}"
            );
        }
    }
    let json = cluster
        .plugin("check_pg_long_running")
        .args(&["-w", "0", "--format", "json"])
        .run();
    let parsed = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys; d=json.load(sys.stdin); assert d['state']=='WARNING', d",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(json.stdout.as_bytes())?;
            child.wait()
        })
        .unwrap();
    assert!(parsed.success(), "{}", json.stdout);

    cluster.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'",
    );
    let _ = invalid.wait();
    long.join().unwrap();
}
