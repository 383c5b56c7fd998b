//! The state store and rates between runs, through check_pg_deadlocks with
//! real deadlocks: baseline, interval, statistics reset, server restart,
//! corrupt and truncated state files, 50 runs at once, no usable directory.

use std::fs;
use std::path::{Path, PathBuf};

use harness::{temp_dir, Cluster, ClusterOptions, PluginOutput};

const PLUGIN: &str = "check_pg_deadlocks";

fn run(cluster: &Cluster, state: &Path) -> PluginOutput {
    let out = cluster
        .plugin(PLUGIN)
        .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
        .run();
    eprintln!("{}", out.stdout.trim_end());
    out
}

/// A real deadlock, counted once the sessions have reported their statistics.
fn deadlock(cluster: &Cluster) {
    cluster.deadlock();
    cluster.wait_for_stats(
        "postgres",
        "SELECT deadlocks >= 1 FROM pg_stat_database WHERE datname = 'postgres'",
        "the deadlock counted",
    );
}

/// OK, with a count over the interval since the previous run.
fn expect_none_since_last_run(out: &PluginOutput) {
    out.expect("OK");
    assert!(
        out.summary().starts_with("0 deadlocks in the last "),
        "{}",
        out.summary()
    );
}

fn state_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one state file, no leftovers: {files:?}");
    files.into_iter().next().unwrap()
}

#[test]
fn deadlocks_between_runs_through_resets_restarts_and_bad_state() {
    let cluster = Cluster::start_with(
        "rates",
        ClusterOptions {
            extra_conf: vec!["deadlock_timeout = 100ms".into()],
            ..ClusterOptions::default()
        },
    );
    cluster.execute(
        "CREATE TABLE pairs (id int PRIMARY KEY, n int); INSERT INTO pairs VALUES (1, 0), (2, 0)",
    );
    let state = temp_dir("rates-state");

    let out = run(&cluster, &state);
    out.expect("OK");
    assert_eq!(out.summary(), "first run, baseline saved");
    assert_eq!(out.perf("deadlocks_total").uom, "c");
    let file = state_file(&state);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    deadlock(&cluster);
    let out = run(&cluster, &state);
    out.expect("WARNING");
    let summary = out.summary();
    assert!(summary.starts_with("1 deadlock in the last "), "{summary}");
    assert!(summary.ends_with(" (postgres 1)"), "{summary}");
    let deadlocks = out.perf("deadlocks");
    assert_eq!((deadlocks.value, deadlocks.warn.as_str()), (1.0, "0"));

    expect_none_since_last_run(&run(&cluster, &state));

    // A statistics reset starts a new baseline instead of a negative count.
    cluster.execute("SELECT pg_stat_reset()");
    cluster.wait_for_stats(
        "postgres",
        "SELECT stats_reset IS NOT NULL FROM pg_stat_database WHERE datname = 'postgres'",
        "the reset",
    );
    let out = run(&cluster, &state);
    out.expect("OK");
    assert!(
        out.summary()
            .starts_with("statistics of database postgres were reset since the last run (at "),
        "{}",
        out.summary()
    );
    assert!(out.summary().ends_with("): new baseline saved"));
    run(&cluster, &state).expect("OK");

    // So does a restart.
    cluster.restart();
    let out = run(&cluster, &state);
    out.expect("OK");
    assert!(
        out.summary()
            .starts_with("server restarted since the last run (at "),
        "{}",
        out.summary()
    );

    // A corrupt or truncated file is a first run with a note, once.
    let file = state_file(&state);
    let good = fs::read_to_string(&file).unwrap();
    for (bad, why) in [
        ("garbage\n".to_string(), "it is not a pgvigil state file"),
        (good[..good.len() / 2].to_string(), ""),
        ("pgvigil-state 99\n".to_string(), "another format version"),
    ] {
        fs::write(&file, bad).unwrap();
        let out = run(&cluster, &state);
        out.expect("OK");
        let summary = out.summary();
        assert!(
            summary.starts_with(&format!("state file {} was unusable (", file.display())),
            "{summary}"
        );
        assert!(summary.contains(why), "{summary}");
        assert!(summary.ends_with("): new baseline saved"), "{summary}");
        expect_none_since_last_run(&run(&cluster, &state));
    }
}

