//! `pgvigil-bench-run CMD [ARGS…]`: runs CMD once, output discarded, and
//! prints `wall_us cpu_us peak_rss_kb exit_code`.
//!
//! A separate small process because peak RSS read through wait4 counts the
//! pages a forked child inherits before exec: forked from the Python driver,
//! every command would measure at the driver's size.

use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: pgvigil-bench-run CMD [ARGS...]");
        return ExitCode::from(2);
    };
    let start = Instant::now();
    let child = match Command::new(&program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("pgvigil-bench-run: {}: {e}", program.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if pid < 0 {
        eprintln!(
            "pgvigil-bench-run: wait4: {}",
            std::io::Error::last_os_error()
        );
        return ExitCode::from(2);
    }
    let micros = |t: libc::timeval| t.tv_sec as u128 * 1_000_000 + t.tv_usec as u128;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    println!(
        "{} {} {} {code}",
        wall.as_micros(),
        micros(usage.ru_utime) + micros(usage.ru_stime),
        usage.ru_maxrss
    );
    ExitCode::SUCCESS
}
