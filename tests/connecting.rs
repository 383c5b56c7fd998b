//! Connecting every way psql connects, with psql as the oracle: each case
//! runs through psql and through check_pg_query against the same real
//! servers (a primary with TLS and a streaming standby, pg_hba.conf lines
//! using trust, scram-sha-256, md5, cert, reject and gss, over TCP and
//! sockets). Both must reach the same server, as the same user, in the same
//! database, or both must fail; and each must match what the case expects.

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::{generated_password, openssl, Cluster, PluginRun};

/// What a session reports of itself, as one number (perfdata is numeric):
/// the port, then a hash of the user and database.
const IDENTITY: &str = "current_setting('port')::bigint * 1000000 + \
     abs(hashtext(current_user || '/' || current_database())) % 1000000";

const EC_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

/// The servers and the secrets made for this run.
struct Setup {
    primary: Cluster,
    standby: Cluster,
    certs: PathBuf,
    scram_password: String,
    md5_password: String,
    key_passphrase: String,
}

impl Setup {
    fn start() -> Setup {
        let primary = Cluster::start("conn");
        let certs = primary.base.join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        make_certificates(&certs);
        for name in ["server.crt", "server.key", "ca.crt"] {
            let file = primary.data.join(name);
            std::fs::copy(certs.join(name), &file).unwrap();
            harness::cluster::chown_to_server_user(&file);
            set_mode(&file, 0o600);
        }
        let scram_password = generated_password();
        let md5_password = generated_password();
        let key_passphrase = generated_password();
        for sql in [
            format!("CREATE ROLE scram_u LOGIN PASSWORD '{scram_password}'"),
            format!("CREATE ROLE ssl_only LOGIN PASSWORD '{scram_password}'"),
            "CREATE ROLE cert_u LOGIN; CREATE ROLE nossl_only LOGIN; \
             CREATE ROLE gss_u LOGIN; CREATE ROLE rejected LOGIN"
                .into(),
            format!("SET password_encryption = 'md5'; CREATE ROLE md5_u LOGIN PASSWORD '{md5_password}'"),
            "CREATE DATABASE app".into(),
            "ALTER SYSTEM SET ssl = on".into(),
            "ALTER SYSTEM SET ssl_ca_file = 'ca.crt'".into(),
        ] {
            primary.execute(&sql);
        }
        let hba = "\
local all postgres trust
local all monitor trust
local all scram_u scram-sha-256
local all rejected reject
local replication all trust
host all postgres 127.0.0.1/32 trust
host all monitor 127.0.0.1/32 trust
host all scram_u 127.0.0.1/32 scram-sha-256
host all md5_u 127.0.0.1/32 md5
hostssl all cert_u 127.0.0.1/32 cert
hostssl all ssl_only 127.0.0.1/32 scram-sha-256
hostnossl all nossl_only 127.0.0.1/32 trust
host all gss_u 127.0.0.1/32 gss
host all rejected 127.0.0.1/32 reject
host replication all 127.0.0.1/32 trust
";
        std::fs::write(primary.data.join("pg_hba.conf"), hba).unwrap();
        primary.restart();
        primary.wait_for("SELECT current_setting('ssl') = 'on'", "ssl on");
        // The standby is a copy: the same roles, pg_hba.conf and certificates.
        let standby = Cluster::standby_of(&primary, "conn-standby");
        Setup {
            primary,
            standby,
            certs,
            scram_password,
            md5_password,
            key_passphrase,
        }
    }

    fn cert(&self, name: &str) -> String {
        self.certs.join(name).to_str().unwrap().to_string()
    }
}

