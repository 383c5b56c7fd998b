//! check_pg_disk on the host of a real cluster, with a tablespace on a
//! second filesystem (/dev/shm), checked against df.

use std::process::Command;

use harness::Cluster;

const PLUGIN: &str = "check_pg_disk";

/// df's view of the filesystem holding `path`: (mount point, used bytes, size bytes).
fn df(path: &std::path::Path) -> (String, f64, f64) {
    let out = Command::new("df")
        .args(["-B1", "--output=target,used,size"])
        .arg(path)
        .output()
        .expect("df");
    let text = String::from_utf8(out.stdout).unwrap();
    let fields: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    (
        fields[0].to_string(),
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
    )
}

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
        out.long_output()[0].ends_with("holds data directory, pg_wal"),
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
                && l.ends_with("holds tablespace ts1")),
        "{}",
        out.stdout
    );
    cluster.execute("DROP TABLESPACE ts1");
    let _ = std::fs::remove_dir_all(&location);
}
