//! check_pg_query: an operator's query, its number compared with -w/-c.

use harness::Cluster;
use once_cell::sync::Lazy;

const PLUGIN: &str = "check_pg_query";

static CLUSTER: Lazy<Cluster> = Lazy::new(|| Cluster::start("query"));

fn query(sql: &str, extra: &[&str]) -> harness::PluginOutput {
    CLUSTER
        .plugin(PLUGIN)
        .args(&["--query", sql])
        .args(extra)
        .run()
}

#[test]
fn number_against_thresholds() {
    let out = query("SELECT 42", &["-w", "40", "-c", "50", "--label", "answer"]);
    out.expect("WARNING");
    assert_eq!(
        out.status_line(),
        "PG_QUERY WARNING - answer is 42 | answer=42;40;50"
    );
    query("SELECT 42", &["-w", "50", "-c", "60"]).expect("OK");
    query("SELECT 42", &["-w", "40", "-c", "41"]).expect("CRITICAL");
    query("SELECT 42", &["-c", "@40:45"]).expect("CRITICAL");
}

#[test]
fn every_numeric_type_is_read() {
    for (sql, value) in [
        ("SELECT 7::int2", 7.0),
        ("SELECT 7::int8", 7.0),
        ("SELECT 2.5::numeric", 2.5),
        ("SELECT -0.125::float4", -0.125),
        (
            "SELECT count(*) FROM pg_database WHERE datname = 'postgres'",
            1.0,
        ),
        ("SELECT '12'::text", 12.0),
    ] {
        let out = query(sql, &[]);
        out.expect("OK");
        assert_eq!(out.perf("result").value, value, "{sql}");
    }
}

#[test]
fn results_that_are_not_a_number_are_unknown() {
    for (sql, message) in [
        (
            "SELECT 'abc'",
            "query failed: first column is 'abc', not a number",
        ),
        (
            "SELECT 1 WHERE false",
            "query failed: the query returned no rows",
        ),
        ("SELECT NULL::int", "query failed: the query returned NULL"),
    ] {
        let out = query(sql, &[]);
        out.expect("UNKNOWN");
        assert_eq!(out.summary(), message, "{sql}");
    }
    let out = query("SELEC 1", &[]);
    out.expect("UNKNOWN");
    assert_eq!(
        out.summary(),
        "query failed: syntax error at or near \"SELEC\""
    );
}

#[test]
fn the_session_is_read_only() {
    let out = CLUSTER
        .plugin(PLUGIN)
        .env("PGUSER", "postgres")
        .args(&["--query", "CREATE TABLE written_by_a_check (i int)"])
        .run();
    out.expect("UNKNOWN");
    assert!(
        out.summary().contains("read-only transaction"),
        "{}",
        out.summary()
    );
    let out = query(
        "SELECT count(*) FROM pg_class WHERE relname = 'written_by_a_check'",
        &["-c", "0"],
    );
    out.expect("OK");
}

#[test]
fn application_name_is_the_plugin_unless_pgappname_says_otherwise() {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() AND application_name = 'check_pg_query'";
    assert_eq!(query(sql, &[]).perf("result").value, 1.0);
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() AND application_name = 'nagios'";
    let out = CLUSTER
        .plugin(PLUGIN)
        .env("PGAPPNAME", "nagios")
        .args(&["--query", sql])
        .run();
    assert_eq!(out.perf("result").value, 1.0);
}

/// The version matrix relies on this: the server answering is the major of
/// the binaries PGVIGIL_PG_BINDIR chose.
#[test]
fn server_is_the_major_under_test() {
    let out = query(
        "SELECT current_setting('server_version_num')::int / 10000",
        &["--label", "major"],
    );
    out.expect("OK");
    assert_eq!(out.perf("major").value, f64::from(harness::server_major()));
}
