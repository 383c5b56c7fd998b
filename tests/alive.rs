//! check_pg_alive against a real primary and its standby, and a stopped server.

use harness::Cluster;

const PLUGIN: &str = "check_pg_alive";

#[test]
fn answers_with_version_role_uptime_and_times() {
    let primary = Cluster::start("alive");
    let out = primary.plugin(PLUGIN).run();
    out.expect("OK");
    let version: String = primary
        .client()
        .query_one("SELECT current_setting('server_version')", &[])
        .unwrap()
        .get(0);
    let version = version.split_whitespace().next().unwrap().to_string();
    let head = format!("PostgreSQL {version} (primary) answered in ");
    assert!(out.summary().starts_with(&head), "{}", out.summary());
    let time = out.perf("time");
    let connect = out.perf("connect_time");
    // Default -w 2s -c 8s, as check_pgsql.
    assert_eq!((time.warn.as_str(), time.crit.as_str()), ("2", "8"));
    assert!(time.value > 0.0 && time.value < 2.0, "{}", time.value);
    assert!(
        connect.value > 0.0 && connect.value <= time.value,
        "{} {}",
        connect.value,
        time.value
    );
    assert_eq!(time.uom, "s");
    assert!(out.perf("uptime").value >= 0.0);

    // Any response time is over -w 0.
    let out = primary.plugin(PLUGIN).args(&["-w", "0", "-c", "1h"]).run();
    out.expect("WARNING");
    let out = primary.plugin(PLUGIN).args(&["-w", "0", "-c", "0"]).run();
    out.expect("CRITICAL");

    let standby = Cluster::standby_of(&primary, "alive-standby");
    let out = standby.plugin(PLUGIN).run();
    out.expect("OK");
    assert!(
        out.summary()
            .starts_with(&format!("PostgreSQL {version} (standby) answered in ")),
        "{}",
        out.summary()
    );

    standby.stop();
    let out = standby.plugin(PLUGIN).run();
    out.expect("CRITICAL");
    assert!(
        out.summary().starts_with("cannot connect to "),
        "{}",
        out.summary()
    );
}
