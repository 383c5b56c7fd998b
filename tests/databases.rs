//! `--all-databases --jobs N`: the checks that visit every database find the
//! same, in the same order, whether they look into one database at a time
//! or several at once; a database that refuses the role is named either way.

use harness::{temp_dir, Cluster, PluginOutput, MONITOR};

/// Each check that visits databases, with options that make it report
/// something in every database.
const CHECKS: &[(&str, &[&str])] = &[
    ("check_pg_sequences", &[]),
    ("check_pg_indexes", &["--min-size", "0", "-w", "1"]),
    ("check_pg_relation_size", &["--min-size", "0", "-w", "1kB"]),
    ("check_pg_vacuum", &[]),
    (
        "check_pg_bloat",
        &["--min-size", "0", "--include", "^public\\."],
    ),
    ("check_pg_version", &[]),
];

/// What a run shows a user, with the figures that move between two runs a
/// moment apart (ages, durations, sizes) masked, but the databases' names
/// (`db07` kept as `dbah`) so that their order still counts.
fn seen(out: &PluginOutput) -> (i32, String) {
    let text = &out.stdout;
    let mut masked = String::new();
    let mut in_name = false;
    for (i, c) in text.char_indices() {
        if c.is_ascii_digit() {
            in_name |= text[..i].ends_with("db");
            masked.push(if in_name {
                (b'a' + (c as u8 - b'0')) as char
            } else {
                '#'
            });
        } else {
            in_name = false;
            masked.push(c);
        }
    }
    (out.code, masked)
}

#[test]
fn several_databases_at_once_find_what_one_at_a_time_finds() {
    let cluster = Cluster::start("databases");
    let names: Vec<String> = (1..=12).map(|i| format!("db{i:02}")).collect();
    for name in &names {
        cluster.execute(&format!("CREATE DATABASE {name}"));
        // A sequence near its end, a duplicate index, a table of some size.
        cluster.execute_in(
            name,
            &format!(
                "CREATE SEQUENCE ids AS smallint; SELECT setval('ids', 31000); \
             CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 2000) g; \
             CREATE INDEX t_a ON t (id); CREATE INDEX t_b ON t (id); ANALYZE t; \
             GRANT SELECT ON t, ids TO {MONITOR}"
            ),
        );
    }
    cluster.execute("CREATE DATABASE locked");
    cluster.execute("REVOKE CONNECT ON DATABASE locked FROM PUBLIC");

    for (plugin, args) in CHECKS {
        // Each run from a state of its own: both are first runs.
        let run = |jobs: &str| {
            let state = temp_dir("databases-state");
            cluster
                .plugin(plugin)
                .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
                .args(&["--all-databases", "--jobs", jobs])
                .args(args)
                .run()
        };
        let one = run("1");
        let four = run("4");
        assert_eq!(seen(&one), seen(&four), "{plugin}: --jobs 1 then --jobs 4");
        assert!(
            four.summary().contains("1 database unreachable (locked)"),
            "{plugin}: {}",
            four.summary()
        );
        assert!(
            four.long_output().contains(
                &"database locked not checked: permission denied for database \"locked\""
            ),
            "{plugin}: {:?}",
            four.long_output()
        );
    }

    // A role held to --jobs + 1 sessions (its CONNECTION LIMIT) reaches
    // every database: a worker that opens its next session while the
    // server still ends its last waits for the slot.
    cluster.execute(&format!("ALTER ROLE {MONITOR} CONNECTION LIMIT 3"));
    for (plugin, args) in CHECKS {
        let out = cluster
            .plugin(plugin)
            .args(&["--all-databases", "--jobs", "2"])
            .args(args)
            .run();
        assert!(
            out.summary().ends_with("; 1 database unreachable (locked)")
                || out.summary().contains("; 1 database unreachable (locked) "),
            "{plugin}: {}",
            out.stdout
        );
    }
    cluster.execute(&format!("ALTER ROLE {MONITOR} CONNECTION LIMIT -1"));

    // Every database's finding, in name order.
    let out = cluster
        .plugin("check_pg_sequences")
        .args(&["--all-databases", "--jobs", "4"])
        .run();
    out.expect("CRITICAL");
    let named: Vec<String> = out
        .long_output()
        .iter()
        .filter_map(|l| l.strip_prefix("CRITICAL sequence "))
        .filter_map(|l| l.split('.').next())
        .map(str::to_string)
        .collect();
    assert_eq!(named, names, "{:?}", out.long_output());
}

#[test]
fn the_servers_autovacuum_is_read_when_the_own_database_is_left_out() {
    let cluster = Cluster::start("databases-own");
    cluster.execute("CREATE DATABASE shop");
    cluster.execute_in(
        "shop",
        "CREATE TABLE t (id int) WITH (autovacuum_enabled = off)",
    );
    // autovacuum and its workers come with the own database's statement,
    // or on their own when the filters leave that database out.
    for exclude in ["^none$", "^postgres$"] {
        let out = cluster
            .plugin("check_pg_vacuum")
            .args(&["--all-databases", "--exclude-db", exclude])
            .run();
        out.expect("WARNING");
        // Named with its database when more than one was visited.
        assert!(
            out.summary().contains("public.t: ") && out.summary().contains("autovacuum disabled"),
            "{exclude}: {}",
            out.summary()
        );
        assert_eq!(out.perf("autovacuum_busy").value, 0.0, "{}", out.stdout);
    }
    cluster.execute("ALTER SYSTEM SET autovacuum = off");
    cluster.execute("SELECT pg_reload_conf()");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = cluster
        .plugin("check_pg_vacuum")
        .args(&["--all-databases", "--exclude-db", "^postgres$", "-v"])
        .run();
    out.expect("WARNING");
    assert!(
        out.summary()
            .ends_with("; autovacuum is off for the server"),
        "{}",
        out.stdout
    );
}
