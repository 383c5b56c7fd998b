//! check_pg_roles against a real server: an unexpected superuser, a password
//! expiring tomorrow, CREATEROLE outside the allow list, a role at its
//! connection limit; each allowed away in turn.

use harness::Cluster;

const PLUGIN: &str = "check_pg_roles";

#[test]
fn an_audit_of_roles() {
    let cluster = Cluster::start("roles");
    // The harness has the bootstrap superuser and two plain login roles.
    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert_eq!(
        out.summary(),
        "3 roles, 3 login; 1 superuser as allowed; no password expiring, no role at its connection limit"
    );
    assert!(!out.perfdata().contains_key("password_expires_in"));

    cluster.execute(
        "CREATE ROLE eve LOGIN SUPERUSER;
         CREATE ROLE app_admin LOGIN CREATEROLE;
         CREATE ROLE batch LOGIN CONNECTION LIMIT 1;
         CREATE ROLE rotating LOGIN;
         GRANT pg_monitor TO app_admin;",
    );
    let tomorrow =
        "SELECT format('ALTER ROLE rotating VALID UNTIL %L', now() + interval '20 hours')";
    let sql: String = cluster.client().query_one(tomorrow, &[]).unwrap().get(0);
    cluster.execute(&sql);
    let _batch = cluster.client_as("batch");

    let out = cluster.plugin(PLUGIN).arg("-v").run();
    out.expect("CRITICAL");
    let summary = out.summary();
    assert!(
        summary.starts_with("1 superuser not allowed: eve; batch at its connection limit (1 of 1): its next session is refused; password of rotating expires in 19 h 59 min")
            || summary.starts_with("1 superuser not allowed: eve; batch at its connection limit (1 of 1): its next session is refused; password of rotating expires in 20 h 0 min"),
        "{summary}"
    );
    assert!(
        summary.ends_with("; app_admin has CREATEROLE (not allowed)"),
        "{summary}"
    );
    assert_eq!(out.perf("unexpected_superusers").value, 1.0);
    assert_eq!(out.perf("at_connection_limit").value, 1.0);
    let expiry = out.perf("password_expires_in");
    assert!(expiry.value > 19.0 * 3600.0 && expiry.value <= 20.0 * 3600.0);
    assert_eq!(
        (expiry.warn.as_str(), expiry.crit.as_str()),
        ("604800:", "86400:")
    );
    // -v: every role listed.
    let long = out.long_output();
    assert!(
        long.contains(&"app_admin: login, createrole; member of pg_monitor"),
        "{long:?}"
    );
    assert!(
        long.contains(&"batch: login; connection limit 1 (1 in use)"),
        "{long:?}"
    );
    assert!(out
        .hint()
        .unwrap()
        .starts_with("review the roles named above"));

    // Allowed, and a lower bound the expiry is above: only the limit is left.
    let allowed = |more: &[&str]| {
        cluster
            .plugin(PLUGIN)
            .args(&[
                "--allow-superuser",
                "eve",
                "--allow-privileged",
                "app_admin",
            ])
            .args(more)
            .run()
    };
    let out = allowed(&["-w", "12h:", "-c", "1h:"]);
    out.expect("CRITICAL");
    assert_eq!(
        out.summary(),
        "batch at its connection limit (1 of 1): its next session is refused"
    );
    drop(_batch);
    cluster.wait_for(
        "SELECT count(*) = 0 FROM pg_stat_activity WHERE usename = 'batch'",
        "batch's session to end",
    );
    let out = allowed(&[]);
    out.expect("CRITICAL");
    assert!(
        [
            "password of rotating expires in 19 h 59 min",
            "password of rotating expires in 20 h 0 min"
        ]
        .contains(&out.summary()),
        "{}",
        out.summary()
    );
    let out = allowed(&["-w", "2d:", "-c", "12h:"]);
    out.expect("WARNING");

    // An expired password is below any bound.
    cluster.execute("ALTER ROLE rotating VALID UNTIL '2000-01-01'");
    let out = allowed(&[]);
    out.expect("CRITICAL");
    assert!(
        out.summary().starts_with("password of rotating expired "),
        "{}",
        out.summary()
    );
}
