//! check_pg_patroni against a real three-node Patroni cluster (Debian's
//! Patroni 3.0 with etcd 3.4, Debian's PostgreSQL 15), started once for this
//! test binary and taken through one operator's day: healthy, maintenance
//! mode, a scheduled switchover, a replica stopped, the leader killed and a
//! failover, then the DCS down and an API that does not answer.

use std::time::Duration;

use harness::daemon::wait_until;
use harness::patroni::{logs, patroni_available, ClientAuth, PatroniCluster};
use harness::{openssl, server_major, temp_dir, PluginOutput, PluginRun};

const PLUGIN: &str = "check_pg_patroni";

fn run(state: &std::path::Path, api: &str, args: &[&str]) -> PluginOutput {
    PluginRun::new(PLUGIN)
        .env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
        .args(&["--api", api])
        .args(args)
        .run()
}

/// Runs until `done` holds for the output (up to `secs`), which it returns.
fn until(
    cluster: &PatroniCluster,
    secs: u64,
    what: &str,
    mut probe: impl FnMut() -> PluginOutput,
    done: impl Fn(&PluginOutput) -> bool,
) -> PluginOutput {
    let mut last = None;
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(Duration::from_secs(secs), what, || {
            let out = probe();
            let ok = done(&out);
            last = Some(out.stdout.clone());
            ok.then_some(out)
        })
    }));
    found.unwrap_or_else(|_| {
        panic!(
            "timed out waiting for {what}; last output:\n{}\n{}",
            last.unwrap_or_default(),
            logs(cluster)
        )
    })
}

/// Debian's Patroni 3.0 runs PostgreSQL 15 only (and needs its
/// pg_basebackup): on another major the test says so and is skipped.
fn runs_here() -> bool {
    if server_major() != 15 {
        eprintln!(
            "check_pg_patroni is tested with Debian's Patroni 3.0 and PostgreSQL 15 only: skipped"
        );
        return false;
    }
    if let Err(why) = patroni_available() {
        panic!("{why}");
    }
    true
}

