//! handle_pg_connections against a real server: idle sessions of an
//! application role are terminated (dry run first), while a protected role,
//! a superuser, a replication connection and an active query are left alone.

use std::thread;
use std::time::Duration;

use harness::{Cluster, ClusterOptions, PluginRun, MONITOR};

const HANDLER: &str = "handle_pg_connections";

fn pid(client: &mut postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0)
}

fn alive(cluster: &Cluster, pid: i32) -> bool {
    cluster
        .client()
        .query_one(
            "SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .unwrap()
        .get(0)
}

#[test]
fn idle_sessions_go_and_everything_else_stays() {
    let cluster = Cluster::start_with(
        "handle-connections",
        ClusterOptions {
            max_connections: 20,
            ..ClusterOptions::default()
        },
    );
    cluster.execute(
        "CREATE ROLE app LOGIN; CREATE ROLE keeper LOGIN;
         CREATE ROLE handler LOGIN IN ROLE pg_monitor, pg_signal_backend;",
    );
    let _standby = Cluster::standby_of(&cluster, "handle-standby");
    let mut apps: Vec<postgres::Client> = (0..3).map(|_| cluster.client_as("app")).collect();
    let app_pids: Vec<i32> = apps.iter_mut().map(pid).collect();
    let mut kept = cluster.client_as("keeper");
    let keeper_pid = pid(&mut kept);
    let mut admin = cluster.client();
    let superuser_pid = pid(&mut admin);
    let mut busy = cluster.client_as("app");
    let busy_pid = pid(&mut busy);
    let active = thread::spawn(move || {
        // Longer than the test on any machine, so that it is active at
        // every run (a loaded one once took longer than 8 s); cancelled below.
        let _ = busy.simple_query("SELECT pg_sleep(300)");
    });
    thread::sleep(Duration::from_millis(1300));
    let run = |user: &str, args: &[&str]| {
        cluster
            .plugin_as(HANDLER, user)
            .args(&["--idle-for", "1s", "--protect", "keeper"])
            .args(args)
            .run()
    };

    // A dry run names them and touches nothing.
    let out = run("handler", &[]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "handle_pg_connections: DRY RUN: would terminate 3 sessions idle for over 1 s (add --execute to do it)"
    );
    for pid in &app_pids {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!(
                "would terminate pid {pid} (app@postgres, application 'pgvigil-test', from local socket, idle "
            ))),
            "{pid}: {}",
            out.stdout
        );
    }
    assert!(lines.contains(&"left alone: 2 idle sessions (superusers, protected roles, other databases or users, over --max)"), "{}", out.stdout);
    assert!(app_pids.iter().all(|p| alive(&cluster, *p)));

    // Without pg_signal_backend --execute says so and does nothing.
    let out = run(MONITOR, &["--execute"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stdout,
        "handle_pg_connections: could not run: role \"monitor\" may not terminate sessions: GRANT pg_signal_backend TO \"monitor\"\n"
    );
    assert!(app_pids.iter().all(|p| alive(&cluster, *p)));

    // Not CRITICAL, or not yet HARD: nothing to do.
    for (state, kind) in [("WARNING", "HARD"), ("CRITICAL", "SOFT")] {
        let out = run(
            "handler",
            &[
                "--execute",
                "--state",
                state,
                "--state-type",
                kind,
                "--attempt",
                "2",
            ],
        );
        assert_eq!(out.code, 0);
        assert_eq!(
            out.stdout,
            format!("handle_pg_connections: nothing to do: the service is {state} ({kind}, attempt 2)\n")
        );
    }
    assert!(app_pids.iter().all(|p| alive(&cluster, *p)));

    // A HARD CRITICAL with --execute: exactly the idle app sessions go.
    let out = run(
        "handler",
        &[
            "--execute",
            "--state",
            "CRITICAL",
            "--state-type",
            "HARD",
            "--attempt",
            "3",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stdout.starts_with(
            "handle_pg_connections: terminated 3 sessions idle for over 1 s\nterminated pid "
        ),
        "{}",
        out.stdout
    );
    cluster.wait_for(
        &format!(
            "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid IN ({})",
            app_pids
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "the idle sessions to end",
    );
    for (what, pid) in [
        ("protected", keeper_pid),
        ("superuser", superuser_pid),
        ("active", busy_pid),
    ] {
        assert!(alive(&cluster, pid), "{what} session {pid} was terminated");
    }
    cluster.wait_for(
        "SELECT count(*) = 1 FROM pg_stat_replication WHERE state = 'streaming'",
        "the standby to keep streaming",
    );
    assert!(kept.simple_query("SELECT 1").is_ok());
    cluster.execute(&format!("SELECT pg_cancel_backend({busy_pid})"));
    active.join().unwrap();
}

#[test]
fn bad_options_and_an_unreachable_server_exit_1() {
    let out = PluginRun::new(HANDLER).args(&["--idle-for", "soon"]).run();
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .starts_with("handle_pg_connections: invalid value 'soon' for '--idle-for <DURATION>'"),
        "{}",
        out.stdout
    );
    let out = PluginRun::new(HANDLER)
        .args(&["-H", "/nonexistent", "-p", "5999"])
        .run();
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.starts_with("handle_pg_connections: could not run: cannot connect to socket /nonexistent/.s.PGSQL.5999"),
        "{}",
        out.stdout
    );
}