/// A CA, a server certificate for localhost only, a client certificate for
/// role cert_u (plain and passphrase-encrypted key), and a CA that signed
/// neither.
fn make_certificates(dir: &Path) {
    openssl(
        &format!("req -x509 {EC_KEY} -days 1 -subj /CN=pgvigil-conn-CA -keyout ca.key -out ca.crt"),
        dir,
    );
    let sign = |name: &str, subject: &str, ext: &str| {
        openssl(
            &format!("req {EC_KEY} -subj {subject} -keyout {name}.key -out {name}.csr"),
            dir,
        );
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            &format!(
                "x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
                 -extfile {name}.ext -out {name}.crt"
            ),
            dir,
        );
        set_mode(&dir.join(format!("{name}.key")), 0o600);
    };
    sign(
        "server",
        "/CN=localhost",
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    );
    sign("client", "/CN=cert_u", "basicConstraints=CA:FALSE\n");
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    openssl(
        &format!("req -x509 {EC_KEY} -days 1 -subj /CN=other-CA -keyout ca.key -out ca.crt"),
        &other,
    );
    // Revocation lists from the CA: one empty, one revoking the server's
    // certificate.
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = ca\n[ca]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
         default_md = sha256\ndefault_crl_days = 1\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    let ca = "ca -config ca.cnf -keyfile ca.key -cert ca.crt";
    openssl(&format!("{ca} -gencrl -out empty.crl"), dir);
    openssl(&format!("{ca} -revoke server.crt"), dir);
    openssl(&format!("{ca} -gencrl -out revoked.crl"), dir);
    // The same list in an OpenSSL hashed directory, for sslcrldir.
    let crldir = dir.join("crldir");
    std::fs::create_dir_all(&crldir).unwrap();
    std::fs::copy(dir.join("revoked.crl"), crldir.join("revoked.crl")).unwrap();
    openssl("rehash crldir", dir);
    // The same client key, readable by others: refused by libpq's rule.
    std::fs::copy(dir.join("client.key"), dir.join("client-open.key")).unwrap();
    set_mode(&dir.join("client-open.key"), 0o644);
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

/// What a case must come to.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// Connected to this port as this user in this database.
    Reach(u16, &'static str, &'static str),
    /// Not connected; pgvigil's status line says this.
    Fail(&'static str),
}

/// One way of connecting. Both clients start from PGDATABASE=postgres (the
/// database pgvigil defaults to; psql's default is the user's name), which
/// anything the case sets overrides. `args` are psql's options; pgvigil gets the same
/// with -H for -h, unless `ours` gives its own.
struct Case {
    name: &'static str,
    args: Vec<String>,
    ours: Option<Vec<String>>,
    env: Vec<(String, String)>,
    /// Files in the case's own home directory: (path under it, contents, mode).
    home: Vec<(String, String, u32)>,
    expect: Expect,
}

fn case(name: &'static str, args: &[&str], expect: Expect) -> Case {
    Case {
        name,
        args: args.iter().map(|a| a.to_string()).collect(),
        ours: None,
        env: Vec::new(),
        home: Vec::new(),
        expect,
    }
}

impl Case {
    fn env(mut self, key: &str, value: &str) -> Case {
        self.env.push((key.into(), value.into()));
        self
    }

    fn ours(mut self, args: &[&str]) -> Case {
        self.ours = Some(args.iter().map(|a| a.to_string()).collect());
        self
    }

    fn file(mut self, path: &str, contents: &str, mode: u32) -> Case {
        self.home.push((path.into(), contents.into(), mode));
        self
    }
}

/// What one client came to: its identity number, port, user and database,
/// or its error text.
#[derive(Debug)]
enum Outcome {
    Reached(i64, Option<(u16, String, String)>),
    Failed(String),
}