#[test]
fn a_patroni_cluster_through_an_operators_day() {
    if !runs_here() {
        return;
    }
    let mut cluster = PatroniCluster::start("pgvigil", 3);
    let state = temp_dir("patroni-state");
    let api1 = cluster.nodes[0].api();
    let api2 = cluster.nodes[1].api();

    // Healthy: node1 leads, two replicas stream.
    let out = run(&state, &api1, &["--expect", "leader"]);
    out.expect("OK");
    // An idle replica may stand one WAL segment (16 MB) behind by Patroni's
    // count, which the default -w 16MB allows.
    assert!(
        out.summary()
            .starts_with("leader node1 (timeline 1), 2 of 2 replicas streaming, max lag "),
        "{}",
        out.summary()
    );
    eprintln!("healthy: {}", out.status_line());
    assert_eq!(out.perf("healthy_replicas").value, 2.0);
    assert_eq!(out.perf("healthy_replicas").crit, "1:");
    assert_eq!(out.perf("members").value, 3.0);
    assert!(out.perf("node2 lag").value <= 16777216.0);
    // The role is what this run asks about: the lag, by optimes each node
    // writes to the DCS every loop_wait (later on a loaded machine), may
    // pass a segment here without making the role wrong.
    run(&state, &api2, &["--expect", "replica", "-w", "256MB"]).expect("OK");
    let out = run(&state, &api2, &["--expect", "leader"]);
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .starts_with("this node is a replica, expected the leader;"),
        "{}",
        out.summary()
    );
    // Three healthy replicas wanted.
    let out = run(&state, &api1, &["-c", "3:"]);
    out.expect("CRITICAL");
    assert!(
        out.summary().starts_with("2 of 2 replicas healthy;"),
        "{}",
        out.summary()
    );

    // Maintenance mode.
    cluster.patronictl(&["pause", "--wait"]);
    let out = run(&state, &api1, &[]);
    out.expect("WARNING");
    // Patroni's lag compares optimes each node writes to the DCS every
    // loop_wait, so a replica can briefly stand a segment behind by its count
    // and be named after the pause, which comes first.
    assert!(
        out.summary()
            .starts_with("maintenance mode (paused): no automatic failover")
            && out
                .summary()
                .contains("leader node1 (timeline 1), 2 of 2 replicas streaming"),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("paused").value, 1.0);
    eprintln!("paused: {}", out.status_line());
    assert!(out.hint().unwrap().contains("patronictl resume"));
    cluster.patronictl(&["resume", "--wait"]);
    run(&state, &api1, &[]).expect("OK");

    // A switchover someone scheduled.
    cluster.patronictl(&[
        "switchover",
        "--leader",
        "node1",
        "--candidate",
        "node2",
        "--scheduled",
        "2030-01-01T00:00+00:00",
        "--force",
    ]);
    let out = run(&state, &api1, &[]);
    out.expect("WARNING");
    assert!(
        out.summary()
            .starts_with("switchover scheduled at 2030-01-01T00:00:00+00:00 from node1 to node2;"),
        "{}",
        out.summary()
    );
    cluster.patronictl(&["flush", "pgvigil", "switchover"]);
    run(&state, &api1, &[]).expect("OK");

    // A replica stopped: named, and one healthy replica left.
    cluster.stop_node(2);
    let out = until(
        &cluster,
        60,
        "node3 to be reported",
        || run(&state, &api1, &[]),
        |out| out.summary().contains("node3"),
    );
    out.expect("WARNING");
    assert_eq!(out.perf("healthy_replicas").value, 1.0);
    eprintln!("replica stopped: {}", out.status_line());
    cluster.start_node(2);
    cluster.wait_healthy();
    until(
        &cluster,
        60,
        "the cluster to be OK again",
        || run(&state, &api1, &[]),
        |out| out.code == 0,
    );

    // The leader crashes: node2 or node3 takes over on timeline 2. The first
    // run to see the new leader reports it, once; the new timeline shows as
    // soon as the new leader has published it (the same run or a later one).
    cluster.kill_node(0);
    // Every run from here on is kept, to find what one of them said: node1's
    // member key can expire before a new leader is elected.
    let seen = std::cell::RefCell::new(Vec::new());
    let recorded = || {
        let out = run(&state, &api2, &[]);
        seen.borrow_mut().push(out.summary().to_string());
        out
    };
    let out = until(
        &cluster,
        90,
        "the failover to be reported",
        recorded,
        |out| out.summary().contains("new leader since the previous run"),
    );
    out.expect("WARNING");
    assert!(
        out.summary()
            .contains("new leader since the previous run: node1 → node")
            && out.summary().contains(" (a failover or switchover)"),
        "{}",
        out.summary()
    );
    eprintln!("failover: {}", out.status_line());
    let out = until(&cluster, 60, "timeline 2 to show", recorded, |out| {
        out.perfdata()
            .get("timeline")
            .is_some_and(|t| t.value == 2.0)
    });
    eprintln!("timeline: {}", out.status_line());
    assert!(
        seen.borrow().iter().any(|s| s.contains("timeline 1 → 2")
            || s.contains("timeline changed since the previous run: 1 → 2")),
        "the timeline change is reported: {:#?}",
        seen.borrow()
    );
    // node1's member key expires: it is named as gone, once; then the
    // cluster of two is OK with its one replica.
    until(&cluster, 60, "node1 to be named as gone", recorded, |_| {
        seen.borrow()
            .iter()
            .any(|s| s.contains("gone since the previous run: node1"))
    });
    let out = until(
        &cluster,
        60,
        "the cluster of two to be OK",
        || run(&state, &api2, &[]),
        |out| out.code == 0,
    );
    assert!(
        out.summary()
            .contains("(timeline 2), 1 of 1 replica streaming, max lag "),
        "{}",
        out.summary()
    );

    // The DCS down: Patroni cannot give the cluster, and says so.
    cluster.kill_etcd();
    let out = until(
        &cluster,
        90,
        "the DCS outage to show",
        || run(&state, &api2, &[]),
        |out| out.code == 2,
    );
    eprintln!("etcd down: {}", out.status_line());
    assert!(
        out.summary()
            .contains("cannot give the cluster (is its DCS reachable?)")
            || out
                .summary()
                .starts_with("no leader: the cluster is read-only"),
        "{}",
        out.summary()
    );

    // Nothing answers at all.
    let closed = PatroniCluster::closed_api();
    let out = run(&state, &closed, &[]);
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .starts_with(&format!("Patroni's REST API at {closed} does not answer: ")),
        "{}",
        out.summary()
    );
}

