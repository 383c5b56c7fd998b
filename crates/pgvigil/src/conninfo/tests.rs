use super::*;
use std::collections::HashMap;

fn resolve(args: &ConnArgs, vars: &[(&str, &str)]) -> Result<ConnSettings, Error> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ConnSettings::resolve(args, "check_pg_test", &|k| map.get(k).cloned())
}

fn with_db(dbname: &str) -> ConnArgs {
    ConnArgs {
        dbname: Some(dbname.into()),
        ..ConnArgs::default()
    }
}

fn ep(host: &str, port: u16) -> Endpoint {
    Endpoint {
        host: host.into(),
        hostaddr: None,
        port,
    }
}

#[test]
fn psql_defaults_when_nothing_is_set() {
    let s = resolve(&ConnArgs::default(), &[("PGUSER", "mon")]).unwrap();
    assert_eq!(s.hosts(), vec!["/var/run/postgresql", "localhost"]);
    assert_eq!(s.port(), 5432);
    // Not psql's user name: the database every cluster has.
    assert_eq!(s.dbname, "postgres");
    assert_eq!(s.tls.mode, SslMode::Prefer);
    assert_eq!(s.application_name, "check_pg_test");
    assert_eq!(s.password, None);
    assert_eq!(s.target_session_attrs, TargetSessionAttrs::Any);
}

#[test]
fn environment_is_honoured() {
    let s = resolve(
        &ConnArgs::default(),
        &[
            ("PGHOST", "db1,db2"),
            ("PGPORT", "6432"),
            ("PGDATABASE", "app"),
            ("PGUSER", "mon"),
            ("PGPASSWORD", "pw"),
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "/etc/ca.pem"),
            ("PGCONNECT_TIMEOUT", "1"),
            ("PGAPPNAME", "nagios"),
            ("PGTARGETSESSIONATTRS", "prefer-standby"),
            ("PGSSLCERT", "/etc/mon.crt"),
        ],
    )
    .unwrap();
    assert_eq!(s.endpoints, vec![ep("db1", 6432), ep("db2", 6432)]);
    assert_eq!((s.dbname.as_str(), s.user.as_str()), ("app", "mon"));
    assert_eq!(s.password.as_deref(), Some("pw"));
    assert_eq!(s.tls.mode, SslMode::VerifyFull);
    assert_eq!(s.tls.rootcert, Some(PathBuf::from("/etc/ca.pem")));
    assert_eq!(s.tls.cert, Some(PathBuf::from("/etc/mon.crt")));
    assert_eq!(s.connect_timeout, Some(Duration::from_secs(2)));
    assert_eq!(s.application_name, "nagios");
    assert_eq!(s.target_session_attrs, TargetSessionAttrs::PreferStandby);
    assert!(
        !format!("{s:?}").contains("pw\""),
        "password must not be printed"
    );
}

#[test]
fn options_beat_the_environment() {
    let a = ConnArgs {
        host: Some("/tmp".into()),
        port: Some("5555".into()),
        username: Some("alice".into()),
        dbname: Some("db".into()),
        ..ConnArgs::default()
    };
    let s = resolve(&a, &[("PGHOST", "x"), ("PGPORT", "1"), ("PGUSER", "bob")]).unwrap();
    assert_eq!(s.endpoints, vec![ep("/tmp", 5555)]);
    assert_eq!(s.user, "alice");
    assert!(s.is_unix_socket());
    assert_eq!(s.target(), "socket /tmp/.s.PGSQL.5555");
}

#[test]
fn a_connection_string_in_dbname_overrides_the_options_as_in_psql() {
    let mut a = with_db("host=/run/pg port=5433 dbname=app sslmode=disable");
    a.host = Some("ignored".into());
    a.username = Some("mon".into());
    let s = resolve(&a, &[("PGPORT", "1")]).unwrap();
    assert_eq!(s.endpoints, vec![ep("/run/pg", 5433)]);
    assert_eq!((s.dbname.as_str(), s.user.as_str()), ("app", "mon"));
    assert_eq!(s.tls.mode, SslMode::Disable);

    let s = resolve(
        &with_db("postgresql://mon:se%2Fcret@a:1,b:2/app?application_name=x&target_session_attrs=read-write"),
        &[],
    )
    .unwrap();
    assert_eq!(s.endpoints, vec![ep("a", 1), ep("b", 2)]);
    assert_eq!(s.password.as_deref(), Some("se/cret"));
    assert_eq!(s.application_name, "x");
    assert_eq!(s.target_session_attrs, TargetSessionAttrs::ReadWrite);
    assert!(!format!("{s:?}").contains("se/cret"));
}

#[test]
fn ports_per_host_and_hostaddr() {
    let mut a = with_db("app");
    a.host = Some("a,b,c".into());
    a.port = Some("5433,,5435".into());
    let s = resolve(&a, &[("PGUSER", "u")]).unwrap();
    assert_eq!(
        s.endpoints,
        vec![ep("a", 5433), ep("b", 5432), ep("c", 5435)]
    );
    assert_eq!(s.target(), "a:5433 or b:5432 or c:5435");
    a.port = Some("1,2".into());
    assert_eq!(
        resolve(&a, &[("PGUSER", "u")]).unwrap_err(),
        Error::Usage("could not match 2 port numbers to 3 hosts".into())
    );
    let s = resolve(&with_db("host=db hostaddr=127.0.0.1"), &[("PGUSER", "u")]).unwrap();
    assert_eq!(s.endpoints[0].hostaddr, Some([127, 0, 0, 1].into()));
    assert_eq!(s.hosts(), vec!["127.0.0.1"]);
    assert_eq!(s.target(), "db (127.0.0.1):5432");
    let s = resolve(&with_db("hostaddr=::1"), &[("PGUSER", "u")]).unwrap();
    assert_eq!(s.target(), "::1:5432");
    assert!(resolve(&with_db("hostaddr=db1"), &[("PGUSER", "u")]).is_err());
}