fn run_psql(case: &Case, home: &Path) -> Outcome {
    let mut cmd = Command::new(psql());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("PGDATABASE", "postgres")
        .envs(case.env.iter().map(|(k, v)| (k, v)))
        .args(["-X", "-A", "-t", "-w", "-F", "|", "-c"])
        .arg(format!(
            "SELECT {IDENTITY}, current_setting('port'), current_user, current_database()"
        ))
        .args(&case.args);
    let out = cmd.output().expect("psql");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Outcome::Failed(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let fields: Vec<&str> = text.trim().split('|').collect();
    Outcome::Reached(
        fields[0].parse().unwrap(),
        Some((
            fields[1].parse().unwrap(),
            fields[2].to_string(),
            fields[3].to_string(),
        )),
    )
}

fn run_ours(case: &Case, home: &Path) -> (Outcome, String) {
    let args: Vec<String> = case.ours.clone().unwrap_or_else(|| {
        case.args
            .iter()
            .map(|a| if a == "-h" { "-H".into() } else { a.clone() })
            .collect()
    });
    let mut run = PluginRun::new("check_pg_query");
    run.env("HOME", home.to_str().unwrap());
    run.env("PGDATABASE", "postgres");
    for (k, v) in &case.env {
        run.env(k, v);
    }
    let query = format!("SELECT {IDENTITY}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run.args(&args).args(&["--query", &query]).run();
    let shown = format!("{}{}", out.stdout, out.stderr);
    if out.code == 0 {
        (
            Outcome::Reached(out.perf("result").value as i64, None),
            shown,
        )
    } else {
        (Outcome::Failed(out.status_line().to_string()), shown)
    }
}

fn psql() -> PathBuf {
    harness::client_program("psql", true).expect("psql is installed (postgresql-client)")
}

/// Makes the case's home directory and its files.
fn make_home(case: &Case, index: usize) -> PathBuf {
    let home = harness::temp_dir(&format!("conn-home-{index}"));
    for (path, contents, mode) in &case.home {
        let file = home.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, contents).unwrap();
        set_mode(&file, *mode);
    }
    home
}

/// Checks one case, returning what went wrong, if anything.
fn check(case: &Case, index: usize, secrets: &[&str]) -> Option<String> {
    let home = make_home(case, index);
    let theirs = run_psql(case, &home);
    let (ours, shown) = run_ours(case, &home);
    let _ = std::fs::remove_dir_all(&home);
    let mut faults = Vec::new();
    for secret in secrets {
        if shown.contains(secret) {
            faults.push("a password or passphrase shows in pgvigil's output".to_string());
        }
    }
    match (&case.expect, &theirs, &ours) {
        (
            Expect::Reach(port, user, db),
            Outcome::Reached(id, Some(seen)),
            Outcome::Reached(our_id, _),
        ) => {
            if seen != &(*port, user.to_string(), db.to_string()) {
                faults.push(format!(
                    "psql reached {seen:?}, the case expects {port}/{user}/{db}"
                ));
            }
            if id != our_id {
                faults.push(format!("pgvigil reached another server, user or database than psql ({our_id} against {id})"));
            }
        }
        (Expect::Fail(words), Outcome::Failed(_), Outcome::Failed(line)) => {
            if !line.contains(words) {
                faults.push(format!("pgvigil's line lacks \"{words}\""));
            }
        }
        _ => faults.push("the outcomes differ".to_string()),
    }
    (!faults.is_empty()).then(|| {
        format!(
            "{}: {}\n  expected {:?}\n  psql: {theirs:?}\n  pgvigil: {}",
            case.name,
            faults.join("; "),
            case.expect,
            shown.trim()
        )
    })
}

#[test]
fn psql_and_pgvigil_connect_alike() {
    let s = Setup::start();
    let (p, sb) = (s.primary.port, s.standby.port);
    let pp = p.to_string();
    let sock = s.primary.socket_dir.to_str().unwrap().to_string();
    let dead = harness::free_port().to_string();
    let pw = s.scram_password.clone();
    let md5 = s.md5_password.clone();
    let phrase = s.key_passphrase.clone();
    let (ca, other_ca) = (s.cert("ca.crt"), s.cert("other/ca.crt"));
    let (crt, key) = (s.cert("client.crt"), s.cert("client.key"));
    let read = |name: &str| std::fs::read_to_string(s.certs.join(name)).unwrap();
    // The client key encrypted with a passphrase (PKCS#8, AES-256).
    openssl(
        &format!(
            "pkcs8 -topk8 -v2 aes-256-cbc -in client.key -out client-enc.key -passout pass:{phrase}"
        ),
        &s.certs,
    );
    set_mode(&s.certs.join("client-enc.key"), 0o600);
    let enc_key = s.cert("client-enc.key");
    let service = format!(
        "# monitoring\n[mon]\nhost=127.0.0.1\nport={p}\nuser=scram_u\npassword={pw}\ndbname=app\n\
         [badport]\nhost=127.0.0.1\nport={dead}\nuser=monitor\n\
         [nouser]\nhost={sock}\nport={p}\n"
    );
    let svcdir = harness::temp_dir("conn-sysconf");
    std::fs::write(svcdir.join("pg_service.conf"), &service).unwrap();
    let svcfile = svcdir.join("pg_service.conf").to_str().unwrap().to_string();
    let svcdir_s = svcdir.to_str().unwrap().to_string();
    let tcp = |user: &str, extra: &str| format!("host=localhost port={p} user={user} {extra}");
    let uri_socket = format!("postgresql://monitor@{}:{p}/app", sock.replace('/', "%2F"));
    let uri_tcp = format!("postgresql://scram_u:{pw}@127.0.0.1:{p}/app?sslmode=disable");

    use Expect::{Fail, Reach};
    let cases = vec![
        // Options, connection strings and URIs.
        case("options over a socket (trust)", &["-h", &sock, "-p", &pp, "-U", "monitor", "-d", "postgres"], Reach(p, "monitor", "postgres")),
        case("conninfo in -d", &["-d", &format!("host={sock} port={p} user=monitor dbname=app")], Reach(p, "monitor", "app")),
        case("URI with a percent-encoded socket directory", &["-d", &uri_socket], Reach(p, "monitor", "app")),
        case("URI with a password over TCP (scram-sha-256)", &["-d", &uri_tcp], Reach(p, "scram_u", "app")),
        case("conninfo in -d overrides -h", &["-h", "/nonexistent", "-d", &format!("host={sock} port={p} user=monitor")], Reach(p, "monitor", "postgres")),
        case("environment only", &[], Reach(p, "monitor", "app"))
            .env("PGHOST", &sock).env("PGPORT", &pp).env("PGUSER", "monitor").env("PGDATABASE", "app"),
        case("an unknown keyword", &["-d", &format!("host={sock} port={p} colour=blue")], Fail("invalid connection option \"colour\"")),
        // Service files, and precedence.
        case("PGSERVICE from PGSERVICEFILE", &[], Reach(p, "scram_u", "app"))
            .env("PGSERVICE", "mon").env("PGSERVICEFILE", &svcfile),
        case("service= in -d, --service for pgvigil", &["-d", "service=mon"], Reach(p, "scram_u", "app"))
            .ours(&["--service", "mon"]).env("PGSERVICEFILE", &svcfile),
        case("--dbservice, the peers' spelling", &["-d", "service=mon"], Reach(p, "scram_u", "app"))
            .ours(&["--dbservice", "mon"]).env("PGSERVICEFILE", &svcfile),
        case("~/.pg_service.conf", &["-d", "service=mon"], Reach(p, "scram_u", "app"))
            .file(".pg_service.conf", &service, 0o600),
        case("PGSYSCONFDIR/pg_service.conf", &["-d", "service=mon"], Reach(p, "scram_u", "app"))
            .env("PGSYSCONFDIR", &svcdir_s),
        case("an option beats the service", &["-p", &pp, "-d", "service=badport"], Reach(p, "monitor", "postgres"))
            .env("PGSERVICEFILE", &svcfile),
        case("the service beats the environment", &["-d", "service=mon"], Reach(p, "scram_u", "app"))
            .env("PGSERVICEFILE", &svcfile).env("PGPORT", &dead).env("PGUSER", "monitor"),
        case("the environment fills what the service lacks", &["-d", "service=nouser"], Reach(p, "monitor", "postgres"))
            .env("PGSERVICEFILE", &svcfile).env("PGUSER", "monitor"),
        case("a service nobody defines", &["-d", "service=nowhere"], Fail("definition of service \"nowhere\" not found"))
            .env("PGSERVICEFILE", &svcfile),
        // Passwords.
        case("PGPASSWORD for an md5 line", &["-h", "127.0.0.1", "-p", &pp, "-U", "md5_u"], Reach(p, "md5_u", "postgres"))
            .env("PGPASSWORD", &md5),
        case("~/.pgpass for a scram-sha-256 socket line", &["-h", &sock, "-p", &pp, "-U", "scram_u"], Reach(p, "scram_u", "postgres"))
            .file(".pgpass", &format!("{sock}:{p}:*:scram_u:{pw}\n"), 0o600),
        case("a wrong password", &["-h", "127.0.0.1", "-p", &pp, "-U", "scram_u"], Fail("password authentication failed"))
            .env("PGPASSWORD", "not-the-password"),
        case("a reject line, over a socket", &["-h", &sock, "-p", &pp, "-U", "rejected"], Fail("rejects connection")),
        case("a reject line, over TCP", &["-h", "127.0.0.1", "-p", &pp, "-U", "rejected"], Fail("rejects connection")),
        // Several hosts.
        case("two hosts, one port each, the first down", &["-h", "127.0.0.1,127.0.0.1", "-p", &format!("{dead},{p}"), "-U", "monitor"], Reach(p, "monitor", "postgres")),
        case("the password file asked per host", &["-h", "127.0.0.1,localhost", "-p", &format!("{dead},{p}"), "-U", "scram_u"], Reach(p, "scram_u", "postgres"))
            .file(".pgpass", &format!("localhost:{p}:*:scram_u:{pw}\n"), 0o600),
        case("target_session_attrs=primary", &["-d", &format!("host=127.0.0.1,127.0.0.1 port={sb},{p} user=monitor target_session_attrs=primary")], Reach(p, "monitor", "postgres")),
        case("target_session_attrs=standby", &["-d", &format!("host=127.0.0.1,127.0.0.1 port={p},{sb} user=monitor target_session_attrs=standby")], Reach(sb, "monitor", "postgres")),
        case("target_session_attrs=prefer-standby", &["-d", &format!("host=127.0.0.1,127.0.0.1 port={p},{sb} user=monitor target_session_attrs=prefer-standby")], Reach(sb, "monitor", "postgres")),
        case("prefer-standby with no standby", &["-d", &format!("host=127.0.0.1 port={p} user=monitor target_session_attrs=prefer-standby")], Reach(p, "monitor", "postgres")),
        case("target_session_attrs=read-write", &["-d", &format!("host=127.0.0.1,127.0.0.1 port={sb},{p} user=monitor target_session_attrs=read-write")], Reach(p, "monitor", "postgres")),
        case("target_session_attrs=read-only", &["-d", &format!("host=127.0.0.1,127.0.0.1 port={p},{sb} user=monitor target_session_attrs=read-only")], Reach(sb, "monitor", "postgres")),
        case("PGTARGETSESSIONATTRS=standby with only a primary", &["-h", "127.0.0.1", "-p", &pp, "-U", "monitor"], Fail("not a standby"))
            .env("PGTARGETSESSIONATTRS", "standby"),
        // TLS.
        case("verify-full with the CA", &["-d", &tcp("monitor", &format!("sslmode=verify-full sslrootcert={ca}"))], Reach(p, "monitor", "postgres")),
        case("verify-full with a CA that signed nothing", &["-d", &tcp("monitor", &format!("sslmode=verify-full sslrootcert={other_ca}"))], Fail("not signed")),
        case("verify-full, host name mismatch", &["-d", &format!("host=127.0.0.1 port={p} user=monitor sslmode=verify-full sslrootcert={ca}")], Fail("not 127.0.0.1")),
        case("verify-ca by address", &["-d", &format!("host=127.0.0.1 port={p} user=monitor sslmode=verify-ca sslrootcert={ca}")], Reach(p, "monitor", "postgres")),
        case("verify-full, the name from host and the address from hostaddr", &["-d", &format!("host=localhost hostaddr=127.0.0.1 port={p} user=monitor sslmode=verify-full sslrootcert={ca}")], Reach(p, "monitor", "postgres")),
        case("verify-full with an empty revocation list", &["-d", &tcp("monitor", &format!("sslmode=verify-full sslrootcert={ca} sslcrl={}", s.cert("empty.crl")))], Reach(p, "monitor", "postgres")),
        case("verify-full with the server's certificate revoked", &["-d", &tcp("monitor", &format!("sslmode=verify-full sslrootcert={ca} sslcrl={}", s.cert("revoked.crl")))], Fail("revoked")),
        case("verify-full with the revocation list in sslcrldir", &["-d", &tcp("monitor", &format!("sslmode=verify-full sslrootcert={ca} sslcrldir={}", s.cert("crldir")))], Fail("revoked")),
        case("TLS 1.3 at least", &["-d", &tcp("monitor", &format!("sslmode=verify-full sslrootcert={ca} ssl_min_protocol_version=TLSv1.3"))], Reach(p, "monitor", "postgres")),
        case("TLS 1.2 at most", &["-d", &tcp("monitor", &format!("sslmode=verify-full sslrootcert={ca} ssl_max_protocol_version=TLSv1.2"))], Reach(p, "monitor", "postgres")),
        case("no SNI", &["-d", &tcp("monitor", &format!("sslmode=verify-full sslrootcert={ca} sslsni=0"))], Reach(p, "monitor", "postgres")),
        case("~/.postgresql/root.crt by default", &["-d", &tcp("monitor", "sslmode=verify-full")], Reach(p, "monitor", "postgres"))
            .file(".postgresql/root.crt", &read("ca.crt"), 0o644),
        case("verify-full without any root certificate", &["-d", &tcp("monitor", "sslmode=verify-full")], Fail("root")),
        case("a client certificate for a cert line", &["-d", &tcp("cert_u", &format!("sslmode=verify-full sslrootcert={ca} sslcert={crt} sslkey={key}"))], Reach(p, "cert_u", "postgres")),
        case("~/.postgresql/postgresql.crt and .key by default", &["-d", &tcp("cert_u", "sslmode=require")], Reach(p, "cert_u", "postgres"))
            .file(".postgresql/postgresql.crt", &read("client.crt"), 0o644)
            .file(".postgresql/postgresql.key", &read("client.key"), 0o600),
        case("PGSSLCERT and PGSSLKEY", &["-h", "localhost", "-p", &pp, "-U", "cert_u"], Reach(p, "cert_u", "postgres"))
            .env("PGSSLCERT", &crt).env("PGSSLKEY", &key),
        case("no client certificate against a cert line", &["-d", &tcp("cert_u", "sslmode=require")], Fail("certificate")),
        case("a client key others can read", &["-d", &tcp("cert_u", &format!("sslmode=require sslcert={crt} sslkey={}", s.cert("client-open.key")))], Fail("group or world access")),
        case("an encrypted client key with sslpassword", &["-d", &tcp("cert_u", &format!("sslmode=require sslcert={crt} sslkey={enc_key} sslpassword={phrase}"))], Reach(p, "cert_u", "postgres")),
        case("a hostnossl line under prefer", &["-h", "127.0.0.1", "-p", &pp, "-U", "nossl_only"], Reach(p, "nossl_only", "postgres")),
        case("a hostnossl line under require", &["-d", &format!("host=127.0.0.1 port={p} user=nossl_only sslmode=require")], Fail("no pg_hba.conf entry")),
        case("a hostssl line under disable", &["-d", &format!("host=127.0.0.1 port={p} user=ssl_only sslmode=disable")], Fail("no pg_hba.conf entry"))
            .env("PGPASSWORD", &pw),
        case("a hostssl line under allow", &["-d", &format!("host=127.0.0.1 port={p} user=ssl_only sslmode=allow")], Reach(p, "ssl_only", "postgres"))
            .env("PGPASSWORD", &pw),
        case("channel_binding=require over TLS", &["-d", &format!("host=localhost port={p} user=scram_u sslmode=require channel_binding=require")], Reach(p, "scram_u", "postgres"))
            .env("PGPASSWORD", &pw),
        case("channel_binding=require over a socket", &["-d", &format!("host={sock} port={p} user=scram_u channel_binding=require")], Fail("channel binding"))
            .env("PGPASSWORD", &pw),
        // A method the driver lacks.
        case("a gss line", &["-h", "127.0.0.1", "-p", &pp, "-U", "gss_u"], Fail("GSSAPI")),
    ];
    assert!(cases.len() >= 25);
    let secrets = [pw.as_str(), md5.as_str(), phrase.as_str()];
    let faults: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, c)| check(c, i, &secrets))
        .collect();
    let _ = std::fs::remove_dir_all(&svcdir);
    assert!(
        faults.is_empty(),
        "{} of {} cases differ:\n{}",
        faults.len(),
        cases.len(),
        faults.join("\n")
    );
    newer_keywords(&s);
}