/// An HTTPS REST API that requires client certificates (Patroni's restapi
/// certfile/keyfile, cafile, verify_client: required): the check follows
/// the connection's TLS settings (PGSSLMODE, PGSSLROOTCERT) with libpq's
/// meanings, or check_patroni's --ca-file, and presents --cert-file and
/// --key-file. One node of its own, bootstrapped alone.
#[test]
fn an_https_api_follows_the_suites_tls_settings() {
    if !runs_here() {
        return;
    }
    let certs = temp_dir("patroni-certs");
    openssl(
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
         -addext subjectAltName=IP:127.0.0.1 -keyout api.key -out api.crt",
        &certs,
    );
    openssl(
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other -keyout other.key -out other.crt",
        &certs,
    );
    // A CA for clients, and the monitoring client's certificate it signed.
    openssl(
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=clients -keyout clients.key -out clients.crt",
        &certs,
    );
    openssl(
        "req -newkey rsa:2048 -nodes -subj /CN=nagios -keyout nagios.key -out nagios.csr",
        &certs,
    );
    openssl(
        "x509 -req -in nagios.csr -CA clients.crt -CAkey clients.key -CAcreateserial -days 1 -out nagios.crt",
        &certs,
    );
    let path = |name: &str| certs.join(name).to_str().unwrap().to_string();
    let cluster = PatroniCluster::start_verifying_clients(
        "pgvigil-tls",
        1,
        (certs.join("api.crt"), certs.join("api.key")),
        ClientAuth {
            ca: certs.join("clients.crt"),
            cert: certs.join("nagios.crt"),
            key: certs.join("nagios.key"),
        },
    );
    let state = temp_dir("patroni-tls-state");
    let api = cluster.nodes[0].api();
    assert!(api.starts_with("https://"));
    let client = [
        "--cert-file",
        &path("nagios.crt"),
        "--key-file",
        &path("nagios.key"),
    ];
    let tls = |mode: &str, root: Option<&str>, extra: &[&str]| {
        let mut run = PluginRun::new(PLUGIN);
        run.env("PGVIGIL_STATE_DIR", state.to_str().unwrap())
            .env("PGSSLMODE", mode);
        if let Some(root) = root {
            run.env("PGSSLROOTCERT", certs.join(root).to_str().unwrap());
        }
        run.args(&["--api", &api, "-c", "0:"]).args(extra).run()
    };
    // Encrypted whatever the certificate, as libpq's require without a root.
    let out = tls("require", None, &client);
    out.expect("OK");
    assert!(
        out.summary()
            .starts_with("leader node1 (timeline 1), 0 of 0 replicas"),
        "{}",
        out.summary()
    );
    // Checked against the right root: OK; against another: refused, also
    // under require once a root is given (libpq's rule).
    tls("verify-full", Some("api.crt"), &client).expect("OK");
    for mode in ["verify-full", "require"] {
        let out = tls(mode, Some("other.crt"), &client);
        out.expect("CRITICAL");
        assert!(
            out.summary()
                .starts_with(&format!("Patroni's REST API at {api} does not answer: ")),
            "{mode}: {}",
            out.summary()
        );
        assert!(out.summary().contains("certificate"), "{}", out.summary());
    }
    // check_patroni's --ca_file: the API's certificate checked, name included.
    let mut with_ca = client.to_vec();
    let ca = path("api.crt");
    with_ca.extend(["--ca_file", &ca]);
    tls("prefer", None, &with_ca).expect("OK");
    let other = path("other.crt");
    let out = tls(
        "prefer",
        None,
        &[
            "--ca-file",
            &other,
            client[0],
            client[1],
            client[2],
            client[3],
        ],
    );
    out.expect("CRITICAL");
    // Without a client certificate the API refuses the handshake; with the
    // key in the certificate's file (check_patroni's --cert_file alone), OK.
    let out = tls("require", None, &[]);
    out.expect("CRITICAL");
    eprintln!("no client certificate: {}", out.status_line());
    let both = certs.join("nagios-both.pem");
    let mut pem = std::fs::read(certs.join("nagios.crt")).unwrap();
    pem.extend(std::fs::read(certs.join("nagios.key")).unwrap());
    std::fs::write(&both, pem).unwrap();
    std::fs::set_permissions(&both, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    tls("require", None, &["--cert_file", both.to_str().unwrap()]).expect("OK");
    // A missing certificate file is a usage error, said plainly.
    let out = tls("require", None, &["--cert-file", "/nonexistent/nagios.crt"]);
    out.expect("UNKNOWN");
    assert!(
        out.summary().contains("/nonexistent/nagios.crt"),
        "{}",
        out.summary()
    );
    // Plain HTTP to the HTTPS port gets no JSON.
    let plain = api.replace("https://", "http://");
    let out = run(&state, &plain, &["-c", "0:"]);
    out.expect("CRITICAL");
}