#[test]
fn a_service_fills_what_options_left_and_beats_the_environment() {
    let dir = std::env::temp_dir().join(format!("pgvigil-service-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("services.conf");
    std::fs::write(
        &file,
        "[mon]\nhost=/svc\nport=6000\ndbname=svcdb\nuser=svcuser\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let env = [
        ("PGSERVICEFILE", file),
        ("PGPORT", "7000"),
        ("PGSSLMODE", "disable"),
    ];
    let a = ConnArgs {
        service: Some("mon".into()),
        username: Some("opt".into()),
        ..ConnArgs::default()
    };
    let s = resolve(&a, &env).unwrap();
    assert_eq!(s.endpoints, vec![ep("/svc", 6000)]);
    assert_eq!((s.dbname.as_str(), s.user.as_str()), ("svcdb", "opt"));
    assert_eq!(s.tls.mode, SslMode::Disable);
    // PGSERVICE and service= in -d name it too.
    let mut env2 = env.to_vec();
    env2.push(("PGSERVICE", "mon"));
    assert_eq!(
        resolve(&ConnArgs::default(), &env2).unwrap().dbname,
        "svcdb"
    );
    assert_eq!(
        resolve(&with_db("service=mon"), &env).unwrap().dbname,
        "svcdb"
    );
    let err = resolve(&with_db("service=other"), &env).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("definition of service \"other\" not found"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tls_defaults_from_the_home_directory() {
    let s = resolve(
        &ConnArgs::default(),
        &[("PGUSER", "u"), ("HOME", "/home/mon")],
    )
    .unwrap();
    let dot = PathBuf::from("/home/mon/.postgresql");
    assert_eq!(s.tls.rootcert, Some(dot.join("root.crt")));
    assert_eq!(s.tls.cert, Some(dot.join("postgresql.crt")));
    assert_eq!(s.tls.key, Some(dot.join("postgresql.key")));
    assert_eq!(s.passfile, Some(PathBuf::from("/home/mon/.pgpass")));
    // No such root.crt: require encrypts without checking.
    assert!(!s.tls.verifies_chain());
    let s = resolve(&with_db("sslrootcert=system"), &[("PGUSER", "u")]).unwrap();
    assert_eq!(s.tls.mode, SslMode::VerifyFull);
    assert!(resolve(
        &with_db("sslrootcert=system sslmode=require"),
        &[("PGUSER", "u")]
    )
    .is_err());
}

#[test]
fn bad_values_are_usage_errors() {
    let a = ConnArgs {
        port: Some("http".into()),
        ..ConnArgs::default()
    };
    assert_eq!(
        resolve(&a, &[("PGUSER", "u")]).unwrap_err(),
        Error::Usage("invalid port 'http'".into())
    );
    for (k, v) in [
        ("PGSSLMODE", "maybe"),
        ("PGTARGETSESSIONATTRS", "primary-ish"),
        ("PGCHANNELBINDING", "always"),
        ("PGLOADBALANCEHOSTS", "yes"),
        ("PGREQUIREAUTH", "scram-sha-256,!md5"),
        ("PGREQUIREAUTH", "kerberos"),
        ("PGREQUIREAUTH", "gss"),
        ("PGGSSENCMODE", "require"),
        ("PGCONNECT_TIMEOUT", "soon"),
        ("PGSSLMAXPROTOCOLVERSION", "TLSv1.1"),
    ] {
        let r = resolve(&ConnArgs::default(), &[("PGUSER", "u"), (k, v)]);
        assert!(matches!(r, Err(Error::Usage(_))), "{k}={v}: {r:?}");
    }
    assert_eq!(
        resolve(&with_db("host=x colour=blue"), &[]).unwrap_err(),
        Error::Usage("invalid connection option \"colour\"".into())
    );
}

#[test]
fn require_auth_lists() {
    let s = resolve(
        &with_db("require_auth=scram-sha-256,none"),
        &[("PGUSER", "u")],
    )
    .unwrap();
    let r = s.require_auth.unwrap();
    assert!(r.allows("scram-sha-256") && r.allows("none") && !r.allows("password"));
    let s = resolve(&with_db("require_auth=!password"), &[("PGUSER", "u")]).unwrap();
    let r = s.require_auth.unwrap();
    assert!(!r.allows("password") && r.allows("md5"));
}

#[test]
fn the_password_file_is_asked_per_host() {
    let dir = std::env::temp_dir().join(format!("pgvigil-passfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pgpass");
    std::fs::write(&file, "a:5432:*:mon:first\nb:5433:*:mon:second\n").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let a = ConnArgs {
        host: Some("a,b".into()),
        port: Some("5432,5433".into()),
        ..ConnArgs::default()
    };
    let s = resolve(
        &a,
        &[("PGUSER", "mon"), ("PGPASSFILE", file.to_str().unwrap())],
    )
    .unwrap();
    assert_eq!(s.password_for(&s.endpoints[0]).as_deref(), Some("first"));
    assert_eq!(s.password_for(&s.endpoints[1]).as_deref(), Some("second"));
    std::fs::remove_dir_all(&dir).unwrap();
}
