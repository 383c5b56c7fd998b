//! check_pg_disk on the host of a real cluster, with a tablespace on a
//! second filesystem (/dev/shm), checked against df.

use harness::{df, Cluster, SmallFs};

const PLUGIN: &str = "check_pg_disk";

#[test]
fn data_directory_filesystem_matches_df() {
    let cluster = Cluster::start("disk-data");
    let (mount, used, size) = df(&cluster.data);
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "100", "-c", "100"])
        .run();
    out.expect("OK");
    assert!(
        out.summary()
            .starts_with(&format!("1 filesystem, fullest {mount} ")),
        "{}",
        out.summary()
    );
    let perf = out.perf(&format!("{mount} used"));
    assert_eq!(perf.uom, "B");
    assert_eq!(perf.max, format!("{size}"));
    assert!(
        (perf.value - used).abs() / size < 0.01,
        "plugin {} vs df {used}",
        perf.value
    );
    let pct = out.perf(&format!("{mount} used_pct"));
    assert_eq!(
        (pct.warn.as_str(), pct.crit.as_str(), pct.max.as_str()),
        ("100", "100", "100")
    );
    assert!(
        out.long_output()[0]
            .split("; ")
            .next()
            .unwrap()
            .ends_with("holds data directory, pg_wal"),
        "{}",
        out.stdout
    );

    // Ranges that any used filesystem breaks: WARNING, then CRITICAL.
    cluster
        .plugin(PLUGIN)
        .args(&["-w", "~:0", "-c", "100"])
        .run()
        .expect("WARNING");
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "~:0", "-c", "~:0"])
        .run();
    out.expect("CRITICAL");
    assert!(
        out.summary().starts_with(&format!("{mount} ")),
        "{}",
        out.summary()
    );
    // A size applies to the bytes used.
    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "100%,1kB", "-c", "100%"])
        .run();
    out.expect("WARNING");
    assert_eq!(out.perf(&format!("{mount} used")).warn, "1024");
}

#[test]
fn tablespace_on_another_filesystem_is_measured_separately() {
    let shm = std::path::Path::new("/dev/shm");
    let cluster = Cluster::start("disk-ts");
    let location = shm.join(format!("pgvigil-ts-{}", std::process::id()));
    std::fs::create_dir_all(&location).unwrap();
    harness::cluster::chown_to_server_user(&location);
    cluster.execute(&format!(
        "CREATE TABLESPACE ts1 LOCATION '{}'",
        location.display()
    ));
    let (data_mount, ..) = df(&cluster.data);
    let (ts_mount, ..) = df(&location);
    assert_ne!(
        data_mount, ts_mount,
        "/dev/shm should be its own filesystem"
    );

    let out = cluster
        .plugin(PLUGIN)
        .args(&["-w", "100", "-c", "100"])
        .run();
    out.expect("OK");
    assert!(
        out.summary().starts_with("2 filesystems"),
        "{}",
        out.summary()
    );
    out.perf(&format!("{data_mount} used_pct"));
    out.perf(&format!("{ts_mount} used_pct"));
    assert!(
        out.long_output()
            .iter()
            .any(|l| l.starts_with(&format!("OK: {ts_mount} "))
                && l.split("; ")
                    .next()
                    .unwrap()
                    .ends_with("holds tablespace ts1")),
        "{}",
        out.stdout
    );
    cluster.execute("DROP TABLESPACE ts1");
    let _ = std::fs::remove_dir_all(&location);
}

#[test]
fn a_filesystem_filled_at_a_steady_rate_is_forecast_full_in_time() {
    let cluster = Cluster::start("disk-forecast");
    let small = SmallFs::mount(64);
    let location = small.0.join("ts");
    std::fs::create_dir(&location).unwrap();
    harness::cluster::chown_to_server_user(&location);
    cluster.execute(&format!(
        "CREATE TABLESPACE filling LOCATION '{}'",
        location.display()
    ));
    let (mount, ..) = df(&location);
    let state = harness::temp_dir("disk-forecast-state");
    let run = || {
        cluster
            .plugin(PLUGIN)
            .args(&["--forecast-window", "60s", "--state-dir"])
            .arg(state.to_str().unwrap())
            .args(&["-w", "100%,20s:", "-c", "100%,8s:"])
            .run()
    };

    // Half a megabyte every quarter second (2 MB/s) into a file beside the
    // tablespace, a run after each write, on a fixed schedule.
    let mut fill = std::fs::File::create(small.0.join("fill")).unwrap();
    let chunk = vec![7u8; 512 * 1024];
    let (_, used_at_start, _) = df(&location);
    let mut course = harness::Course::new();
    for i in 0..240 {
        course.step(i);
        use std::io::Write;
        if fill.write_all(&chunk).is_err() {
            break;
        }
        let (_, used, size) = df(&location);
        let out = run();
        let state_word = out.state().to_string();
        let left = out
            .perfdata()
            .get(&format!("{mount} time_left"))
            .map(|p| p.value);
        // Gathering: never an alert, and no time_left.
        if course.elapsed() < 7.0 {
            assert_eq!(state_word, "OK", "{}", out.stdout);
            assert!(left.is_none(), "{}", out.stdout);
            assert!(out.stdout.contains("more of history"), "{}", out.stdout);
        }
        if let Some(left) = left {
            let truth = course.compare_fill(left, (used_at_start, used, size), &out);
            if truth > 4.0 {
                assert!(
                    out.summary().contains("full in") || state_word == "OK",
                    "{}",
                    out.stdout
                );
            }
        }
        course.saw(&out);
        if used >= size - 4.0 * 1048576.0 {
            break;
        }
    }
    course.assert_few_misses();
    // In order, each once: OK while gathering and far from full, then
    // WARNING under 20 s left, then CRITICAL under 8 s.
    assert_eq!(course.seen, ["OK", "WARNING", "CRITICAL"]);
    let out = run();
    assert!(
        out.summary().contains(&format!("{mount} ")) && out.summary().contains("full in"),
        "{}",
        out.stdout
    );

    // The file goes: a fall far beyond a wobble restarts the history.
    drop(fill);
    std::fs::remove_file(small.0.join("fill")).unwrap();
    let out = run();
    out.expect("OK");
    assert!(
        !out.perfdata().contains_key(&format!("{mount} time_left")),
        "{}",
        out.stdout
    );
    assert!(
        out.long_output()
            .iter()
            .any(|l| l.contains(&format!("{mount} ")) && l.contains("more of history")),
        "{}",
        out.stdout
    );

    // A corrupt history: a fresh start with a note, not an error.
    let history = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("forecast"))
        .expect("a forecast history file");
    std::fs::write(&history, "pgvigil-state 1\nkey\tx\n").unwrap();
    let out = run();
    out.expect("OK");
    assert!(
        out.long_output().iter().any(|l| l.contains("restarted")),
        "{}",
        out.stdout
    );

    // Eight runs at once on the same history: each one OK, and the file the
    // last writer leaves reads back whole (no restart note after them).
    let states: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| run().state().to_string()))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(states, vec!["OK"; 8]);
    let out = run();
    out.expect("OK");
    assert!(
        !out.long_output().iter().any(|l| l.contains("restarted")),
        "{}",
        out.stdout
    );
    cluster.execute("DROP TABLESPACE filling");
}

#[test]
fn a_time_left_must_be_a_lower_bound() {
    let out = harness::PluginRun::new(PLUGIN).args(&["-w", "7d"]).run();
    out.expect("UNKNOWN");
    assert!(out.stdout.contains("write '7d:'"), "{}", out.stdout);
}
