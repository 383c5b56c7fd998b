//! check_pg_backup against real backups: dumps written by pg_dump into a
//! directory (old, fresh, shrunken, empty), and a pgBackRest repository on
//! local disk holding a real full backup of a test cluster that archives
//! through pgBackRest.
//!
//! Debian's pg_dump (15) and pgBackRest (2.45) handle servers up to 15: when
//! the matrix runs another major, these tests run again in a child process
//! against Debian's own server binaries.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::{as_server_user, run_ok, temp_dir, Cluster, ClusterOptions, PluginRun};

const PLUGIN: &str = "check_pg_backup";

/// The newest Debian server binaries.
fn debian_bindir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .expect("Debian's postgresql packages: run scripts/setup.sh")
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("pg_dump").exists())
        .collect();
    found.sort();
    found.pop().expect("a Debian pg_dump").1
}

/// True when this process runs on Debian's server binaries; otherwise runs
/// `test` in a child that does, asserts it passed, and returns false.
fn on_debian_server(test: &str) -> bool {
    let debian = debian_bindir();
    match std::env::var_os("PGVIGIL_PG_BINDIR") {
        Some(dir) if std::path::Path::new(&dir) != debian => {
            let out = Command::new(std::env::current_exe().unwrap())
                .args([test, "--exact", "--nocapture", "--test-threads=1"])
                .env("PGVIGIL_PG_BINDIR", &debian)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{test} on Debian's server:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
        _ => true,
    }
}

fn pg_dump(cluster: &Cluster, to: &Path) {
    run_ok(
        Command::new(debian_bindir().join("pg_dump"))
            .args(cluster.connection_args())
            .args(["-d", "shop", "-f"])
            .arg(to),
        "pg_dump",
    );
}

fn touch(path: &Path, when: &str) {
    run_ok(Command::new("touch").args(["-d", when]).arg(path), "touch");
}

#[test]
fn dumps_old_fresh_shrunken_and_empty() {
    if !on_debian_server("dumps_old_fresh_shrunken_and_empty") {
        return;
    }
    let cluster = Cluster::start("backup-dumps");
    cluster.execute("CREATE DATABASE shop");
    cluster.execute_in(
        "shop",
        "CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS ref FROM generate_series(1, 20000) g",
    );
    let staged = temp_dir("backup-staged");
    pg_dump(&cluster, &staged.join("full.sql"));
    cluster.execute_in("shop", "DELETE FROM orders WHERE id % 10 <> 0");
    pg_dump(&cluster, &staged.join("small.sql"));

    let dumps = temp_dir("backup-dumps-dir");
    let dir = dumps.display().to_string();
    // No server is needed: the check reads the directory only.
    let run = |args: &[&str]| {
        PluginRun::new(PLUGIN)
            .args(&["-H", "/nonexistent", "-p", "1", "--dump-dir", &dir])
            .args(args)
            .run()
    };

    let out = run(&[]);
    out.expect("CRITICAL");
    assert_eq!(out.summary(), format!("no dump in {dir} matching '*'"));

    // Three days old: past the default 49 h.
    fs::copy(staged.join("full.sql"), dumps.join("shop-1.sql")).unwrap();
    touch(&dumps.join("shop-1.sql"), "3 days ago");
    let out = run(&["--pattern", "shop-*.sql"]);
    out.expect("CRITICAL");
    assert!(
        out.summary().starts_with("newest dump shop-1.sql is 3 d "),
        "{}",
        out.summary()
    );
    let age = out.perf("age");
    assert!(age.value >= 3.0 * 86400.0, "{age:?}");
    assert_eq!((age.warn.as_str(), age.crit.as_str()), ("90000", "176400"));

    // A fresh one of the same size.
    fs::copy(staged.join("full.sql"), dumps.join("shop-2.sql")).unwrap();
    touch(&dumps.join("shop-2.sql"), "1 hour ago");
    let out = run(&["--pattern", "shop-*.sql"]);
    out.expect("OK");
    assert!(
        out.summary().ends_with(&format!("; 2 dumps in {dir}")),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("size").value, out.perf("previous_size").value);

    // A dump a tenth of the one before: shrank by about 90%.
    fs::copy(staged.join("small.sql"), dumps.join("shop-3.sql")).unwrap();
    let out = run(&["--pattern", "shop-*.sql"]);
    out.expect("WARNING");
    assert!(
        out.summary().contains("% smaller than the one before ("),
        "{}",
        out.summary()
    );
    let shrink = 1.0 - out.perf("size").value / out.perf("previous_size").value;
    assert!(shrink > 0.8 && shrink < 0.95, "{shrink}");
    // A larger share allowed: fine.
    run(&["--pattern", "shop-*.sql", "--max-shrink", "95%"]).expect("OK");
    // Another database's small dump, written last to the same directory,
    // follows its own dumps, not shop's (every database dumped nightly to
    // one directory warned every night).
    // (shop-3 set back: the file written before tiny-3 is the full shop-2.)
    touch(&dumps.join("shop-3.sql"), "2 hours ago");
    fs::copy(staged.join("small.sql"), dumps.join("tiny-3.sql")).unwrap();
    let out = run(&["--pattern", "*.sql"]);
    out.expect("OK");
    assert!(
        out.summary().starts_with("newest dump tiny-3.sql "),
        "{}",
        out.stdout
    );
    fs::remove_file(dumps.join("tiny-3.sql")).unwrap();

    // An empty newest dump: the job failed.
    fs::write(dumps.join("shop-4.sql"), "").unwrap();
    let out = run(&["--pattern", "shop-*.sql"]);
    out.expect("CRITICAL");
    assert!(
        out.summary().contains(" (empty: the dump failed)"),
        "{}",
        out.summary()
    );
    assert!(out
        .hint()
        .unwrap()
        .starts_with("look at the backup job's own log"));

    let out = run(&["--pattern", "*.dump"]);
    out.expect("CRITICAL");
    let out = PluginRun::new(PLUGIN)
        .args(&["--dump-dir", "/nonexistent/dumps"])
        .run();
    out.expect("UNKNOWN");
    assert_eq!(
        out.summary(),
        "cannot read dump directory /nonexistent/dumps: No such file or directory (os error 2)"
    );
}

#[test]
fn a_pgbackrest_repository_with_a_real_full_backup() {
    if !on_debian_server("a_pgbackrest_repository_with_a_real_full_backup") {
        return;
    }
    // archive_mode on now; the command goes through pgBackRest once it has
    // its configuration, which needs the data directory's path.
    let cluster = Cluster::start_with(
        "backup-pgbackrest",
        ClusterOptions {
            archive_command: Some("/bin/true".into()),
            // pgBackRest verifies page checksums where the cluster has them.
            data_checksums: true,
            ..ClusterOptions::default()
        },
    );
    let repo = temp_dir("backup-repo");
    let conf = repo.join("pgbackrest.conf");
    fs::write(
        &conf,
        format!(
            "[global]\nrepo1-path={r}/repo\nlog-path={r}\nlock-path={r}\nstart-fast=y\n\
             log-level-console=warn\nrepo1-retention-full=2\n\
             [test]\npg1-path={data}\npg1-socket-path={socket}\npg1-port={port}\n",
            r = repo.display(),
            data = cluster.data.display(),
            socket = cluster.socket_dir.display(),
            port = cluster.port
        ),
    )
    .unwrap();
    harness::chown(&conf);
    let conf_arg = format!("--config={}", conf.display());
    cluster.execute(&format!(
        "ALTER SYSTEM SET archive_command = 'pgbackrest {conf_arg} --stanza=test archive-push %p'"
    ));
    cluster.execute("SELECT pg_reload_conf()");
    let pgbackrest = |args: &[&str]| {
        run_ok(
            as_server_user("pgbackrest")
                .arg(&conf_arg)
                .arg("--stanza=test")
                .args(args),
            "pgbackrest",
        )
    };
    pgbackrest(&["stanza-create"]);

    // No backup yet: pgBackRest says so, and that is CRITICAL.
    let config = conf.display().to_string();
    let run = |args: &[&str]| {
        cluster
            .plugin(PLUGIN)
            .args(&["--pgbackrest", "test", "--pgbackrest-config", &config])
            .args(args)
            .run()
    };
    let out = run(&[]);
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .starts_with("stanza test: no valid backups (status 2)"),
        "{}",
        out.summary()
    );

    pgbackrest(&["--type=full", "backup"]);
    let out = run(&[]);
    out.expect("OK");
    let summary = out.summary();
    assert!(summary.starts_with("newest full "), "{summary}");
    assert!(summary.contains("F is "), "{summary}");
    assert!(summary.contains("; archive up to 0000000"), "{summary}");
    assert_eq!(out.perf("backups").value, 1.0);
    assert!(out.perf("full_size").value > 1_000_000.0);
    assert!(out.perf("archive_behind").value <= 1.0);

    // The same backup against a tighter freshness: stale.
    std::thread::sleep(Duration::from_millis(2100));
    run(&["-w", "1s", "-c", "1h"]).expect("WARNING");
    let out = run(&["-w", "1s", "-c", "2s"]);
    out.expect("CRITICAL");
    assert!(out.perf("age").value >= 2.0);

    // Retention kept in view: one good full backup, three wanted.
    let out = run(&["--min-full", "3"]);
    out.expect("WARNING");
    assert!(
        out.summary()
            .starts_with("1 good full backup kept, fewer than --min-full 3"),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("full_backups").warn, "3:");

    // A page whose checksum fails: pgBackRest still completes the backup
    // and marks it error, which the age alone would never show.
    cluster.execute(
        "CREATE TABLE damaged AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 1000) g; CHECKPOINT",
    );
    let file: String = cluster
        .client()
        .query_one("SELECT pg_relation_filepath('damaged')", &[])
        .unwrap()
        .get(0);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(cluster.data.join(&file))
            .unwrap();
        f.seek(SeekFrom::Start(8192 + 4000)).unwrap();
        f.write_all(&[0x5a; 64]).unwrap();
    }
    let _ = as_server_user("pgbackrest")
        .arg(&conf_arg)
        .args(["--stanza=test", "--type=full", "backup"])
        .output()
        .unwrap();
    let out = run(&[]);
    eprintln!("{}", out.stdout);
    out.expect("WARNING");
    assert!(
        out.summary().starts_with("newest backup ")
            && out.summary().contains("F (full) has errors"),
        "{}",
        out.summary()
    );
    // Only the good full counts.
    assert_eq!(out.perf("full_backups").value, 1.0);

    let out = cluster
        .plugin(PLUGIN)
        .args(&["--pgbackrest", "nosuch", "--pgbackrest-config", &config])
        .run();
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .starts_with("stanza nosuch: missing stanza path (status 1)"),
        "{}",
        out.summary()
    );
    let out = cluster
        .plugin(PLUGIN)
        .args(&[
            "--pgbackrest",
            "test",
            "--pgbackrest-config",
            "/nonexistent.conf",
        ])
        .run();
    out.expect("UNKNOWN");
    assert!(
        out.summary().starts_with("pgbackrest info failed ("),
        "{}",
        out.summary()
    );
}