/// Keywords of libpq 16 and later, which the psql here (15) does not know:
/// held to what libpq's documentation says of them.
fn newer_keywords(s: &Setup) {
    let p = s.primary.port;
    let run = |conninfo: String, password: Option<&str>| {
        let mut run = PluginRun::new("check_pg_query");
        if let Some(password) = password {
            run.env("PGPASSWORD", password);
        }
        let query = format!("SELECT {IDENTITY}");
        let out = run
            .args(&["-d", &conninfo, "--query", &query, "-v", "-v", "-v"])
            .run();
        assert!(
            !out.stdout.contains(&s.scram_password) && !out.stderr.contains(&s.scram_password),
            "a password shows: {out:?}"
        );
        out
    };
    let tcp = |user: &str, extra: &str| format!("host=127.0.0.1 port={p} user={user} {extra}");
    let pw = Some(s.scram_password.as_str());

    // require_auth: the server's request is known before a password is sent.
    run(tcp("scram_u", "require_auth=scram-sha-256"), pw).expect("OK");
    let out = run(tcp("scram_u", "require_auth=password"), pw);
    out.expect("CRITICAL");
    assert!(
        out.summary().ends_with(
            "authentication method requirement \"password\" failed: server requested SASL (scram-sha-256) authentication"
        ),
        "{}",
        out.summary()
    );
    run(tcp("monitor", "require_auth=none"), None).expect("OK");
    let out = run(tcp("monitor", "require_auth=scram-sha-256,md5"), None);
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .ends_with("server requested no authentication"),
        "{}",
        out.summary()
    );
    let out = run(tcp("md5_u", "require_auth=!md5"), Some(&s.md5_password));
    out.expect("CRITICAL");
    assert!(
        out.summary()
            .ends_with("server requested a hashed password"),
        "{}",
        out.summary()
    );

    // sslrootcert=system: verify-full by default, weaker modes refused.
    let out = run(tcp("monitor", "sslrootcert=system sslmode=require"), None);
    out.expect("UNKNOWN");
    assert!(
        out.summary()
            .starts_with("weak sslmode \"require\" may not be used with sslrootcert=system"),
        "{}",
        out.summary()
    );
    // The test CA is not among the system's: verify-full refuses the server.
    let out = run(
        format!("host=localhost port={p} user=monitor sslrootcert=system"),
        None,
    );
    out.expect("CRITICAL");

    // load_balance_hosts=random: both servers get runs.
    let both = format!(
        "host=127.0.0.1,127.0.0.1 port={p},{} user=monitor load_balance_hosts=random",
        s.standby.port
    );
    let ports: std::collections::BTreeSet<i64> = (0..20)
        .map(|_| {
            let out = run(both.clone(), None);
            out.expect("OK");
            out.perf("result").value as i64 / 1_000_000
        })
        .collect();
    assert_eq!(
        ports,
        [p as i64, s.standby.port as i64].into_iter().collect(),
        "20 runs with load_balance_hosts=random reach both servers"
    );
}
