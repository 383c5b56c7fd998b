//! PGSSLMODE against a real server with TLS on, using a certificate made for
//! this run (openssl), as libpq would treat each mode.

use std::path::Path;

use harness::{openssl, Cluster};

const PLUGIN: &str = "check_pg_locks";

/// Serves `server.crt`/`server.key` from the cluster's base dir over TLS.
fn install(cluster: &Cluster) {
    for name in ["server.crt", "server.key"] {
        let file = cluster.data.join(name);
        std::fs::copy(cluster.base.join(name), &file).unwrap();
        harness::cluster::chown_to_server_user(&file);
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    cluster.execute("ALTER SYSTEM SET ssl = on");
    cluster.execute("SELECT pg_reload_conf()");
    cluster.wait_for("SELECT current_setting('ssl') = 'on'", "ssl on");
}

/// A self-signed certificate for `localhost` (marked as a CA, as
/// `openssl req -x509` makes it), copied to the client's root.crt as
/// PostgreSQL's documentation shows; returns that path.
fn enable_tls(cluster: &Cluster) -> String {
    openssl(
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
         -addext subjectAltName=DNS:localhost -keyout server.key -out server.crt",
        &cluster.base,
    );
    install(cluster);
    let root = cluster.base.join("root.crt");
    std::fs::copy(cluster.base.join("server.crt"), &root).unwrap();
    root.to_str().unwrap().to_string()
}

const EC_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

/// A self-signed CA (ca.crt, ca.key) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        &format!("req -x509 {EC_KEY} -days 1 -subj /CN={name} -keyout ca.key -out ca.crt"),
        dir,
    );
}

/// A CA, and a server certificate for `localhost` it signed (ECDSA P-256);
/// returns the CA certificate's path.
fn enable_tls_with_ca(cluster: &Cluster) -> String {
    enable_tls_with_ca_for(cluster, "1")
}

/// The same, valid for `days` from now (`-1`: it expired yesterday).
fn enable_tls_with_ca_for(cluster: &Cluster, days: &str) -> String {
    let dir = &cluster.base;
    make_ca(dir, "pgvigil-test-CA");
    openssl(
        &format!("req {EC_KEY} -subj /CN=localhost -keyout server.key -out server.csr"),
        dir,
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        &format!(
            "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days {days} \
             -extfile server.ext -out server.crt"
        ),
        dir,
    );
    install(cluster);
    dir.join("ca.crt").to_str().unwrap().to_string()
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

#[test]
fn verify_modes_against_a_server_certificate_signed_by_a_ca() {
    let cluster = Cluster::start("tls-ca");
    let ca = enable_tls_with_ca(&cluster);
    // verify-full: the chain to the CA and the host name.
    over_tcp(&cluster, "localhost", "verify-full")
        .env("PGSSLROOTCERT", &ca)
        .run()
        .expect("OK");
    let out = over_tcp(&cluster, "127.0.0.1", "verify-full")
        .env("PGSSLROOTCERT", &ca)
        .run();
    out.expect("CRITICAL");
    assert_eq!(
        out.summary(),
        format!(
            "cannot connect to 127.0.0.1:{}: the server's certificate is for localhost, not 127.0.0.1 (verify-full checks the host name)",
            cluster.port
        )
    );
    // verify-ca: the chain only.
    over_tcp(&cluster, "127.0.0.1", "verify-ca")
        .env("PGSSLROOTCERT", &ca)
        .run()
        .expect("OK");
    // A CA that did not sign the server's certificate fails both.
    let other = cluster.base.join("other");
    std::fs::create_dir_all(&other).unwrap();
    make_ca(&other, "other-CA");
    for mode in ["verify-ca", "verify-full"] {
        let out = over_tcp(&cluster, "localhost", mode)
            .env("PGSSLROOTCERT", other.join("ca.crt").to_str().unwrap())
            .run();
        out.expect("CRITICAL");
        assert!(
            out.summary().contains("UnknownIssuer"),
            "{mode}: {}",
            out.summary()
        );
    }
    // require encrypts whatever the certificate.
    over_tcp(&cluster, "127.0.0.1", "require")
        .run()
        .expect("OK");
}

#[test]
fn verify_full_against_an_expired_certificate_is_critical_saying_so() {
    let cluster = Cluster::start("tls-expired");
    let ca = enable_tls_with_ca_for(&cluster, "-1");
    for mode in ["verify-ca", "verify-full"] {
        let out = over_tcp(&cluster, "localhost", mode)
            .env("PGSSLROOTCERT", &ca)
            .run();
        out.expect("CRITICAL");
        let summary = out.summary();
        let expected = format!(
            "cannot connect to localhost:{}: the server's certificate expired at ",
            cluster.port
        );
        assert!(summary.starts_with(&expected), "{mode}: {summary}");
    }
    // require does not look at the certificate, as with libpq.
    over_tcp(&cluster, "localhost", "require")
        .run()
        .expect("OK");
}
