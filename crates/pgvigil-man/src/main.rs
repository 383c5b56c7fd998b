//! `pgvigil-man DIR`: writes DIR/<binary>.1 for every plugin and event handler, rendered
//! from the same clap definitions as the plugins' `--help`, so the two cannot
//! drift apart.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: pgvigil-man DIR");
        return ExitCode::from(2);
    };
    for command in pgvigil::registry::all().map(|e| (e.command)()) {
        let path = dir.join(format!("{}.1", command.get_name()));
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| write_page(command, &path)) {
            eprintln!("pgvigil-man: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn write_page(command: clap::Command, path: &Path) -> std::io::Result<()> {
    // The after-help text is laid out for a terminal, in sections headed by
    // an upper-case line: each becomes a man section kept as laid out.
    let extra = command
        .get_after_help()
        .map(|text| text.to_string())
        .unwrap_or_default();
    let man = clap_mangen::Man::new(command.after_help(None::<&str>))
        .section("1")
        .manual("pgvigil")
        .source(concat!("pgvigil ", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    for line in extra.lines() {
        if !line.is_empty() && !line.starts_with(' ') {
            writeln!(page, ".SH {}\n.nf", escape(line))?;
        } else if !line.is_empty() {
            writeln!(page, "{}", escape(line.trim_start()))?;
        } else {
            writeln!(page, ".fi")?;
        }
    }
    writeln!(page, ".fi")?;
    man.render_version_section(&mut page)?;
    std::fs::write(path, page)
}

/// Text as roff prints it literally.
fn escape(line: &str) -> String {
    let line = line.replace('\\', "\\e").replace('-', "\\-");
    if line.starts_with(['.', '\'']) {
        format!("\\&{line}")
    } else {
        line
    }
}
