//! check_pg_version against a real server: its release against the
//! operator's minimums and major, a release that changed since the previous
//! run, and an extension installed at an old version, in every database.

use harness::{temp_dir, Cluster};

const PLUGIN: &str = "check_pg_version";

/// The server's release as it reports it: `16.4` and 160004.
fn release(cluster: &Cluster) -> (String, i32) {
    let row = cluster
        .client()
        .query_one(
            "SELECT split_part(current_setting('server_version'), ' ', 1),
                    current_setting('server_version_num')::int4",
            &[],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

#[test]
fn the_release_against_minimums_and_the_expected_major() {
    let cluster = Cluster::start("version");
    let (version, num) = release(&cluster);
    let major = num / 10000;
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert_eq!(out.summary(), format!("PostgreSQL {version}"));
    assert_eq!(out.perf("server_version_num").value, f64::from(num));

    // A newer minor of its own major is asked for.
    let newer = format!("{major}.{}", num % 10000 + 1);
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--min-version", "10.0", "--min-version", &newer])
        .run();
    out.expect("WARNING");
    assert_eq!(
        out.summary(),
        format!("PostgreSQL {version}; {version} is older than --min-version {newer}")
    );
    assert!(out.hint().unwrap().contains("minor upgrade"));
    // Its own major's minimum is met: a higher one for another major is not its.
    cluster
        .plugin(PLUGIN)
        .args(&[
            "--min-version",
            &format!("{major}.0"),
            "--min-version",
            "99.1",
        ])
        .run()
        .expect("OK");
    let other = if major == 16 { 17 } else { 16 };
    let out = cluster
        .plugin(PLUGIN)
        .args(&["--expect-major", &other.to_string()])
        .run();
    out.expect("CRITICAL");
    assert_eq!(
        out.summary(),
        format!("PostgreSQL {version}; major {major} where {other} is expected")
    );
    // Bad input is one line and UNKNOWN.
    for bad in [
        &["--min-version", "16.x"][..],
        &["--expect-major", "9"],
        &["-w", "1"],
    ] {
        let out = cluster.plugin(PLUGIN).args(bad).run();
        out.expect("UNKNOWN");
    }
}

#[test]
fn a_changed_release_is_reported_once() {
    let cluster = Cluster::start("version-change");
    let (version, _) = release(&cluster);
    let state = temp_dir("version-state");
    let run = || {
        cluster
            .plugin(PLUGIN)
            .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
            .run()
    };
    run().expect("OK");
    run().expect("OK");
    // The previous run as it would have been on the release before: the
    // state holds only the release seen.
    let file = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_file())
        .expect("a state file");
    let text = std::fs::read_to_string(&file).unwrap();
    let marker = format!("marker\tversion\t{version}\n");
    assert!(text.contains(&marker), "{text}");
    std::fs::write(&file, text.replace(&marker, "marker\tversion\t11.22\n")).unwrap();
    let out = run();
    out.expect("WARNING");
    assert!(
        out.summary().starts_with(&format!(
            "PostgreSQL {version}; changed from 11.22 since the previous run "
        )),
        "{}",
        out.summary()
    );
    assert!(out.summary().ends_with(" ago (reported once)"));
    run().expect("OK");
}

#[test]
fn an_extension_left_at_an_old_version_is_named_in_its_database() {
    let cluster = Cluster::start("version-extensions");
    cluster.execute("CREATE DATABASE crm");
    cluster.execute_in("crm", "CREATE EXTENSION pg_trgm VERSION '1.3'");
    let available: String = cluster
        .client()
        .query_one(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'pg_trgm'",
            &[],
        )
        .unwrap()
        .get(0);
    // Only the connected database by default.
    cluster.plugin(PLUGIN).run().expect("OK");
    let out = cluster.plugin(PLUGIN).arg("--all-databases").run();
    out.expect("WARNING");
    let line = format!("extension pg_trgm 1.3 installed, {available} available in crm");
    assert!(
        out.summary().ends_with(&format!(
            "; 1 extension not at the available version ({line})"
        )),
        "{}",
        out.summary()
    );
    assert_eq!(out.long_output(), [line.as_str()]);
    assert_eq!(out.perf("extensions_behind").value, 1.0);
    assert!(out.hint().unwrap().contains("ALTER EXTENSION name UPDATE"));
    cluster
        .plugin(PLUGIN)
        .args(&["--all-databases", "--no-extensions"])
        .run()
        .expect("OK");
    cluster.execute_in("crm", "ALTER EXTENSION pg_trgm UPDATE");
    cluster
        .plugin(PLUGIN)
        .arg("--all-databases")
        .run()
        .expect("OK");
}