#[test]
fn fifty_runs_at_once_leave_a_state_the_next_run_reads() {
    let cluster = Cluster::start_with(
        "rates-parallel",
        ClusterOptions {
            max_connections: 70,
            ..ClusterOptions::default()
        },
    );
    let state = temp_dir("rates-parallel-state");
    let runs: Vec<_> = (0..50)
        .map(|_| {
            let mut run = cluster.plugin(PLUGIN);
            run.env("PGVIGIL_STATE_DIR", state.to_str().unwrap());
            std::thread::spawn(move || run.run())
        })
        .collect();
    for r in runs {
        let out = r.join().unwrap();
        assert_eq!(out.code, 0, "{}", out.stdout);
    }
    state_file(&state);
    expect_none_since_last_run(&run(&cluster, &state));
}

#[test]
fn a_state_directory_that_cannot_be_used_is_unknown_naming_it() {
    let cluster = Cluster::start("rates-unwritable");
    let base = temp_dir("rates-unwritable");
    // Under a plain file: no user, root included, can create it.
    let blocker = base.join("not-a-directory");
    fs::write(&blocker, "").unwrap();
    let dir = blocker.join("state");
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--state-dir", dir.to_str().unwrap()])
        .run();
    out.expect("UNKNOWN");
    assert_eq!(
        out.summary(),
        format!(
            "state directory {} is not usable: Not a directory (os error 20)",
            dir.display()
        )
    );
    // NAGIOS_PLUGIN_STATE_DIRECTORY, the Monitoring Plugins convention, is honoured too.
    let out = cluster
        .plugin(PLUGIN)
        .env_remove("PGVIGIL_STATE_DIR")
        .env("NAGIOS_PLUGIN_STATE_DIRECTORY", dir.to_str().unwrap())
        .run();
    out.expect("UNKNOWN");
    assert!(out.summary().contains("is not usable"), "{}", out.summary());
}

/// The state directory's own faults: full, read-only, deleted between runs,
/// or open to every user. Each is a clear UNKNOWN or a fresh baseline, and
/// the file a later run reads is never torn.
#[test]
fn a_full_read_only_deleted_or_shared_state_directory() {
    let cluster = Cluster::start("rates-dir-faults");
    let base = temp_dir("rates-dir-faults");

    // Deleted between runs: a first run again, in a directory made anew.
    let state = base.join("deleted");
    run(&cluster, &state).expect("OK");
    fs::remove_dir_all(&state).unwrap();
    let out = run(&cluster, &state);
    out.expect("OK");
    assert_eq!(out.summary(), "first run, baseline saved");
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&state).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    // Writable by everyone: refused, naming the directory and the fix.
    let shared = base.join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let out = run(&cluster, &shared);
    out.expect("UNKNOWN");
    assert_eq!(
        out.summary(),
        format!(
            "state directory {} is writable by every user (mode 1777): give a directory of the monitoring user's own (mode 0700)",
            shared.display()
        )
    );

    if !harness::is_root() {
        eprintln!("full and read-only state directories need a tmpfs mount: run as root (CI does)");
        return;
    }
    // A small tmpfs of its own: full, then read-only.
    let mount = base.join("tmpfs");
    fs::create_dir(&mount).unwrap();
    let mounted = |args: &[&str]| {
        let status = std::process::Command::new("mount")
            .args(args)
            .arg(&mount)
            .status()
            .unwrap();
        assert!(status.success(), "mount {args:?}");
    };
    mounted(&["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"]);
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    run(&cluster, &mount).expect("OK");
    let file = state_file(&mount);
    let before = fs::read_to_string(&file).unwrap();
    // Fill what is left.
    let filler = mount.join("filler");
    let _ = fs::write(&filler, vec![0u8; 128 * 1024]);
    let out = run(&cluster, &mount);
    out.expect("UNKNOWN");
    assert!(
        out.summary()
            .starts_with(&format!("cannot write state file {}: ", file.display()))
            && out.summary().contains("No space left on device"),
        "{}",
        out.summary()
    );
    // The previous snapshot is whole, and no temporary file is left behind.
    assert_eq!(fs::read_to_string(&file).unwrap(), before);
    fs::remove_file(&filler).unwrap();
    state_file(&mount);
    expect_none_since_last_run(&run(&cluster, &mount));

    mounted(&["-o", "remount,ro"]);
    let out = run(&cluster, &mount);
    out.expect("UNKNOWN");
    assert_eq!(
        out.summary(),
        format!(
            "state directory {} is not usable: Read-only file system (os error 30)",
            mount.display()
        )
    );
}
