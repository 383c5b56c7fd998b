//! `pgvigil-bench-sessions JOBS < DATABASES`: opens a session to each
//! database named on standard input, JOBS at a time, runs `SELECT 1` and
//! closes it; prints the wall time in microseconds and how many failed.
//! The floor under any check that visits every database: what the server
//! spends starting and ending sessions. Host, port and user come from the
//! libpq environment (PGHOST, PGPORT, PGUSER).

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn main() -> ExitCode {
    let Some(jobs) = std::env::args()
        .nth(1)
        .and_then(|j| j.parse::<usize>().ok())
    else {
        eprintln!("usage: pgvigil-bench-sessions JOBS < DATABASES");
        return ExitCode::from(2);
    };
    let names: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.is_empty())
        .collect();
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let (host, port, user) = (
        env("PGHOST", "/tmp"),
        env("PGPORT", "5432"),
        env("PGUSER", "postgres"),
    );
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let Some(name) = names.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return;
                };
                let ok = postgres::Config::new()
                    .host(&host)
                    .port(port.parse().unwrap_or(5432))
                    .user(&user)
                    .dbname(name)
                    .connect(postgres::NoTls)
                    .and_then(|mut c| c.simple_query("SELECT 1").map(|_| ()));
                if ok.is_err() {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    println!(
        "{} {}",
        start.elapsed().as_micros(),
        failed.load(Ordering::SeqCst)
    );
    ExitCode::SUCCESS
}
