//! `.pgpass` lines: the first input line is the lookup (host:port:db:user),
//! the rest the file. A password or none, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil::conninfo::pgpass::{find_password, Lookup};

fuzz_target!(|text: &str| {
    let (wanted, contents) = text.split_once('\n').unwrap_or((text, ""));
    let mut parts = wanted.splitn(4, ':');
    let host = parts.next().unwrap_or("");
    let port = parts.next().and_then(|p| p.parse().ok()).unwrap_or(5432);
    let dbname = parts.next().unwrap_or("postgres");
    let user = parts.next().unwrap_or("nagios");
    let lookup = Lookup {
        host,
        port,
        dbname,
        user,
    };
    if let Some(password) = find_password(contents, &lookup) {
        // One line's fifth field, unescaped: never longer than a line, never
        // reaching into the next one.
        let longest = contents.lines().map(str::len).max().unwrap_or(0);
        assert!(
            !password.contains('\n') && password.len() <= longest,
            "{text:?}"
        );
    }
});
