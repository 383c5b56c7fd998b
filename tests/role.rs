//! check_pg_role on a real primary with two streaming standbys: roles as
//! expected, a promotion seen once by the promoted node, split brain while
//! the old primary still runs and again when it is started after the
//! failover, a standby left on the old timeline, and a node of another
//! cluster.

use harness::{temp_dir, Cluster};

const PLUGIN: &str = "check_pg_role";

fn node(cluster: &Cluster) -> String {
    format!("{}:{}", cluster.socket_dir.display(), cluster.port)
}

fn name(cluster: &Cluster) -> String {
    format!(
        "socket {}/.s.PGSQL.{}",
        cluster.socket_dir.display(),
        cluster.port
    )
}

#[test]
fn one_primary_then_a_failover_and_split_brain() {
    let primary = Cluster::start("role-primary");
    let s1 = Cluster::standby_of(&primary, "role-s1");
    let s2 = Cluster::standby_of(&primary, "role-s2");
    let set = |from: &Cluster, others: &[&Cluster], extra: &[&str]| {
        let mut run = from.plugin(PLUGIN);
        for other in others {
            run.args(&["--node", &node(other)]);
        }
        run.args(extra).run()
    };

    // Healthy: one primary, two standbys on its timeline.
    let out = set(&primary, &[&s1, &s2], &["--expect", "primary"]);
    out.expect("OK");
    assert_eq!(
        out.summary(),
        "3 of 3 nodes reachable: 1 primary, 2 standbys"
    );
    assert_eq!(out.perf("primaries").value, 1.0);
    assert_eq!(out.perf("standbys").value, 2.0);
    let s1_line = format!("{}: standby on timeline 1, ", name(&s1));
    assert!(
        out.long_output().iter().any(|l| l.starts_with(&s1_line)),
        "{}",
        out.stdout
    );
    let out = s1.plugin(PLUGIN).args(&["--expect", "primary"]).run();
    out.expect("CRITICAL");
    assert_eq!(
        out.summary(),
        format!(
            "{0} is standby on timeline 1; {0} is standby where primary is expected",
            name(&s1)
        )
    );

    // s1's own service remembers its role; promoted, it says so once.
    let state = temp_dir("role-state");
    let own = || {
        s1.plugin(PLUGIN)
            .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
            .run()
    };
    own().expect("OK");
    s1.execute("SELECT pg_promote()");
    s1.wait_for("SELECT NOT pg_is_in_recovery()", "s1 promoted");
    let out = own();
    out.expect("WARNING");
    assert!(
        out.summary().ends_with(
            "; was standby on timeline 1 at the previous run, now primary on timeline 2: a promotion or failover happened (reported once)"
        ),
        "{}",
        out.summary()
    );
    own().expect("OK");

    // The old primary still runs: two primaries take writes.
    let out = set(&s1, &[&primary, &s2], &[]);
    out.expect("CRITICAL");
    assert!(
        out.summary().contains(&format!(
            "; split brain: 2 primaries ({} on timeline 2, {} on timeline 1) take writes apart",
            name(&s1),
            name(&primary)
        )),
        "{}",
        out.summary()
    );
    assert!(out.hint().unwrap().contains("fence"));
    eprintln!("split brain: {}", out.status_line());

    // The old primary stops: s2 still follows it, on the old timeline.
    primary.stop();
    let out = set(&s1, &[&primary, &s2], &[]);
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .starts_with("2 of 3 nodes reachable: 1 primary, 1 standby; "),
        "{}",
        out.summary()
    );
    assert!(
        out.summary().contains(&format!(
            "; standby {} is on timeline 1, the primary {} on 2: it does not follow it",
            name(&s2),
            name(&s1)
        )),
        "{}",
        out.summary()
    );
    assert!(
        out.summary()
            .ends_with(&format!("; {} unreachable", name(&primary))),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("unreachable").value, 1.0);

    // Started again after the failover, the old primary is a second primary.
    primary.try_start().expect("the old primary starts");
    let out = set(&s1, &[&primary], &[]);
    out.expect("CRITICAL");
    assert!(
        out.summary().contains("; split brain: 2 primaries ("),
        "{}",
        out.summary()
    );
}

#[test]
fn a_node_of_another_cluster_is_named() {
    let primary = Cluster::start("role-own");
    // Clusters here are copies of one initdb per test process; the one with
    // data checksums is another initdb, so another system identifier.
    let stranger = Cluster::start_with(
        "role-stranger",
        harness::ClusterOptions {
            data_checksums: true,
            ..harness::ClusterOptions::default()
        },
    );
    let out = primary
        .plugin(PLUGIN)
        .args(&["--node", &node(&stranger)])
        .run();
    out.expect("CRITICAL");
    assert!(
        out.summary().contains(&format!(
            "; {} belongs to another cluster (system identifier ",
            name(&stranger)
        )),
        "{}",
        out.summary()
    );
    // Bad input is UNKNOWN with one line.
    primary
        .plugin(PLUGIN)
        .args(&["--node", "db2:port"])
        .run()
        .expect("UNKNOWN");
}
