//! `pgvigil`: every check and event handler of the suite in one binary.
//! Called as `check_pg_locks` (a link to it) it runs that check; called as
//! `pgvigil locks …` it runs it too.

mod completions;
mod daemons;
mod dispatch;
mod links;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    dispatch::main(args)
}
