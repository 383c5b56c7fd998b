//! `pgvigil setup-check` on a real server: a bare login role is told every
//! gap with the SQL that closes it; that SQL run, the same role is in place;
//! a superuser is in place, and told it is more than monitoring needs.

use harness::{plugin::pgvigil, server_major, Cluster, PluginOutput, PluginRun, PLAIN};

fn setup_check(cluster: &Cluster, user: &str) -> PluginOutput {
    cluster
        .point(PluginRun::at(&pgvigil()))
        .args(&["setup-check", "-U", user])
        .run()
}

/// The SQL of every `fix:` line, statement by statement, comments dropped;
/// and whether one asks for a restart.
fn fixes(out: &PluginOutput) -> (Vec<String>, bool) {
    let mut statements = Vec::new();
    let mut restart = false;
    for line in out.stdout.lines() {
        let Some(fix) = line.trim_start().strip_prefix("fix: ") else {
            continue;
        };
        let (sql, comment) = fix.split_once("--").unwrap_or((fix, ""));
        restart |= comment.contains("restart");
        statements.extend(
            sql.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    (statements, restart)
}

#[test]
fn a_bare_role_then_the_sql_it_was_given_then_a_superuser() {
    let cluster = Cluster::start("setup-check");
    // Something the bare role may not read: a sequence and a table.
    cluster.execute("CREATE TABLE orders (id serial PRIMARY KEY, note text)");

    let out = setup_check(&cluster, PLAIN);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .starts_with(&format!("pgvigil setup-check: role \"{PLAIN}\" on ")),
        "{}",
        out.stdout
    );
    for expected in [
        "MISSING every check: not a member of pg_monitor".to_string(),
        format!("fix: GRANT pg_monitor TO \"{PLAIN}\";"),
        "MISSING check_pg_sequences: 1 sequence in database postgres whose value the role may not read".to_string(),
        "MISSING check_pg_bloat: 1 table of database postgres whose statistics (pg_stats) the role may not read".to_string(),
        format!("fix: GRANT pg_signal_backend TO \"{PLAIN}\";"),
        "MISSING check_pg_log: logging_collector is off".to_string(),
    ] {
        assert!(out.stdout.contains(&expected), "{expected} in:\n{}", out.stdout);
    }
    if server_major() >= 16 {
        assert!(
            out.stdout
                .contains(&format!("GRANT pg_use_reserved_connections TO \"{PLAIN}\"")),
            "{}",
            out.stdout
        );
    }

    // Run what it said (twice: the log's own gaps show once pg_monitor
    // lets the role ask where the log is).
    for _ in 0..2 {
        let out = setup_check(&cluster, PLAIN);
        let (statements, restart) = fixes(&out);
        for sql in statements {
            cluster.execute(&sql);
        }
        if restart {
            cluster.restart();
        }
    }
    let out = setup_check(&cluster, PLAIN);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .next()
            .unwrap()
            .ends_with("every check can do its full job"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("MISSING"), "{}", out.stdout);
    assert!(out
        .stdout
        .contains("OK      every check: member of pg_monitor, its privileges inherited"));

    // A superuser can do everything, which is the warning.
    let out = setup_check(&cluster, "postgres");
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("is a superuser: it may do everything, and far more than monitoring needs"),
        "{}",
        out.stdout
    );

    // No server: it cannot tell, exit 3.
    cluster.stop();
    let out = setup_check(&cluster, PLAIN);
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert!(
        out.stdout
            .starts_with("pgvigil setup-check: cannot connect to "),
        "{}",
        out.stdout
    );
}
