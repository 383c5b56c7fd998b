//! check_pg_relation_size on real tables: the largest named with its kind,
//! filters and kinds, sizes estimated from pg_class, growth between two
//! runs, a locked table skipped, and every database with --all-databases.

use std::time::Duration;

use harness::{temp_dir, Cluster};

const PLUGIN: &str = "check_pg_relation_size";

#[test]
fn the_largest_relations_each_against_sizes_and_growth() {
    let cluster = Cluster::start("relation-size");
    cluster.execute(
        "CREATE TABLE audit (id int PRIMARY KEY, note text);
         INSERT INTO audit SELECT g, repeat('x', 300) FROM generate_series(1, 30000) g;
         CREATE TABLE blobs (id int, body text);
         INSERT INTO blobs SELECT g, (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 200))
           FROM generate_series(1, 200) g;
         CREATE TABLE small (id int);",
    );
    let size = |sql: &str| -> f64 {
        cluster
            .client()
            .query_one(&format!("SELECT ({sql})::float8"), &[])
            .unwrap()
            .get(0)
    };
    let audit = size("pg_total_relation_size('audit')");
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-v", "--min-size", "0"])
        .run();
    out.expect("OK");
    assert!(
        out.summary().starts_with("table public.audit "),
        "{}",
        out.summary()
    );
    assert!(out
        .summary()
        .ends_with("; growth: first run, baseline saved"));
    assert_eq!(out.perf("largest").value, audit);
    let lines = out.long_output();
    assert!(lines[0].starts_with("OK table public.audit "), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("OK index public.audit_pkey on public.audit ")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("OK TOAST of public.blobs ")),
        "{lines:#?}"
    );

    // Over a size: WARNING naming it; each kind alone; the filters.
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "1MB", "-c", "1GB"])
        .run();
    out.expect("WARNING");
    assert!(out.long_output()[0].starts_with("WARNING table public.audit "));
    assert!(out.hint().unwrap().contains("partition by time"));
    // Under --min-size (1MB by default) a relation is left out.
    let out = cluster.plugin(PLUGIN).args(&["--kind", "index"]).run();
    out.expect("OK");
    assert!(
        out.summary()
            .starts_with("no relation of 1024 kB or more; growth: "),
        "{}",
        out.summary()
    );
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--kind", "index", "--min-size", "0"])
        .run();
    assert!(
        out.summary()
            .starts_with("index public.audit_pkey on public.audit "),
        "{}",
        out.summary()
    );
    let out = cluster.plugin(PLUGIN).args(&["--kind", "toast"]).run();
    assert!(
        out.summary().starts_with("TOAST of public.blobs "),
        "{}",
        out.summary()
    );
    let out = cluster
        .plugin(PLUGIN)
        .args(&[
            "--exclude",
            "^public\\.audit",
            "--kind",
            "table",
            "--min-size",
            "0",
        ])
        .run();
    assert!(
        out.summary().starts_with("table public.blobs "),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("relations").value, 2.0);

    // --estimate: pg_class.relpages as of the last VACUUM, not the files.
    cluster.execute("VACUUM ANALYZE audit, blobs");
    let estimate = size(
        "(SELECT (c.relpages + coalesce(t.relpages, 0)
                  + (SELECT coalesce(sum(x.relpages), 0) FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
                      WHERE i.indrelid IN (c.oid, c.reltoastrelid)))
                 * current_setting('block_size')::int
           FROM pg_class c LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
          WHERE c.oid = 'audit'::regclass)",
    );
    let audit = size("pg_total_relation_size('audit')");
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-v", "--estimate", "--min-size", "0"])
        .run();
    out.expect("OK");
    assert!(
        out.summary().starts_with("table public.audit ")
            && out
                .summary()
                .contains(" checked, sizes estimated from pg_class.relpages; growth: "),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("largest").value, estimate);
    // Right after a VACUUM the estimate is the files' size but for the
    // free space and visibility maps.
    assert!(
        (audit - estimate).abs() / audit < 0.05,
        "estimate {estimate}, exact {audit}"
    );
    assert!(
        out.long_output()
            .iter()
            .any(|l| l.starts_with("OK TOAST of public.blobs ")),
        "{}",
        out.stdout
    );

    // Growth between two runs, judged by its own ranges.
    let state = temp_dir("relation-size-state");
    let run = |args: &[&str]| {
        cluster
            .plugin(PLUGIN)
            .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
            .args(&["--growth-interval", "1s"])
            .args(args)
            .run()
    };
    run(&[]).expect("OK");
    std::thread::sleep(Duration::from_millis(1100));
    cluster.execute(
        "INSERT INTO audit SELECT g, repeat('y', 300) FROM generate_series(30001, 60000) g",
    );
    let out = run(&["--growth", "1GB", "--growth-critical", "100TB"]);
    out.expect("WARNING");
    assert!(
        out.summary().starts_with("table public.audit ") && out.summary().contains(" per day); "),
        "{}",
        out.summary()
    );
    assert!(out.summary().contains("; growth measured in the last "));
    assert!(out.perf("max_growth_per_day").value > 1e9, "{}", out.stdout);
}

#[test]
fn a_locked_table_is_skipped_and_named() {
    let cluster = Cluster::start("relation-size-locked");
    cluster.execute("CREATE TABLE big (id int); CREATE TABLE other (id int)");
    let mut holder = cluster.client();
    holder.batch_execute("BEGIN; LOCK TABLE big").unwrap();
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert!(
        out.summary()
            .contains("; 1 relation skipped (locked by another session)"),
        "{}",
        out.summary()
    );
    let line = out.long_output()[0];
    assert!(
        line.starts_with("public.big skipped: pid ")
            && line.contains(" holds ACCESS EXCLUSIVE on it"),
        "{line}"
    );
    assert_eq!(out.perf("skipped").value, 1.0);
    // An estimate opens nothing, so nothing is skipped.
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--estimate", "--min-size", "0", "-v"])
        .run();
    out.expect("OK");
    assert!(!out.summary().contains("skipped"), "{}", out.summary());
    assert_eq!(out.perf("skipped").value, 0.0);
    assert!(
        out.long_output()
            .iter()
            .any(|l| l.starts_with("OK table public.big ")),
        "{}",
        out.stdout
    );
    holder.batch_execute("ROLLBACK").unwrap();
}

#[test]
fn every_database_with_all_databases() {
    let cluster = Cluster::start("relation-size-all");
    cluster.execute("CREATE DATABASE shop");
    cluster.execute_in(
        "shop",
        "CREATE TABLE orders AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g",
    );
    let out = cluster.plugin(PLUGIN).arg("--all-databases").run();
    out.expect("OK");
    assert!(
        out.summary().starts_with("table shop.public.orders "),
        "{}",
        out.summary()
    );
    assert!(out.summary().contains(" checked in 2 databases"));
}
