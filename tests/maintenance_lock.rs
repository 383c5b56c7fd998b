//! A table under maintenance: one session holds ACCESS EXCLUSIVE on it, as
//! ALTER TABLE, VACUUM FULL, TRUNCATE, REINDEX and CLUSTER do. Every check
//! that reads relations still answers within its -t, judges the other
//! relations, and names the skipped one with its holder.

use harness::{Cluster, PluginOutput};

/// The long output's line for the locked table, checked to name its holder.
fn skipped_line(out: &PluginOutput, holder: i32) -> String {
    let line = out
        .long_output()
        .into_iter()
        .find(|l| l.contains("public.busy skipped: "))
        .unwrap_or_else(|| panic!("no skipped line:\n{}", out.stdout))
        .to_string();
    let named =
        format!("skipped: pid {holder} holds ACCESS EXCLUSIVE on it, its transaction open ");
    assert!(line.contains(&named), "{line}");
    assert!(
        line.ends_with("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE)"),
        "{line}"
    );
    line
}

#[test]
fn a_locked_table_is_skipped_and_named_while_the_rest_is_judged() {
    let cluster = Cluster::start("maintenance-lock");
    for sql in [
        "CREATE EXTENSION pgstattuple",
        // Two tables over 1 MB with an index each, statistics gathered.
        "CREATE TABLE busy AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 30000) g",
        "CREATE INDEX busy_id ON busy (id)",
        "CREATE TABLE calm AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 30000) g",
        "CREATE INDEX calm_id ON calm (id)",
        "CREATE INDEX calm_id_again ON calm (id)",
        "VACUUM ANALYZE busy, calm",
    ] {
        cluster.execute(sql);
    }
    let mut holder = cluster.client();
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    holder
        .batch_execute("BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let run = |plugin: &str, args: &[&str]| {
        let out = cluster.plugin(plugin).args(&["-t", "5"]).args(args).run();
        eprintln!("{}", out.stdout);
        out
    };

    // Bloat: calm and its indexes judged, busy skipped.
    let out = run("check_pg_bloat", &["--min-size", "1MB", "-v"]);
    out.expect("OK");
    assert!(
        out.summary()
            .ends_with("; 1 relation skipped (locked by another session)"),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("relations").value, 1.0, "{}", out.stdout);
    assert_eq!(out.perf("skipped").value, 1.0);
    skipped_line(&out, pid);
    assert!(out.stdout.contains("table public.calm:"), "{}", out.stdout);

    // Indexes: the duplicate on calm is still found.
    let out = run("check_pg_indexes", &["-w", "0", "-v"]);
    out.expect("WARNING");
    assert_eq!(out.perf("duplicate").value, 1.0, "{}", out.stdout);
    assert_eq!(out.perf("skipped").value, 1.0, "{}", out.stdout);
    skipped_line(&out, pid);

    // The size of every database is read; the largest tables list the
    // locked one as skipped.
    let state = harness::temp_dir("maintenance-lock-state");
    let out = run(
        "check_pg_db_size",
        &["-v", "--state-dir", state.to_str().unwrap()],
    );
    out.expect("OK");
    assert!(
        out.stdout.contains("\ntable public.calm: "),
        "{}",
        out.stdout
    );
    assert!(skipped_line(&out, pid).starts_with("table public.busy skipped: "));

    // The checks that read only statistics and the catalog never queued.
    run("check_pg_vacuum", &[]).expect("OK");
    run("check_pg_wraparound", &[]).expect("OK");

    holder.batch_execute("ROLLBACK").unwrap();
    let out = run("check_pg_bloat", &["--min-size", "1MB"]);
    out.expect("OK");
    assert_eq!(out.perf("skipped").value, 0.0);
}
