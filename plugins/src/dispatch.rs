//! Which program to run: the name the binary was called by, or the first
//! argument after `pgvigil`. Every name comes from the registry.

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

use pgvigil::registry;

const USAGE: &str = "\
usage: pgvigil CHECK [OPTIONS]     run a check (or check_pg_CHECK, a link to pgvigil)
       pgvigil --list              every check and event handler, one line each
       pgvigil --links             the names to link to this binary, one a line
       pgvigil --install-links DIR link every check_pg_* and handle_pg_* in DIR to this binary
       pgvigil --completions bash|zsh DIR
                                   write shell completions for every program into DIR
       pgvigil --director-basket   print the Icinga Director basket: every check's command,
                                   data fields and service template (JSON)
       pgvigil --icinga2-commands  print the Icinga2 CheckCommands and EventCommands
       pgvigil --nagios-commands   print the Nagios command definitions
       pgvigil --icinga2-example FILE | --nagios-example FILE
                                   print FILE (an example written by hand) with a service
                                   for every check it leaves out
       pgvigil setup-check [-H HOST -p PORT -U USER -d DB]
                                   can this role do every check's full job? the SQL for each gap
       pgvigil --version";

pub fn main(mut args: Vec<OsString>) -> ! {
    let called = args
        .first()
        .map(|a| Path::new(a).file_name().unwrap_or(a.as_os_str()))
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(entry) = registry::all().find(|e| e.binary == called) {
        (entry.run)(args)
    }
    let first = args.get(1).map(|a| a.to_string_lossy().into_owned());
    match first.as_deref() {
        None | Some("-h" | "--help" | "help") => exit(0, USAGE),
        Some("-V" | "--version") => exit(0, &format!("pgvigil {}", env!("CARGO_PKG_VERSION"))),
        Some("--list") => exit(0, &list()),
        Some("--links") => exit(
            0,
            &registry::all()
                .map(|e| e.binary)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Some("--install-links") => match args.get(2) {
            Some(dir) => match crate::links::install(Path::new(dir)) {
                Ok(n) => exit(
                    0,
                    &format!("pgvigil: {n} links in {}", Path::new(dir).display()),
                ),
                Err(e) => exit(3, &format!("pgvigil: {e}")),
            },
            None => exit(3, "pgvigil: --install-links needs a directory"),
        },
        Some("--completions") => match (args.get(2), args.get(3)) {
            (Some(shell), Some(dir)) => {
                match crate::completions::write(&shell.to_string_lossy(), Path::new(dir)) {
                    Ok(n) => exit(
                        0,
                        &format!(
                            "pgvigil: {n} completion files in {}",
                            Path::new(dir).display()
                        ),
                    ),
                    Err(e) => exit(3, &format!("pgvigil: {e}")),
                }
            }
            _ => exit(
                3,
                "pgvigil: --completions needs a shell (bash, zsh) and a directory",
            ),
        },
        Some("--director-basket") => exit(
            0,
            &serde_json::to_string_pretty(&crate::daemons::director::basket()).unwrap_or_default(),
        ),
        // What the packages install; a test holds packaging/ to it.
        Some("--icinga2-commands") => exit(0, crate::daemons::icinga2::commands().trim_end()),
        Some("--nagios-commands") => exit(0, crate::daemons::nagios::commands().trim_end()),
        Some(flag @ ("--icinga2-example" | "--nagios-example")) => {
            let Some(path) = args.get(2) else {
                exit(3, &format!("pgvigil: {flag} needs the example file"))
            };
            match std::fs::read_to_string(path) {
                Ok(hand) if flag == "--icinga2-example" => {
                    exit(0, crate::daemons::icinga2::example(&hand).trim_end())
                }
                Ok(hand) => exit(0, crate::daemons::nagios::example(&hand).trim_end()),
                Err(e) => exit(3, &format!("pgvigil: {}: {e}", Path::new(path).display())),
            }
        }
        Some("setup-check") => {
            args.remove(0);
            pgvigil::setup_check::main(args)
        }
        // The README's table of plugins, which a test holds the README to.
        Some("--readme-table") => exit(0, registry::readme_table().trim_end()),
        // One program's example command line, which the demo runs.
        Some("--example") => match args
            .get(2)
            .and_then(|n| registry::find(&n.to_string_lossy()))
        {
            Some(entry) => exit(0, &entry.example_line()),
            None => exit(
                3,
                "pgvigil: --example needs a check or handler (pgvigil --list names them)",
            ),
        },
        Some(name) => match registry::find(name) {
            Some(entry) => {
                // The program sees itself called by its installed name, so
                // help, usage errors and state keys read as with a link.
                args.remove(0);
                args[0] = entry.binary.into();
                (entry.run)(args)
            }
            None => exit(
                3,
                &format!("pgvigil: no check or handler '{name}' (pgvigil --list names them)"),
            ),
        },
    }
}

/// `check_pg_locks  Sessions blocked by …`, checks then handlers.
fn list() -> String {
    let width = registry::all().map(|e| e.binary.len()).max().unwrap_or(0);
    registry::all()
        .map(|e| format!("{:width$}  {}", e.binary, e.about))
        .collect::<Vec<_>>()
        .join("\n")
}

fn exit(code: i32, text: &str) -> ! {
    let mut out: Box<dyn Write> = if code == 0 {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::stderr().lock())
    };
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
    std::process::exit(code)
}
