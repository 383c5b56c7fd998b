//! Shell completions for every program, from the same command definitions
//! as `--help` and the man pages: one file per program name, as bash's
//! bash-completion and zsh's fpath look them up (`check_pg_locks`,
//! `_check_pg_locks`).

use std::path::Path;

use clap_complete::Shell;
use pgvigil::registry;

/// Writes the completions of every program for `shell` into `dir`; how many.
pub fn write(shell: &str, dir: &Path) -> Result<usize, String> {
    let shell = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        other => return Err(format!("no completions for '{other}' (bash, zsh)")),
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = 0;
    for entry in registry::all() {
        let file = match shell {
            Shell::Zsh => dir.join(format!("_{}", entry.binary)),
            _ => dir.join(entry.binary),
        };
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut (entry.command)(), entry.binary, &mut out);
        std::fs::write(&file, out).map_err(|e| format!("{}: {e}", file.display()))?;
        written += 1;
    }
    Ok(written)
}
