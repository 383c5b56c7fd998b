//! Connection settings from options and the libpq environment: every input
//! line is NAME=VALUE, where NAME is an environment variable or one of
//! -H, -p, -d, -U, --service, --sslmode. Settings or a usage error, never a
//! panic, and a password given never shows in `{:?}`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil::conninfo::{ConnArgs, ConnSettings};

fuzz_target!(|text: &str| {
    let mut args = ConnArgs::default();
    let mut env = Vec::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        match name {
            "-H" => args.host = Some(value.to_string()),
            "-p" => args.port = Some(value.to_string()),
            "-d" => args.dbname = Some(value.to_string()),
            "-U" => args.username = Some(value.to_string()),
            "--service" => args.service = Some(value.to_string()),
            "--sslmode" => args.sslmode = Some(value.to_string()),
            _ => env.push((name.to_string(), value.to_string())),
        }
    }
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    if let Ok(settings) = ConnSettings::resolve(&args, "check_pg_fuzz", &lookup) {
        assert!(!settings.endpoints.is_empty() && settings.port() > 0);
        let _ = settings.target();
        let _ = settings.for_database("other");
        // Another password prints the same: the password itself never shows.
        if settings.password.is_some() {
            let mut other = settings.clone();
            other.password = Some("another".into());
            assert_eq!(format!("{settings:?}"), format!("{other:?}"));
        }
    }
});
