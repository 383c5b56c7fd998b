//! PGSSLMODE against a real server with TLS on, using a certificate made for
//! this run (openssl), as libpq would treat each mode.

use std::process::Command;

use harness::Cluster;

const PLUGIN: &str = "check_pg_locks";

/// A self-signed certificate for `localhost`, installed in the cluster; returns its path.
fn enable_tls(cluster: &Cluster) -> String {
    let crt = cluster.data.join("server.crt");
    let key = cluster.data.join("server.key");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    for file in [&crt, &key] {
        harness::cluster::chown_to_server_user(file);
        std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    cluster.execute("ALTER SYSTEM SET ssl = on");
    cluster.execute("SELECT pg_reload_conf()");
    cluster.wait_for("SELECT current_setting('ssl') = 'on'", "ssl on");
    let root = cluster.base.join("root.crt");
    std::fs::copy(&crt, &root).unwrap();
    root.to_str().unwrap().to_string()
}

fn over_tcp(cluster: &Cluster, host: &str, mode: &str) -> harness::PluginRun {
    let mut run = cluster.plugin(PLUGIN);
    run.env("PGHOST", host).env("PGSSLMODE", mode);
    run
}

/// Asks the server whether the plugin's own session is encrypted.
const SSL_IN_USE: &str = "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE ssl AND application_name = 'check_pg_query' AND pid = pg_backend_pid()";

#[test]
fn sslmodes_against_a_tls_server() {
    let cluster = Cluster::start("tls");
    let root = enable_tls(&cluster);

    // require: encrypted, certificate not checked.
    let mut run = cluster.plugin("check_pg_query");
    run.env("PGHOST", "127.0.0.1").env("PGSSLMODE", "require");
    let out = run.args(&["--query", SSL_IN_USE, "-c", "1:1"]).run();
    out.expect("OK");

    // prefer (the default) uses TLS when offered.
    let mut run = cluster.plugin("check_pg_query");
    run.env("PGHOST", "127.0.0.1");
    run.args(&["--query", SSL_IN_USE, "-c", "1:1"])
        .run()
        .expect("OK");

    // verify-full: the right CA and host name pass, a wrong host name does not.
    over_tcp(&cluster, "localhost", "verify-full")
        .env("PGSSLROOTCERT", &root)
        .run()
        .expect("OK");
    let out = over_tcp(&cluster, "127.0.0.1", "verify-full")
        .env("PGSSLROOTCERT", &root)
        .run();
    out.expect("CRITICAL");
    assert!(
        out.summary().starts_with("cannot connect to 127.0.0.1:"),
        "{}",
        out.summary()
    );
    // verify-ca checks the chain only.
    over_tcp(&cluster, "127.0.0.1", "verify-ca")
        .env("PGSSLROOTCERT", &root)
        .run()
        .expect("OK");
    // A missing root certificate is a usage problem, said plainly.
    let out = over_tcp(&cluster, "localhost", "verify-full")
        .env("PGSSLROOTCERT", "/nonexistent/root.crt")
        .run();
    out.expect("UNKNOWN");
    assert!(
        out.summary()
            .starts_with("cannot read root certificate /nonexistent/root.crt"),
        "{}",
        out.summary()
    );
}

#[test]
fn require_against_a_server_without_tls_is_critical() {
    let cluster = Cluster::start("no-tls");
    let out = over_tcp(&cluster, "127.0.0.1", "require").run();
    out.expect("CRITICAL");
    // disable over TCP works.
    over_tcp(&cluster, "127.0.0.1", "disable")
        .run()
        .expect("OK");
    // libpq ignores sslmode on Unix sockets; so do we.
    cluster
        .plugin(PLUGIN)
        .env("PGSSLMODE", "require")
        .run()
        .expect("OK");
}
